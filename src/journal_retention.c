/* journal_retention.c: the statements of retention: old inbox and outbox rows, whole orders that ended long ago (their stock folded per sku, their changelog keys tombstoned), applied stock additions, dead letters, and free pages given back. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "journal_int.h"

int
journal_inbox_prune(struct journal *j, int64_t cutoff, int limit)
{
	sqlite3_stmt *st = j->stmt[JQ_RETENTION_INBOX];

	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, limit);
	return journal_changes(j, st);
}

int
journal_outbox_prune(struct journal *j, int64_t cutoff, int limit,
    int64_t *after_id, bool *done)
{
	sqlite3_stmt *st = j->stmt[JQ_RETENTION_OUTBOX_WINDOW];
	int64_t count = 0, last = *after_id;
	bool young = false;
	int rc, err;

	sqlite3_bind_int64(st, 1, *after_id);
	sqlite3_bind_int64(st, 2, cutoff);
	sqlite3_bind_int(st, 3, limit);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 0);
		last = count > 0 ? sqlite3_column_int64(st, 1) : *after_id;
		young = sqlite3_column_int(st, 2) != 0;
	}
	if ((err = journal_step_done(st, rc)) < 0)
		return err;
	*done = count < limit || young;
	if (count == 0)
		return 0;
	st = j->stmt[JQ_RETENTION_OUTBOX];
	sqlite3_bind_int64(st, 1, *after_id);
	sqlite3_bind_int64(st, 2, cutoff);
	sqlite3_bind_int64(st, 3, last);
	if ((err = journal_changes(j, st)) >= 0)
		*after_id = last;
	return err;
}

/* Runs a statement bound to (?1 i1, ?2 i2[, ?3 i3]) and returns the rows it
 * changed, or a negative errno. */
static int
journal_retention_run(struct journal *j, enum journal_query q, int nargs, int64_t i1,
    int64_t i2, int64_t i3)
{
	sqlite3_stmt *st = j->stmt[q];

	if (nargs >= 1)
		sqlite3_bind_int64(st, 1, i1);
	if (nargs >= 2)
		sqlite3_bind_int64(st, 2, i2);
	if (nargs >= 3)
		sqlite3_bind_int64(st, 3, i3);
	return journal_changes(j, st);
}

int
journal_orders_prune(struct journal *j, int64_t cutoff, int limit, const char *state_topic,
    int64_t now)
{
	sqlite3_stmt *st;
	int n, err;

	if ((err = journal_retention_run(j, JQ_RETENTION_ORDERS_CLEAR, 0, 0, 0, 0)) < 0)
		return err;
	n = journal_retention_run(j, JQ_RETENTION_ORDERS_PICK, 3, cutoff, limit,
	    state_topic == NULL || state_topic[0] == '\0');
	if (n <= 0)
		return n;
	if ((err = journal_retention_run(j, JQ_RETENTION_ORDERS_FOLD, 1, now, 0, 0)) < 0)
		return err;
	if (state_topic != NULL && state_topic[0] != '\0') {
		st = j->stmt[JQ_RETENTION_ORDERS_TOMBSTONE];
		journal_bind_text(st, 1, state_topic);
		sqlite3_bind_int64(st, 2, now);
		if ((err = journal_run(j, st)) < 0)
			return err;
	}
	if ((err = journal_retention_run(j, JQ_RETENTION_ORDERS_DELETE_STEPS, 0, 0, 0, 0)) < 0 ||
	    (err = journal_retention_run(j, JQ_RETENTION_ORDERS_DELETE_INBOX, 0, 0, 0, 0)) < 0 ||
	    (err = journal_retention_run(j, JQ_RETENTION_ORDERS_DELETE_DEADLINES, 0, 0, 0,
	    0)) < 0 ||
	    (err = journal_retention_run(j, JQ_RETENTION_ORDERS_DELETE, 0, 0, 0, 0)) < 0)
		return err;
	return n;
}

int
journal_adjustments_prune(struct journal *j, int64_t cutoff, int limit, int64_t now)
{
	int err = journal_retention_run(j, JQ_RETENTION_ADJUSTMENTS_FOLD, 3, cutoff, limit,
	    now);

	if (err < 0)
		return err;
	return journal_retention_run(j, JQ_RETENTION_ADJUSTMENTS_DELETE, 2, cutoff, limit, 0);
}

int
journal_dlq_prune(struct journal *j, int64_t cutoff, int limit)
{
	return journal_retention_run(j, JQ_RETENTION_DLQ, 2, cutoff, limit, 0);
}

int
journal_free_pages(struct journal *j, int64_t *pages)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*pages = 0;
	if (sqlite3_prepare_v2(j->db, "PRAGMA freelist_count", -1, &st, NULL) != SQLITE_OK)
		return journal_err(sqlite3_errcode(j->db));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*pages = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}

int
journal_give_back(struct journal *j, int pages)
{
	char sql[64];
	sqlite3_stmt *st = NULL;
	int rc;

	/* A no-op unless the journal was made with auto_vacuum = INCREMENTAL
	 * (every journal since version 4; orderctl vacuum turns it on for an
	 * older one). */
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", pages);
	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return journal_err(sqlite3_errcode(j->db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}
