-- session.sql: run on every connection the journal module opens, after migrations: its TEMP tables.
--
-- owned: the partitions of the orders topic this orderd consumes now, each
-- with the epoch of its ownership (see sql/migrate-2.sql).  Filled by the
-- engine when the consumer group assigns partitions, emptied on
-- revocation; deadlines and recovery only look at orders of these.
CREATE TEMP TABLE IF NOT EXISTS owned (
    kafka_partition INTEGER PRIMARY KEY,
    epoch           INTEGER NOT NULL
);

-- retention_orders: the orders one retention transaction deletes (picked by
-- retention_orders_pick, then folded, tombstoned and deleted by id), with
-- whether this instance owns the order's partition.
CREATE TEMP TABLE IF NOT EXISTS retention_orders (
    order_id        TEXT PRIMARY KEY,
    kafka_partition INTEGER,
    owned           INTEGER NOT NULL
);
