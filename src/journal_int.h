/* journal_int.h: what the journal files (journal.c, journal_open.c, journal_ckpt.c, journal_changelog.c) share and nobody else sees: struct journal, its statements by name and the helpers that run them. */
#ifndef ORDERD_JOURNAL_INT_H
#define ORDERD_JOURNAL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "journal.h"

/* The statements of sql/queries.sql; the names must match its "-- name:" lines. */
#define JOURNAL_QUERIES(X) \
	X(INBOX_INSERT, "inbox_insert") \
	X(INBOX_SET_STATUS, "inbox_set_status") \
	X(INBOX_UNAPPLIED, "inbox_unapplied") \
	X(OUTBOX_INSERT, "outbox_insert") \
	X(OUTBOX_PENDING, "outbox_pending") \
	X(OUTBOX_PENDING_CLEAN, "outbox_pending_clean") \
	X(OUTBOX_ANY_DEAD, "outbox_any_dead") \
	X(OUTBOX_PUBLISHED, "outbox_published") \
	X(OUTBOX_FAILED, "outbox_failed") \
	X(OUTBOX_FATE, "outbox_fate") \
	X(OUTBOX_FIRST_PENDING, "outbox_first_pending") \
	X(OUTBOX_RETRY, "outbox_retry") \
	X(OUTBOX_DROP, "outbox_drop") \
	X(DATA_VERSION, "data_version") \
	X(OUTBOX_STATS, "outbox_stats") \
	X(STOCK_ADJUSTMENT_INSERT, "stock_adjustment_insert") \
	X(STOCK_ADJUSTMENT_APPLIED, "stock_adjustment_applied") \
	X(ORDER_GET, "order_get") \
	X(ORDER_INSERT, "order_insert") \
	X(ORDER_UPDATE, "order_update") \
	X(ORDER_IN_FLIGHT, "order_in_flight") \
	X(STEP_INSERT, "step_insert") \
	X(STEP_RESULT, "step_result") \
	X(STEPS_IN_FLIGHT, "steps_in_flight") \
	X(DEADLINE_SET, "deadline_set") \
	X(DEADLINE_CLEAR, "deadline_clear") \
	X(DEADLINE_FIRED, "deadline_fired") \
	X(DEADLINES_DUE, "deadlines_due") \
	X(DLQ_INSERT, "dlq_insert") \
	X(STOCK_ADJUSTMENTS_UNAPPLIED, "stock_adjustments_unapplied") \
	X(ORDERS_LIVE, "orders_live") \
	X(OUTBOX_BACKLOG, "outbox_backlog") \
	X(RETENTION_INBOX, "retention_inbox") \
	X(RETENTION_OUTBOX_WINDOW, "retention_outbox_window") \
	X(RETENTION_OUTBOX, "retention_outbox") \
	X(RETENTION_ORDERS_CLEAR, "retention_orders_clear") \
	X(RETENTION_ORDERS_PICK, "retention_orders_pick") \
	X(RETENTION_ORDERS_FOLD, "retention_orders_fold") \
	X(RETENTION_ORDERS_TOMBSTONE, "retention_orders_tombstone") \
	X(RETENTION_ORDERS_DELETE_STEPS, "retention_orders_delete_steps") \
	X(RETENTION_ORDERS_DELETE_INBOX, "retention_orders_delete_inbox") \
	X(RETENTION_ORDERS_DELETE_DEADLINES, "retention_orders_delete_deadlines") \
	X(RETENTION_ORDERS_DELETE, "retention_orders_delete") \
	X(RETENTION_ADJUSTMENTS_FOLD, "retention_adjustments_fold") \
	X(RETENTION_ADJUSTMENTS_DELETE, "retention_adjustments_delete") \
	X(RETENTION_DLQ, "retention_dlq") \
	X(STOCK_ADJUSTMENT_LATEST_APPLIED, "stock_adjustment_latest_applied") \
	X(STEP_RESULTS, "step_results") \
	X(ORDERS_WITH_UNAPPLIED_EVENTS, "orders_with_unapplied_events") \
	X(OWNED_CLEAR, "owned_clear") \
	X(OWNED_ADD, "owned_add") \
	X(PARTITION_EPOCH, "partition_epoch") \
	X(ORDER_BUMP, "order_bump") \
	X(CHANGELOG_INSERT, "changelog_insert") \
	X(CHANGELOG_INSERT_PARKED, "changelog_insert_parked") \
	X(PARKED_VERSION, "parked_version") \
	X(PARKED_EVENTS, "parked_events") \
	X(PARKED_GET, "parked_get") \
	X(RESTORE_ORDER, "restore_order") \
	X(RESTORE_PARKED_NEWER, "restore_parked_newer") \
	X(RESTORE_FORGET_EVENTS, "restore_forget_events") \
	X(RESTORE_EVENTS, "restore_events") \
	X(RESTORE_PARKED, "restore_parked") \
	X(RESTORE_DEADLINE, "restore_deadline") \
	X(RESTORE_NO_DEADLINE, "restore_no_deadline") \
	X(SUPERSEDE_ORDER, "supersede_order") \
	X(SUPERSEDE_ORDER_STEPS, "supersede_order_steps") \
	X(SUPERSEDE_UNOWNED, "supersede_unowned") \
	X(SUPERSEDE_UNOWNED_STEPS, "supersede_unowned_steps") \
	X(OUTBOX_MAX_ID, "outbox_max_id") \
	X(OUTBOX_PUBLISHED_RANGE, "outbox_published_range")

enum journal_query {
#define X(id, name) JQ_##id,
	JOURNAL_QUERIES(X)
#undef X
	JQ_COUNT
};

/* A report of sql/reports.sql, prepared the first time it is used. */
/* A report of sql/reports.sql, prepared the first time it is used, with
 * the names of its columns (copied: SQLite's may move on a re-prepare). */
struct journal_report_stmt {
	char *name;
	sqlite3_stmt *st;
	char **cols;
	int ncols;
};

/* What a row callback of journal_report reads through. */
struct journal_row {
	sqlite3_stmt *st;
	const struct journal_report_stmt *rep;
	const char **missing;	/* the first name asked for that is no column */
};

/* WAL frames (pages) between checkpoints: 32 MiB of 4 KiB pages, so a hot
 * page rewritten many times in between is copied back once. */
#define JOURNAL_CHECKPOINT_FRAMES 8192

struct journal_ckpt;

struct journal {
	sqlite3 *db;
	struct journal_ckpt *ckpt;	/* or NULL: SQLite's own autocheckpoint */
	char *reports_sql;		/* sql/reports.sql, read on first use */
	/* Each on its own: a row callback may prepare another report while
	 * its own one runs, which grows this array. */
	struct journal_report_stmt **reports;
	int nreports;
	sqlite3_stmt *stmt[JQ_COUNT];
	sqlite3_stmt *begin, *begin_read, *commit, *rollback;
	/* Who holds the open transaction ("engine", "relay", ...), or
	 * NULL: one writer at a time, asserted by journal_begin. */
	const char *tx_owner;
	int busy_timeout_ms;
};

/* ---- journal_tx.c: running statements ---- */

/* Maps an SQLite result code to a negative errno. */
int journal_err(int rc);
/* Binds s as text (NULL as NULL); s must outlive the statement's run. */
void journal_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Runs a statement that returns no rows and resets it; 0 or a negative errno. */
int journal_run(struct journal *j, sqlite3_stmt *st);
/* journal_run of a statement that must change exactly one row: -ENOENT
 * when it changed none (the order has no row). */
int journal_run_one(struct journal *j, sqlite3_stmt *st);
/* Resets st and its bindings after its last sqlite3_step, which returned
 * rc: 0 or a negative errno. */
int journal_step_done(sqlite3_stmt *st, int rc);
/* Runs st (bound) and returns how many rows it changed, or a negative errno. */
int journal_changes(struct journal *j, sqlite3_stmt *st);
/* One integer from a statement of one row; *out untouched when none. */
int journal_scalar(sqlite3_stmt *st, int64_t *out);

/* ---- journal_ckpt.c: the checkpoint thread ---- */

/*
 * Opens the checkpointer's connection to path (PRAGMA synchronous = sync),
 * starts its thread and hooks it to j's commits.  Returns 0, or a negative
 * errno with *cause (caller frees).
 */
int journal_ckpt_start(struct journal *j, const char *path, const char *sync, char **cause);
/* Stops the thread and closes its connection; NULL is fine. */
void journal_ckpt_free(struct journal_ckpt *c);

/* ---- journal_changelog.c ---- */

/* Registers the SQL function orderd_state_id on j's connection, which
 * sql/queries.sql's changelog_insert calls.  0 or a negative errno. */
int journal_changelog_init(struct journal *j);

#endif
