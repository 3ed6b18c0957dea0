/* check_kafka.c: librdkafka against the real broker: create a topic, produce idempotently, consume back in a group; the relay's order of changelog records. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "config.h"
#include "journal.h"
#include "kafka.h"
#include "relay.h"
#include "testutil.h"
#include "util.h"

#define NMSG 500

static rd_kafka_conf_t *
conf_new(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
	    tu_env("ORDERD_TEST_BOOTSTRAP"), err, sizeof(err)), RD_KAFKA_CONF_OK);
	return conf;
}

static void
conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];

	ck_assert_msg(rd_kafka_conf_set(conf, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK,
	    "%s=%s: %s", k, v, err);
}

/* Creates a topic with the admin API and waits for the result. */
static void
create_topic(rd_kafka_t *rk, const char *name, int partitions)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof(err));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **tr;
	size_t n;

	ck_assert_ptr_nonnull(nt);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "CreateTopics timed out");
	res = rd_kafka_event_CreateTopics_result(ev);
	ck_assert_ptr_nonnull(res);
	tr = rd_kafka_CreateTopics_result_topics(res, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_msg(rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR,
	    "create %s: %s", name, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
}

static int delivered_ok, delivered_err;

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
		delivered_err++;
	else
		delivered_ok++;
}

START_TEST(test_produce_then_consume_in_group)
{
	char *topic = tu_unique("check-kafka"), *group = tu_unique("grp"), err[256];
	rd_kafka_conf_t *conf = conf_new();
	rd_kafka_t *p, *c;
	int seen[NMSG] = { 0 }, got = 0, with_header = 0;
	int64_t deadline;

	conf_set(conf, "enable.idempotence", "true");
	conf_set(conf, "acks", "all");
	conf_set(conf, "linger.ms", "5");
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	create_topic(p, topic, 3);

	delivered_ok = delivered_err = 0;
	for (int i = 0; i < NMSG; i++) {
		char key[32], val[64];
		rd_kafka_resp_err_t e;

		snprintf(key, sizeof(key), "order-%d", i % 17);
		snprintf(val, sizeof(val), "{\"n\":%d}", i);
		e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(val, strlen(val)),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_HEADER("event_id", key, (ssize_t)strlen(key)), RD_KAFKA_V_END);
		ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
		rd_kafka_poll(p, 0);
	}
	ck_assert_int_eq(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(delivered_ok, NMSG);
	ck_assert_int_eq(delivered_err, 0);
	rd_kafka_destroy(p);

	conf = conf_new();
	conf_set(conf, "group.id", group);
	conf_set(conf, "auto.offset.reset", "earliest");
	conf_set(conf, "enable.auto.offset.store", "false");
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	rd_kafka_poll_set_consumer(c);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	ck_assert_int_eq(rd_kafka_subscribe(c, sub), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(sub);
	deadline = util_mono_us() + 60 * 1000000LL;
	while (got < NMSG && util_mono_us() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
		rd_kafka_headers_t *hdrs;
		const void *hv;
		size_t hlen;
		int n;

		if (m == NULL)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		ck_assert_int_eq(sscanf((const char *)m->payload, "{\"n\":%d}", &n), 1);
		ck_assert_int_ge(n, 0);
		ck_assert_int_lt(n, NMSG);
		ck_assert_msg(seen[n] == 0, "message %d consumed twice", n);
		seen[n] = 1;
		got++;
		if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    rd_kafka_header_get_last(hdrs, "event_id", &hv, &hlen) == 0 &&
		    hlen == m->key_len && memcmp(hv, m->key, hlen) == 0)
			with_header++;
		/* Offsets are stored by hand, as orderd does after its journal commit. */
		rd_kafka_topic_partition_list_t *off = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(off, topic, m->partition)->offset = m->offset + 1;
		ck_assert_int_eq(rd_kafka_offsets_store(c, off), RD_KAFKA_RESP_ERR_NO_ERROR);
		rd_kafka_topic_partition_list_destroy(off);
		rd_kafka_message_destroy(m);
	}
	ck_assert_int_eq(got, NMSG);
	ck_assert_int_eq(with_header, NMSG);
	ck_assert_int_eq(rd_kafka_commit(c, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	free(topic);
	free(group);
}
END_TEST

START_TEST(test_produce_to_missing_topic_fails)
{
	char *topic = tu_unique("absent"), err[256];
	rd_kafka_conf_t *conf = conf_new();
	rd_kafka_t *p;

	conf_set(conf, "message.timeout.ms", "3000");
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_ptr_nonnull(p);
	delivered_ok = delivered_err = 0;
	ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
	    RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_END), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_flush(p, 10000);
	/* The broker does not auto-create topics: the delivery report says so. */
	ck_assert_int_eq(delivered_ok, 0);
	ck_assert_int_eq(delivered_err, 1);
	rd_kafka_destroy(p);
	free(topic);
}
END_TEST

/* Messages on partition 0 of topic, read from the beginning for ms. */
static int
count_messages(const char *topic, int ms)
{
	rd_kafka_conf_t *conf = conf_new();
	rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
	int64_t until = util_mono_us() + (int64_t)ms * 1000;
	char err[256], *group = tu_unique("count");
	rd_kafka_t *c;
	int n = 0;

	conf_set(conf, "group.id", group);
	c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(c, tp), RD_KAFKA_RESP_ERR_NO_ERROR);
	while (util_mono_us() < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);

		if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
			n++;
		if (m != NULL)
			rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(tp);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	free(group);
	return n;
}

static void
tick_cb(uv_timer_t *t)
{
	(void)t;	/* only makes UV_RUN_ONCE return */
}

/* Runs the loop for ms, or until the relay is idle when idle is set. */
static void
spin(uv_loop_t *loop, struct relay *r, int ms, bool idle)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;

	while (util_mono_us() < until && !(idle && relay_idle(r)))
		uv_run(loop, UV_RUN_ONCE);
}

/*
 * A changelog record (OrderState) tells a new owner its order's outputs are
 * out: the relay must not produce it before every row ahead of it is
 * acknowledged.  Here the row ahead goes to a topic that does not exist
 * yet, so its acknowledgement waits for the topic.
 */
START_TEST(test_relay_holds_changelog_records_until_outputs_are_acked)
{
	char *dir = tu_tmpdir(), *cfpath = xasprintf("%s/none.conf", dir);
	char *jpath = xasprintf("%s/journal.db", dir), *cause = NULL;
	char *missing = tu_unique("later"), *state = tu_unique("state"), err[256];
	char *ov[2];
	struct journal_options jo = { .synchronous_full = false };
	struct journal_outbox_row a = {
		.topic = missing, .key = "o1", .key_len = 2, .event_id = "e-a",
		.order_id = "o1", .type = "OrderConfirmed", .headers = "{}",
		.payload = "{}", .payload_len = 2, .created_at = 1,
	}, b = {
		.topic = state, .key = "o1", .key_len = 2, .event_id = "e-b",
		.order_id = "o1", .type = "OrderState", .headers = "{}",
		.payload = "{}", .payload_len = 2, .created_at = 1,
		.partitioned = true, .partition = 0,
	};
	rd_kafka_conf_t *conf = conf_new();
	struct config *cf = NULL;
	struct journal *j = NULL;
	struct relay *r = NULL;
	uv_loop_t loop;
	uv_timer_t tick;
	rd_kafka_t *admin;
	FILE *f = fopen(cfpath, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ov[0] = xasprintf("kafka.bootstrap.servers=%s", tu_env("ORDERD_TEST_BOOTSTRAP"));
	ov[1] = xasprintf("journal.path=%s", jpath);
	ck_assert_msg(config_load(&cf, cfpath, ov, 2, &cause) == 0, "%s", cause);
	admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(admin != NULL, "%s", err);
	create_topic(admin, state, 1);
	ck_assert_msg(journal_open(&j, jpath, &jo, &cause) == 0, "%s", cause);
	ck_assert_int_eq(journal_begin(j, "test"), 0);
	ck_assert_int_eq(journal_outbox_add(j, &a), 0);
	ck_assert_int_eq(journal_outbox_add(j, &b), 0);
	ck_assert_int_eq(journal_commit(j), 0);

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, tick_cb, 50, 50);
	ck_assert_msg(relay_new(&r, &loop, j, cf, &cause) == 0, "%s", cause);
	spin(&loop, r, 4000, false);
	/* The output is not acknowledged: the record waits, unproduced. */
	ck_assert_int_lt(relay_acked_through(r), a.id);
	ck_assert(!relay_idle(r));
	ck_assert_int_eq(count_messages(state, 1000), 0);

	/* The topic comes: the output goes, then the record. */
	create_topic(admin, missing, 1);
	spin(&loop, r, 60000, true);
	ck_assert_msg(relay_idle(r), "the relay did not catch up");
	ck_assert_int_ge(relay_acked_through(r), b.id);
	ck_assert_int_eq(count_messages(state, 3000), 1);
	ck_assert_int_eq(count_messages(missing, 3000), 1);

	relay_close(r, 1000);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	journal_free(j);
	config_free(cf);
	rd_kafka_destroy(admin);
	free(ov[0]);
	free(ov[1]);
	free(missing);
	free(state);
	free(jpath);
	free(cfpath);
	free(dir);
}
END_TEST

struct rebalance_ctx {
	int assigns;
	int got;
};

/* A revocation pauses the partitions before it lets them go; the next
 * assignment of the same partitions must consume them all the same. */
static void
pause_rebalance(struct kafka *k, bool assign, const rd_kafka_topic_partition_list_t *parts,
    void *arg)
{
	struct rebalance_ctx *c = arg;

	if (!assign) {
		kafka_assign(k, NULL);
		return;
	}
	c->assigns++;
	kafka_assign(k, parts);
	kafka_pause(k, true);
	kafka_assign(k, NULL);
	kafka_pause(k, false);
	kafka_assign(k, parts);
}

static void
count_batch(rd_kafka_message_t **msgs, size_t n, void *arg)
{
	struct rebalance_ctx *c = arg;

	c->got += (int)n;
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(msgs[i]);
}

START_TEST(test_partitions_paused_before_a_revocation_consume_when_assigned_again)
{
	static const char *const defaults[] = { "auto.offset.reset", "earliest", NULL };
	char *dir = tu_tmpdir(), *cfpath = xasprintf("%s/none.conf", dir), *cause = NULL;
	char *topic = tu_unique("repause"), *group = tu_unique("repause"), err[256], *ov[1];
	const char *forced[] = { "group.id", group, NULL };
	const char *topics[1] = { topic };
	struct rebalance_ctx c = { 0, 0 };
	rd_kafka_conf_t *pconf = conf_new();
	struct config *cf = NULL;
	struct kafka *k = NULL;
	rd_kafka_conf_t *conf;
	int64_t until;
	uv_loop_t loop;
	uv_timer_t tick;
	rd_kafka_t *p;
	FILE *f = fopen(cfpath, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ov[0] = xasprintf("kafka.bootstrap.servers=%s", tu_env("ORDERD_TEST_BOOTSTRAP"));
	ck_assert_msg(config_load(&cf, cfpath, ov, 1, &cause) == 0, "%s", cause);
	p = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	create_topic(p, topic, 1);
	ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("x", 1),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_flush(p, 10000);

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, tick_cb, 50, 50);
	conf = kafka_conf_new(cf, defaults, forced, &cause);
	ck_assert_msg(conf != NULL, "%s", cause);
	ck_assert_msg(kafka_consumer_new(&k, &loop, conf, topics, 1, 100, count_batch,
	    pause_rebalance, &c, &cause) == 0, "%s", cause);
	until = util_mono_us() + 30 * 1000000LL;
	while (c.got == 0 && util_mono_us() < until)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_ge(c.assigns, 1);
	ck_assert_int_eq(c.got, 1);

	kafka_close(k, 0);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	rd_kafka_destroy(p);
	config_free(cf);
	free(ov[0]);
	free(topic);
	free(group);
	free(cfpath);
	free(dir);
}
END_TEST

static Suite *
kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("broker");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_produce_then_consume_in_group);
	tcase_add_test(tc, test_produce_to_missing_topic_fails);
	tcase_add_test(tc, test_relay_holds_changelog_records_until_outputs_are_acked);
	tcase_add_test(tc, test_partitions_paused_before_a_revocation_consume_when_assigned_again);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(kafka_suite());
}
