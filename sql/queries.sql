-- queries.sql: every statement the journal module prepares, by name.
--
-- src/journal.c loads this file at open and prepares each "-- name:" block;
-- parameters are positional (?1, ?2, ...) and documented per statement.

-- name: inbox_insert
-- ?1 event_id ?2 topic ?3 partition ?4 offset ?5 type ?6 order_id ?7 status
-- ?8 received_at ?9 traceparent ?10 payload
INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset, type, order_id,
                   status, received_at, applied_at, traceparent, payload)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
        CASE WHEN ?7 = 'applied' THEN ?8 END, ?9, ?10);

-- name: inbox_set_status
-- ?1 event_id ?2 status ?3 now
UPDATE inbox SET status = ?2,
       applied_at = CASE WHEN ?2 = 'applied' THEN ?3 ELSE applied_at END
 WHERE event_id = ?1;

-- name: inbox_unapplied
-- Events that wait for their order, oldest first.  ?1 order_id
SELECT event_id, topic, kafka_partition, kafka_offset, type, status,
       received_at, traceparent, payload
  FROM inbox WHERE order_id = ?1 AND status IN ('waiting', 'parked')
 ORDER BY rowid;

-- name: outbox_insert
-- ?1 topic ?2 key ?3 event_id ?4 order_id ?5 type ?6 headers ?7 payload ?8 created_at
INSERT INTO outbox (topic, msg_key, event_id, order_id, type, headers, payload, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);

-- name: outbox_pending
-- Unpublished rows after ?1, in id order, at most ?2.
SELECT id, topic, msg_key, event_id, order_id, type, headers, payload, created_at, attempts
  FROM outbox WHERE published_at IS NULL AND id > ?1
 ORDER BY id LIMIT ?2;

-- name: outbox_published
-- ?1 id ?2 now
UPDATE outbox SET published_at = ?2, attempts = attempts + 1, last_error = NULL
 WHERE id = ?1 AND published_at IS NULL;

-- name: outbox_failed
-- ?1 id ?2 error
UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1;

-- name: outbox_stats
-- pending, published, oldest pending created_at (NULL when none pending)
SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
       (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL),
       (SELECT min(created_at) FROM outbox WHERE published_at IS NULL);

-- name: stock_adjustment_insert
-- ?1 adjustment_id ?2 sku ?3 qty ?4 created_at
INSERT INTO stock_adjustments (adjustment_id, sku, qty, created_at) VALUES (?1, ?2, ?3, ?4);

-- name: stock_adjustment_applied
-- ?1 adjustment_id ?2 now
UPDATE stock_adjustments SET applied_at = ?2 WHERE adjustment_id = ?1 AND applied_at IS NULL;
