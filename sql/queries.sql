-- queries.sql: every statement the journal module prepares, by name.
--
-- src/journal_open.c loads this file at open and prepares each "-- name:" block;
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
-- ?9 partition (NULL: the producer's partitioner)
INSERT INTO outbox (topic, msg_key, event_id, order_id, type, headers, payload, created_at,
                    kafka_partition)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9);

-- name: outbox_pending
-- Rows to publish after ?1, in id order, at most ?2: unpublished, neither
-- dead nor dropped, and not held: a row waits while an earlier row of its
-- order is dead (journal v4), so that the order's outputs stay in order.
SELECT id, topic, msg_key, event_id, order_id, type, headers, payload, created_at, attempts,
       kafka_partition
  FROM outbox
 WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
   AND dropped_at IS NULL AND id > ?1
   AND (order_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM outbox d INDEXED BY outbox_dead
         WHERE d.order_id = outbox.order_id AND d.id < outbox.id
           AND d.dead_at IS NOT NULL AND d.dropped_at IS NULL
           AND d.superseded_at IS NULL AND d.published_at IS NULL))
 ORDER BY id LIMIT ?2;

-- name: outbox_pending_clean
-- outbox_pending while no row is dead (the relay knows: outbox_any_dead):
-- nothing can be held, so no row pays for the look at outbox_dead.
SELECT id, topic, msg_key, event_id, order_id, type, headers, payload, created_at, attempts,
       kafka_partition
  FROM outbox
 WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
   AND dropped_at IS NULL AND id > ?1
 ORDER BY id LIMIT ?2;

-- name: outbox_any_dead
-- Whether some row is dead and not dropped (index outbox_dead).
SELECT EXISTS (SELECT 1 FROM outbox INDEXED BY outbox_dead
                WHERE dead_at IS NOT NULL AND dropped_at IS NULL
                  AND superseded_at IS NULL AND published_at IS NULL);

-- name: outbox_first_pending
-- The lowest row to publish (as outbox_pending) up to id ?1, or none: after
-- orderctl made a row pending again (retry) or let an order's held rows go
-- (drop), the relay goes back to it.
SELECT id FROM outbox INDEXED BY outbox_pending
 WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
   AND dropped_at IS NULL AND id <= ?1
   AND (order_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM outbox d INDEXED BY outbox_dead
         WHERE d.order_id = outbox.order_id AND d.id < outbox.id
           AND d.dead_at IS NOT NULL AND d.dropped_at IS NULL
           AND d.superseded_at IS NULL AND d.published_at IS NULL))
 ORDER BY id LIMIT 1;

-- name: outbox_published
-- ?1 id ?2 now
UPDATE outbox SET published_at = ?2, attempts = attempts + 1, last_error = NULL
 WHERE id = ?1 AND published_at IS NULL;

-- name: outbox_failed
-- A failed delivery of a row to publish: one more attempt, its error, and
-- dead (dead_at ?5) when ?3 (an error retrying cannot mend) or when it has
-- failed ?4 times (?4 0: never by count).  ?1 id ?2 error
UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
       dead_at = CASE WHEN ?3 OR (?4 > 0 AND attempts + 1 >= ?4) THEN ?5 END
 WHERE id = ?1 AND published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
   AND dropped_at IS NULL;

-- name: outbox_fate
-- What became of row ?1 after outbox_failed: its attempts, whether it is
-- dead, its order (NULL: a dead letter).
SELECT attempts, dead_at IS NOT NULL, order_id FROM outbox WHERE id = ?1;

-- name: outbox_retry
-- orderctl outbox retry: the dead row ?1 (0: every dead row) is pending
-- again, its attempts from 0; last_error stays, the history of why it died.
-- ?2 now
UPDATE outbox SET dead_at = NULL, attempts = 0, retried_at = ?2
 WHERE (?1 = 0 OR id = ?1) AND dead_at IS NOT NULL AND dropped_at IS NULL
   AND superseded_at IS NULL AND published_at IS NULL;

-- name: outbox_drop
-- orderctl outbox drop: the dead row ?1 is never published (kept for the
-- audit); the later rows of its order may go.  ?2 now
UPDATE outbox SET dropped_at = ?2
 WHERE id = ?1 AND dead_at IS NOT NULL AND dropped_at IS NULL
   AND superseded_at IS NULL AND published_at IS NULL;

-- name: data_version
-- Changes when another connection (orderctl, a sqlite3 shell) committed
-- to the journal: the relay's cue to look for rows made pending again.
PRAGMA data_version;

-- name: outbox_stats
-- pending (held ones too), published, oldest pending created_at (NULL when
-- none pending), dead
SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL AND superseded_at IS NULL
                                      AND dead_at IS NULL AND dropped_at IS NULL),
       (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL),
       (SELECT min(created_at) FROM outbox
         WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
           AND dropped_at IS NULL),
       (SELECT count(*) FROM outbox INDEXED BY outbox_dead
         WHERE dead_at IS NOT NULL AND dropped_at IS NULL AND superseded_at IS NULL
           AND published_at IS NULL);

-- name: stock_adjustment_insert
-- ?1 adjustment_id ?2 sku ?3 qty ?4 created_at
INSERT INTO stock_adjustments (adjustment_id, sku, qty, created_at) VALUES (?1, ?2, ?3, ?4);

-- name: stock_adjustment_applied
-- ?1 adjustment_id ?2 now
UPDATE stock_adjustments SET applied_at = ?2 WHERE adjustment_id = ?1 AND applied_at IS NULL;

-- name: order_get
-- ?1 order_id
SELECT state, customer_id, amount_cents, currency, items, payment_id, reason,
       reason_sku, traceparent, lines, kafka_partition
  FROM orders WHERE order_id = ?1;

-- name: order_insert
-- ?1 order_id ?2 state ?3 customer_id ?4 amount_cents ?5 currency ?6 items
-- ?7 created_event_id ?8 traceparent ?9 now ?10 reason ?11 reason_sku ?12 lines
-- ?13 partition.  The version starts at the last of the changelog records
-- written while the order was not created (state NONE, see parked_version),
-- so its own records follow them with new event ids.
INSERT INTO orders (order_id, state, customer_id, amount_cents, currency, items,
                    created_event_id, traceparent, created_at, updated_at,
                    reason, reason_sku, lines, kafka_partition, epoch, version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13,
        coalesce((SELECT epoch FROM owned WHERE kafka_partition = ?13), 0),
        (SELECT coalesce(sum(CASE status WHEN 'parked' THEN 1 ELSE 2 END), 0) FROM inbox
          WHERE order_id = ?1 AND (status = 'parked' OR status = 'ignored')));

-- name: order_update
-- ?1 order_id ?2 state ?3 payment_id (NULL keeps it) ?4 reason ?5 reason_sku ?6 now
-- ?7 the epoch of the order's partition (NULL when not owned: kept).  Bumps
-- the version as order_bump does (versions only need to grow), so the
-- changelog record of a transition that changed the row needs no second
-- write of it.  (No RETURNING: SQLite buffers its rows in an ephemeral
-- table, which costs more than the statement.)
UPDATE orders SET state = ?2, payment_id = coalesce(?3, payment_id),
       reason = ?4, reason_sku = ?5, updated_at = ?6,
       epoch = coalesce(?7, epoch), version = version + 1
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
-- Every step without a result of an order this orderd owns, grouped by order
-- (recovery, when partitions are assigned).
SELECT s.id, s.order_id, s.kind, s.sku, s.qty, s.event_id, i.traceparent
  FROM saga_steps s
  JOIN orders o ON o.order_id = s.order_id
  LEFT JOIN inbox i ON i.order_id = s.order_id AND i.event_id = s.event_id
 WHERE s.result IS NULL
   AND (o.kafka_partition IS NULL OR o.kafka_partition IN (SELECT kafka_partition FROM owned))
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
-- ?1 now ?2 limit.  Only of orders in partitions this orderd owns now (an
-- order of no partition: a journal of version 1).
SELECT d.order_id, d.due_at FROM deadlines d JOIN orders o USING (order_id)
 WHERE d.fired_at IS NULL AND d.due_at <= ?1
   AND (o.kafka_partition IS NULL OR o.kafka_partition IN (SELECT kafka_partition FROM owned))
 ORDER BY d.due_at LIMIT ?2;

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
-- For /metrics and /healthz: rows to publish, counted up to ?1 (held ones
-- too), the created_at of the first one the relay can publish (NULL when
-- none: a row held behind a dead one waits for an operator, which the dead
-- gauge says), both from the partial index outbox_pending, never from the
-- published rows; and the dead rows, from outbox_dead.
SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox INDEXED BY outbox_pending
                               WHERE published_at IS NULL AND superseded_at IS NULL
                                 AND dead_at IS NULL AND dropped_at IS NULL
                               LIMIT ?1)),
       (SELECT created_at FROM outbox INDEXED BY outbox_pending
         WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
           AND dropped_at IS NULL
           AND (order_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM outbox d INDEXED BY outbox_dead
                 WHERE d.order_id = outbox.order_id AND d.id < outbox.id
                   AND d.dead_at IS NOT NULL AND d.dropped_at IS NULL
                   AND d.superseded_at IS NULL AND d.published_at IS NULL))
         ORDER BY id LIMIT 1),
       (SELECT count(*) FROM outbox INDEXED BY outbox_dead
         WHERE dead_at IS NOT NULL AND dropped_at IS NULL AND superseded_at IS NULL
           AND published_at IS NULL);

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
-- Retention: deletes the rows of a window (?1 < id <= ?3) published or
-- superseded before ?2; unpublished rows never match.
DELETE FROM outbox WHERE id > ?1 AND id <= ?3
   AND (published_at < ?2 OR superseded_at < ?2);

-- name: retention_orders_clear
DELETE FROM temp.retention_orders;

-- name: retention_orders_pick
-- Retention: up to ?2 orders that ended (CONFIRMED, REJECTED, CANCELLED)
-- before ?1, oldest first (index orders_done), into temp.retention_orders,
-- each with whether this instance owns its partition (?3: 1 when there is
-- no state topic, every order is its own).  An order with a step in flight
-- or a line still held (its last result RESERVED: drift that orderctl
-- reconcile must go on showing) stays.
INSERT INTO temp.retention_orders (order_id, kafka_partition, owned)
SELECT o.order_id, o.kafka_partition,
       ?3 OR o.kafka_partition IN (SELECT kafka_partition FROM temp.owned)
  FROM orders o INDEXED BY orders_done
 WHERE (o.state = 'CONFIRMED' OR o.state = 'REJECTED' OR o.state = 'CANCELLED')
   AND o.updated_at < ?1
   AND NOT EXISTS (SELECT 1 FROM saga_steps f
                    WHERE f.order_id = o.order_id AND f.result IS NULL)
   AND NOT EXISTS (SELECT 1 FROM saga_steps h
                    WHERE h.order_id = o.order_id AND h.result = 'RESERVED'
                      AND NOT EXISTS (SELECT 1 FROM saga_steps t
                                       WHERE t.order_id = h.order_id AND t.sku = h.sku
                                         AND t.id > h.id
                                         AND (t.result = 'COMMITTED' OR t.result = 'RELEASED')))
 ORDER BY o.updated_at LIMIT ?2;

-- name: retention_orders_fold
-- The stock movements of the orders picked, per sku, into stock_folded,
-- counted as the stock_ledger view counts them: a line (order, sku) held
-- its reserve's RESERVED quantity, committed or released by its last
-- result.  ?1 now
INSERT INTO stock_folded (sku, reserved, committed, released, orders, updated_at)
SELECT sku, sum(held), sum(CASE WHEN last = 'COMMITTED' THEN held ELSE 0 END),
       sum(CASE WHEN last = 'RELEASED' THEN held ELSE 0 END), count(*), ?1
  FROM (SELECT s.order_id, s.sku,
               coalesce(max(CASE WHEN s.kind = 'reserve' AND s.result = 'RESERVED'
                                 THEN s.qty END), 0) AS held,
               (SELECT t.result FROM saga_steps t
                 WHERE t.order_id = s.order_id AND t.sku = s.sku AND t.result IS NOT NULL
                 ORDER BY t.id DESC LIMIT 1) AS last
          FROM saga_steps s JOIN temp.retention_orders r ON r.order_id = s.order_id
         GROUP BY s.order_id, s.sku)
 WHERE true
 GROUP BY sku
ON CONFLICT (sku) DO UPDATE SET reserved = reserved + excluded.reserved,
       committed = committed + excluded.committed, released = released + excluded.released,
       orders = orders + excluded.orders, updated_at = excluded.updated_at;

-- name: retention_orders_tombstone
-- A tombstone (a null value, type OrderStateTombstone) for the changelog
-- key of every picked order of a partition this instance owns, so that
-- compaction drops the order's records; its event id is that of the
-- order's next record.  ?1 state topic ?2 now
INSERT OR IGNORE INTO outbox (topic, msg_key, event_id, order_id, type, headers, payload,
                              created_at, kafka_partition)
SELECT ?1, o.order_id, orderd_state_id(o.order_id, o.epoch, o.version + 1), o.order_id,
       'OrderStateTombstone', '{}', '', ?2, o.kafka_partition
  FROM temp.retention_orders r JOIN orders o ON o.order_id = r.order_id
 WHERE r.owned AND o.kafka_partition IS NOT NULL
 ORDER BY o.order_id;

-- name: retention_orders_delete_steps
DELETE FROM saga_steps WHERE order_id IN (SELECT order_id FROM temp.retention_orders);

-- name: retention_orders_delete_inbox
DELETE FROM inbox WHERE order_id IN (SELECT order_id FROM temp.retention_orders);

-- name: retention_orders_delete_deadlines
DELETE FROM deadlines WHERE order_id IN (SELECT order_id FROM temp.retention_orders);

-- name: retention_orders_delete
DELETE FROM orders WHERE order_id IN (SELECT order_id FROM temp.retention_orders);

-- name: retention_adjustments_fold
-- Retention: up to ?2 stock additions Redis applied before ?1, oldest
-- first, folded into stock_folded (?3 now) and then deleted
-- (retention_adjustments_delete, same rows).  The latest applied one
-- stays: it is how orderd tells a Redis that lost its data
-- (stock_adjustment_latest_applied).
INSERT INTO stock_folded (sku, added, adjustments, updated_at)
SELECT sku, sum(qty), count(*), ?3
  FROM (SELECT sku, qty FROM stock_adjustments INDEXED BY stock_adjustments_applied
         WHERE applied_at IS NOT NULL AND applied_at < ?1
           AND id < (SELECT max(id) FROM stock_adjustments WHERE applied_at IS NOT NULL)
         ORDER BY applied_at, id LIMIT ?2)
 WHERE true
 GROUP BY sku
ON CONFLICT (sku) DO UPDATE SET added = added + excluded.added,
       adjustments = adjustments + excluded.adjustments, updated_at = excluded.updated_at;

-- name: retention_adjustments_delete
DELETE FROM stock_adjustments WHERE id IN (
    SELECT id FROM stock_adjustments INDEXED BY stock_adjustments_applied
     WHERE applied_at IS NOT NULL AND applied_at < ?1
       AND id < (SELECT max(id) FROM stock_adjustments WHERE applied_at IS NOT NULL)
     ORDER BY applied_at, id LIMIT ?2);

-- name: retention_dlq
-- Retention: up to ?2 dead letters received before ?1, oldest first (their
-- bytes went to the DLQ topic through the outbox).
DELETE FROM dlq WHERE id IN (
    SELECT id FROM dlq INDEXED BY dlq_received WHERE received_at < ?1
     ORDER BY received_at LIMIT ?2);

-- name: stock_adjustment_latest_applied
-- The sku of the latest stock addition Redis has applied: if Redis has no
-- stock hash for it, Redis lost the inventory.  (Retention keeps that row.)
SELECT sku FROM stock_adjustments WHERE applied_at IS NOT NULL ORDER BY id DESC LIMIT 1;

-- name: step_results
-- Every step of one transition with the same result: the ids of a
-- transition's steps are consecutive (written in one transaction, in order).
-- ?1 first id ?2 last id ?3 result ?4 now
UPDATE saga_steps SET result = ?3, done_at = ?4 WHERE id BETWEEN ?1 AND ?2 AND result IS NULL;

-- name: orders_with_unapplied_events
-- Orders whose events wait or are parked (recovery).
SELECT DISTINCT order_id FROM inbox WHERE status IN ('waiting', 'parked');

-- name: owned_clear
DELETE FROM owned;

-- name: owned_add
-- ?1 partition ?2 epoch
INSERT OR REPLACE INTO owned (kafka_partition, epoch) VALUES (?1, ?2);

-- name: partition_epoch
-- The highest epoch of the orders of partition ?1 in this journal.
SELECT coalesce(max(epoch), 0) FROM orders WHERE kafka_partition = ?1;

-- name: order_bump
-- Before a changelog record of an order whose row this transaction did not
-- change: the order's epoch becomes its partition's and its version the
-- next.  ?1 order_id
UPDATE orders SET epoch = coalesce((SELECT epoch FROM owned o
                                     WHERE o.kafka_partition = orders.kafka_partition), epoch),
       version = version + 1
 WHERE order_id = ?1;

-- name: changelog_insert
-- The order's changelog record, from its row, inbox and deadline, into the
-- outbox for the same partition of the state topic.  See README "Running
-- more than one instance" for the format; its event id is
-- orderd_state_id(order, epoch, version), a function journal_changelog.c defines
-- (the UUID of src/event.c).  ?1 order_id ?2 topic ?3 now
INSERT INTO outbox (topic, msg_key, event_id, order_id, type, headers, payload, created_at,
                    kafka_partition)
SELECT ?2, ?1, orderd_state_id(o.order_id, o.epoch, o.version), ?1, 'OrderState', '{}',
       json_object(
         'order_id', o.order_id, 'epoch', o.epoch, 'version', o.version,
         'partition', o.kafka_partition, 'state', o.state,
         'reason', nullif(o.reason, ''), 'reason_sku', nullif(o.reason_sku, ''),
         'customer_id', o.customer_id, 'amount_cents', o.amount_cents,
         'currency', o.currency, 'items', json(o.items), 'lines', o.lines,
         'payment_id', o.payment_id, 'created_event_id', o.created_event_id,
         'traceparent', o.traceparent, 'created_at', o.created_at,
         'updated_at', o.updated_at,
         'deadline_at', (SELECT d.due_at FROM deadlines d
                          WHERE d.order_id = o.order_id AND d.fired_at IS NULL),
         'events', (SELECT json_group_array(i.event_id) FROM inbox i
                     WHERE i.order_id = o.order_id AND i.status IN ('applied', 'ignored')),
         'parked', json('[]')),
       ?3, o.kafka_partition
  FROM orders o WHERE o.order_id = ?1;

-- name: changelog_insert_parked
-- The record of an order not created yet (state NONE): its parked events,
-- and in events those that expired (parked.c: ignored, in the DLQ), so that
-- a new owner knows them as seen and does not park them again.  ?1 order_id
-- ?2 topic ?3 event_id ?4 now ?5 partition ?6 epoch ?7 version (parked_version)
INSERT INTO outbox (topic, msg_key, event_id, order_id, type, headers, payload, created_at,
                    kafka_partition)
SELECT ?2, ?1, ?3, ?1, 'OrderState', '{}',
       json_object('order_id', ?1, 'epoch', ?6, 'version', ?7, 'partition', ?5,
         'state', 'NONE',
         'events', (SELECT json_group_array(i.event_id) FROM inbox i
                     WHERE i.order_id = ?1 AND i.status = 'ignored'),
         'parked', (SELECT json_group_array(json_object(
             'event_id', i.event_id, 'topic', i.topic, 'partition', i.kafka_partition,
             'offset', i.kafka_offset, 'type', i.type, 'received_at', i.received_at,
             'traceparent', i.traceparent, 'payload', CAST(i.payload AS TEXT)))
                      FROM inbox i WHERE i.order_id = ?1 AND i.status = 'parked')),
       ?4, ?5;

-- name: parked_version
-- The version of the record of an order not created yet: 1 for each event
-- parked, 2 for each that expired (parked -> ignored), so it grows with
-- every park and every expiry and a record after an expiry outranks (and
-- is named apart from) the one before it.  For such an order nothing else
-- is ignored (a deadline needs its order).  ?1 order_id
SELECT coalesce(sum(CASE status WHEN 'parked' THEN 1 ELSE 2 END), 0) FROM inbox
 WHERE order_id = ?1 AND (status = 'parked' OR status = 'ignored');

-- name: parked_events
-- Recovery of parked-event expiry: every event parked for an order not
-- created, of a partition owned, oldest first.  From the partial index
-- inbox_unapplied (INDEXED BY: the ORDER BY must not pick inbox_received, a
-- walk of the whole inbox).
SELECT i.order_id, i.event_id, i.kafka_partition, i.received_at
  FROM inbox i INDEXED BY inbox_unapplied
 WHERE i.status IN ('waiting', 'parked') AND i.status = 'parked'
   AND i.kafka_partition IN (SELECT kafka_partition FROM owned)
   AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = i.order_id)
 ORDER BY i.received_at, i.rowid;

-- name: parked_get
-- One parked event of an order not created yet (expiry), or no row.
-- ?1 order_id ?2 event_id
SELECT event_id, topic, kafka_partition, kafka_offset, type, status,
       received_at, traceparent, payload
  FROM inbox WHERE order_id = ?1 AND event_id = ?2 AND status = 'parked'
   AND NOT EXISTS (SELECT 1 FROM orders WHERE order_id = ?1);

-- name: restore_order
-- A changelog record (?1, JSON text) replaces the order when its (epoch,
-- version) is higher than the journal's; one row changed when it did.
INSERT INTO orders (order_id, state, customer_id, amount_cents, currency, items, lines,
                    payment_id, reason, reason_sku, created_event_id, traceparent,
                    created_at, updated_at, kafka_partition, epoch, version)
SELECT json_extract(?1, '$.order_id'), json_extract(?1, '$.state'),
       json_extract(?1, '$.customer_id'), json_extract(?1, '$.amount_cents'),
       json_extract(?1, '$.currency'), json(json_extract(?1, '$.items')),
       json_extract(?1, '$.lines'), json_extract(?1, '$.payment_id'),
       coalesce(json_extract(?1, '$.reason'), ''),
       coalesce(json_extract(?1, '$.reason_sku'), ''),
       json_extract(?1, '$.created_event_id'), json_extract(?1, '$.traceparent'),
       json_extract(?1, '$.created_at'), json_extract(?1, '$.updated_at'),
       json_extract(?1, '$.partition'), json_extract(?1, '$.epoch'),
       json_extract(?1, '$.version')
 WHERE json_extract(?1, '$.state') <> 'NONE'
ON CONFLICT (order_id) DO UPDATE SET
       state = excluded.state, customer_id = excluded.customer_id,
       amount_cents = excluded.amount_cents, currency = excluded.currency,
       items = excluded.items, lines = excluded.lines, payment_id = excluded.payment_id,
       reason = excluded.reason, reason_sku = excluded.reason_sku,
       created_event_id = excluded.created_event_id, traceparent = excluded.traceparent,
       created_at = excluded.created_at, updated_at = excluded.updated_at,
       kafka_partition = excluded.kafka_partition, epoch = excluded.epoch,
       version = excluded.version
 WHERE (excluded.epoch, excluded.version) > (orders.epoch, orders.version);

-- name: restore_parked_newer
-- For a record of state NONE: 1 when it is newer than what the journal
-- knows of the order (no row, and a lower parked_version).  ?1 record
SELECT NOT EXISTS (SELECT 1 FROM orders WHERE order_id = json_extract(?1, '$.order_id'))
   AND json_extract(?1, '$.version') >
       (SELECT coalesce(sum(CASE status WHEN 'parked' THEN 1 ELSE 2 END), 0) FROM inbox
         WHERE order_id = json_extract(?1, '$.order_id')
           AND (status = 'parked' OR status = 'ignored'));

-- name: restore_forget_events
-- After a record replaced an order: the journal's own events of it that the
-- record does not list were never committed to Kafka; they come again.
-- ?1 record
DELETE FROM inbox
 WHERE order_id = json_extract(?1, '$.order_id')
   AND event_id NOT IN (SELECT value FROM json_each(?1, '$.events'))
   AND event_id NOT IN (SELECT json_extract(value, '$.event_id')
                          FROM json_each(?1, '$.parked'));

-- name: restore_events
-- ?1 record ?2 state topic ?3 now.  The events of a record of state NONE
-- are expired ones: 'ignored', as where they expired (parked_version); one
-- this journal still has parked (from an older record) is ignored too, so
-- that it does not expire here a second time.
INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset, type, order_id,
                   status, received_at, applied_at, payload)
SELECT value, ?2, json_extract(?1, '$.partition'), -1, 'Restored',
       json_extract(?1, '$.order_id'),
       CASE WHEN json_extract(?1, '$.state') = 'NONE' THEN 'ignored' ELSE 'applied' END,
       ?3, CASE WHEN json_extract(?1, '$.state') = 'NONE' THEN NULL ELSE ?3 END, X''
  FROM json_each(?1, '$.events') WHERE true
ON CONFLICT (order_id, event_id) DO UPDATE SET status = 'ignored'
 WHERE excluded.status = 'ignored' AND inbox.status = 'parked';

-- name: restore_parked
-- ?1 record
INSERT OR IGNORE INTO inbox (event_id, topic, kafka_partition, kafka_offset, type, order_id,
                             status, received_at, traceparent, payload)
SELECT json_extract(value, '$.event_id'), json_extract(value, '$.topic'),
       json_extract(value, '$.partition'), json_extract(value, '$.offset'),
       json_extract(value, '$.type'), json_extract(?1, '$.order_id'), 'parked',
       json_extract(value, '$.received_at'), json_extract(value, '$.traceparent'),
       CAST(json_extract(value, '$.payload') AS BLOB)
  FROM json_each(?1, '$.parked');

-- name: restore_deadline
-- ?1 record: its deadline, or none.
INSERT INTO deadlines (order_id, due_at)
SELECT json_extract(?1, '$.order_id'), json_extract(?1, '$.deadline_at')
 WHERE json_extract(?1, '$.deadline_at') IS NOT NULL
ON CONFLICT (order_id) DO UPDATE SET due_at = excluded.due_at, fired_at = NULL;

-- name: restore_no_deadline
-- ?1 record
DELETE FROM deadlines
 WHERE order_id = json_extract(?1, '$.order_id')
   AND json_extract(?1, '$.deadline_at') IS NULL AND fired_at IS NULL;

-- name: supersede_order
-- Another instance went on with the order: its unpublished rows here are
-- never published.  ?1 order_id ?2 now
UPDATE outbox SET superseded_at = ?2
 WHERE order_id = ?1 AND published_at IS NULL AND superseded_at IS NULL;

-- name: supersede_order_steps
-- ... and its steps without a result are never run.  ?1 order_id ?2 now
UPDATE saga_steps SET result = 'SUPERSEDED', done_at = ?2
 WHERE order_id = ?1 AND result IS NULL;

-- name: supersede_unowned
-- Unpublished rows of orders in partitions this orderd does not own: their
-- causes were never committed to Kafka, so the owner produces them again.
-- Rows of no partition (dead letters, journals of version 1) stay.  ?1 now
UPDATE outbox SET superseded_at = ?1
 WHERE published_at IS NULL AND superseded_at IS NULL
   AND coalesce(kafka_partition,
                (SELECT o.kafka_partition FROM orders o WHERE o.order_id = outbox.order_id))
       NOT IN (SELECT kafka_partition FROM owned);

-- name: supersede_unowned_steps
-- ?1 now
UPDATE saga_steps SET result = 'SUPERSEDED', done_at = ?1
 WHERE result IS NULL
   AND order_id IN (SELECT order_id FROM orders
                     WHERE kafka_partition NOT IN (SELECT kafka_partition FROM owned));

-- name: outbox_published_range
-- Rows ?1..?2, every one of them acknowledged (consecutive ids).  ?3 now
UPDATE outbox SET published_at = ?3, attempts = attempts + 1, last_error = NULL
 WHERE id BETWEEN ?1 AND ?2 AND published_at IS NULL;

-- name: outbox_max_id
SELECT coalesce(max(id), 0) FROM outbox;
