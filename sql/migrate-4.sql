-- migrate-4.sql: journal version 4: an outbox row the broker refuses for good becomes dead instead of holding back every later row.
--
-- The relay marks a row dead (dead_at) after a delivery error retrying
-- cannot mend (a message too large for its topic, a topic that is gone,
-- ...) or after [relay] max_attempts failed deliveries; attempts and
-- last_error are written as they happen.  A dead row is not produced
-- again; the rows behind it go on, except the later rows of the same order
-- (its outputs must reach Kafka in order on its key), which wait until an
-- operator retries the dead row (orderctl outbox retry: dead_at back to
-- NULL, attempts 0, retried_at set; last_error stays as the history) or
-- drops it (orderctl outbox drop: dropped_at set; the row is kept for the
-- audit, never published).  States of a row, in this order of precedence:
--   published   published_at IS NOT NULL
--   superseded  superseded_at IS NOT NULL (another instance owns the order)
--   dropped     dropped_at IS NOT NULL
--   dead        dead_at IS NOT NULL
--   pending     otherwise (held while an earlier row of its order is dead)
ALTER TABLE outbox ADD COLUMN dead_at INTEGER;
ALTER TABLE outbox ADD COLUMN retried_at INTEGER;
ALTER TABLE outbox ADD COLUMN dropped_at INTEGER;

-- What the relay reads: dead and dropped rows are out of it.
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id)
 WHERE published_at IS NULL AND superseded_at IS NULL AND dead_at IS NULL
   AND dropped_at IS NULL;
-- The dead rows, by order: "is an earlier row of this order dead?" for
-- every row the relay reads, and the dead gauge of /metrics.  Usually
-- empty, so the probe costs next to nothing.
CREATE INDEX outbox_dead ON outbox (order_id, id)
 WHERE dead_at IS NOT NULL AND dropped_at IS NULL AND superseded_at IS NULL
   AND published_at IS NULL;
