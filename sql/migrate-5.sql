-- migrate-5.sql: journal version 5: what retention needs to delete whole orders and stock additions without losing a unit.
--
-- stock_folded carries, per sku, the stock movements of the rows retention
-- deleted (orders that ended long ago with their steps; applied stock
-- additions), so that every balance the journal implies (orderctl
-- reconcile, recover --rebuild-redis, the stock_ledger view) is the folded
-- part plus what the remaining rows say, exactly as before the deletion.
-- Columns as stock_ledger's: added units, reserved (ever held), committed
-- (sold), released (given back); orders and adjustments count the rows
-- folded, for auditors.
CREATE TABLE stock_folded (
    sku         TEXT PRIMARY KEY,
    added       INTEGER NOT NULL DEFAULT 0,
    reserved    INTEGER NOT NULL DEFAULT 0,
    committed   INTEGER NOT NULL DEFAULT 0,
    released    INTEGER NOT NULL DEFAULT 0,
    orders      INTEGER NOT NULL DEFAULT 0,
    adjustments INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);

-- The orders that ended, by when: retention's scan, oldest first.  Written
-- with OR, not IN: every INSERT and UPDATE of orders evaluates this, and
-- an IN of three constants builds an ephemeral table each time (see
-- migrate-3.sql).
CREATE INDEX orders_done ON orders (updated_at)
    WHERE state = 'CONFIRMED' OR state = 'REJECTED' OR state = 'CANCELLED';
-- Applied stock additions and dead letters, by age.
CREATE INDEX stock_adjustments_applied ON stock_adjustments (applied_at)
    WHERE applied_at IS NOT NULL;
CREATE INDEX dlq_received ON dlq (received_at);
