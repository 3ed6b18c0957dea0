/* check_retention.c: retention deletes exactly what is old enough (inbox and published outbox rows, ended orders whole, applied stock additions, dead letters), in bounded batches, on a uv loop, and every balance stays. */
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
	/* The inbox and the outbox only, unless a test says otherwise. */
	f->cf->retention_orders_max_age_hours = 0;
	f->cf->retention_adjustments_max_age_hours = 0;
	f->cf->retention_dlq_max_age_hours = 0;
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

	/* Tick 2, 100 ms later: the rest of the outbox in one window, then
	 * the pages the pass freed go back to the file system. */
	run_until_tick(&f, 2);
	ck_assert_int_eq(st->last_tick_transactions, 2);
	ck_assert_int_eq(st->last_tick_rows, 200);
	ck_assert_uint_eq(st->outbox_deleted, 700);
	ck_assert_uint_eq(st->transactions, 6);
	ck_assert_uint_eq(st->errors, 0);
	ck_assert_uint_gt(st->pages_given_back, 0);
	ck_assert_int_eq(count(&f, "PRAGMA freelist_count"), 0);

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

/* Runs SQL on a second connection, as another process would. */
static void
exec_sql(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	ck_assert_int_eq(sqlite3_open(f->path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err);
	sqlite3_close(db);
}

static int
ledger_row(void *arg, int n, char **v, char **names)
{
	char **out = arg, *prev = *out;

	(void)names;
	for (int i = 0; i < n; i++) {
		*out = xasprintf("%s%s%s", prev ? prev : "", i ? " " : "", v[i] ? v[i] : "-");
		free(prev);
		prev = *out;
	}
	*out = xasprintf("%s;", prev);
	free(prev);
	return 0;
}

/* sql/audit.sql's stock_ledger, every sku, as one string; and what
 * orderctl recover --rebuild-redis would write (restore_stock's added,
 * reserved, sold). */
static char *
ledger(struct fixture *f)
{
	char *path = xasprintf("%s/sql/audit.sql", util_datadir()), *audit = NULL, *out = NULL;
	char *err = NULL;
	sqlite3 *db;
	FILE *fp = fopen(path, "r");
	long len;

	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	audit = xcalloc(1, (size_t)len + 1);
	ck_assert_int_eq(fread(audit, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	ck_assert_int_eq(sqlite3_open(f->path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, audit, NULL, NULL, &err) == SQLITE_OK, "audit.sql: %s", err);
	ck_assert_msg(sqlite3_exec(db, "SELECT sku, added, pending, reserved, committed, released, "
	    "held, available, in_flight FROM stock_ledger ORDER BY sku", ledger_row, &out,
	    &err) == SQLITE_OK, "stock_ledger: %s", err);
	sqlite3_close(db);
	free(audit);
	free(path);
	return out;
}

struct restore_sums {
	char text[512];
};

static int
restore_row(const struct journal_row *r, void *arg)
{
	struct restore_sums *rs = arg;
	size_t len = strlen(rs->text);

	snprintf(rs->text + len, sizeof(rs->text) - len, "%s %lld %lld %lld;",
	    journal_row_text(r, "sku"), (long long)journal_row_int(r, "added"),
	    (long long)journal_row_int(r, "reserved"), (long long)journal_row_int(r, "sold"));
	return 0;
}

/*
 * Orders that ended long ago go whole (their steps, inbox rows and
 * deadline with them) and nothing else does: a young one, one with a step
 * in flight, one whose line is still held (drift), a live one.  Their
 * stock is folded per sku, so the stock ledger and a rebuild from the
 * journal say exactly what they said before; applied additions but the
 * latest go the same way; old dead letters go; an order of a partition
 * this instance owns gets a changelog tombstone.
 */
START_TEST(test_orders_go_whole_and_balances_stay)
{
	struct fixture f;
	const struct retention_stats *st;
	int32_t part = 0;
	int64_t epoch = 1, old, young;
	struct restore_sums before = { "" }, after = { "" };
	char *sql, *ledger_before, *ledger_after;

	fixture_open(&f);
	old = f.now - 400 * HOUR_MS;
	young = f.now - HOUR_MS;
	f.cf->retention_orders_max_age_hours = 300;
	f.cf->retention_adjustments_max_age_hours = 300;
	f.cf->retention_dlq_max_age_hours = 300;
	free(f.cf->topic_state);
	f.cf->topic_state = xstrdup("orderd.state");
	ck_assert_int_eq(journal_owned_set(f.j, &part, &epoch, 1), 0);
	sql = xasprintf(
	    "INSERT INTO orders (order_id, state, customer_id, amount_cents, currency, items, "
	    "  lines, created_event_id, created_at, updated_at, kafka_partition, epoch, version) "
	    "VALUES ('A', 'CONFIRMED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 0, 1, 3),"
	    " ('B', 'CANCELLED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 0, 1, 3),"
	    " ('C', 'REJECTED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 1, 1, 2),"
	    " ('D', 'CONFIRMED', 'c', 1, 'EUR', '[]', '', 'e', %2$lld, %2$lld, 0, 1, 3),"
	    " ('E', 'CANCELLED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 0, 1, 3),"
	    " ('F', 'CONFIRMED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 0, 1, 3),"
	    " ('G', 'RESERVED', 'c', 1, 'EUR', '[]', '', 'e', %1$lld, %1$lld, 0, 1, 2);"
	    "INSERT INTO saga_steps (order_id, kind, sku, qty, intent_at, result, done_at) VALUES"
	    " ('A', 'reserve', 'sku-1', 2, %1$lld, 'RESERVED', %1$lld),"
	    " ('A', 'reserve', 'sku-2', 1, %1$lld, 'RESERVED', %1$lld),"
	    " ('A', 'commit', 'sku-1', 2, %1$lld, 'COMMITTED', %1$lld),"
	    " ('A', 'commit', 'sku-2', 1, %1$lld, 'COMMITTED', %1$lld),"
	    " ('B', 'reserve', 'sku-1', 3, %1$lld, 'RESERVED', %1$lld),"
	    " ('B', 'release', 'sku-1', 3, %1$lld, 'RELEASED', %1$lld),"
	    " ('C', 'reserve', 'sku-2', 1, %1$lld, 'REJECTED', %1$lld),"
	    " ('D', 'reserve', 'sku-1', 1, %2$lld, 'RESERVED', %2$lld),"
	    " ('D', 'commit', 'sku-1', 1, %2$lld, 'COMMITTED', %2$lld),"
	    " ('E', 'reserve', 'sku-1', 4, %1$lld, 'RESERVED', %1$lld),"
	    " ('E', 'release', 'sku-1', 4, %1$lld, NULL, NULL),"
	    " ('F', 'reserve', 'sku-2', 5, %1$lld, 'RESERVED', %1$lld),"
	    " ('G', 'reserve', 'sku-1', 6, %1$lld, 'RESERVED', %1$lld);"
	    "INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset, type, order_id, "
	    "  status, received_at, payload) VALUES"
	    " ('a1', 'orders', 0, 1, 'OrderCreated', 'A', 'applied', %1$lld, '{}'),"
	    " ('a2', 'payments', 0, 2, 'PaymentSucceeded', 'A', 'applied', %2$lld, '{}'),"
	    " ('b1', 'orders', 0, 3, 'OrderCreated', 'B', 'applied', %1$lld, '{}'),"
	    " ('d1', 'orders', 0, 4, 'OrderCreated', 'D', 'applied', %2$lld, '{}');"
	    "INSERT INTO deadlines (order_id, due_at, fired_at) VALUES ('A', %1$lld, NULL),"
	    " ('B', %1$lld, %1$lld), ('G', %1$lld, NULL);"
	    "INSERT INTO stock_adjustments (adjustment_id, sku, qty, created_at, applied_at) VALUES"
	    " ('adj-1', 'sku-1', 100, %1$lld, %1$lld), ('adj-2', 'sku-2', 50, %1$lld, %1$lld),"
	    " ('adj-3', 'sku-1', 7, %1$lld, NULL);"
	    "INSERT INTO dlq (topic, kafka_partition, kafka_offset, error, payload, received_at)"
	    " VALUES ('orders', 0, 9, 'bad', 'x', %1$lld), ('orders', 0, 10, 'bad', 'y', %2$lld);",
	    (long long)old, (long long)young);
	exec_sql(&f, sql);
	free(sql);
	ledger_before = ledger(&f);
	ck_assert_int_ge(journal_report(f.j, "restore_stock", NULL, 0, restore_row, &before), 0);

	ck_assert_int_eq(retention_new(&f.r, &f.loop, f.j, f.cf), 0);
	st = retention_stats(f.r);
	/* One pass: orders, inbox, outbox, additions, dead letters, pages. */
	run_until_tick(&f, 1);
	for (uint64_t t = 2; st->last_tick_transactions == RETENTION_TXNS_PER_TICK; t++)
		run_until_tick(&f, t);
	ck_assert_uint_eq(st->orders_deleted, 3);
	ck_assert_uint_eq(st->adjustments_deleted, 1);
	ck_assert_uint_eq(st->dlq_deleted, 1);
	ck_assert_uint_eq(st->errors, 0);

	/* Whole orders, and only those. */
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM orders WHERE order_id IN "
	    "('D', 'E', 'F', 'G')"), 4);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM orders"), 4);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM saga_steps WHERE order_id IN "
	    "('A', 'B', 'C')"), 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM saga_steps"), 6);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox WHERE order_id IN ('A', 'B')"), 0);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM inbox WHERE order_id = 'D'"), 1);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM deadlines"), 1);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM stock_adjustments WHERE adjustment_id "
	    "IN ('adj-2', 'adj-3')"), 2);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM stock_adjustments"), 2);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM dlq WHERE kafka_offset = 10"), 1);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM dlq"), 1);

	/* Folded: sku-1 held 2 (A, sold) and 3 (B, released), 100 added. */
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM stock_folded WHERE sku = 'sku-1' AND "
	    "added = 100 AND reserved = 5 AND committed = 2 AND released = 3 AND orders = 2 AND "
	    "adjustments = 1"), 1);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM stock_folded WHERE sku = 'sku-2' AND "
	    "added = 0 AND reserved = 1 AND committed = 1 AND released = 0 AND orders = 2"), 1);
	/* Every balance the journal implies is what it was. */
	ledger_after = ledger(&f);
	ck_assert_str_eq(ledger_after, ledger_before);
	ck_assert_int_ge(journal_report(f.j, "restore_stock", NULL, 0, restore_row, &after), 0);
	ck_assert_str_eq(after.text, before.text);

	/* Tombstones for A and B (partition 0, owned), none for C (1). */
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox WHERE type = "
	    "'OrderStateTombstone' AND topic = 'orderd.state' AND kafka_partition = 0 AND "
	    "payload = '' AND order_id IN ('A', 'B') AND msg_key IN ('A', 'B')"), 2);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 2);

	/* A second pass finds nothing more. */
	retention_reload(f.r);
	run_until_tick(&f, st->ticks + 1);
	ck_assert_uint_eq(st->orders_deleted, 3);
	ck_assert_int_eq(count(&f, "SELECT count(*) FROM outbox"), 2);
	free(ledger_after);
	ledger_after = ledger(&f);
	ck_assert_str_eq(ledger_after, ledger_before);
	free(ledger_before);
	free(ledger_after);
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
	tcase_add_test(tc, test_orders_go_whole_and_balances_stay);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(retention_suite());
}
