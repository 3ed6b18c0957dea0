/* check_kafka.c: librdkafka against the real broker: create a topic, produce idempotently, consume back in a group. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

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

static Suite *
kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("broker");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_produce_then_consume_in_group);
	tcase_add_test(tc, test_produce_to_missing_topic_fails);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(kafka_suite());
}
