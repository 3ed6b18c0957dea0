/* journal.c: the SQLite journal's statements: the inbox, orders, saga steps, deadlines, the outbox, the DLQ, stock adjustments, retention and the reports of sql/reports.sql. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "journal_int.h"
#include "log.h"
#include "util.h"

static void
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

int
journal_inbox_add(struct journal *j, const struct journal_event *ev)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_INSERT];

	journal_bind_text(st, 1, ev->event_id);
	journal_bind_text(st, 2, ev->topic);
	sqlite3_bind_int(st, 3, ev->partition);
	sqlite3_bind_int64(st, 4, ev->offset);
	journal_bind_text(st, 5, ev->type);
	journal_bind_text(st, 6, ev->order_id);
	journal_bind_text(st, 7, ev->status);
	sqlite3_bind_int64(st, 8, ev->received_at);
	journal_bind_text(st, 9, ev->traceparent);
	bind_blob(st, 10, ev->payload ? ev->payload : "", ev->payload_len);
	return journal_run(j, st);
}

int
journal_inbox_set_status(struct journal *j, const char *order_id,
    const char *event_id, const char *status, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_SET_STATUS];

	journal_bind_text(st, 1, event_id);
	journal_bind_text(st, 2, status);
	sqlite3_bind_int64(st, 3, now);
	journal_bind_text(st, 4, order_id);
	return journal_run(j, st);
}

int
journal_outbox_add(struct journal *j, struct journal_outbox_row *row)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_INSERT];
	int err;

	journal_bind_text(st, 1, row->topic);
	bind_blob(st, 2, row->key, row->key_len);
	journal_bind_text(st, 3, row->event_id);
	journal_bind_text(st, 4, row->order_id);
	journal_bind_text(st, 5, row->type);
	journal_bind_text(st, 6, row->headers ? row->headers : "{}");
	bind_blob(st, 7, row->payload ? row->payload : "", row->payload_len);
	sqlite3_bind_int64(st, 8, row->created_at);
	if (row->partitioned)
		sqlite3_bind_int(st, 9, row->partition);
	else
		sqlite3_bind_null(st, 9);
	err = journal_run(j, st);
	if (err == 0)
		row->id = sqlite3_last_insert_rowid(j->db);
	return err;
}

int
journal_outbox_pending(struct journal *j, int64_t after_id, int limit, bool any_dead,
    int (*fn)(const struct journal_outbox_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[any_dead ? JQ_OUTBOX_PENDING : JQ_OUTBOX_PENDING_CLEAN];
	int n = 0, rc;

	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_outbox_row row = {
			.id = sqlite3_column_int64(st, 0),
			.topic = (const char *)sqlite3_column_text(st, 1),
			.key = sqlite3_column_blob(st, 2),
			.key_len = (size_t)sqlite3_column_bytes(st, 2),
			.event_id = (const char *)sqlite3_column_text(st, 3),
			.order_id = (const char *)sqlite3_column_text(st, 4),
			.type = (const char *)sqlite3_column_text(st, 5),
			.headers = (const char *)sqlite3_column_text(st, 6),
			.payload = sqlite3_column_blob(st, 7),
			.payload_len = (size_t)sqlite3_column_bytes(st, 7),
			.created_at = sqlite3_column_int64(st, 8),
			.attempts = sqlite3_column_int(st, 9),
			.partitioned = sqlite3_column_type(st, 10) != SQLITE_NULL,
			.partition = sqlite3_column_int(st, 10),
		};

		n++;
		if (fn(&row, arg) != 0)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_err(rc) ? journal_err(rc) : -EIO;
	return n;
}

int
journal_outbox_any_dead(struct journal *j, bool *any)
{
	int64_t v = 1;
	int err = journal_scalar(j->stmt[JQ_OUTBOX_ANY_DEAD], &v);

	/* In doubt, look: the held check is only slower. */
	*any = err < 0 || v != 0;
	return err;
}

int
journal_outbox_published(struct journal *j, int64_t id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_PUBLISHED];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

int
journal_outbox_failed(struct journal *j, int64_t id, const char *error, bool dead_now,
    int max_attempts, int64_t now, struct journal_outbox_fate *f)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_FAILED];
	int rc, err;

	sqlite3_bind_int64(st, 1, id);
	journal_bind_text(st, 2, error);
	sqlite3_bind_int(st, 3, dead_now);
	sqlite3_bind_int(st, 4, max_attempts);
	sqlite3_bind_int64(st, 5, now);
	if ((err = journal_run(j, st)) < 0 || f == NULL)
		return err;
	memset(f, 0, sizeof(*f));
	st = j->stmt[JQ_OUTBOX_FATE];
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 2);

		f->attempts = sqlite3_column_int(st, 0);
		f->dead = sqlite3_column_int(st, 1) != 0;
		snprintf(f->order_id, sizeof(f->order_id), "%s", o ? o : "");
		rc = sqlite3_step(st);
	}
	return journal_step_done(st, rc);
}

int
journal_outbox_first_pending(struct journal *j, int64_t upto, int64_t *id)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_FIRST_PENDING];
	int rc;

	*id = 0;
	sqlite3_bind_int64(st, 1, upto);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	return journal_step_done(st, rc);
}


int
journal_outbox_retry(struct journal *j, int64_t id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_RETRY];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return journal_changes(j, st);
}

int
journal_outbox_drop(struct journal *j, int64_t id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_DROP];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return journal_changes(j, st);
}

int
journal_data_version(struct journal *j, int64_t *v)
{
	return journal_scalar(j->stmt[JQ_DATA_VERSION], v);
}

int
journal_outbox_stats(struct journal *j, int64_t *pending, int64_t *published,
    int64_t *oldest_created, int64_t *dead)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_STATS];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int64(st, 0);
		*published = sqlite3_column_int64(st, 1);
		*oldest_created = sqlite3_column_int64(st, 2);
		*dead = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : (journal_err(rc) ? journal_err(rc) : -EIO);
}

int
journal_stock_adjustment_add(struct journal *j, const char *adjustment_id,
    const char *sku, int64_t qty, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_INSERT];

	journal_bind_text(st, 1, adjustment_id);
	journal_bind_text(st, 2, sku);
	sqlite3_bind_int64(st, 3, qty);
	sqlite3_bind_int64(st, 4, now);
	return journal_run(j, st);
}

int
journal_stock_adjustment_applied(struct journal *j, const char *adjustment_id,
    int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_APPLIED];

	journal_bind_text(st, 1, adjustment_id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

/* Copies a text column into a fixed buffer ("" for NULL). */
static void
col_copy(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? xstrdup((const char *)t) : NULL;
}

int
journal_order_get(struct journal *j, const char *order_id, struct journal_order *o)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_GET];
	int rc;

	memset(o, 0, sizeof(*o));
	journal_bind_text(st, 1, order_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_copy(st, 0, o->state, sizeof(o->state));
		col_copy(st, 1, o->customer_id, sizeof(o->customer_id));
		o->amount_cents = sqlite3_column_int64(st, 2);
		col_copy(st, 3, o->currency, sizeof(o->currency));
		o->items = col_dup(st, 4);
		col_copy(st, 5, o->payment_id, sizeof(o->payment_id));
		col_copy(st, 6, o->reason, sizeof(o->reason));
		col_copy(st, 7, o->reason_sku, sizeof(o->reason_sku));
		col_copy(st, 8, o->traceparent, sizeof(o->traceparent));
		o->lines = col_dup(st, 9);
		o->partition = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 10);
		journal_step_done(st, rc);
		return 0;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : -ENOENT;
}

void
journal_order_release(struct journal_order *o)
{
	free(o->items);
	o->items = NULL;
	free(o->lines);
	o->lines = NULL;
}

int
journal_order_insert(struct journal *j, const char *order_id,
    const struct journal_order *o, const char *created_event_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_INSERT];

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, o->state);
	journal_bind_text(st, 3, o->customer_id);
	sqlite3_bind_int64(st, 4, o->amount_cents);
	journal_bind_text(st, 5, o->currency);
	journal_bind_text(st, 6, o->items ? o->items : "[]");
	journal_bind_text(st, 7, created_event_id);
	journal_bind_text(st, 8, o->traceparent[0] ? o->traceparent : NULL);
	sqlite3_bind_int64(st, 9, now);
	journal_bind_text(st, 10, o->reason[0] ? o->reason : NULL);
	journal_bind_text(st, 11, o->reason_sku[0] ? o->reason_sku : NULL);
	journal_bind_text(st, 12, o->lines ? o->lines : "");
	if (o->partition >= 0)
		sqlite3_bind_int(st, 13, o->partition);
	else
		sqlite3_bind_null(st, 13);
	return journal_run(j, st);
}

int
journal_order_update(struct journal *j, const char *order_id, const char *state,
    const char *payment_id, const char *reason, const char *reason_sku, int64_t now,
    const int64_t *epoch)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_UPDATE];

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, state);
	journal_bind_text(st, 3, payment_id);
	journal_bind_text(st, 4, reason && reason[0] ? reason : NULL);
	journal_bind_text(st, 5, reason_sku && reason_sku[0] ? reason_sku : NULL);
	sqlite3_bind_int64(st, 6, now);
	if (epoch != NULL)
		sqlite3_bind_int64(st, 7, *epoch);
	return journal_run_one(j, st);
}

int
journal_order_in_flight(struct journal *j, const char *order_id)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_IN_FLIGHT];
	int rc, v = 0;

	journal_bind_text(st, 1, order_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : v;
}

int
journal_step_add(struct journal *j, const char *order_id, const char *kind,
    const char *sku, int64_t qty, const char *event_id, int64_t now, int64_t *id)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_INSERT];
	int err;

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, kind);
	journal_bind_text(st, 3, sku);
	sqlite3_bind_int64(st, 4, qty);
	journal_bind_text(st, 5, event_id);
	sqlite3_bind_int64(st, 6, now);
	err = journal_run(j, st);
	if (err == 0)
		*id = sqlite3_last_insert_rowid(j->db);
	return err;
}

int
journal_step_result(struct journal *j, int64_t id, const char *result, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_RESULT];

	sqlite3_bind_int64(st, 1, id);
	journal_bind_text(st, 2, result);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}

int
journal_steps_in_flight(struct journal *j,
    int (*fn)(const struct journal_step *step, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_STEPS_IN_FLIGHT];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_step step = {
			.id = sqlite3_column_int64(st, 0),
			.order_id = (const char *)sqlite3_column_text(st, 1),
			.kind = (const char *)sqlite3_column_text(st, 2),
			.sku = (const char *)sqlite3_column_text(st, 3),
			.qty = sqlite3_column_int64(st, 4),
			.event_id = (const char *)sqlite3_column_text(st, 5),
			.traceparent = (const char *)sqlite3_column_text(st, 6),
		};

		n++;
		if (fn(&step, arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

int
journal_deadline_set(struct journal *j, const char *order_id, int64_t due_at)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_SET];

	journal_bind_text(st, 1, order_id);
	sqlite3_bind_int64(st, 2, due_at);
	return journal_run(j, st);
}

int
journal_deadline_clear(struct journal *j, const char *order_id)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_CLEAR];

	journal_bind_text(st, 1, order_id);
	return journal_run(j, st);
}

int
journal_deadline_fired(struct journal *j, const char *order_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_FIRED];

	journal_bind_text(st, 1, order_id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

int
journal_deadlines_due(struct journal *j, int64_t now, int limit,
    char (*ids)[JOURNAL_ORDER_ID_MAX + 1])
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINES_DUE];
	int rc, n = 0;

	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		col_copy(st, 0, ids[n++], JOURNAL_ORDER_ID_MAX + 1);
	if (n == limit)
		rc = SQLITE_DONE;
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

int
journal_dlq_add(struct journal *j, const char *topic, int32_t partition,
    int64_t offset, const void *key, size_t key_len, const char *error,
    const void *payload, size_t len, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_DLQ_INSERT];

	journal_bind_text(st, 1, topic);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, offset);
	bind_blob(st, 4, key, key_len);
	journal_bind_text(st, 5, error);
	bind_blob(st, 6, payload ? payload : "", len);
	sqlite3_bind_int64(st, 7, now);
	return journal_run(j, st);
}

/* The rows of inbox_unapplied or parked_get (the same columns), copied. */
static int
journal_inbox_rows_read(sqlite3_stmt *st, struct journal_inbox_row **rows)
{
	struct journal_inbox_row *v = NULL;
	int rc, n = 0, cap = 0;

	*rows = NULL;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_inbox_row *r;

		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			v = xrealloc(v, (size_t)cap * sizeof(*v));
		}
		r = &v[n++];
		memset(r, 0, sizeof(*r));
		col_copy(st, 0, r->event_id, sizeof(r->event_id));
		r->topic = col_dup(st, 1);
		r->partition = sqlite3_column_int(st, 2);
		r->offset = sqlite3_column_int64(st, 3);
		col_copy(st, 4, r->type, sizeof(r->type));
		col_copy(st, 5, r->status, sizeof(r->status));
		r->received_at = sqlite3_column_int64(st, 6);
		r->traceparent = col_dup(st, 7);
		r->payload_len = (size_t)sqlite3_column_bytes(st, 8);
		r->payload = xmalloc(r->payload_len + 1);
		memcpy(r->payload, sqlite3_column_blob(st, 8), r->payload_len);
		r->payload[r->payload_len] = '\0';
	}
	rc = journal_step_done(st, rc);
	if (rc < 0) {
		journal_inbox_rows_free(v, n);
		return rc;
	}
	*rows = v;
	return n;
}

int
journal_inbox_unapplied(struct journal *j, const char *order_id,
    struct journal_inbox_row **rows)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_UNAPPLIED];

	journal_bind_text(st, 1, order_id);
	return journal_inbox_rows_read(st, rows);
}

int
journal_parked_get(struct journal *j, const char *order_id, const char *event_id,
    struct journal_inbox_row **row)
{
	sqlite3_stmt *st = j->stmt[JQ_PARKED_GET];

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, event_id);
	return journal_inbox_rows_read(st, row);
}

int
journal_parked_events(struct journal *j,
    int (*fn)(const char *order_id, const char *event_id, int32_t partition,
    int64_t received_at, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_PARKED_EVENTS];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2),
		    sqlite3_column_int64(st, 3), arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

void
journal_inbox_rows_free(struct journal_inbox_row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		free(rows[i].topic);
		free(rows[i].traceparent);
		free(rows[i].payload);
	}
	free(rows);
}

int
journal_stock_adjustments_unapplied(struct journal *j,
    int (*fn)(const char *adjustment_id, const char *sku, int64_t qty, void *arg),
    void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENTS_UNAPPLIED];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_int64(st, 2), arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

/* Finds "-- name: NAME" in text; returns the statement text after it (up to
 * the next name line) as a malloc'd string, or NULL. */
static char *
journal_named_sql(const char *text, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = text;

	while ((p = strstr(p, "-- name: ")) != NULL) {
		const char *n = p + 9, *eol = strchr(n, '\n'), *next;

		if (eol == NULL)
			return NULL;
		if ((size_t)(eol - n) == nlen && memcmp(n, name, nlen) == 0) {
			next = strstr(eol, "\n-- name: ");
			return next ? xstrndup(eol + 1, (size_t)(next - eol - 1)) :
			    xstrdup(eol + 1);
		}
		p = eol;
	}
	return NULL;
}

/* The index of column col of the row's report, or -1 (noted in *missing). */
static int
journal_row_index(const struct journal_row *r, const char *col)
{
	for (int i = 0; i < r->rep->ncols; i++)
		if (strcmp(r->rep->cols[i], col) == 0)
			return i;
	if (*r->missing == NULL) {
		*r->missing = col;
		log_error("journal", "sql/reports.sql: report %s has no column %s",
		    r->rep->name, col);
	}
	return -1;
}

enum journal_type
journal_row_type(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	if (i < 0)
		return JOURNAL_NULL;
	switch (sqlite3_column_type(r->st, i)) {
	case SQLITE_NULL:
		return JOURNAL_NULL;
	case SQLITE_INTEGER:
		return JOURNAL_INTEGER;
	default:
		return JOURNAL_TEXT;
	}
}

int64_t
journal_row_int(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	return i < 0 ? 0 : sqlite3_column_int64(r->st, i);
}

const char *
journal_row_text(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	return i < 0 ? NULL : (const char *)sqlite3_column_text(r->st, i);
}

int
journal_row_columns(const struct journal_row *r)
{
	return r->rep->ncols;
}

const char *
journal_row_column(const struct journal_row *r, int i)
{
	return i >= 0 && i < r->rep->ncols ? r->rep->cols[i] : NULL;
}

int
journal_report(struct journal *j, const char *name, const char *const *params,
    int nparams, int (*row)(const struct journal_row *r, void *arg), void *arg)
{
	struct journal_report_stmt *rep = NULL;
	const char *missing = NULL;
	struct journal_row r;
	sqlite3_stmt *st;
	int rc, n = 0;

	for (int i = 0; i < j->nreports; i++)
		if (strcmp(j->reports[i]->name, name) == 0)
			rep = j->reports[i];
	if (rep == NULL) {
		char *sql;
		const char *tail;
		int err;

		if (j->reports_sql == NULL &&
		    (err = util_read_data_file("sql/reports.sql", &j->reports_sql, NULL)) < 0)
			return err;
		sql = journal_named_sql(j->reports_sql, name);
		if (sql == NULL)
			return -ENOENT;
		/* A report of several statements (DDL) runs whole, once. */
		rc = sqlite3_prepare_v2(j->db, sql, -1, &st, &tail);
		if (rc == SQLITE_OK && tail != NULL && strspn(tail, " \t\r\n") != strlen(tail)) {
			sqlite3_finalize(st);
			rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
			free(sql);
			return rc == SQLITE_OK ? 0 : journal_err(rc);
		}
		free(sql);
		if (rc != SQLITE_OK)
			return journal_err(rc) ? journal_err(rc) : -EIO;
		j->reports = xrealloc(j->reports, (size_t)(j->nreports + 1) * sizeof(*j->reports));
		rep = j->reports[j->nreports++] = xcalloc(1, sizeof(*rep));
		rep->name = xstrdup(name);
		rep->st = st;
		/* Once per statement: the rows then find a name among these. */
		rep->ncols = sqlite3_column_count(st);
		rep->cols = xcalloc((size_t)rep->ncols + 1, sizeof(*rep->cols));
		for (int i = 0; i < rep->ncols; i++)
			rep->cols[i] = xstrdup(sqlite3_column_name(st, i) ?
			    sqlite3_column_name(st, i) : "");
	}
	st = rep->st;
	r = (struct journal_row){ .st = st, .rep = rep, .missing = &missing };
	for (int i = 0; i < nparams; i++)
		journal_bind_text(st, i + 1, params[i]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (row != NULL && row(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
		if (missing != NULL)
			break;
	}
	rc = journal_step_done(st, rc);
	if (missing != NULL)
		return -EINVAL;
	return rc < 0 ? rc : n;
}

int
journal_orders_live(struct journal *j, int64_t *new_count, int64_t *reserved)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDERS_LIVE];
	int rc;

	*new_count = *reserved = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);

		if (state != NULL && strcmp(state, "NEW") == 0)
			*new_count = sqlite3_column_int64(st, 1);
		else if (state != NULL && strcmp(state, "RESERVED") == 0)
			*reserved = sqlite3_column_int64(st, 1);
	}
	return journal_step_done(st, rc);
}

int
journal_outbox_backlog(struct journal *j, int64_t cap, int64_t *pending,
    int64_t *oldest_created, int64_t *dead)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_BACKLOG];
	int rc;

	*pending = *oldest_created = *dead = 0;
	sqlite3_bind_int64(st, 1, cap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int64(st, 0);
		*oldest_created = sqlite3_column_int64(st, 1);
		*dead = sqlite3_column_int64(st, 2);
		rc = sqlite3_step(st);
	}
	return journal_step_done(st, rc);
}

int
journal_stock_adjustment_latest_applied(struct journal *j, char *sku, size_t len)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_LATEST_APPLIED];
	int rc = sqlite3_step(st), found = rc == SQLITE_ROW;

	if (found)
		col_copy(st, 0, sku, len);
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : found;
}

int
journal_step_results(struct journal *j, int64_t first_id, int64_t last_id,
    const char *result, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_RESULTS];

	sqlite3_bind_int64(st, 1, first_id);
	sqlite3_bind_int64(st, 2, last_id);
	journal_bind_text(st, 3, result);
	sqlite3_bind_int64(st, 4, now);
	return journal_run(j, st);
}

int
journal_orders_with_unapplied_events(struct journal *j,
    int (*fn)(const char *order_id, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDERS_WITH_UNAPPLIED_EVENTS];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn((const char *)sqlite3_column_text(st, 0), arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

int
journal_outbox_max_id(struct journal *j, int64_t *id)
{
	*id = 0;
	return journal_scalar(j->stmt[JQ_OUTBOX_MAX_ID], id);
}

int
journal_outbox_published_range(struct journal *j, int64_t first, int64_t last, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_PUBLISHED_RANGE];

	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}
