/* check_journal.c: unit tests of the SQLite journal: dedupe, outbox order, atomicity, crash safety, versions. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "journal.h"
#include "testutil.h"
#include "util.h"

static const struct journal_options opts = { .synchronous_full = true };

static struct journal *
open_new(char **pathp)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir), *cause = NULL;
	struct journal *j = NULL;
	int err = journal_open(&j, path, &opts, &cause);

	ck_assert_msg(err == 0, "journal_open: %d %s", err, cause ? cause : "");
	free(dir);
	if (pathp != NULL)
		*pathp = path;
	else
		free(path);
	return j;
}

static int64_t
count_rows(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static struct journal_event
event(const char *id, int64_t offset)
{
	struct journal_event ev = {
		.event_id = id, .topic = "orders", .partition = 0, .offset = offset,
		.type = "OrderCreated", .order_id = "o1", .status = "applied",
		.received_at = 1000 + offset, .payload = "{\"x\":1}", .payload_len = 7,
	};
	return ev;
}

START_TEST(test_migrate_from_empty_file)
{
	static const char *const tables[] = { "inbox", "orders", "saga_steps",
	    "outbox", "deadlines", "stock_adjustments", "dlq" };
	char *path;
	struct journal *j = open_new(&path);

	ck_assert_int_eq(journal_version(j), JOURNAL_VERSION);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tables); i++) {
		char *sql = xasprintf("SELECT count(*) FROM sqlite_master "
		    "WHERE type = 'table' AND name = '%s'", tables[i]);

		ck_assert_msg(count_rows(path, sql) == 1, "table %s missing", tables[i]);
		free(sql);
	}
	ck_assert_int_eq(count_rows(path, "PRAGMA user_version"), JOURNAL_VERSION);
	journal_free(j);
	/* Opening it again migrates nothing and keeps the version. */
	char *cause = NULL;
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), 0);
	ck_assert_int_eq(journal_version(j), JOURNAL_VERSION);
	journal_free(j);
	free(path);
}
END_TEST

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
	    msg ? msg : "");
}

static int
exec_rc(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/*
 * A journal of version 2 with rows in the three rebuilt tables comes out of
 * migrate-3.sql with every row, rowid and index, and the same constraints,
 * now written without IN lists.
 */
START_TEST(test_migrate_2_to_3_keeps_rows_and_constraints)
{
	static const char *const indexes[] = { "inbox_unapplied", "inbox_received",
	    "orders_live", "saga_steps_order", "sqlite_autoindex_inbox_1",
	    "sqlite_autoindex_orders_1" };
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir), *cause = NULL;
	char *v1 = NULL, *v2 = NULL;
	struct journal *j = NULL;
	struct journal_event ev = event("e9", 9);
	sqlite3 *db;

	ck_assert_int_eq(util_read_data_file("sql/schema.sql", &v1, NULL), 0);
	ck_assert_int_eq(util_read_data_file("sql/migrate-2.sql", &v2, NULL), 0);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	exec_ok(db, v1);
	exec_ok(db, v2);
	exec_ok(db, "PRAGMA user_version = 2;"
	    "INSERT INTO inbox (rowid, event_id, topic, kafka_partition, kafka_offset, type,"
	    " order_id, status, received_at, payload) VALUES"
	    " (7, 'e1', 'orders', 1, 10, 'OrderCreated', 'o1', 'applied', 5, x'7b7d'),"
	    " (12, 'e2', 'payments', 1, 11, 'PaymentSucceeded', 'o2', 'parked', 6, x'7b7d');"
	    "INSERT INTO orders (rowid, order_id, state, customer_id, amount_cents, currency,"
	    " items, lines, created_event_id, created_at, updated_at, kafka_partition, epoch,"
	    " version) VALUES (3, 'o1', 'RESERVED', 'c1', 500, 'EUR', '[]', 'sku-a 2', 'e1',"
	    " 5, 6, 1, 4, 9);"
	    "INSERT INTO saga_steps (id, order_id, kind, sku, qty, event_id, intent_at, result,"
	    " done_at) VALUES (41, 'o1', 'reserve', 'sku-a', 2, 'e1', 5, 'RESERVED', 6),"
	    " (42, 'o1', 'commit', 'sku-a', 2, 'e1', 7, NULL, NULL);");
	sqlite3_close(db);

	ck_assert_msg(journal_open(&j, path, &opts, &cause) == 0, "open: %s", cause);
	ck_assert_int_eq(journal_version(j), JOURNAL_VERSION);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 2);
	ck_assert_int_eq(count_rows(path, "SELECT rowid FROM inbox WHERE event_id = 'e2'"), 12);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox WHERE rowid = 7 AND"
	    " order_id = 'o1' AND status = 'applied' AND kafka_offset = 10"), 1);
	ck_assert_int_eq(count_rows(path, "SELECT rowid FROM orders WHERE order_id = 'o1'"), 3);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM orders WHERE state = 'RESERVED'"
	    " AND kafka_partition = 1 AND epoch = 4 AND version = 9 AND lines = 'sku-a 2'"), 1);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM saga_steps WHERE id = 42 AND"
	    " kind = 'commit' AND result IS NULL"), 1);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM saga_steps WHERE id = 41 AND"
	    " result = 'RESERVED' AND done_at = 6"), 1);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(indexes); i++) {
		char *sql = xasprintf("SELECT count(*) FROM sqlite_master "
		    "WHERE type = 'index' AND name = '%s'", indexes[i]);

		ck_assert_msg(count_rows(path, sql) == 1, "index %s missing", indexes[i]);
		free(sql);
	}
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM sqlite_master WHERE"
	    " name LIKE '%_v3'"), 0);
	/* No CHECK with an IN list is left in the three tables... */
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	    " AND name IN ('inbox', 'orders', 'saga_steps') AND sql LIKE '%CHECK%IN (%'"), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM pragma_integrity_check"
	    " WHERE integrity_check = 'ok'"), 1);
	/* ... and the constraints still hold. */
	ev.status = "bogus";
	ck_assert_int_eq(journal_inbox_add(j, &ev), -EINVAL);
	journal_free(j);
	ck_assert_int_eq(exec_rc(path, "UPDATE orders SET state = 'SHIPPED'"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(exec_rc(path, "UPDATE saga_steps SET kind = 'refund'"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(exec_rc(path, "UPDATE inbox SET status = 'lost'"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(exec_rc(path, "UPDATE orders SET state = 'CANCELLED'"), SQLITE_OK);
	free(v1);
	free(v2);
	free(path);
	free(dir);
}
END_TEST

/* An order's changelog record is named by event_state_id of the (epoch,
 * version) its row has when the record is written; an update bumps the
 * version like journal_order_bump, and a record of the same version is the
 * same row (a duplicate), never a second one. */
START_TEST(test_changelog_record_ids_follow_the_version)
{
	struct journal_order o = { .state = "NEW", .customer_id = "c1", .amount_cents = 100,
	    .currency = "EUR", .items = "[]", .lines = "sku-a 1", .partition = 2 };
	int32_t part = 2;
	int64_t epoch = 7;
	char *path, id[37], *sql;
	struct journal *j = open_new(&path);

	ck_assert_int_eq(journal_begin(j, "test"), 0);
	ck_assert_int_eq(journal_owned_set(j, &part, &epoch, 1), 0);
	ck_assert_int_eq(journal_order_insert(j, "o1", &o, "e1", 10), 0);
	ck_assert_int_eq(journal_order_bump(j, "o1"), 0);
	ck_assert_int_eq(journal_changelog_add(j, "o1", "st", 11), 0);
	ck_assert_int_eq(journal_changelog_add(j, "o1", "st", 12), -EEXIST);
	ck_assert_int_eq(journal_order_update(j, "o1", "RESERVED", NULL, NULL, NULL, 13, NULL), 0);
	ck_assert_int_eq(journal_changelog_add(j, "o1", "st", 14), 0);
	epoch = 9;
	ck_assert_int_eq(journal_order_update(j, "o1", "CONFIRMED", "p1", NULL, NULL, 15, &epoch),
	    0);
	ck_assert_int_eq(journal_changelog_add(j, "o1", "st", 16), 0);
	ck_assert_int_eq(journal_order_update(j, "o2", "CONFIRMED", NULL, NULL, NULL, 15, NULL),
	    -ENOENT);
	ck_assert_int_eq(journal_order_bump(j, "o2"), -ENOENT);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_free(j);

	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM outbox WHERE type = 'OrderState'"),
	    3);
	/* epoch 7 from the partition owned at insert, version 1, 2, then 3 at epoch 9. */
	for (int v = 1; v <= 3; v++) {
		event_state_id(id, "o1", v < 3 ? 7 : 9, v);
		sql = xasprintf("SELECT count(*) FROM outbox WHERE event_id = '%s' AND"
		    " json_extract(payload, '$.version') = %d AND json_extract(payload, '$.epoch') = %d",
		    id, v, v < 3 ? 7 : 9);
		ck_assert_msg(count_rows(path, sql) == 1, "record of version %d: %s", v, sql);
		free(sql);
	}
	free(path);
}
END_TEST

START_TEST(test_refuses_newer_version)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir), *cause = NULL;
	struct journal *j = NULL;
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99;",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), -EPROTO);
	ck_assert_ptr_null(j);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "version 99 is newer") != NULL, "cause: %s", cause);
	/* The refused journal is left exactly as it was. */
	ck_assert_int_eq(count_rows(path, "PRAGMA user_version"), 99);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM sqlite_master WHERE name = 'inbox'"), 0);
	free(cause);
	free(path);
	free(dir);
}
END_TEST

/* The mode of path, or -1. */
static int
mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

START_TEST(test_files_are_private)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir), *cause = NULL;
	char *wal = xasprintf("%s-wal", path);
	struct journal *j = NULL;
	mode_t old = umask(022);

	/* Created 0600 whatever the umask; SQLite gives -wal the same mode. */
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), 0);
	ck_assert_int_eq(mode_of(path), 0600);
	ck_assert_int_eq(mode_of(wal), 0600);
	journal_free(j);
	j = NULL;
	/* Readable by everyone (an older orderd, a copy): made private. */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), 0);
	ck_assert_int_eq(mode_of(path), 0640);
	journal_free(j);
	j = NULL;
	/* Writable by others: refused, and left as it is. */
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), -EPERM);
	ck_assert_ptr_null(j);
	ck_assert_msg(strstr(cause, "other users may write it (mode 0666)") != NULL, "%s", cause);
	ck_assert_int_eq(mode_of(path), 0666);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(chmod(path, 0620), 0);
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), -EPERM);
	free(cause);
	umask(old);
	free(wal);
	free(path);
	free(dir);
}
END_TEST

START_TEST(test_refuses_garbage_file)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir), *cause = NULL;
	struct journal *j = NULL;
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not an sqlite database\n", f);
	fclose(f);
	ck_assert_int_lt(journal_open(&j, path, &opts, &cause), 0);
	ck_assert_ptr_null(j);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, path) != NULL, "cause names the file: %s", cause);
	free(cause);
	free(path);
	free(dir);
}
END_TEST

START_TEST(test_inbox_duplicate_changes_nothing)
{
	char *path;
	struct journal *j = open_new(&path);
	struct journal_event ev = event("e1", 5), again = event("e1", 9);

	ck_assert_int_eq(journal_inbox_add(j, &ev), 0);
	again.payload = "{\"other\":2}";
	again.payload_len = 11;
	ck_assert_int_eq(journal_inbox_add(j, &again), -EEXIST);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 1);
	ck_assert_int_eq(count_rows(path, "SELECT kafka_offset FROM inbox WHERE event_id = 'e1'"), 5);
	ck_assert_int_eq(count_rows(path, "SELECT length(payload) FROM inbox"), 7);
	/* A duplicate inside a transaction leaves the rest of the batch intact. */
	ck_assert_int_eq(journal_begin(j, "test"), 0);
	struct journal_event e2 = event("e2", 6), e3 = event("e3", 7);
	ck_assert_int_eq(journal_inbox_add(j, &e2), 0);
	ck_assert_int_eq(journal_inbox_add(j, &ev), -EEXIST);
	ck_assert_int_eq(journal_inbox_add(j, &e3), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 3);
	journal_free(j);
	free(path);
}
END_TEST

START_TEST(test_inbox_rejects_bad_status)
{
	struct journal *j = open_new(NULL);
	struct journal_event ev = event("e1", 1);

	ev.status = "bogus";
	ck_assert_int_eq(journal_inbox_add(j, &ev), -EINVAL);
	journal_free(j);
}
END_TEST

struct collect {
	int64_t ids[16];
	char events[16][16];
	int n;
	int stop_after;
};

static int
collect_row(const struct journal_outbox_row *row, void *arg)
{
	struct collect *c = arg;

	c->ids[c->n] = row->id;
	snprintf(c->events[c->n], sizeof(c->events[0]), "%s", row->event_id);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static void
outbox_add(struct journal *j, const char *event_id, int expect)
{
	struct journal_outbox_row row = {
		.topic = "order-events", .key = "o1", .key_len = 2,
		.event_id = event_id, .order_id = "o1", .type = "OrderConfirmed",
		.headers = "{\"event_id\":\"x\"}", .payload = "{}", .payload_len = 2,
		.created_at = 42,
	};

	ck_assert_int_eq(journal_outbox_add(j, &row), expect);
	if (expect == 0)
		ck_assert_int_gt(row.id, 0);
}

START_TEST(test_outbox_in_id_order)
{
	char *path;
	struct journal *j = open_new(&path);
	struct collect c = { .n = 0 };
	int64_t pending, published, oldest, dead;

	outbox_add(j, "b", 0);
	outbox_add(j, "a", 0);
	outbox_add(j, "d", 0);
	outbox_add(j, "c", 0);
	outbox_add(j, "a", -EEXIST);	/* a deterministic id written twice */
	ck_assert_int_eq(journal_outbox_pending(j, 0, 100, true, collect_row, &c), 4);
	ck_assert_str_eq(c.events[0], "b");
	ck_assert_str_eq(c.events[1], "a");
	ck_assert_str_eq(c.events[2], "d");
	ck_assert_str_eq(c.events[3], "c");
	for (int i = 1; i < c.n; i++)
		ck_assert_int_lt(c.ids[i - 1], c.ids[i]);

	ck_assert_int_eq(journal_outbox_published(j, c.ids[1], 100), 0);
	ck_assert_int_eq(journal_outbox_failed(j, c.ids[0], "broker down", false, 10, 50, NULL), 0);
	struct collect after = { .n = 0 };
	ck_assert_int_eq(journal_outbox_pending(j, 0, 100, true, collect_row, &after), 3);
	ck_assert_str_eq(after.events[0], "b");
	ck_assert_str_eq(after.events[1], "d");
	ck_assert_str_eq(after.events[2], "c");
	/* The cursor and the limit. */
	struct collect tail = { .n = 0 };
	ck_assert_int_eq(journal_outbox_pending(j, c.ids[2], 1, true, collect_row, &tail), 1);
	ck_assert_str_eq(tail.events[0], "c");
	struct collect stop = { .n = 0, .stop_after = 1 };
	ck_assert_int_eq(journal_outbox_pending(j, 0, 100, true, collect_row, &stop), 1);

	ck_assert_int_eq(journal_outbox_stats(j, &pending, &published, &oldest, &dead), 0);
	ck_assert_int_eq(dead, 0);
	ck_assert_int_eq(pending, 3);
	ck_assert_int_eq(published, 1);
	ck_assert_int_eq(oldest, 42);
	ck_assert_int_eq(count_rows(path, "SELECT attempts FROM outbox WHERE event_id = 'b'"), 1);
	/* Publishing twice (a second delivery report) changes nothing. */
	ck_assert_int_eq(journal_outbox_published(j, c.ids[1], 200), 0);
	ck_assert_int_eq(count_rows(path, "SELECT published_at FROM outbox WHERE event_id = 'a'"), 100);
	journal_free(j);
	free(path);
}
END_TEST

START_TEST(test_batch_is_atomic)
{
	char *path;
	struct journal *j = open_new(&path);
	struct journal_event e1 = event("k1", 1), e2 = event("k2", 2);

	ck_assert_int_eq(journal_begin(j, "test"), 0);
	ck_assert_int_eq(journal_inbox_add(j, &e1), 0);
	outbox_add(j, "out1", 0);
	ck_assert_int_eq(journal_stock_adjustment_add(j, "adj1", "A", 10, 1), 0);
	ck_assert_int_eq(journal_inbox_add(j, &e2), 0);
	/* A failure mid-batch (here a bad quantity) makes the caller roll back. */
	ck_assert_int_eq(journal_stock_adjustment_add(j, "adj2", "A", 0, 1), -EINVAL);
	journal_rollback(j);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM outbox"), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM stock_adjustments"), 0);
	/* The journal is usable after the rollback. */
	ck_assert_int_eq(journal_begin(j, "test"), 0);
	ck_assert_int_eq(journal_inbox_add(j, &e1), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 1);
	journal_free(j);
	free(path);
}
END_TEST

START_TEST(test_uncommitted_batch_of_dead_process_is_gone)
{
	char *path;
	struct journal *j = open_new(&path);
	int fds[2];
	pid_t pid;
	char c;

	journal_free(j);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *cause;
		struct journal *cj;

		if (journal_open(&cj, path, &opts, &cause) != 0 || journal_begin(cj, "test") != 0)
			_exit(3);
		for (int i = 0; i < 50; i++) {
			char id[16];
			struct journal_event ev;

			snprintf(id, sizeof(id), "u%d", i);
			ev = event(id, i);
			if (journal_inbox_add(cj, &ev) != 0)
				_exit(4);
		}
		if (write(fds[1], "x", 1) != 1)
			_exit(5);
		pause();
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 0);
	free(path);
}
END_TEST

#define KILL_BATCH 200

START_TEST(test_sigkill_mid_write_keeps_committed_batches)
{
	char *path;
	struct journal *j = open_new(&path);
	int fds[2];
	pid_t pid;
	int acked = 0;
	uint32_t b;

	journal_free(j);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *cause;
		struct journal *cj;
		char payload[512];

		memset(payload, 'p', sizeof(payload));
		if (journal_open(&cj, path, &opts, &cause) != 0)
			_exit(3);
		for (uint32_t batch = 0; ; batch++) {
			if (journal_begin(cj, "test") != 0)
				_exit(4);
			for (int i = 0; i < KILL_BATCH; i++) {
				char id[32];
				struct journal_event ev;

				snprintf(id, sizeof(id), "b%u-%d", batch, i);
				ev = event(id, (int64_t)batch * KILL_BATCH + i);
				ev.payload = payload;
				ev.payload_len = sizeof(payload);
				if (journal_inbox_add(cj, &ev) != 0)
					_exit(5);
				if (i == KILL_BATCH / 2)
					outbox_add(cj, id, 0);
			}
			if (journal_commit(cj) != 0)
				_exit(6);
			/* Acknowledged only after the commit returned. */
			if (write(fds[1], &batch, sizeof(batch)) != sizeof(batch))
				_exit(7);
		}
	}
	close(fds[1]);
	/* Let it commit some batches, then kill it while it writes the next. */
	while (acked < 5 && read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked++;
	usleep(3000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked++;
	close(fds[0]);
	ck_assert_int_ge(acked, 5);

	char *cause = NULL;
	ck_assert_int_eq(journal_open(&j, path, &opts, &cause), 0);
	journal_free(j);
	int64_t n = count_rows(path, "SELECT count(*) FROM inbox");
	ck_assert_msg(n >= (int64_t)acked * KILL_BATCH, "%lld rows for %d acked batches",
	    (long long)n, acked);
	ck_assert_msg(n % KILL_BATCH == 0, "a partial batch survived: %lld rows", (long long)n);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM outbox") * KILL_BATCH, n);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM pragma_integrity_check "
	    "WHERE integrity_check != 'ok'"), 0);
	free(path);
}
END_TEST

START_TEST(test_reader_while_writer_holds_the_lock)
{
	char *path, *cause = NULL;
	struct journal *j = open_new(&path), *other = NULL;
	struct journal_event e1 = event("r1", 1);
	int64_t pending, published, oldest, dead;

	outbox_add(j, "before", 0);
	ck_assert_int_eq(journal_begin(j, "test"), 0);
	ck_assert_int_eq(journal_inbox_add(j, &e1), 0);
	/* orderctl reads while orderd is inside a transaction (WAL). */
	struct journal_options quick = { .synchronous_full = true, .busy_timeout_ms = 100 };
	ck_assert_int_eq(journal_open(&other, path, &quick, &cause), 0);
	ck_assert_int_eq(journal_outbox_stats(other, &pending, &published, &oldest, &dead), 0);
	ck_assert_int_eq(pending, 1);
	/* A second writer waits for busy_timeout, then gets -EBUSY, not corruption. */
	ck_assert_int_eq(journal_begin(other, "test"), -EBUSY);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(journal_begin(other, "test"), 0);
	ck_assert_int_eq(journal_commit(other), 0);
	journal_free(other);
	journal_free(j);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM pragma_journal_mode "
	    "WHERE journal_mode = 'wal'"), 1);
	free(path);
}
END_TEST

/* One connection, one writer at a time: a module's begin inside another's
 * transaction is refused, and the open one goes on untouched. */
START_TEST(test_single_writer_asserted)
{
	char *path;
	struct journal *j = open_new(&path);
	struct journal_event e1 = event("w1", 1), e2 = event("w2", 2);

	ck_assert_ptr_null(journal_tx_owner(j));
	ck_assert_int_eq(journal_begin(j, "engine"), 0);
	ck_assert_str_eq(journal_tx_owner(j), "engine");
	ck_assert_int_eq(journal_inbox_add(j, &e1), 0);
	ck_assert_int_eq(journal_begin(j, "relay"), -EDEADLK);
	ck_assert_int_eq(journal_begin_read(j, "retention"), -EDEADLK);
	ck_assert_int_eq(journal_begin(j, "engine"), -EDEADLK);
	ck_assert_str_eq(journal_tx_owner(j), "engine");
	/* The engine's transaction is still open and still its own. */
	ck_assert_int_eq(journal_inbox_add(j, &e2), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_ptr_null(journal_tx_owner(j));
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), 2);
	/* Free again: the relay may begin now, and a rollback frees it too. */
	ck_assert_int_eq(journal_begin(j, "relay"), 0);
	ck_assert_str_eq(journal_tx_owner(j), "relay");
	journal_rollback(j);
	ck_assert_ptr_null(journal_tx_owner(j));
	ck_assert_int_eq(journal_begin(j, "retention"), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_free(j);
	free(path);
}
END_TEST

/* What the row callbacks of test_report_rows_by_name saw. */
struct report_seen {
	struct journal *j;
	int rows, ncols, nested;
	int64_t offset, bytes;
	char error[32], col0[16];
	enum journal_type key_type;
	bool misspelt;		/* ask for a column the report does not have */
};

static int
report_row(const struct journal_row *r, void *arg)
{
	struct report_seen *s = arg;
	const char *error = journal_row_text(r, "error");

	s->rows++;
	/* A report prepared for the first time inside the callback of another
	 * (orderctl's changelog_current does it) leaves this row readable. */
	s->nested = journal_report(s->j, "skus", NULL, 0, NULL, NULL);
	s->ncols = journal_row_columns(r);
	snprintf(s->col0, sizeof(s->col0), "%s", journal_row_column(r, 0));
	s->offset = journal_row_int(r, "kafka_offset");
	s->bytes = journal_row_int(r, "bytes");
	snprintf(s->error, sizeof(s->error), "%s", error != NULL ? error : "(null)");
	s->key_type = journal_row_type(r, "msg_key");
	if (s->misspelt)
		ck_assert_int_eq(journal_row_int(r, "kafka_ofset"), 0);
	return 0;
}

/* Reports are read by column name, whatever their order in reports.sql. */
START_TEST(test_report_rows_by_name)
{
	struct journal *j = open_new(NULL);
	struct report_seen s = { .j = j };

	ck_assert_int_eq(journal_dlq_add(j, "orders", 2, 7, "k", 1, "not JSON", "xyz", 3, 1000), 0);
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, report_row, &s), 1);
	ck_assert_int_eq(s.rows, 1);
	ck_assert_int_eq(s.nested, 0);
	ck_assert_int_eq(s.ncols, 8);
	ck_assert_str_eq(s.col0, "id");
	ck_assert_int_eq(s.offset, 7);
	ck_assert_int_eq(s.bytes, 3);
	ck_assert_str_eq(s.error, "not JSON");
	ck_assert_int_eq(s.key_type, JOURNAL_TEXT);
	/* A name that is no column fails the report, and the report runs
	 * again afterwards. */
	s = (struct report_seen){ .j = j, .misspelt = true };
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, report_row, &s), -EINVAL);
	ck_assert_int_eq(s.offset, 7);
	s = (struct report_seen){ .j = j };
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, report_row, &s), 1);
	ck_assert_int_eq(journal_report(j, "no_such_report", NULL, 0, report_row, &s), -ENOENT);
	journal_free(j);
}
END_TEST

/* A read transaction sees one moment and keeps no writer waiting. */
START_TEST(test_read_transaction)
{
	char *path, *cause = NULL;
	struct journal *j = open_new(&path), *other = NULL;
	struct journal_options quick = { .synchronous_full = true, .busy_timeout_ms = 100 };
	struct report_seen s = { .j = j };

	ck_assert_int_eq(journal_dlq_add(j, "orders", 0, 1, NULL, 0, "one", "x", 1, 1000), 0);
	ck_assert_int_eq(journal_open(&other, path, &quick, &cause), 0);
	ck_assert_int_eq(journal_begin_read(j, "test"), 0);
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, report_row, &s), 1);
	ck_assert_int_eq(journal_begin(other, "test"), 0);
	ck_assert_int_eq(journal_dlq_add(other, "orders", 0, 2, NULL, 0, "two", "x", 1, 1000), 0);
	ck_assert_int_eq(journal_commit(other), 0);
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, NULL, NULL), 1);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(journal_report(j, "dlq", NULL, 0, NULL, NULL), 2);
	journal_free(other);
	journal_free(j);
	free(path);
}
END_TEST

/* The checkpointer thread copies the WAL back while the writer goes on, and
 * the WAL starts over instead of growing with everything written. */
START_TEST(test_checkpoint_thread_bounds_the_wal)
{
	static const struct journal_options ck = { .checkpoint_thread = true };
	char *dir = tu_tmpdir(), *path = xasprintf("%s/journal.db", dir);
	char *wal = xasprintf("%s-wal", path), *cause = NULL, id[32];
	size_t len = 8000;
	char *payload = xmalloc(len);
	struct journal *j = NULL;
	off_t wal_max = 0;
	struct stat st;
	int64_t rows = 0;

	memset(payload, 'x', len);
	ck_assert_int_eq(journal_open(&j, path, &ck, &cause), 0);
	/* 120 MiB of rows, four times what one checkpoint interval holds. */
	for (int t = 0; t < 60; t++) {
		ck_assert_int_eq(journal_begin(j, "test"), 0);
		for (int i = 0; i < 256; i++, rows++) {
			struct journal_event ev = event(id, rows);

			snprintf(id, sizeof(id), "e%lld", (long long)rows);
			ev.payload = payload;
			ev.payload_len = len;
			ck_assert_int_eq(journal_inbox_add(j, &ev), 0);
		}
		ck_assert_int_eq(journal_commit(j), 0);
		if (stat(wal, &st) == 0 && st.st_size > wal_max)
			wal_max = st.st_size;
		usleep(2000);
	}
	ck_assert_int_ge(journal_checkpoints(j), 1);
	/* Copied back while open: the database file holds most rows already. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 32 << 20);
	ck_assert_msg(wal_max < 80 << 20, "the WAL grew to %lld bytes", (long long)wal_max);
	journal_free(j);
	/* Closed cleanly: everything is in the database file. */
	ck_assert_int_ne(stat(wal, &st), 0);
	ck_assert_int_eq(count_rows(path, "SELECT count(*) FROM inbox"), rows);
	free(payload);
	free(wal);
	free(path);
	free(dir);
}
END_TEST

static Suite *
journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_migrate_from_empty_file);
	tcase_add_test(tc, test_migrate_2_to_3_keeps_rows_and_constraints);
	tcase_add_test(tc, test_changelog_record_ids_follow_the_version);
	tcase_add_test(tc, test_refuses_newer_version);
	tcase_add_test(tc, test_refuses_garbage_file);
	tcase_add_test(tc, test_files_are_private);
	tcase_add_test(tc, test_inbox_duplicate_changes_nothing);
	tcase_add_test(tc, test_inbox_rejects_bad_status);
	tcase_add_test(tc, test_outbox_in_id_order);
	tcase_add_test(tc, test_batch_is_atomic);
	tcase_add_test(tc, test_uncommitted_batch_of_dead_process_is_gone);
	tcase_add_test(tc, test_sigkill_mid_write_keeps_committed_batches);
	tcase_add_test(tc, test_reader_while_writer_holds_the_lock);
	tcase_add_test(tc, test_single_writer_asserted);
	tcase_add_test(tc, test_report_rows_by_name);
	tcase_add_test(tc, test_read_transaction);
	tcase_add_test(tc, test_checkpoint_thread_bounds_the_wal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(journal_suite());
}
