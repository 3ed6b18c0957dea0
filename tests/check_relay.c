/* check_relay.c: unit tests of src/relay.c on a real journal with a producer of the test's own: the rewind after a failed delivery, a held journal, records after outputs, dead rows, tombstones (its bookkeeping alone: check_relay_window.c). */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "journal.h"
#include "kafka.h"
#include "relay.h"
#include "relay_int.h"
#include "testutil.h"
#include "util.h"

/* ---- relay.c on a real journal, with the test's producer ---- */

/*
 * The program is linked with -Wl,--wrap for kafka_producer_new,
 * kafka_produce, kafka_poll, kafka_flush and kafka_close: relay.c's calls
 * of them come here.  Nothing reaches a broker; what the relay produces is
 * recorded, and each delivery report is the test's to give (deliver()).
 */
int __wrap_kafka_producer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const struct kafka_producer_events *ev, char **cause);
int __wrap_kafka_produce(struct kafka *k, const struct kafka_message *m, const char **why);
void __wrap_kafka_poll(struct kafka *k);
int __wrap_kafka_flush(struct kafka *k, int timeout_ms);
void __wrap_kafka_close(struct kafka *k, int flush_ms);

/* One message the relay produced. */
struct sent {
	int64_t id;			/* its outbox row (the opaque) */
	char topic[64];
	int32_t partition;
	char key[64];
	char event_id[64];		/* its first header, which must be event_id */
	int nheaders;
	char header2[64];		/* "name=value" of the second header, if any */
	int64_t timestamp_ms;
	bool null_value;		/* a tombstone's */
};

#define MAX_SENT 64

static struct kafka_producer_events fake_ev;
static char fake_producer;		/* what the relay holds as its struct kafka */
static struct sent sent[MAX_SENT];
static int nsent;
/* kafka_produce refuses this row at once, as librdkafka does a message
 * larger than the producer's message.max.bytes (0: none). */
static int64_t refuse_id;

int
__wrap_kafka_producer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const struct kafka_producer_events *ev, char **cause)
{
	rd_kafka_conf_destroy(conf);
	fake_ev = *ev;
	*out = (struct kafka *)(void *)&fake_producer;
	return 0;
}

int
__wrap_kafka_produce(struct kafka *k, const struct kafka_message *m, const char **why)
{
	struct sent *s;

	ck_assert_ptr_eq(k, (struct kafka *)(void *)&fake_producer);
	if ((int64_t)(intptr_t)m->opaque == refuse_id) {
		*why = "Broker: Message size too large";
		return -EMSGSIZE;
	}
	ck_assert_int_lt(nsent, MAX_SENT);
	s = &sent[nsent++];
	memset(s, 0, sizeof(*s));
	s->id = (int64_t)(intptr_t)m->opaque;
	snprintf(s->topic, sizeof(s->topic), "%s", m->topic);
	s->partition = m->partition;
	snprintf(s->key, sizeof(s->key), "%.*s", (int)m->key_len, (const char *)m->key);
	ck_assert_int_ge(m->nheaders, 1);
	ck_assert_str_eq(m->headers[0].name, "event_id");
	snprintf(s->event_id, sizeof(s->event_id), "%.*s", (int)m->headers[0].len,
	    (const char *)m->headers[0].value);
	s->nheaders = m->nheaders;
	if (m->nheaders > 1)
		snprintf(s->header2, sizeof(s->header2), "%s=%.*s", m->headers[1].name,
		    (int)m->headers[1].len, (const char *)m->headers[1].value);
	s->timestamp_ms = m->timestamp_ms;
	s->null_value = m->value == NULL && m->len == 0;
	return 0;
}

void
__wrap_kafka_poll(struct kafka *k)
{
}

int
__wrap_kafka_flush(struct kafka *k, int timeout_ms)
{
	return 0;
}

void
__wrap_kafka_close(struct kafka *k, int flush_ms)
{
}

/* A relay over a journal in a temp dir, on a loop of its own. */
struct fix {
	uv_loop_t loop;
	char *dir, *path;
	struct config *cf;
	struct journal *j;
	struct relay *r;
};

static struct fix fx;

static void
fix_setup(void)
{
	/* A writer of the test's own makes the relay's marks fail at once
	 * (test_relay_stops_when_it_cannot_mark), not after 5 s. */
	static const struct journal_options jo = { .synchronous_full = false,
	    .busy_timeout_ms = 1 };
	char *cause = NULL;

	memset(&fx, 0, sizeof(fx));
	nsent = 0;
	refuse_id = 0;
	ck_assert_int_eq(uv_loop_init(&fx.loop), 0);
	fx.dir = tu_tmpdir();
	fx.path = xasprintf("%s/journal.db", fx.dir);
	fx.cf = config_new();
	ck_assert_msg(journal_open(&fx.j, fx.path, &jo, &cause) == 0, "%s", cause);
}

static void
fix_teardown(void)
{
	static const char *const files[] = { "journal.db", "journal.db-wal", "journal.db-shm" };

	if (fx.r != NULL)
		relay_close(fx.r, 0);
	uv_run(&fx.loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
	journal_free(fx.j);
	config_free(fx.cf);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(files); i++) {
		char *p = xasprintf("%s/%s", fx.dir, files[i]);

		unlink(p);
		free(p);
	}
	rmdir(fx.dir);
	free(fx.path);
	free(fx.dir);
}

/* What relay_acked_through() said when the relay last called the ack
 * callback (the engine's offsets_release). */
static int64_t acks_heard_through;

static void
ack_heard(void *arg)
{
	acks_heard_through = relay_acked_through(fx.r);
}

static void
start_relay(void)
{
	char *cause = NULL;

	ck_assert_msg(relay_new(&fx.r, &fx.loop, fx.j, fx.cf, &cause) == 0, "%s", cause);
	acks_heard_through = 0;
	relay_set_ack_cb(fx.r, ack_heard, NULL);
}

/* Adds an outbox row: an output for the order, or with record its
 * changelog record (type OrderState, to partition 0 of the state topic). */
static int64_t
add_row(const char *order_id, const char *type, bool record, const char *headers)
{
	char *event_id = xasprintf("%s-%s", order_id, type);
	struct journal_outbox_row row = {
		.topic = record ? "orderd.state" : "order-events", .key = order_id,
		.key_len = strlen(order_id), .event_id = event_id, .order_id = order_id,
		.type = !record ? type : strcmp(type, "tombstone") == 0 ? "OrderStateTombstone" :
		    "OrderState", .headers = headers ? headers : "{}",
		.payload = "{}", .payload_len = 2, .created_at = 1700000000000,
		.partitioned = record, .partition = 0,
	};

	ck_assert_int_eq(journal_begin(fx.j, "test"), 0);
	ck_assert_int_eq(journal_outbox_add(fx.j, &row), 0);
	ck_assert_int_eq(journal_commit(fx.j), 0);
	free(event_id);
	if (fx.r != NULL)
		relay_kick(fx.r);
	return row.id;
}

/* Runs the loop for ms milliseconds. */
static void
run_for(int ms)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;

	while (util_mono_us() < until) {
		uv_run(&fx.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/* Runs the loop until n messages were produced in all (within 5 s). */
static void
run_until_sent(int n)
{
	int64_t until = util_mono_us() + 5000000;

	while (nsent < n && util_mono_us() < until) {
		uv_run(&fx.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_msg(nsent == n, "%d messages produced, want %d", nsent, n);
}

/* The broker's answer for row id: acknowledged (err 0) or failed. */
static void
deliver(int64_t id, rd_kafka_resp_err_t err)
{
	struct kafka_delivery d = {
		.opaque = (void *)(intptr_t)id, .err = err, .errstr = rd_kafka_err2str(err),
		.topic = "order-events", .timestamp_ms = -1,
	};

	fake_ev.delivered(&d, fake_ev.arg);
}

/* Whether row id is marked published in the journal (through a connection
 * of the test's own). */
static bool
published(int64_t id)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool yes;

	ck_assert_int_eq(sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT published_at IS NOT NULL FROM outbox "
	    "WHERE id = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	yes = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return yes;
}

#define FAILED RD_KAFKA_RESP_ERR__MSG_TIMED_OUT

START_TEST(test_relay_sends_again_from_the_failed_row)
{
	int64_t id[6];

	for (int i = 0; i < 5; i++) {
		char oid[16];

		snprintf(oid, sizeof(oid), "o%d", i + 1);
		id[i] = add_row(oid, "OrderConfirmed", false, i == 0 ?
		    "{\"traceparent\":\"00-abc-def-01\"}" : NULL);
	}
	start_relay();
	run_until_sent(5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(sent[i].id, id[i]);
		ck_assert_int_eq(sent[i].partition, KAFKA_PARTITION_ANY);
		ck_assert_int_eq(sent[i].timestamp_ms, 1700000000000);
	}
	/* What the row says goes out as it is: topic, key, event_id, headers. */
	ck_assert_str_eq(sent[0].topic, "order-events");
	ck_assert_str_eq(sent[0].key, "o1");
	ck_assert_str_eq(sent[0].event_id, "o1-OrderConfirmed");
	ck_assert_int_eq(sent[0].nheaders, 2);
	ck_assert_str_eq(sent[0].header2, "traceparent=00-abc-def-01");
	ck_assert_int_eq(sent[1].nheaders, 1);
	ck_assert_int_eq(relay_snapshot(fx.r)->in_flight, 5);

	deliver(id[0], 0);
	deliver(id[1], FAILED);
	deliver(id[2], 0);
	deliver(id[3], 0);
	deliver(id[4], 0);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0]);
	ck_assert(!relay_idle(fx.r));
	/* The rows acknowledged are marked published, those after the failed
	 * one too (the broker has them); the failed one waits. */
	run_for(100);
	ck_assert(published(id[0]));
	ck_assert(!published(id[1]));
	ck_assert(published(id[2]) && published(id[3]) && published(id[4]));
	ck_assert_int_eq(relay_snapshot(fx.r)->errors, 1);
	ck_assert_int_eq(relay_snapshot(fx.r)->published, 4);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0]);
	ck_assert_int_eq(nsent, 5);	/* not again before RELAY_RETRY_MS */

	/* Produced again: the failed row alone, the same message. */
	run_until_sent(6);
	ck_assert_int_eq(sent[5].id, id[1]);
	ck_assert_str_eq(sent[5].event_id, "o2-OrderConfirmed");
	ck_assert_str_eq(sent[5].key, "o2");
	run_for(50);
	ck_assert_int_eq(nsent, 6);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0]);
	deliver(id[1], 0);
	run_for(50);
	ck_assert(published(id[1]));
	/* The rows after it were not read again (the broker had them), but
	 * the page that read the failed row again came back short: everything
	 * read is acknowledged through, so the offsets of the events behind
	 * rows 3..5 are not held back until some later row is read. */
	ck_assert_int_eq(relay_acked_through(fx.r), id[4]);
	ck_assert(relay_idle(fx.r));
	id[5] = add_row("o6", "OrderConfirmed", false, NULL);
	run_until_sent(7);
	ck_assert_int_eq(sent[6].id, id[5]);
	deliver(id[5], 0);
	ck_assert_int_eq(relay_acked_through(fx.r), id[5]);
	ck_assert_int_eq(relay_snapshot(fx.r)->produced, 7);
	ck_assert_int_eq(relay_snapshot(fx.r)->in_flight, 0);
}
END_TEST

START_TEST(test_relay_rewinds_only_when_nothing_is_in_flight)
{
	int64_t id[4];

	for (int i = 0; i < 4; i++) {
		char oid[16];

		snprintf(oid, sizeof(oid), "o%d", i + 1);
		id[i] = add_row(oid, "OrderCancelled", false, NULL);
	}
	start_relay();
	run_until_sent(4);
	deliver(id[0], FAILED);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0] - 1);
	/* Rows 2..4 are still on their way: nothing goes again meanwhile. */
	run_for(800);
	ck_assert_int_eq(nsent, 4);
	deliver(id[1], 0);
	deliver(id[2], FAILED);
	deliver(id[3], 0);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0] - 1);
	/* From the first failed row on, what is still unpublished, in order. */
	run_until_sent(6);
	ck_assert_int_eq(sent[4].id, id[0]);
	ck_assert_int_eq(sent[5].id, id[2]);
	run_for(50);
	ck_assert_int_eq(nsent, 6);
	deliver(id[2], 0);
	ck_assert_int_eq(relay_acked_through(fx.r), id[0] - 1);
	deliver(id[0], 0);
	/* Row 4, acknowledged before and not read again, is in too. */
	ck_assert_int_eq(relay_acked_through(fx.r), id[3]);
	run_for(50);
	for (int i = 0; i < 4; i++)
		ck_assert(published(id[i]));
	ck_assert_int_eq(relay_snapshot(fx.r)->errors, 2);
}
END_TEST

/*
 * Another writer (orderctl, a sqlite3 shell) holds the journal when the
 * relay marks what was acknowledged: the relay stops orderd (exit 1, the
 * one busy-journal policy), nothing is marked, and the next start sends
 * every unmarked row again, in order, under its deterministic event id.
 */
START_TEST(test_relay_stops_when_it_cannot_mark)
{
	int64_t id[3];
	sqlite3 *db;
	pid_t pid;
	int status;

	for (int i = 0; i < 3; i++) {
		char oid[16];

		snprintf(oid, sizeof(oid), "o%d", i + 1);
		id[i] = add_row(oid, "OrderConfirmed", false, NULL);
	}
	start_relay();
	run_until_sent(3);
	ck_assert_int_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	/* The child is this process's relay: it must exit, not retry. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		deliver(id[0], 0);
		deliver(id[1], 0);
		deliver(id[2], 0);
		run_for(500);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "the relay did not stop on a held journal (status %d)", status);
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	for (int i = 0; i < 3; i++)
		ck_assert(!published(id[i]));
	/* The next start: a new relay on the same journal. */
	relay_close(fx.r, 0);
	fx.r = NULL;
	nsent = 0;
	start_relay();
	run_until_sent(3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sent[i].id, id[i]);
	ck_assert_str_eq(sent[1].event_id, "o2-OrderConfirmed");
	for (int i = 0; i < 3; i++)
		deliver(id[i], 0);
	ck_assert_int_eq(relay_acked_through(fx.r), id[2]);
	run_for(200);
	for (int i = 0; i < 3; i++)
		ck_assert(published(id[i]));
}
END_TEST

START_TEST(test_relay_record_waits_for_a_failed_output)
{
	int64_t o1 = add_row("o1", "OrderConfirmed", false, NULL);
	int64_t o2 = add_row("o2", "OrderConfirmed", false, NULL);
	int64_t rec = add_row("o1", "state", true, NULL);
	int64_t o3 = add_row("o3", "OrderConfirmed", false, NULL);

	start_relay();
	/* The record waits for every output before it; the output after it
	 * goes. */
	run_until_sent(3);
	ck_assert_int_eq(sent[0].id, o1);
	ck_assert_int_eq(sent[1].id, o2);
	ck_assert_int_eq(sent[2].id, o3);
	ck_assert_int_eq(relay_acked_through(fx.r), o1 - 1);
	deliver(o1, 0);
	ck_assert_int_eq(nsent, 3);
	deliver(o2, FAILED);
	deliver(o3, 0);
	ck_assert_int_eq(nsent, 3);
	ck_assert_int_eq(relay_acked_through(fx.r), o1);
	/* Output 2 again; the record only once it is acknowledged. */
	run_until_sent(4);
	ck_assert_int_eq(sent[3].id, o2);
	run_for(50);
	ck_assert_int_eq(nsent, 4);
	deliver(o2, 0);
	ck_assert_int_eq(nsent, 5);
	ck_assert_int_eq(sent[4].id, rec);
	ck_assert_str_eq(sent[4].topic, "orderd.state");
	ck_assert_int_eq(sent[4].partition, 0);
	ck_assert_str_eq(sent[4].key, "o1");
	ck_assert_int_eq(relay_acked_through(fx.r), o2);
	deliver(rec, 0);
	/* Output 3, acknowledged before the rewind, is in too. */
	ck_assert_int_eq(relay_acked_through(fx.r), o3);
	run_for(50);
	ck_assert(published(o1) && published(o2) && published(rec) && published(o3));
}
END_TEST

/* ---- dead rows: refused for good, or failed too often ---- */

#define TOO_LARGE RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE

/* A column of outbox row id, as an integer (-1 for NULL) or text ("" for
 * NULL, in buf), through a connection of the test's own. */
static int64_t
row_int(int64_t id, const char *col)
{
	char *sql = xasprintf("SELECT coalesce(%s, -1) FROM outbox WHERE id = ?", col);
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	return v;
}

static const char *
row_text(int64_t id, const char *col, char *buf, size_t len)
{
	char *sql = xasprintf("SELECT coalesce(%s, '') FROM outbox WHERE id = ?", col);
	sqlite3 *db;
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	return buf;
}

/* What orderctl outbox retry ID and drop ID do: another process's
 * connection, a transaction of its own. */
static void
operator(int64_t id, bool drop)
{
	static const struct journal_options jo = { .synchronous_full = false,
	    .busy_timeout_ms = 1000 };
	struct journal *other = NULL;
	char *cause = NULL;

	ck_assert_msg(journal_open(&other, fx.path, &jo, &cause) == 0, "%s", cause);
	ck_assert_int_eq(journal_begin(other, "orderctl"), 0);
	ck_assert_int_eq(drop ? journal_outbox_drop(other, id, util_now_ms()) :
	    journal_outbox_retry(other, id, util_now_ms()), 1);
	ck_assert_int_eq(journal_commit(other), 0);
	journal_free(other);
}

/*
 * Rows 1 (order o1) and 2 (o2) produced together; the broker refuses row
 * 1 for good (too large).  In a batch with row 2, it is produced again
 * alone; refused again, it is dead.  Returns its id, row 2's in *o2.
 */
static int64_t
kill_row(int64_t *o2)
{
	char err[128];
	int64_t a = add_row("o1", "PaymentRequested", false, NULL);

	*o2 = add_row("o2", "PaymentRequested", false, NULL);
	start_relay();
	run_until_sent(2);
	deliver(a, TOO_LARGE);
	deliver(*o2, 0);
	/* Not dead yet: the batch may have been refused for row 2's sake. */
	ck_assert_int_eq(row_int(a, "dead_at"), -1);
	ck_assert_int_eq(row_int(a, "attempts"), 1);
	ck_assert_str_eq(row_text(a, "last_error", err, sizeof(err)),
	    rd_kafka_err2str(TOO_LARGE));
	ck_assert_int_eq(relay_acked_through(fx.r), a - 1);
	/* Alone this time: refused again, it dies. */
	run_until_sent(3);
	ck_assert_int_eq(sent[2].id, a);
	ck_assert_int_eq(relay_snapshot(fx.r)->in_flight, 1);
	deliver(a, TOO_LARGE);
	ck_assert_int_ne(row_int(a, "dead_at"), -1);
	ck_assert_int_eq(row_int(a, "attempts"), 2);
	ck_assert_int_eq(relay_snapshot(fx.r)->dead, 1);
	/* Nothing waits for it: the offsets of the events behind it go (once
	 * the page after it said row 2 was in before the rewind). */
	run_for(50);
	ck_assert_int_eq(relay_acked_through(fx.r), *o2);
	ck_assert_int_eq(acks_heard_through, *o2);
	run_for(600);
	ck_assert_int_eq(nsent, 3);	/* never produced again */
	ck_assert(published(*o2));
	return a;
}

/* The later rows of a dead row's order, its changelog record among them,
 * wait; other orders' rows go, and what is acknowledged through passes
 * the rows held back. */
static void
add_held(int64_t *o1b, int64_t *o1rec, int64_t *o3, int64_t *o2rec)
{
	int base = nsent;

	*o1b = add_row("o1", "OrderCancelled", false, NULL);
	*o1rec = add_row("o1", "state", true, NULL);
	*o3 = add_row("o3", "PaymentRequested", false, NULL);
	*o2rec = add_row("o2", "state", true, NULL);
	run_until_sent(base + 1);
	ck_assert_int_eq(sent[base].id, *o3);
	deliver(*o3, 0);
	ck_assert_int_eq(nsent, base + 2);
	ck_assert_int_eq(sent[base + 1].id, *o2rec);
	deliver(*o2rec, 0);
	run_for(100);
	ck_assert_int_eq(nsent, base + 2);
	ck_assert(!published(*o1b) && !published(*o1rec));
	ck_assert_int_eq(relay_acked_through(fx.r), *o2rec);
	ck_assert_int_eq(acks_heard_through, *o2rec);
	ck_assert(relay_idle(fx.r));
}

START_TEST(test_relay_refused_row_dies_and_its_order_waits)
{
	int64_t o2, o1b, o1rec, o3, o2rec;
	int64_t a = kill_row(&o2);

	add_held(&o1b, &o1rec, &o3, &o2rec);
	ck_assert(!published(a));
	/* After a restart too: the dead row and the rows behind it stay. */
	relay_close(fx.r, 0);
	fx.r = NULL;
	start_relay();
	run_for(200);
	ck_assert_int_eq(relay_acked_through(fx.r), o2rec);
	ck_assert_int_eq(nsent, 5);
}
END_TEST

START_TEST(test_relay_retried_row_is_published_then_its_order)
{
	int64_t o2, o1b, o1rec, o3, o2rec;
	int64_t a = kill_row(&o2);

	add_held(&o1b, &o1rec, &o3, &o2rec);
	operator(a, false);
	ck_assert_int_eq(row_int(a, "attempts"), 0);
	ck_assert_int_eq(row_int(a, "dead_at"), -1);
	/* The relay notices within RELAY_CHECK_MS: the row, then its order's
	 * output behind it; the record once both are in. */
	run_until_sent(7);
	ck_assert_int_eq(sent[5].id, a);
	ck_assert_str_eq(sent[5].event_id, "o1-PaymentRequested");
	ck_assert_int_eq(sent[6].id, o1b);
	ck_assert_int_lt(relay_acked_through(fx.r), a);
	deliver(a, 0);
	deliver(o1b, 0);
	run_until_sent(8);
	ck_assert_int_eq(sent[7].id, o1rec);
	deliver(o1rec, 0);
	ck_assert_int_eq(relay_acked_through(fx.r), o2rec);
	run_for(100);
	ck_assert(published(a) && published(o1b) && published(o1rec));
	ck_assert_int_eq(nsent, 8);
}
END_TEST

START_TEST(test_relay_dropped_row_lets_its_order_go)
{
	int64_t o2, o1b, o1rec, o3, o2rec;
	int64_t a = kill_row(&o2);

	add_held(&o1b, &o1rec, &o3, &o2rec);
	operator(a, true);
	run_until_sent(6);
	ck_assert_int_eq(sent[5].id, o1b);
	deliver(o1b, 0);
	run_until_sent(7);
	ck_assert_int_eq(sent[6].id, o1rec);
	deliver(o1rec, 0);
	run_for(100);
	ck_assert(published(o1b) && published(o1rec));
	/* Kept for the audit, never published. */
	ck_assert(!published(a));
	ck_assert_int_ne(row_int(a, "dropped_at"), -1);
	ck_assert_int_eq(nsent, 7);
}
END_TEST

START_TEST(test_relay_row_failing_max_attempts_dies)
{
	int64_t a, b;

	fx.cf->relay_max_attempts = 3;
	a = add_row("o1", "OrderConfirmed", false, NULL);
	start_relay();
	for (int i = 1; i <= 3; i++) {
		run_until_sent(i);
		ck_assert_int_eq(sent[i - 1].id, a);
		ck_assert_int_eq(row_int(a, "dead_at"), -1);
		deliver(a, FAILED);
		ck_assert_int_eq(row_int(a, "attempts"), i);
	}
	ck_assert_int_ne(row_int(a, "dead_at"), -1);
	ck_assert_int_eq(relay_snapshot(fx.r)->dead, 1);
	ck_assert_int_eq(relay_snapshot(fx.r)->errors, 3);
	ck_assert_int_eq(relay_acked_through(fx.r), a);
	b = add_row("o2", "OrderConfirmed", false, NULL);
	run_until_sent(4);
	ck_assert_int_eq(sent[3].id, b);
	run_for(700);
	ck_assert_int_eq(nsent, 4);
}
END_TEST

START_TEST(test_relay_row_produce_refuses_dies)
{
	int64_t a = add_row("o1", "OrderConfirmed", false, NULL);
	int64_t b = add_row("o2", "OrderConfirmed", false, NULL);
	int64_t c = add_row("o1", "OrderCancelled", false, NULL);
	char err[128];

	refuse_id = a;
	start_relay();
	run_until_sent(1);
	ck_assert_int_eq(sent[0].id, b);
	ck_assert_int_ne(row_int(a, "dead_at"), -1);
	ck_assert_str_eq(row_text(a, "last_error", err, sizeof(err)),
	    "Broker: Message size too large");
	deliver(b, 0);
	run_for(100);
	ck_assert_int_eq(nsent, 1);	/* c waits behind a */
	ck_assert_int_eq(relay_acked_through(fx.r), c);
}
END_TEST

/* Retention's changelog tombstone is a record: it waits for the outputs
 * before it, and goes with a null value, so that compaction drops the key. */
START_TEST(test_relay_tombstone_is_a_null_record)
{
	int64_t o1 = add_row("o1", "OrderConfirmed", false, NULL);
	int64_t ts = add_row("o1", "tombstone", true, NULL);

	start_relay();
	run_until_sent(1);
	ck_assert_int_eq(sent[0].id, o1);
	ck_assert(!sent[0].null_value);
	run_for(50);
	ck_assert_int_eq(nsent, 1);
	deliver(o1, 0);
	ck_assert_int_eq(nsent, 2);
	ck_assert_int_eq(sent[1].id, ts);
	ck_assert_str_eq(sent[1].topic, "orderd.state");
	ck_assert_int_eq(sent[1].partition, 0);
	ck_assert_str_eq(sent[1].key, "o1");
	ck_assert(sent[1].null_value);
	deliver(ts, 0);
	run_for(50);
	ck_assert(published(o1) && published(ts));
}
END_TEST

static Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *rel = tcase_create("rewind");

	tcase_add_checked_fixture(rel, fix_setup, fix_teardown);
	tcase_add_test(rel, test_relay_sends_again_from_the_failed_row);
	tcase_add_test(rel, test_relay_rewinds_only_when_nothing_is_in_flight);
	tcase_add_test(rel, test_relay_stops_when_it_cannot_mark);
	tcase_add_test(rel, test_relay_record_waits_for_a_failed_output);
	tcase_add_test(rel, test_relay_tombstone_is_a_null_record);
	tcase_add_test(rel, test_relay_refused_row_dies_and_its_order_waits);
	tcase_add_test(rel, test_relay_retried_row_is_published_then_its_order);
	tcase_add_test(rel, test_relay_dropped_row_lets_its_order_go);
	tcase_add_test(rel, test_relay_row_failing_max_attempts_dies);
	tcase_add_test(rel, test_relay_row_produce_refuses_dies);
	tcase_set_timeout(rel, 30);
	suite_add_tcase(s, rel);
	return s;
}

int
main(void)
{
	return tu_run(relay_suite());
}
