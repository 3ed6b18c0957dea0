/* journal.h: the SQLite journal (WAL): inbox, orders, saga steps, outbox, deadlines. */
#ifndef ORDERD_JOURNAL_H
#define ORDERD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The schema version this build writes (PRAGMA user_version). */
#define JOURNAL_VERSION 5

struct journal;

struct journal_options {
	bool synchronous_full;	/* fsync every commit (default) or NORMAL */
	int busy_timeout_ms;	/* wait this long for another writer (orderctl) */
	/* Checkpoints on a thread with a connection of its own, not inside the
	 * commits of this one (orderd: its loop never copies the WAL back). */
	bool checkpoint_thread;
};

/* Opens (creating or migrating forward) the journal at path.  Returns 0 or
 * a negative errno; on failure *cause (owned by the caller) says why. */
int journal_open(struct journal **out, const char *path,
    const struct journal_options *opt, char **cause);
void journal_free(struct journal *j);
/* Checkpoint passes of the checkpoint thread so far (0 without one). */
int64_t journal_checkpoints(struct journal *j);
/* The last SQLite error message of this connection (static to j). */
const char *journal_errmsg(struct journal *j);
/* The user_version of an open journal. */
int journal_version(struct journal *j);

/*
 * A group commit: everything between begin and commit is one transaction.
 * begin takes the write lock at once (BEGIN IMMEDIATE).  who names the
 * module that writes ("engine", "relay", "retention", "orderctl"): one
 * connection has one writer at a time, so a begin while another module's
 * transaction is open is a bug, refused with -EDEADLK and a log line (the
 * open transaction is left as it was).  -EBUSY: another process held the
 * journal's write lock longer than the busy timeout (journal_busy_fatal).
 */
int journal_begin(struct journal *j, const char *who);
/* A read transaction (BEGIN DEFERRED): the reports run until journal_commit
 * see one moment of the journal, and no writer waits for it (orderctl). */
int journal_begin_read(struct journal *j, const char *who);
/* The module whose transaction is open, or NULL. */
const char *journal_tx_owner(const struct journal *j);
/*
 * The one policy for a journal write that failed on orderd's loop (a busy
 * journal included): roll back, log what who was doing, the error and, for
 * -EBUSY, who may hold the lock, then exit(1).  Nothing is lost: what was
 * not committed was not acknowledged, and the next start replays it.
 */
void journal_fatal(struct journal *j, const char *who, const char *what, int err)
    __attribute__((noreturn));
int journal_commit(struct journal *j);
void journal_rollback(struct journal *j);

struct journal_event {
	const char *event_id;
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *type;
	const char *order_id;	/* may be NULL */
	const char *status;	/* applied | waiting | parked | ignored */
	int64_t received_at;
	const char *traceparent;	/* may be NULL */
	const void *payload;
	size_t payload_len;
};

/* Records a consumed event.  Returns 0, or -EEXIST when its event_id was
 * seen before for its order (and then changes nothing).  order_id is
 * required. */
int journal_inbox_add(struct journal *j, const struct journal_event *ev);
int journal_inbox_set_status(struct journal *j, const char *order_id,
    const char *event_id, const char *status, int64_t now);

struct journal_outbox_row {
	int64_t id;
	const char *topic;
	const void *key;
	size_t key_len;
	const char *event_id;
	const char *order_id;
	const char *type;
	const char *headers;	/* JSON object */
	const void *payload;
	size_t payload_len;
	int64_t created_at;
	int attempts;
	bool partitioned;	/* to partition, not by key (changelog records) */
	int32_t partition;
};

/* Adds a row to publish; sets row->id.  -EEXIST when the event_id is there
 * already: a deterministic output written twice is written once. */
int journal_outbox_add(struct journal *j, struct journal_outbox_row *row);
/* Calls fn for each unpublished row with id > after_id, in id order, at
 * most limit rows, but those held behind a dead row of their order (when
 * any_dead: without a dead row none is held, and the look is saved).  The
 * row's pointers live only during the call.  Returns the number of rows, or
 * a negative errno; a non-zero return of fn stops. */
int journal_outbox_pending(struct journal *j, int64_t after_id, int limit, bool any_dead,
    int (*fn)(const struct journal_outbox_row *row, void *arg), void *arg);
/* Whether some outbox row is dead (and not dropped). */
int journal_outbox_any_dead(struct journal *j, bool *any);
int journal_outbox_published(struct journal *j, int64_t id, int64_t now);
/* The same for rows first..last, every id of which was acknowledged. */
int journal_outbox_published_range(struct journal *j, int64_t first, int64_t last,
    int64_t now);
#define JOURNAL_ORDER_ID_MAX 64

/* What a failed delivery made of a row (journal_outbox_failed). */
struct journal_outbox_fate {
	int attempts;			/* failed deliveries so far */
	bool dead;			/* it is dead now (or was before) */
	char order_id[JOURNAL_ORDER_ID_MAX + 1];	/* "" for a dead letter */
};
/*
 * A delivery of row id failed with error: one more attempt and its error,
 * and the row is dead (journal v4, sql/migrate-4.sql) when dead_now (an
 * error retrying cannot mend) or when it has failed max_attempts times
 * (0: never by count).  A row not to publish any more (published,
 * superseded, dead, dropped) is left as it is.  Inside the caller's
 * transaction; fills *f (may be NULL).
 */
int journal_outbox_failed(struct journal *j, int64_t id, const char *error, bool dead_now,
    int max_attempts, int64_t now, struct journal_outbox_fate *f);
/* The lowest row to publish (not dead, not held behind a dead row of its
 * order) with an id up to upto, in *id; 0 when none. */
int journal_outbox_first_pending(struct journal *j, int64_t upto, int64_t *id);
/* orderctl outbox retry: the dead row id (0: every dead row) is pending
 * again with attempts 0.  orderctl outbox drop: the dead row id is never
 * published (kept, marked dropped).  Inside the caller's transaction;
 * return the number of rows changed. */
int journal_outbox_retry(struct journal *j, int64_t id, int64_t now);
int journal_outbox_drop(struct journal *j, int64_t id, int64_t now);
/* SQLite's PRAGMA data_version: it changes when another connection
 * committed to the journal. */
int journal_data_version(struct journal *j, int64_t *v);
/* oldest_created is 0 when nothing is pending; pending counts the rows
 * held behind a dead row too, dead the dead rows. */
int journal_outbox_stats(struct journal *j, int64_t *pending,
    int64_t *published, int64_t *oldest_created, int64_t *dead);

/* Records a stock addition; -EEXIST when adjustment_id was recorded before. */
int journal_stock_adjustment_add(struct journal *j, const char *adjustment_id,
    const char *sku, int64_t qty, int64_t now);
int journal_stock_adjustment_applied(struct journal *j, const char *adjustment_id,
    int64_t now);


/* An order row; items and lines are malloc'd (journal_order_release). */
struct journal_order {
	char state[16];
	char customer_id[257];
	int64_t amount_cents;
	char currency[4];
	char *items;			/* JSON array as received */
	char *lines;			/* "sku qty;sku qty" (event_lines_format) */
	char payment_id[129];
	char reason[32];
	char reason_sku[65];
	char traceparent[128];
	int32_t partition;		/* of its OrderCreated on orders, or -1 */
};

/* Returns 0, or -ENOENT for an order not seen yet. */
int journal_order_get(struct journal *j, const char *order_id, struct journal_order *o);
void journal_order_release(struct journal_order *o);
int journal_order_insert(struct journal *j, const char *order_id,
    const struct journal_order *o, const char *created_event_id, int64_t now);
/* payment_id NULL keeps the recorded one; reason "" or NULL clears it.  Also
 * bumps the order's version, and sets its epoch to *epoch (NULL keeps it):
 * what journal_order_bump does.  -ENOENT when the order has no row. */
int journal_order_update(struct journal *j, const char *order_id, const char *state,
    const char *payment_id, const char *reason, const char *reason_sku, int64_t now,
    const int64_t *epoch);
/* 1 when a step of the order has no result yet, 0 when none, or a negative errno. */
int journal_order_in_flight(struct journal *j, const char *order_id);

struct journal_step {
	int64_t id;
	const char *order_id;
	const char *kind;
	const char *sku;
	int64_t qty;
	const char *event_id;		/* may be NULL */
	const char *traceparent;	/* of the causing event; may be NULL */
};

/* Records the intent of a step (before the Redis call); sets *id. */
int journal_step_add(struct journal *j, const char *order_id, const char *kind,
    const char *sku, int64_t qty, const char *event_id, int64_t now, int64_t *id);
/* Records the result of a step (after the Redis call). */
int journal_step_result(struct journal *j, int64_t id, const char *result, int64_t now);
/* Records one result for the steps first_id..last_id (one transition's). */
int journal_step_results(struct journal *j, int64_t first_id, int64_t last_id,
    const char *result, int64_t now);
/* Calls fn for each order with waiting or parked events; returns the count. */
int journal_orders_with_unapplied_events(struct journal *j,
    int (*fn)(const char *order_id, void *arg), void *arg);
/* Calls fn for every step without a result, ordered by order id then step
 * id; returns the count or a negative errno.  Pointers live during the call. */
int journal_steps_in_flight(struct journal *j,
    int (*fn)(const struct journal_step *step, void *arg), void *arg);

int journal_deadline_set(struct journal *j, const char *order_id, int64_t due_at);
int journal_deadline_clear(struct journal *j, const char *order_id);
int journal_deadline_fired(struct journal *j, const char *order_id, int64_t now);
/* Fills ids with up to limit orders whose deadline passed; returns the count. */
int journal_deadlines_due(struct journal *j, int64_t now, int limit,
    char (*ids)[JOURNAL_ORDER_ID_MAX + 1]);

/* Parks an undecodable message; -EEXIST when that offset was parked before. */
int journal_dlq_add(struct journal *j, const char *topic, int32_t partition,
    int64_t offset, const void *key, size_t key_len, const char *error,
    const void *payload, size_t len, int64_t now);

/* An inbox row still waiting for its order, with copies of its fields. */
struct journal_inbox_row {
	char event_id[129];
	char *topic;
	int32_t partition;
	int64_t offset;
	char type[64];
	char status[16];
	int64_t received_at;
	char *traceparent;
	char *payload;			/* NUL-terminated copy */
	size_t payload_len;
};

/* The waiting and parked events of an order in arrival order; *rows is
 * freed with journal_inbox_rows_free.  Returns the count. */
int journal_inbox_unapplied(struct journal *j, const char *order_id,
    struct journal_inbox_row **rows);
void journal_inbox_rows_free(struct journal_inbox_row *rows, int n);
/* Calls fn for every event parked for an order not created yet, of a
 * partition owned, oldest (received_at) first; returns the count or a
 * negative errno (fn's non-zero return stops: that count). */
int journal_parked_events(struct journal *j,
    int (*fn)(const char *order_id, const char *event_id, int32_t partition,
    int64_t received_at, void *arg), void *arg);
/* The event, when it is still parked and its order not created: 1 with
 * *row (freed with journal_inbox_rows_free(*row, 1)), 0 when not, or a
 * negative errno. */
int journal_parked_get(struct journal *j, const char *order_id, const char *event_id,
    struct journal_inbox_row **row);

/* The sku of the latest stock addition applied in Redis: 1 when there is
 * one (copied to sku), 0 when none, or a negative errno. */
int journal_stock_adjustment_latest_applied(struct journal *j, char *sku, size_t len);
int journal_stock_adjustments_unapplied(struct journal *j,
    int (*fn)(const char *adjustment_id, const char *sku, int64_t qty, void *arg),
    void *arg);

/*
 * One result row of a report, its columns read by their names in
 * sql/reports.sql (so a report may gain or reorder columns).  Valid during
 * the row callback only; so are the strings it returns.  A name that is no
 * column of the report reads as NULL, is logged, and fails the report
 * (-EINVAL) once the callback returns: a misspelt name is a bug to see.
 */
struct journal_row;

enum journal_type { JOURNAL_NULL, JOURNAL_INTEGER, JOURNAL_TEXT };

enum journal_type journal_row_type(const struct journal_row *r, const char *col);
/* 0 for NULL. */
int64_t journal_row_int(const struct journal_row *r, const char *col);
/* NULL for NULL; a number as its text. */
const char *journal_row_text(const struct journal_row *r, const char *col);
/* The report's columns, in order: their count and each one's name. */
int journal_row_columns(const struct journal_row *r);
const char *journal_row_column(const struct journal_row *r, int i);

/*
 * Runs the report called name in sql/reports.sql with text parameters,
 * calling row for each result row (a non-zero return stops).  Returns the
 * number of rows or a negative errno (-ENOENT: no such report).
 */
int journal_report(struct journal *j, const char *name, const char *const *params,
    int nparams, int (*row)(const struct journal_row *r, void *arg), void *arg);

/* Orders whose saga is under way (NEW, RESERVED), from the partial index
 * orders_live: cheap enough for every /metrics scrape. */
int journal_orders_live(struct journal *j, int64_t *new_count, int64_t *reserved);
/* Unpublished outbox rows, counted up to cap, the created_at of the
 * first one the relay will publish (0 when none; rows held behind a dead
 * row do not count there) and the dead rows, from the partial indexes
 * outbox_pending and outbox_dead only: journal_outbox_stats also counts
 * the published rows, a full scan of a big journal. */
int journal_outbox_backlog(struct journal *j, int64_t cap, int64_t *pending,
    int64_t *oldest_created, int64_t *dead);

/*
 * Retention (retention.c), inside the caller's transaction.  inbox_prune
 * deletes at most limit inbox rows received before cutoff whose event was
 * applied or ignored (never waiting or parked ones) and returns how many.
 * outbox_prune looks at the next limit
 * outbox rows after *after_id, deletes those published before cutoff, moves
 * *after_id past them and returns how many it deleted; *done is set when
 * nothing further can be old enough (the window was short, or held a row
 * created at or after cutoff: ids grow with time).
 */
int journal_inbox_prune(struct journal *j, int64_t cutoff, int limit);
int journal_outbox_prune(struct journal *j, int64_t cutoff, int limit,
    int64_t *after_id, bool *done);
/*
 * Whole orders (journal_retention.c), inside the caller's transaction: up
 * to limit orders that ended before cutoff, with no step in flight and no
 * line still held, are deleted with their steps, inbox rows and deadline;
 * their stock movements are folded per sku into stock_folded first (every
 * balance the journal implies stays the same), and with a state topic each
 * order of a partition this instance owns gets a changelog tombstone in the
 * outbox.  Returns the orders deleted, or a negative errno.
 */
int journal_orders_prune(struct journal *j, int64_t cutoff, int limit, const char *state_topic,
    int64_t now);
/* Stock additions Redis applied before cutoff (but the latest applied),
 * folded into stock_folded and deleted; returns how many. */
int journal_adjustments_prune(struct journal *j, int64_t cutoff, int limit, int64_t now);
/* Dead letters received before cutoff; returns how many. */
int journal_dlq_prune(struct journal *j, int64_t cutoff, int limit);
/* The journal's free pages (PRAGMA freelist_count). */
int journal_free_pages(struct journal *j, int64_t *pages);
/* Gives up to pages free pages back to the file system (outside a
 * transaction; a no-op for a journal without incremental auto_vacuum). */
int journal_give_back(struct journal *j, int pages);

/*
 * Several instances: the changelog topic and the partitions owned (see
 * sql/migrate-2.sql and README "Running more than one instance").
 */

/* The partitions of orders this process owns now, with their epochs
 * (replaces the previous set; n 0 empties it).  In the TEMP table owned. */
int journal_owned_set(struct journal *j, const int32_t *partitions, const int64_t *epochs,
    int n);
/* The highest epoch of the orders of a partition in this journal (0: none). */
int journal_partition_epoch(struct journal *j, int32_t partition, int64_t *epoch);
/* Gives the order its partition's epoch (when owned) and its next version;
 * -ENOENT when the order has no row. */
int journal_order_bump(struct journal *j, const char *order_id);
/* Adds the order's changelog record (of its row as it is now) to the outbox. */
int journal_changelog_add(struct journal *j, const char *order_id, const char *topic,
    int64_t now);
/* The version of the record of an order not created yet: 1 per event
 * parked for it, 2 per one that expired; 0 when it has none of either. */
int journal_parked_version(struct journal *j, const char *order_id, int64_t *n);
/* The record of an order not created yet (state NONE): its parked events,
 * the expired ones as seen; version from journal_parked_version. */
int journal_changelog_add_parked(struct journal *j, const char *order_id, const char *topic,
    const char *event_id, int64_t now, int32_t partition, int64_t epoch, int64_t version);
/*
 * Applies one changelog record (JSON text) when it is newer than what the
 * journal knows of the order: the order row, its events, parked events
 * and deadline; the order's unpublished outbox rows and steps without a
 * result are superseded.  Returns 1 when applied, 0 when the journal was as
 * new or newer, or a negative errno.
 */
int journal_restore(struct journal *j, const char *record, const char *order_id,
    bool parked_only, const char *topic, int64_t now);
/* Supersedes unpublished rows and steps without a result of orders in
 * partitions not owned (journal_owned_set); counts what it did. */
int journal_supersede_unowned(struct journal *j, int64_t now, int64_t *rows, int64_t *steps);
/* The highest outbox id (0 when empty). */
int journal_outbox_max_id(struct journal *j, int64_t *id);

#endif
