-- schema.sql: the journal, version 1: every event orderd saw and every step it took.
--
-- Times are milliseconds since the Unix epoch (UTC).  Open it with
--   sqlite3 journal.db
-- and see sql/audit.sql for views made for auditors.  orderd applies this
-- file to an empty journal and then sets PRAGMA user_version = 1; later
-- versions add sql/migrate-N.sql files that move version N-1 to N.

-- Every consumed event, deduplicated by event_id.  status tells what became
-- of it: applied to its order; waiting for a step of its order in flight;
-- parked until its OrderCreated arrives; dlq when it could not be decoded.
--
-- Keyed by (order_id, event_id): an event id is unique per event, and a
-- redelivered event carries its order id again; keying by order first keeps
-- the rows of one order (and of orders close in time) on the same pages.
CREATE TABLE inbox (
    event_id        TEXT NOT NULL,
    topic           TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    type            TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('applied', 'waiting', 'parked', 'ignored')),
    received_at     INTEGER NOT NULL,
    applied_at      INTEGER,
    traceparent     TEXT,
    payload         BLOB NOT NULL,
    PRIMARY KEY (order_id, event_id)
);
CREATE INDEX inbox_unapplied ON inbox (order_id) WHERE status IN ('waiting', 'parked');
CREATE INDEX inbox_received ON inbox (received_at);

-- One row per order: the saga's state and what it needs to go on.
-- reason / reason_sku explain a REJECTED or CANCELLED order.
CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY,
    state            TEXT NOT NULL
                     CHECK (state IN ('NEW', 'RESERVED', 'CONFIRMED', 'REJECTED', 'CANCELLED')),
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
    updated_at       INTEGER NOT NULL
);
CREATE INDEX orders_live ON orders (state) WHERE state IN ('NEW', 'RESERVED');

-- Every Redis step of an order.  The intent (result NULL) is committed
-- before the Lua call; the result after it.  A step without a result is in
-- flight, and recovery runs it again: every script is idempotent.
CREATE TABLE saga_steps (
    id        INTEGER PRIMARY KEY,
    order_id  TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('reserve', 'commit', 'release')),
    sku       TEXT NOT NULL,
    qty       INTEGER NOT NULL,
    event_id  TEXT,                          -- the input event that caused it
    intent_at INTEGER NOT NULL,
    result    TEXT,                          -- the script's reply: RESERVED, REJECTED, COMMITTED, RELEASED
    done_at   INTEGER
);
CREATE INDEX saga_steps_order ON saga_steps (order_id, id);
-- No index on "result IS NULL": only recovery and reconcile ask for the
-- steps in flight, and every step write would pay for it.

-- The transactional outbox: rows are written in the same transaction as
-- the state change that caused them and published by the relay in id order.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    topic        TEXT NOT NULL,
    msg_key      BLOB,
    event_id     TEXT NOT NULL,              -- deterministic: the same step always has the same id
    order_id     TEXT,
    type         TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '{}', -- JSON object of Kafka headers besides event_id
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
-- An output id is derived from its order id, so unique per order is unique;
-- keyed by order it also finds an order's outputs.  (Dead letters have no
-- order: the dlq table dedupes them by topic, partition and offset.)
CREATE UNIQUE INDEX outbox_order ON outbox (order_id, event_id);

-- Durable payment deadlines: they fire after a restart too.
CREATE TABLE deadlines (
    order_id TEXT PRIMARY KEY,
    due_at   INTEGER NOT NULL,
    fired_at INTEGER
);
CREATE INDEX deadlines_due ON deadlines (due_at) WHERE fired_at IS NULL;

-- Every stock addition, idempotent in Redis by adjustment_id.
CREATE TABLE stock_adjustments (
    id            INTEGER PRIMARY KEY,
    adjustment_id TEXT NOT NULL UNIQUE,
    sku           TEXT NOT NULL,
    qty           INTEGER NOT NULL CHECK (qty > 0),
    created_at    INTEGER NOT NULL,
    applied_at    INTEGER
);
CREATE INDEX stock_adjustments_sku ON stock_adjustments (sku);

-- Messages that could not be processed, with the original bytes; the same
-- bytes are published to the DLQ topic through the outbox.
CREATE TABLE dlq (
    id              INTEGER PRIMARY KEY,
    topic           TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    msg_key         BLOB,
    error           TEXT NOT NULL,
    payload         BLOB,
    received_at     INTEGER NOT NULL,
    UNIQUE (topic, kafka_partition, kafka_offset)
);
