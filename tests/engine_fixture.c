/* engine_fixture.c: a struct engine with a real journal and no servers, for the unit tests of the engine's files. */
#include "autoconfig.h"

#include <check.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uthash.h>

#include "config.h"
#include "engine_fixture.h"
#include "journal.h"
/* The fixture reads the journal with SQL of its own, below the API. */
#include "journal_int.h"
#include "testutil.h"
#include "util.h"

/* The journal's directory, removed by ef_free (one engine per test). */
static char *ef_dir;

struct engine *
ef_new(void)
{
	static const struct journal_options jo = { .synchronous_full = false };
	struct engine *e = xcalloc(1, sizeof(*e));
	char *path, *cause = NULL;
	int err;

	ef_dir = tu_tmpdir();
	path = xasprintf("%s/journal.db", ef_dir);
	e->loop = xmalloc(sizeof(*e->loop));
	ck_assert_int_eq(uv_loop_init(e->loop), 0);
	e->cf = config_new();
	err = journal_open(&e->j, path, &jo, &cause);
	ck_assert_msg(err == 0, "journal_open: %d %s", err, cause ? cause : "");
	free(path);
	e->settle_tail = &e->settle_head;
	e->send_tail = &e->send_head;
	uv_timer_init(e->loop, &e->linger_timer);
	uv_timer_init(e->loop, &e->retry_timer);
	uv_timer_init(e->loop, &e->check_timer);
	e->linger_timer.data = e->retry_timer.data = e->check_timer.data = e;
	return e;
}

void
ef_free(struct engine *e)
{
	static const char *const files[] = { "journal.db", "journal.db-wal", "journal.db-shm" };

	uv_close((uv_handle_t *)&e->linger_timer, NULL);
	uv_close((uv_handle_t *)&e->retry_timer, NULL);
	uv_close((uv_handle_t *)&e->check_timer, NULL);
	uv_run(e->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(e->loop), 0);
	free(e->loop);
	steps_free(e);
	parked_free(e);
	engine_waiters_free(e);
	offsets_free(e);
	ownership_free(e);
	journal_free(e->j);
	config_free(e->cf);
	free(e);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(files); i++) {
		char *p = xasprintf("%s/%s", ef_dir, files[i]);

		unlink(p);
		free(p);
	}
	rmdir(ef_dir);
	free(ef_dir);
	ef_dir = NULL;
}

void
ef_own(struct engine *e, const int32_t *parts, const int64_t *epochs, int n)
{
	free(e->owned);
	free(e->epochs);
	e->owned = xcalloc((size_t)n + 1, sizeof(*e->owned));
	e->epochs = xcalloc((size_t)n + 1, sizeof(*e->epochs));
	memcpy(e->owned, parts, (size_t)n * sizeof(*parts));
	memcpy(e->epochs, epochs, (size_t)n * sizeof(*epochs));
	e->nowned = n;
	engine_begin(e);
	ck_assert_int_eq(journal_owned_set(e->j, parts, epochs, n), 0);
	engine_commit(e);
}

void
ef_order(struct engine *e, const char *order_id, int32_t partition)
{
	struct journal_order o = { .state = "NEW", .customer_id = "c-1", .amount_cents = 100,
	    .currency = "EUR", .items = "[{\"sku\":\"sku-1\",\"qty\":1}]", .lines = "sku-1 1",
	    .partition = partition };
	char *cause = xasprintf("created-%s", order_id);

	ck_assert_int_eq(journal_order_insert(e->j, order_id, &o, cause, e->now), 0);
	free(cause);
}

void
ef_fly(struct engine *e, const char *order_id)
{
	struct order_ctx oc;

	memset(&oc, 0, sizeof(oc));
	snprintf(oc.order_id, sizeof(oc.order_id), "%s", order_id);
	ck_assert(!steps_in_flight(e, order_id));
	steps_flight_new(e, &oc, SAGA_STEP_RESERVE, 1, NULL);
	ck_assert(steps_in_flight(e, order_id));
}

void
ef_land(struct engine *e, const char *order_id)
{
	struct flight *f;

	HASH_FIND_STR(e->flights, order_id, f);
	ck_assert_msg(f != NULL, "%s is not in flight", order_id);
	HASH_DEL(e->flights, f);
	steps_flight_free(e, f);
}

int64_t
ef_output(struct engine *e, const char *order_id, const char *type)
{
	char *event_id = xasprintf("%s-%s", order_id, type);
	struct journal_outbox_row row = {
		.topic = "order-events", .key = order_id, .key_len = strlen(order_id),
		.event_id = event_id, .order_id = order_id, .type = type, .headers = "{}",
		.payload = "{}", .payload_len = 2, .created_at = e->now,
	};

	ck_assert_int_eq(journal_outbox_add(e->j, &row), 0);
	e->outbox_added = true;
	free(event_id);
	return row.id;
}

int64_t
ef_sql(struct engine *e, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	ck_assert_msg(sqlite3_prepare_v2(e->j->db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(e->j->db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int64_t
ef_sqlf(struct engine *e, const char *fmt, ...)
{
	va_list ap;
	char *sql;
	int64_t n;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&sql, fmt, ap), 0);
	va_end(ap);
	n = ef_sql(e, sql);
	free(sql);
	return n;
}
