-- migrate-3.sql: journal version 3: the same tables, with CHECK constraints SQLite evaluates cheaply.
--
-- SQLite compiles "x IN (a, b, c)" with more than two constants into an
-- ephemeral index that every execution of the statement builds again: an
-- INSERT into inbox, orders or saga_steps, and every UPDATE of a state,
-- opened a little in-memory B-tree just to check one value (perf showed it
-- as sqlite3BtreeOpen under every step row; about 1.7 µs a row).  The same
-- constraints written with OR cost nothing more than the comparisons.
--
-- A CHECK constraint can only be changed by rebuilding the table
-- (https://www.sqlite.org/lang_altertable.html#otheralter): new table, copy
-- with the rowids, drop, rename, indexes again.  The columns and indexes
-- are those of version 2; only the CHECK text differs.  orderd runs this
-- file in one transaction with the version bump.

CREATE TABLE inbox_v3 (
    event_id        TEXT NOT NULL,
    topic           TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    type            TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status = 'applied' OR status = 'waiting' OR status = 'parked'
                           OR status = 'ignored'),
    received_at     INTEGER NOT NULL,
    applied_at      INTEGER,
    traceparent     TEXT,
    payload         BLOB NOT NULL,
    PRIMARY KEY (order_id, event_id)
);
INSERT INTO inbox_v3 (rowid, event_id, topic, kafka_partition, kafka_offset, type, order_id,
                      status, received_at, applied_at, traceparent, payload)
SELECT rowid, event_id, topic, kafka_partition, kafka_offset, type, order_id,
       status, received_at, applied_at, traceparent, payload
  FROM inbox ORDER BY rowid;
DROP TABLE inbox;
ALTER TABLE inbox_v3 RENAME TO inbox;
CREATE INDEX inbox_unapplied ON inbox (order_id) WHERE status IN ('waiting', 'parked');
CREATE INDEX inbox_received ON inbox (received_at);

CREATE TABLE orders_v3 (
    order_id         TEXT PRIMARY KEY,
    state            TEXT NOT NULL
                     CHECK (state = 'NEW' OR state = 'RESERVED' OR state = 'CONFIRMED'
                            OR state = 'REJECTED' OR state = 'CANCELLED'),
    customer_id      TEXT NOT NULL,
    amount_cents     INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    items            TEXT NOT NULL,          -- JSON array [{"sku":..,"qty":..}] as received
    lines            TEXT NOT NULL,          -- "sku qty;sku qty": items summed per sku, in order
    payment_id       TEXT,
    reason           TEXT,
    reason_sku       TEXT,
    created_event_id TEXT NOT NULL,
    traceparent      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    kafka_partition  INTEGER,
    epoch            INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0
);
INSERT INTO orders_v3 (rowid, order_id, state, customer_id, amount_cents, currency, items,
                       lines, payment_id, reason, reason_sku, created_event_id, traceparent,
                       created_at, updated_at, kafka_partition, epoch, version)
SELECT rowid, order_id, state, customer_id, amount_cents, currency, items,
       lines, payment_id, reason, reason_sku, created_event_id, traceparent,
       created_at, updated_at, kafka_partition, epoch, version
  FROM orders ORDER BY rowid;
DROP TABLE orders;
ALTER TABLE orders_v3 RENAME TO orders;
CREATE INDEX orders_live ON orders (state) WHERE state IN ('NEW', 'RESERVED');

CREATE TABLE saga_steps_v3 (
    id        INTEGER PRIMARY KEY,
    order_id  TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind = 'reserve' OR kind = 'commit' OR kind = 'release'),
    sku       TEXT NOT NULL,
    qty       INTEGER NOT NULL,
    event_id  TEXT,                          -- the input event that caused it
    intent_at INTEGER NOT NULL,
    result    TEXT,                          -- the script's reply: RESERVED, REJECTED, COMMITTED, RELEASED
    done_at   INTEGER
);
INSERT INTO saga_steps_v3 (id, order_id, kind, sku, qty, event_id, intent_at, result, done_at)
SELECT id, order_id, kind, sku, qty, event_id, intent_at, result, done_at
  FROM saga_steps ORDER BY id;
DROP TABLE saga_steps;
ALTER TABLE saga_steps_v3 RENAME TO saga_steps;
CREATE INDEX saga_steps_order ON saga_steps (order_id, id);
