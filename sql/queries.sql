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
-- ?1 event_id ?2 status ?3 now ?4 order_id
UPDATE inbox SET status = ?2,
       applied_at = CASE WHEN ?2 = 'applied' THEN ?3 ELSE applied_at END
 WHERE order_id = ?4 AND event_id = ?1;

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

-- name: order_get
-- ?1 order_id
SELECT state, customer_id, amount_cents, currency, items, payment_id, reason,
       reason_sku, traceparent, lines
  FROM orders WHERE order_id = ?1;

-- name: order_insert
-- ?1 order_id ?2 state ?3 customer_id ?4 amount_cents ?5 currency ?6 items
-- ?7 created_event_id ?8 traceparent ?9 now ?10 reason ?11 reason_sku ?12 lines
INSERT INTO orders (order_id, state, customer_id, amount_cents, currency, items,
                    created_event_id, traceparent, created_at, updated_at,
                    reason, reason_sku, lines)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12);

-- name: order_update
-- ?1 order_id ?2 state ?3 payment_id (NULL keeps it) ?4 reason ?5 reason_sku ?6 now
UPDATE orders SET state = ?2, payment_id = coalesce(?3, payment_id),
       reason = ?4, reason_sku = ?5, updated_at = ?6
 WHERE order_id = ?1;

-- name: order_in_flight
-- Whether a step of the order still waits for its result.  ?1 order_id
SELECT EXISTS (SELECT 1 FROM saga_steps WHERE order_id = ?1 AND result IS NULL);

-- name: step_insert
-- ?1 order_id ?2 kind ?3 sku ?4 qty ?5 event_id ?6 now
INSERT INTO saga_steps (order_id, kind, sku, qty, event_id, intent_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- name: step_result
-- ?1 id ?2 result ?3 now
UPDATE saga_steps SET result = ?2, done_at = ?3 WHERE id = ?1 AND result IS NULL;

-- name: steps_in_flight
-- Every step without a result, grouped by order (recovery).
SELECT s.id, s.order_id, s.kind, s.sku, s.qty, s.event_id, i.traceparent
  FROM saga_steps s
  LEFT JOIN inbox i ON i.order_id = s.order_id AND i.event_id = s.event_id
 WHERE s.result IS NULL
 ORDER BY s.order_id, s.id;

-- name: deadline_set
-- ?1 order_id ?2 due_at
INSERT INTO deadlines (order_id, due_at) VALUES (?1, ?2)
ON CONFLICT (order_id) DO UPDATE SET due_at = excluded.due_at, fired_at = NULL;

-- name: deadline_clear
-- ?1 order_id
DELETE FROM deadlines WHERE order_id = ?1 AND fired_at IS NULL;

-- name: deadline_fired
-- ?1 order_id ?2 now
UPDATE deadlines SET fired_at = ?2 WHERE order_id = ?1;

-- name: deadlines_due
-- ?1 now ?2 limit
SELECT order_id, due_at FROM deadlines
 WHERE fired_at IS NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2;

-- name: dlq_insert
-- ?1 topic ?2 partition ?3 offset ?4 key ?5 error ?6 payload ?7 now
INSERT INTO dlq (topic, kafka_partition, kafka_offset, msg_key, error, payload, received_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- name: stock_adjustments_unapplied
SELECT adjustment_id, sku, qty FROM stock_adjustments WHERE applied_at IS NULL ORDER BY id;

-- name: orders_live
-- Orders whose saga is under way, by state (NEW, RESERVED), for /metrics:
-- the partial index orders_live covers it, however many orders are over.
SELECT state, count(*) FROM orders INDEXED BY orders_live
 WHERE state IN ('NEW', 'RESERVED') GROUP BY state;

-- name: outbox_backlog
-- For /metrics and /healthz: unpublished rows, counted up to ?1, and the
-- created_at of the first one in publish order (NULL when none), both from
-- the partial index outbox_pending, never from the published rows.
SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox INDEXED BY outbox_pending
                               WHERE published_at IS NULL LIMIT ?1)),
       (SELECT created_at FROM outbox INDEXED BY outbox_pending
         WHERE published_at IS NULL ORDER BY id LIMIT 1);

-- name: retention_inbox
-- Retention: deletes at most ?2 inbox rows received before ?1 whose event
-- was applied or ignored, oldest first (index inbox_received).  Waiting and
-- parked events stay.  (A step still in flight after the retention age only
-- loses its traceparent: recovery falls back to the order's.)
DELETE FROM inbox WHERE rowid IN (
    SELECT rowid FROM inbox
     WHERE received_at < ?1 AND status IN ('applied', 'ignored')
     ORDER BY received_at LIMIT ?2);

-- name: retention_outbox_window
-- Retention: the next ?3 outbox rows after id ?1, by id: how many, the last
-- id, and whether one was created at or after ?2.  Ids grow with time, so
-- past such a row nothing can have been published before ?2.  outbox has
-- no index on published_at; windows of the primary key keep each look short.
SELECT count(*), max(id), coalesce(max(created_at >= ?2), 0)
  FROM (SELECT id, created_at FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?3);

-- name: retention_outbox
-- Retention: deletes the rows of a window (?1 < id <= ?3) published before
-- ?2; unpublished rows (published_at NULL) never match.
DELETE FROM outbox WHERE id > ?1 AND id <= ?3 AND published_at < ?2;

-- name: stock_adjustment_latest_applied
-- The sku of the latest stock addition Redis has applied: if Redis has no
-- stock hash for it, Redis lost the inventory.
SELECT sku FROM stock_adjustments WHERE applied_at IS NOT NULL ORDER BY id DESC LIMIT 1;

-- name: step_results
-- Every step of one transition with the same result: the ids of a
-- transition's steps are consecutive (written in one transaction, in order).
-- ?1 first id ?2 last id ?3 result ?4 now
UPDATE saga_steps SET result = ?3, done_at = ?4 WHERE id BETWEEN ?1 AND ?2 AND result IS NULL;

-- name: orders_with_unapplied_events
-- Orders whose events wait or are parked (recovery).
SELECT DISTINCT order_id FROM inbox WHERE status IN ('waiting', 'parked');
