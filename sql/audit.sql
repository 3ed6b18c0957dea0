-- audit.sql: views of the journal for an auditor in the sqlite3 shell, created TEMP so reading never writes the journal.
--
--   sqlite3 -box -cmd '.read sql/audit.sql' journal.db \
--     "SELECT * FROM order_timeline WHERE order_id = 'o-1'"
--
-- Every view is TEMP: it lives in the shell's connection only and is gone
-- when the shell exits, so reading this file changes nothing in the journal
-- file (orderd may be running; WAL lets the shell read while it writes).
-- Times are milliseconds since the Unix epoch, as in the journal, with a
-- UTC ISO 8601 copy next to each for people.  "now" is the shell's clock.
-- Only plain SQLite 3.35 functions are used, so any sqlite3 shell can read
-- a journal copied elsewhere.

-- Every event, step, output and payment deadline of every order, in the
-- order they happened.  One row each:
--   what = 'event'     name = the input's type; detail = what became of it
--                      (applied, ignored, waiting, parked) and where it was read
--   what = 'deadline'  name = 'payment_deadline'; at = when it fired, or when
--                      it is due while it has not fired
--   what = 'step'      name = reserve, commit or release; at = the intent;
--                      detail = sku, quantity and the script's answer
--   what = 'output'    name = the output's type; at = when it was written to
--                      the outbox; detail = topic and when it was published
--                      (or that another instance took the order over first)
-- The order's changelog records (outbox rows of type OrderState, see
-- README "Running more than one instance") are not in it.
-- Rows of the same millisecond come in causal order: inputs (events,
-- deadlines), then steps, then outputs.  ref is the row's key in its table
-- (event_id, saga_steps.id, outbox event_id).
-- An order older than [retention] inbox_max_age_hours / outbox_max_age_hours
-- has lost its events and published outputs to retention; its steps and
-- its orders row are kept for good.
DROP VIEW IF EXISTS temp.order_timeline;
CREATE TEMP VIEW order_timeline AS
SELECT order_id, at, strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') AS at_utc,
       what, name, detail, ref
  FROM (
    SELECT order_id, received_at AS at, 'event' AS what, 1 AS rank, rowid AS seq,
           type AS name,
           status || ' (' || topic || ' [' || kafka_partition || '] @' || kafka_offset || ')'
               AS detail,
           event_id AS ref
      FROM main.inbox WHERE order_id IS NOT NULL
    UNION ALL
    SELECT order_id, coalesce(fired_at, due_at), 'deadline', 1, 0, 'payment_deadline',
           CASE WHEN fired_at IS NULL THEN 'due, not fired yet'
                ELSE 'fired (was due ' ||
                     strftime('%Y-%m-%dT%H:%M:%fZ', due_at / 1000.0, 'unixepoch') || ')' END,
           NULL
      FROM main.deadlines
    UNION ALL
    SELECT order_id, intent_at, 'step', 2, id, kind,
           sku || ' x' || qty || ' -> ' ||
               CASE WHEN result IS NULL THEN 'IN FLIGHT (no result yet)'
                    ELSE result || ' after ' || (done_at - intent_at) || ' ms' END,
           CAST(id AS TEXT)
      FROM main.saga_steps
    UNION ALL
    SELECT order_id, created_at, 'output', 3, id, type,
           'to ' || topic || ', ' ||
               CASE WHEN superseded_at IS NOT NULL
                    THEN 'superseded: another instance took the order over'
                    WHEN dropped_at IS NOT NULL
                    THEN 'DROPPED by an operator ' ||
                         strftime('%Y-%m-%dT%H:%M:%fZ', dropped_at / 1000.0, 'unixepoch') ||
                         ', never published' || coalesce(' (' || last_error || ')', '')
                    WHEN dead_at IS NOT NULL
                    THEN 'DEAD (refused for good after ' || attempts || ' attempts' ||
                         coalesce(': ' || last_error, '') || '): orderctl outbox retry or drop'
                    WHEN published_at IS NULL
                    THEN 'NOT PUBLISHED (' || attempts || ' attempts' ||
                         coalesce(': ' || last_error, '') || ')'
                    ELSE 'published ' ||
                         strftime('%Y-%m-%dT%H:%M:%fZ', published_at / 1000.0, 'unixepoch') END,
           event_id
      FROM main.outbox WHERE order_id IS NOT NULL AND type <> 'OrderState'
  )
 ORDER BY order_id, at, rank, seq;

-- Sagas that do not move and events that wait for too long: every row is
-- something an operator should look at.  A minute of slack keeps the
-- ordinary traffic of a running orderd out (a step answers in
-- milliseconds, deadlines are polled four times a second).
--   problem = 'step_in_flight'   a Redis step of the order has had no
--                                result for over a minute (orderd down, or
--                                Redis unreachable: the next start resumes it)
--   problem = 'deadline_passed'  the order is still RESERVED a minute after
--                                its payment deadline
--   problem = 'event_waiting'    an event waits for a step of its order
--   problem = 'event_parked'     a payment or cancellation came for an order
--                                whose OrderCreated never arrived
-- state is NULL for an order the journal does not know (parked events).
DROP VIEW IF EXISTS temp.stuck_sagas;
CREATE TEMP VIEW stuck_sagas AS
WITH now AS (SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS ms)
SELECT order_id, state, problem, since,
       strftime('%Y-%m-%dT%H:%M:%fZ', since / 1000.0, 'unixepoch') AS since_utc,
       ((SELECT ms FROM now) - since) / 1000 AS age_s, detail
  FROM (
    SELECT s.order_id, o.state, 'step_in_flight' AS problem, min(s.intent_at) AS since,
           count(*) || ' step(s) without a result: ' ||
               group_concat(s.kind || ' ' || s.sku || ' x' || s.qty, ', ') AS detail
      FROM main.saga_steps s LEFT JOIN main.orders o ON o.order_id = s.order_id
     WHERE s.result IS NULL AND s.intent_at < (SELECT ms FROM now) - 60000
     GROUP BY s.order_id
    UNION ALL
    SELECT o.order_id, o.state, 'deadline_passed', d.due_at,
           CASE WHEN d.fired_at IS NULL THEN 'deadline not fired'
                ELSE 'deadline fired but the order is still RESERVED' END
      FROM main.orders o JOIN main.deadlines d ON d.order_id = o.order_id
     WHERE o.state = 'RESERVED' AND d.due_at < (SELECT ms FROM now) - 60000
    UNION ALL
    SELECT i.order_id, o.state, 'event_' || i.status, i.received_at,
           i.type || ' ' || i.event_id || ' (' || i.topic || ' [' || i.kafka_partition ||
               '] @' || i.kafka_offset || ')'
      FROM main.inbox i LEFT JOIN main.orders o ON o.order_id = i.order_id
     WHERE i.status IN ('waiting', 'parked') AND i.received_at < (SELECT ms FROM now) - 60000
  )
 ORDER BY since, order_id;

-- Every output not yet acknowledged by the broker, in the order the relay
-- publishes them.  Empty when orderd has caught up.  attempts counts the
-- failed deliveries (from 0 again after orderctl outbox retry), last_error
-- the last one's reason (kept after a retry, as history).  state:
--   pending  the relay publishes it (attempts growing: the broker refuses
--            it for now, last_error says why)
--   held     an earlier row of its order is dead: it waits for it
--   dead     refused for good, or [relay] max_attempts failed deliveries:
--            it waits for an operator (orderctl outbox retry or drop);
--            dead_utc is when it died
-- Dropped rows (orderctl outbox drop) are not in it: never to be
-- published; order_timeline shows them.
DROP VIEW IF EXISTS temp.unpublished_outbox;
CREATE TEMP VIEW unpublished_outbox AS
SELECT id, order_id, type, topic, event_id, created_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') AS created_utc,
       (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - created_at) / 1000
           AS age_s,
       attempts, last_error,
       CASE WHEN dead_at IS NOT NULL THEN 'dead'
            WHEN order_id IS NOT NULL AND EXISTS (
                 SELECT 1 FROM main.outbox d
                  WHERE d.order_id = o.order_id AND d.id < o.id AND d.dead_at IS NOT NULL
                    AND d.dropped_at IS NULL AND d.superseded_at IS NULL
                    AND d.published_at IS NULL) THEN 'held'
            ELSE 'pending' END AS state,
       strftime('%Y-%m-%dT%H:%M:%fZ', dead_at / 1000.0, 'unixepoch') AS dead_utc
  FROM main.outbox o
 WHERE published_at IS NULL AND superseded_at IS NULL AND dropped_at IS NULL
 ORDER BY id;

-- Per sku, the stock movements the journal records and the balances they
-- imply, to hold against Redis (orderctl stock show --json):
--   added      units of stock additions Redis has applied (stock_adjustments)
--   pending    units of additions journaled but not applied yet
--   reserved   units ever held for orders (reserve answered RESERVED)
--   committed  units sold: held lines that commit answered COMMITTED
--   released   units given back: held lines that release answered RELEASED
--   held       units held now (reserved - committed - released) = Redis reserved
--   available  added - held - committed                        = Redis available
--   in_flight  steps without a result: the sku's counters may move any moment,
--              and the balances above count each such line at its last result
-- committed is Redis sold.  A line is one (order, sku); its last result is
-- its state, as orderctl reconcile reads it.
DROP VIEW IF EXISTS temp.stock_ledger;
CREATE TEMP VIEW stock_ledger AS
WITH lines AS (
    SELECT order_id, sku,
           max(CASE WHEN kind = 'reserve' AND result = 'RESERVED' THEN qty END) AS held_qty,
           (SELECT t.result FROM main.saga_steps t
             WHERE t.order_id = s.order_id AND t.sku = s.sku AND t.result IS NOT NULL
             ORDER BY t.id DESC LIMIT 1) AS last,
           sum(result IS NULL) AS flying
      FROM main.saga_steps s
     GROUP BY order_id, sku),
moves AS (
    SELECT sku,
           coalesce(sum(held_qty), 0) AS reserved,
           coalesce(sum(CASE WHEN last = 'COMMITTED' THEN held_qty END), 0) AS committed,
           coalesce(sum(CASE WHEN last = 'RELEASED' THEN held_qty END), 0) AS released,
           sum(flying) AS in_flight
      FROM lines GROUP BY sku),
adds AS (
    SELECT sku, coalesce(sum(CASE WHEN applied_at IS NOT NULL THEN qty END), 0) AS added,
           coalesce(sum(CASE WHEN applied_at IS NULL THEN qty END), 0) AS pending
      FROM main.stock_adjustments GROUP BY sku),
-- What retention deleted (orders that ended long ago, applied additions),
-- folded per sku: the balances stay those of the whole history.
folded AS (SELECT sku, added, reserved, committed, released FROM main.stock_folded),
sums AS (
    SELECT sku, sum(added) AS added, sum(pending) AS pending, sum(reserved) AS reserved,
           sum(committed) AS committed, sum(released) AS released,
           sum(in_flight) AS in_flight
      FROM (SELECT sku, added, pending, 0 AS reserved, 0 AS committed, 0 AS released,
                   0 AS in_flight FROM adds
            UNION ALL
            SELECT sku, 0, 0, reserved, committed, released, in_flight FROM moves
            UNION ALL
            SELECT sku, added, 0, reserved, committed, released, 0 FROM folded)
     GROUP BY sku)
SELECT sku,
       added,
       pending,
       reserved,
       committed,
       released,
       reserved - committed - released AS held,
       added - (reserved - released) AS available,
       in_flight
  FROM sums
 ORDER BY sku;
