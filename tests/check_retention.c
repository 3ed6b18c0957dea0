/* check_retention.c: retention deletes exactly the old applied inbox rows and old published outbox rows, in bounded batches, on a uv loop. */
#include "autoconfig.h"

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config.h"
#include "journal.h"
#include "retention.h"
#include "testutil.h"
#include "util.h"

#define HOUR_MS ((int64_t)3600 * 1000)

static const struct journal_options opts = { .synchronous_full = true };

struct fixture {
	char *path;
	struct journal *j;
	struct config *cf;
	uv_loop_t loop;
	struct retention *r;
	int64_t now;
};

static void
fixture_open(struct fixture *f)
{
	char *dir = tu_tmpdir(), *cause = NULL;
	int err;

	memset(f, 0, sizeof(*f));
	f->path = xasprintf("%s/journal.db", dir);
	free(dir);
	err = journal_open(&f->j, f->path, &opts, &cause);
	ck_assert_msg(err == 0, "journal_open: %d %s", err, cause ? cause : "");
	f->cf = config_new();
	f->now = util_now_ms();
	ck_assert_int_eq(uv_loop_init(&f->loop), 0);
}

static void
fixture_close(struct fixture *f)
{
	retention_close(f->r);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&f->loop), 0);
	journal_free(f->j);
	config_free(f->cf);
	free(f->path);
}

/*
 * Runs the loop until retention has ticked `ticks` times in all, and no
 * further: UV_RUN_NOWAIT runs due timers once per call, whereas
 * UV_RUN_ONCE may run a second tick that fell due while the first ran
 * (under valgrind a tick takes longer than RETENTION_BUSY_MS).
 */
static void
run_until_tick(struct fixture *f, uint64_t ticks)
{
	int64_t give_up = util_now_ms() + 30000;

	while (retention_stats(f->r)->ticks < ticks) {
		ck_assert_msg(util_now_ms() < give_up, "no retention tick %llu in 30 s",
		    (unsigned long long)ticks);
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (retention_stats(f->r)->ticks < ticks)
			uv_sleep(5);
	}
	ck_assert_uint_eq(retention_stats(f->r)->ticks, ticks);
}

/* A count from a second connection: what is really in the file. */
static int64_t
count(struct fixture *f, const char *where_sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	ck_assert_int_eq(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, where_sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", where_sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void
add_event(struct fixture *f, const char *prefix, int i, const char *status,
    int64_t received_at)
{
	char id[64];
	struct journal_event ev = {
		.event_id = id, .topic = "orders", .partition = 0, .offset = i,
		.type = "OrderCreated", .order_id = "o1", .status = status,
		.received_at = received_at, .payload = "{}", .payload_len = 2,
	};

	snprintf(id, sizeof(id), "%s-%d", prefix, i);
	ck_assert_int_eq(journal_inbox_add(f->j, &ev), 0);
}

/* An outbox row created at created_at, published at published_at (0: not). */
static void
add_output(struct fixture *f, const char *prefix, int i, int64_t created_at,
    int64_t published_at)
{
	char id[64];
	struct journal_outbox_row row = {
		.topic = "order-events", .key = "o1", .key_len = 2, .event_id = id,
		.order_id = "o1", .type = "OrderConfirmed", .payload = "{}",
		.payload_len = 2, .created_at = created_at,
	};

	snprintf(id, sizeof(id), "%s-%d", prefix, i);
	ck_assert_int_eq(journal_outbox_add(f->j, &row), 0);
	if (published_at != 0)
		ck_assert_int_eq(journal_outbox_published(f->j, row.id, published_at), 0);
}

/*
 * 1200 old applied or ignored events, old waiting and parked ones, young
 * ones, a step still in flight (its row stays: saga_steps are kept); 700 old published outputs,
 * old unpublished ones, one created long ago but published an hour ago,
 * young ones; and a row in every table retention must never touch.
 */
static void
fill(struct fixture *f)
{
	int64_t old = f->now - 200 * HOUR_MS, young = f->now - HOUR_MS, step;

	ck_assert_int_eq(journal_begin(f->j, "test"), 0);
	for (int i = 0; i < 1200; i++)
		add_event(f, "old", i, i % 2 ? "applied" : "ignored", old + i);
	for (int i = 0; i < 3; i++) {
		add_event(f, "old-waiting", i, "waiting", old + i);
		add_event(f, "old-parked", i, "parked", old + i);
	}
	ck_assert_int_eq(journal_step_add(f->j, "o1", "reserve", "sku-1", 1, "old-flying-0",
	    old, &step), 0);
	for (int i = 0; i < 10; i++)
		add_event(f, "young", i, "applied", young + i);

	for (int i = 0; i < 700; i++)
		add_output(f, "old", i, old + i, old + i + 5);
	for (int i = 0; i < 5; i++)
		add_output(f, "old-unpublished", i, old + 1000 + i, 0);
	add_output(f, "old-late", 0, old + 2000, young);
	for (int i = 0; i < 10; i++)
		add_output(f, "young", i, young + i, young + i + 5);

	ck_assert_int_eq(journal_deadline_set(f->j, "o1", old), 0);
	ck_assert_int_eq(journal_stock_adjustment_add(f->j, "adj-1", "sku-1", 5, old), 0);
	ck_assert_int_eq(journal_dlq_add(f->j, "orders", 0, 1, NULL, 0, "bad", "x", 1, old), 0);
	ck_assert_int_eq(journal_commit(f->j), 0);
}

static void
assert_kept_for_good(struct fixture *f)
{
	ck_assert_int_eq(count(f, "SELECT count(*) FROM saga_steps"), 1);
	ck_assert_int_eq(count(f, "SELECT count(*) FROM deadlines"), 1);
	ck_assert_int_eq(count(f, "SELECT count(*) FROM stock_adjustments"), 1);
	ck_assert_int_eq(count(f, "SELECT count(*) FROM dlq"), 1);
	ck_assert_int_eq(count(f, "SELECT count(*) FROM inbox WHERE status IN ('waiting', 'parked')"), 6);
	ck_assert_int_eq(count(f, "SELECT count(*) FROM outbox WHERE published_at IS NULL"), 5);
}

START_TEST(test_deletes_exactly_the_old_rows_in_batches)
{
	struct fixture f;
	const struct retention_stats *st;

	fixture_open(&f);
	fill(&f);
	ck_assert_int_eq(retention_new(&f.r, &f.loop, f.j, f.cf), 0);
	st = retention_stats(f.r);

	/* Tick 1: four transactions of at most 500 rows: the inbox in three
	 * (500, 500, 200), then a first window of the outbox (500). */
	run_until_tick(&f, 1);
	ck_assert_int_eq(st->last_tick_transactions, RETENTION_TXNS_PER_TICK);
	ck_assert_int_eq(st->last_tick_rows, 1700);
	ck_assert_uint_eq(st->inbox_deleted, 1200);
	ck_assert_uint_eq(st->outbox_deleted, 500);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox"), 6 + 10);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 216);

	/* Tick 2, 100 ms later: the rest of the outbox in one window. */
	run_until_tick(&f, 2);
	ck_assert_int_eq(st->last_tick_transactions, 1);
	ck_assert_int_eq(st->last_tick_rows, 200);
	ck_assert_uint_eq(st->outbox_deleted, 700);
	ck_assert_uint_eq(st->transactions, 5);
	ck_assert_uint_eq(st->errors, 0);

	/* Exactly the old applied / ignored events and old published outputs are gone. */
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox WHERE event_id LIKE 'old-%' "
	    "AND event_id NOT LIKE 'old-waiting-%' AND event_id NOT LIKE 'old-parked-%' "
	    "AND event_id != 'old-flying-0'"), 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox WHERE event_id LIKE 'young-%'"), 10);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox WHERE event_id LIKE 'old-%' "
	    "AND published_at IS NOT NULL AND event_id != 'old-late-0'"), 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox WHERE event_id = 'old-late-0'"), 1);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox WHERE event_id LIKE 'young-%'"), 10);
	assert_kept_for_good(&f);

	fixture_close(&f);
}
END_TEST

START_TEST(test_zero_keeps_and_sighup_applies)
{
	struct fixture f;
	const struct retention_stats *st;

	fixture_open(&f);
	f.cf->retention_inbox_max_age_hours = 0;
	f.cf->retention_outbox_max_age_hours = 0;
	fill(&f);
	ck_assert_int_eq(retention_new(&f.r, &f.loop, f.j, f.cf), 0);
	st = retention_stats(f.r);
	run_until_tick(&f, 1);
	ck_assert_int_eq(st->last_tick_transactions, 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox"), 1200 + 6 + 10);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 716);

	/* As SIGHUP does: the configuration changes in place, then reload. */
	f.cf->retention_inbox_max_age_hours = 24 * 7;
	f.cf->retention_batch = 100;
	retention_reload(f.r);
	run_until_tick(&f, 2);
	/* 100 rows a transaction now, four a tick. */
	ck_assert_int_eq(st->last_tick_transactions, 4);
	ck_assert_int_eq(st->last_tick_rows, 400);
	for (uint64_t t = 3; st->inbox_deleted < 1200; t++) {
		run_until_tick(&f, t);
		ck_assert_int_le(st->last_tick_rows, 400);
	}
	run_until_tick(&f, st->ticks + 1);
	ck_assert_uint_eq(st->inbox_deleted, 1200);
	ck_assert_uint_eq(st->outbox_deleted, 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 716);
	assert_kept_for_good(&f);
	fixture_close(&f);
}
END_TEST

START_TEST(test_young_journal_costs_one_short_look)
{
	struct fixture f;
	const struct retention_stats *st;
	int64_t young = util_now_ms() - HOUR_MS;

	fixture_open(&f);
	ck_assert_int_eq(journal_begin(f.j, "test"), 0);
	for (int i = 0; i < 3000; i++) {
		add_event(&f, "young", i, "applied", young + i);
		add_output(&f, "young", i, young + i, young + i + 1);
	}
	ck_assert_int_eq(journal_commit(f.j), 0);
	ck_assert_int_eq(retention_new(&f.r, &f.loop, f.j, f.cf), 0);
	st = retention_stats(f.r);
	run_until_tick(&f, 1);
	/* One transaction finds no old event, one window of the outbox finds a
	 * young row at once: the pass is over without reading the table. */
	ck_assert_int_eq(st->last_tick_transactions, 2);
	ck_assert_int_eq(st->last_tick_rows, 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox"), 3000);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 3000);
	fixture_close(&f);
}
END_TEST

static Suite *
retention_suite(void)
{
	Suite *s = suite_create("retention");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_deletes_exactly_the_old_rows_in_batches);
	tcase_add_test(tc, test_zero_keeps_and_sighup_applies);
	tcase_add_test(tc, test_young_journal_costs_one_short_look);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(retention_suite());
}
