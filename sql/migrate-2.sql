-- migrate-2.sql: journal version 2: what the changelog topic and a takeover of partitions need.
--
-- Several instances in one consumer group each keep a journal; an order's
-- state travels between them through the compacted changelog topic
-- ([topics] state).  A record is current when its (epoch, version) is the
-- highest: epoch grows every time an instance takes a partition over,
-- version every time the order's state is published.

-- The partition of the order's OrderCreated on the orders topic: its
-- changelog record goes to the same partition of the state topic.
ALTER TABLE orders ADD COLUMN kafka_partition INTEGER;
ALTER TABLE orders ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
UPDATE orders SET kafka_partition = (
    SELECT i.kafka_partition FROM inbox i
     WHERE i.order_id = orders.order_id AND i.event_id = orders.created_event_id);

-- An explicit partition for the row (changelog records), or NULL for the
-- producer's partitioner on msg_key.
ALTER TABLE outbox ADD COLUMN kafka_partition INTEGER;
-- Set when another instance took the order over before this row was
-- published: the new owner produces it again from Kafka, this one never.
ALTER TABLE outbox ADD COLUMN superseded_at INTEGER;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id)
 WHERE published_at IS NULL AND superseded_at IS NULL;
