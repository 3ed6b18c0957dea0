-- reports.sql: read-only reports of the journal for orderctl, by name.
--
-- src/journal.c prepares a report the first time it is asked for by name
-- (journal_report).  Parameters are positional; orderctl reads the columns
-- by name (journal_row_int and friends), so every column has one.  The reconcile reports read
-- the TEMP tables redis_stock and redis_resv that orderctl fills from Redis
-- in its own connection; they never touch the journal's own tables' rows.
-- The changelog_* reports compare Redis with the changelog topic instead:
-- orderctl runs them on an in-memory database of its own, whose TEMP
-- tables it fills from both.

-- name: order
-- ?1 order_id
SELECT order_id, state, customer_id, amount_cents, currency, items, payment_id,
       reason, reason_sku, created_event_id, created_at, updated_at
  FROM orders WHERE order_id = ?1;

-- name: order_steps
-- ?1 order_id
SELECT id, kind, sku, qty, event_id, intent_at, result, done_at
  FROM saga_steps WHERE order_id = ?1 ORDER BY id;

-- name: order_events
-- ?1 order_id
SELECT event_id, type, topic, kafka_partition, kafka_offset, status, received_at
  FROM inbox WHERE order_id = ?1 ORDER BY rowid;

-- name: order_outputs
-- ?1 order_id
SELECT id, event_id, type, topic, created_at, published_at
  FROM outbox WHERE order_id = ?1 ORDER BY id;

-- name: order_deadline
-- ?1 order_id
SELECT due_at, fired_at FROM deadlines WHERE order_id = ?1;

-- name: dlq
SELECT id, topic, kafka_partition, kafka_offset, error, received_at,
       length(payload) AS bytes, CAST(msg_key AS TEXT) AS msg_key
  FROM dlq ORDER BY id;

-- name: outbox_list
-- orderctl outbox list: the rows not published yet, in the relay's order:
-- state 'pending', 'held' (an earlier row of its order is dead) or 'dead'.
-- ?1 'dead': the dead rows only; 'all': every one.
SELECT o.id, o.order_id, o.type, o.topic, o.event_id, o.attempts, o.last_error,
       o.created_at, o.dead_at, o.retried_at,
       CASE WHEN o.dead_at IS NOT NULL THEN 'dead'
            WHEN o.order_id IS NOT NULL AND EXISTS (
                 SELECT 1 FROM outbox d INDEXED BY outbox_dead
                  WHERE d.order_id = o.order_id AND d.id < o.id
                    AND d.dead_at IS NOT NULL AND d.dropped_at IS NULL
                    AND d.superseded_at IS NULL AND d.published_at IS NULL)
            THEN 'held'
            ELSE 'pending' END AS state
  FROM outbox o
 WHERE o.published_at IS NULL AND o.superseded_at IS NULL AND o.dropped_at IS NULL
   AND (?1 = 'all' OR o.dead_at IS NOT NULL)
 ORDER BY o.id;

-- name: outbox_row
-- One outbox row and its state (orderctl outbox retry and drop).  ?1 id
SELECT id, order_id, type, topic, attempts, last_error,
       CASE WHEN published_at IS NOT NULL THEN 'published'
            WHEN superseded_at IS NOT NULL THEN 'superseded'
            WHEN dropped_at IS NOT NULL THEN 'dropped'
            WHEN dead_at IS NOT NULL THEN 'dead'
            ELSE 'pending' END AS state
  FROM outbox WHERE id = ?1;

-- name: skus
-- Every sku the journal knows of.
SELECT sku FROM stock_adjustments UNION SELECT sku FROM saga_steps
UNION SELECT sku FROM stock_folded ORDER BY 1;

-- name: redis_tables
CREATE TEMP TABLE IF NOT EXISTS redis_stock (
    sku TEXT PRIMARY KEY, available INTEGER, reserved INTEGER, sold INTEGER, added INTEGER);
-- expiring: the record is over and expires (retention: lua/commit.lua's
-- keep_ms), so an order the journal or the changelog no longer knows may
-- hold it for a while.
CREATE TEMP TABLE IF NOT EXISTS redis_resv (
    order_id TEXT, sku TEXT, state TEXT, qty INTEGER, expiring INTEGER,
    PRIMARY KEY (order_id, sku));

-- name: redis_stock_insert
INSERT OR REPLACE INTO redis_stock VALUES (?1, ?2, ?3, ?4, ?5);

-- name: redis_resv_insert
INSERT OR REPLACE INTO redis_resv VALUES (?1, ?2, ?3, ?4, ?5);

-- name: reconcile_stock
-- Per sku: the counters the journal implies and the ones Redis holds.
-- A sku with a step in flight or a stock addition not yet applied is
-- unsettled: its counters may move any moment, so they are not compared.
-- What retention deleted counts through stock_folded.
WITH last AS (
    SELECT sku, qty, result,
           row_number() OVER (PARTITION BY order_id, sku ORDER BY id DESC) AS rn
      FROM saga_steps WHERE result IS NOT NULL),
skus AS (
    SELECT sku FROM stock_adjustments UNION SELECT sku FROM saga_steps
    UNION SELECT sku FROM stock_folded UNION SELECT sku FROM temp.redis_stock)
SELECT s.sku AS sku,
       (SELECT coalesce(sum(qty), 0) FROM stock_adjustments a WHERE a.sku = s.sku)
           + coalesce(f.added, 0) AS added,
       (SELECT coalesce(sum(qty), 0) FROM last WHERE last.sku = s.sku AND rn = 1
           AND result = 'RESERVED')
           + coalesce(f.reserved - f.committed - f.released, 0) AS reserved,
       (SELECT coalesce(sum(qty), 0) FROM last WHERE last.sku = s.sku AND rn = 1
           AND result = 'COMMITTED') + coalesce(f.committed, 0) AS sold,
       EXISTS (SELECT 1 FROM saga_steps f WHERE f.sku = s.sku AND f.result IS NULL)
           OR EXISTS (SELECT 1 FROM stock_adjustments u WHERE u.sku = s.sku
                      AND u.applied_at IS NULL) AS unsettled,
       r.available AS redis_available, r.reserved AS redis_reserved,
       r.sold AS redis_sold, r.added AS redis_added
  FROM skus s LEFT JOIN temp.redis_stock r ON r.sku = s.sku
       LEFT JOIN stock_folded f ON f.sku = s.sku
 ORDER BY s.sku;

-- name: reconcile_lines
-- Every (order, sku) whose journal state and Redis record disagree, or
-- that holds stock for an order that is over, or that Redis holds for an
-- order the journal does not know.  Lines with a step in flight are skipped.
WITH last AS (
    SELECT order_id, sku, qty, result,
           row_number() OVER (PARTITION BY order_id, sku ORDER BY id DESC) AS rn
      FROM saga_steps WHERE result IS NOT NULL),
lines AS (SELECT order_id, sku, qty, result FROM last WHERE rn = 1),
flying AS (SELECT DISTINCT order_id, sku FROM saga_steps WHERE result IS NULL)
SELECT 'journal_redis_mismatch' AS kind, l.order_id AS order_id, l.sku AS sku,
       'journal says ' || l.result || ', Redis says ' || coalesce(r.state, 'nothing')
           AS detail
  FROM lines l LEFT JOIN temp.redis_resv r ON r.order_id = l.order_id AND r.sku = l.sku
 WHERE (l.order_id, l.sku) NOT IN (SELECT order_id, sku FROM flying)
   AND coalesce(r.state, '') != l.result
UNION ALL
SELECT 'terminal_order_holds_stock', l.order_id, l.sku,
       'order is ' || o.state || ' but its line is still RESERVED in the journal'
  FROM lines l JOIN orders o ON o.order_id = l.order_id
 WHERE l.result = 'RESERVED' AND o.state IN ('CONFIRMED', 'REJECTED', 'CANCELLED')
   AND (l.order_id, l.sku) NOT IN (SELECT order_id, sku FROM flying)
UNION ALL
SELECT 'terminal_order_holds_stock', r.order_id, r.sku,
       'order is ' || o.state || ' but Redis holds ' || r.qty || ' for it'
  FROM temp.redis_resv r JOIN orders o ON o.order_id = r.order_id
 WHERE r.state = 'RESERVED' AND o.state IN ('CONFIRMED', 'REJECTED', 'CANCELLED')
   AND (r.order_id, r.sku) NOT IN (SELECT order_id, sku FROM flying)
UNION ALL
SELECT 'reservation_without_order', r.order_id, r.sku,
       'Redis holds ' || r.qty || ' for an order the journal does not know'
  FROM temp.redis_resv r
 WHERE r.state = 'RESERVED'
   AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = r.order_id)
ORDER BY 2, 3;

-- name: changelog_tables
-- The current record of each order in the changelog topic ([topics]
-- state) and its lines, for orderctl reconcile --changelog.
CREATE TEMP TABLE IF NOT EXISTS changelog_orders (
    order_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, version INTEGER NOT NULL,
    state TEXT NOT NULL, lines TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS changelog_lines (
    order_id TEXT, sku TEXT, qty INTEGER NOT NULL, PRIMARY KEY (order_id, sku));

-- name: changelog_record
-- ?1 order_id, ?2 epoch, ?3 version, ?4 state, ?5 lines, ?6 partition and
-- ?7 offset of the record in the state topic.
-- Keeps the record with the highest (epoch, version) of each order.  The
-- offset decides nothing: an instance that lost a partition may still
-- publish an older version after the new owner published a newer one.
INSERT INTO temp.changelog_orders
VALUES (?1, CAST(?2 AS INTEGER), CAST(?3 AS INTEGER), ?4, ?5,
        CAST(?6 AS INTEGER), CAST(?7 AS INTEGER))
    ON CONFLICT (order_id) DO UPDATE
   SET epoch = excluded.epoch, version = excluded.version, state = excluded.state,
       lines = excluded.lines, kafka_partition = excluded.kafka_partition,
       kafka_offset = excluded.kafka_offset
 WHERE (excluded.epoch, excluded.version) >
       (changelog_orders.epoch, changelog_orders.version);

-- name: changelog_current
-- The lines text of every current record that has lines, to be split into
-- temp.changelog_lines (event_lines_parse).
SELECT order_id, lines FROM temp.changelog_orders WHERE lines != '' ORDER BY order_id;

-- name: changelog_line_insert
-- ?1 order_id, ?2 sku, ?3 qty
INSERT INTO temp.changelog_lines VALUES (?1, ?2, CAST(?3 AS INTEGER));

-- name: changelog_counts
-- Orders with a current record, and those of them in NEW (not compared).
SELECT count(*) AS orders, coalesce(sum(state = 'NEW'), 0) AS new_orders
  FROM temp.changelog_orders;

-- name: changelog_reconcile_stock
-- Per sku, in the columns of reconcile_stock: the counters the changelog
-- implies and the ones Redis holds.  RESERVED orders hold their lines,
-- CONFIRMED ones sold them; REJECTED, CANCELLED and NONE hold nothing.
-- The changelog knows no stock additions, so added is NULL: only Redis's
-- own invariant checks it.  A sku with a line of an order in NEW is
-- unsettled: its reservation is under way.
WITH held AS (
    SELECT l.sku,
           sum(CASE WHEN o.state = 'RESERVED' THEN l.qty ELSE 0 END) AS reserved,
           sum(CASE WHEN o.state = 'CONFIRMED' THEN l.qty ELSE 0 END) AS sold,
           max(o.state = 'NEW') AS unsettled
      FROM temp.changelog_lines l JOIN temp.changelog_orders o ON o.order_id = l.order_id
     GROUP BY l.sku),
skus AS (SELECT sku FROM held UNION SELECT sku FROM temp.redis_stock)
SELECT s.sku AS sku, NULL AS added, coalesce(h.reserved, 0) AS reserved,
       coalesce(h.sold, 0) AS sold, coalesce(h.unsettled, 0) AS unsettled,
       r.available AS redis_available, r.reserved AS redis_reserved,
       r.sold AS redis_sold, r.added AS redis_added
  FROM skus s LEFT JOIN held h ON h.sku = s.sku LEFT JOIN temp.redis_stock r ON r.sku = s.sku
 ORDER BY s.sku;

-- name: changelog_reconcile_lines
-- In the columns of reconcile_lines: every (order, sku) whose Redis record
-- does not match the order's current state (RESERVED: RESERVED with the
-- line's qty; CONFIRMED: COMMITTED with it; REJECTED, CANCELLED, NONE:
-- RELEASED, REJECTED or no record), every record that holds or sold units
-- for a sku the order's current record has no line of, and every one of an
-- order the changelog does not know.  Orders in NEW are skipped.
WITH want AS (
    SELECT o.order_id, l.sku, l.qty, o.state,
           CASE o.state WHEN 'RESERVED' THEN 'RESERVED'
                        WHEN 'CONFIRMED' THEN 'COMMITTED' END AS held
      FROM temp.changelog_lines l JOIN temp.changelog_orders o ON o.order_id = l.order_id
     WHERE o.state != 'NEW')
SELECT CASE WHEN w.held IS NULL THEN 'terminal_order_holds_stock'
            ELSE 'changelog_redis_mismatch' END AS kind,
       w.order_id AS order_id, w.sku AS sku,
       'order is ' || w.state || ': Redis should say ' ||
       coalesce(w.held || ' ' || w.qty, 'RELEASED, REJECTED or nothing') || ', says ' ||
       coalesce(r.state || ' ' || r.qty, 'nothing') AS detail
  FROM want w LEFT JOIN temp.redis_resv r ON r.order_id = w.order_id AND r.sku = w.sku
 WHERE CASE WHEN w.held IS NOT NULL THEN r.state IS NOT w.held OR r.qty IS NOT w.qty
            ELSE coalesce(r.state, 'RELEASED') NOT IN ('RELEASED', 'REJECTED') END
UNION ALL
SELECT 'changelog_redis_mismatch', r.order_id, r.sku,
       'changelog has no line of this sku for the ' || o.state || ' order, Redis says ' ||
       r.state || ' ' || r.qty
  FROM temp.redis_resv r JOIN temp.changelog_orders o ON o.order_id = r.order_id
 WHERE o.state != 'NEW' AND r.state IN ('RESERVED', 'COMMITTED')
   AND NOT EXISTS (SELECT 1 FROM temp.changelog_lines l
                    WHERE l.order_id = r.order_id AND l.sku = r.sku)
UNION ALL
SELECT 'reservation_without_order', r.order_id, r.sku,
       'Redis says ' || r.state || ' ' || r.qty || ' for an order the changelog does not know'
  FROM temp.redis_resv r
 WHERE r.state IN ('RESERVED', 'COMMITTED') AND coalesce(r.expiring, 0) = 0
   AND NOT EXISTS (SELECT 1 FROM temp.changelog_orders o WHERE o.order_id = r.order_id)
ORDER BY 2, 3;

-- name: restore_stock
-- Per sku, the counters of a Redis rebuilt from the journal alone
-- (orderctl recover --rebuild-redis), what retention deleted included
-- (stock_folded; the ids of additions folded are not restored: orderd never
-- sends those again).  added and ids count only the
-- adjustments marked applied: orderd applies the others later by their id,
-- which adds them then.  reserved and sold come from the last result of
-- each (order, sku) line; a line whose step is in flight counts its last
-- known result, and orderd runs that step again.  The last two columns
-- say how much orderd still has to do for the sku.
WITH last AS (
    SELECT sku, qty, result,
           row_number() OVER (PARTITION BY order_id, sku ORDER BY id DESC) AS rn
      FROM saga_steps WHERE result IS NOT NULL),
held AS (
    SELECT sku, sum(CASE WHEN result = 'RESERVED' THEN qty ELSE 0 END) AS reserved,
           sum(CASE WHEN result = 'COMMITTED' THEN qty ELSE 0 END) AS sold
      FROM last WHERE rn = 1 GROUP BY sku),
adds AS (
    SELECT sku, sum(qty) AS added, json_group_array(adjustment_id) AS ids
      FROM (SELECT sku, qty, adjustment_id FROM stock_adjustments
             WHERE applied_at IS NOT NULL ORDER BY id)
     GROUP BY sku),
skus AS (SELECT sku FROM stock_adjustments UNION SELECT sku FROM saga_steps
         UNION SELECT sku FROM stock_folded)
SELECT s.sku AS sku, coalesce(a.added, 0) + coalesce(f.added, 0) AS added,
       coalesce(h.reserved, 0) + coalesce(f.reserved - f.committed - f.released, 0)
           AS reserved,
       coalesce(h.sold, 0) + coalesce(f.committed, 0) AS sold, coalesce(a.ids, '[]') AS ids,
       (SELECT count(*) FROM stock_adjustments u WHERE u.sku = s.sku
           AND u.applied_at IS NULL) AS unapplied,
       (SELECT count(*) FROM saga_steps f WHERE f.sku = s.sku AND f.result IS NULL)
           AS in_flight
  FROM skus s LEFT JOIN adds a ON a.sku = s.sku LEFT JOIN held h ON h.sku = s.sku
       LEFT JOIN stock_folded f ON f.sku = s.sku
 ORDER BY s.sku;

-- name: restore_lines
-- Every (order, sku) reservation record of a Redis rebuilt from the
-- journal: the line's last result, with the quantity of its steps.  A line
-- whose only step is in flight has no record yet (orderd runs the step
-- again); MISSING (a commit that found no record) restores none either.
WITH last AS (
    SELECT order_id, sku, qty, result,
           row_number() OVER (PARTITION BY order_id, sku ORDER BY id DESC) AS rn
      FROM saga_steps WHERE result IS NOT NULL)
SELECT order_id, sku, qty, result
  FROM last
 WHERE rn = 1 AND result IN ('RESERVED', 'REJECTED', 'COMMITTED', 'RELEASED')
 ORDER BY sku, order_id;
