/* ctl_topics.c: orderctl topics create: the configured topics, the changelog compacted, through librdkafka's admin API. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "ctl.h"
#include "kafka.h"
#include "log.h"

/* After the words "topics create": nothing, or --partitions N. */
static int
ctl_topics_create(struct ctl *c, int argc, char **argv)
{
	const char *names[6] = { c->cf->topic_orders, c->cf->topic_payments,
	    c->cf->topic_payment_requests, c->cf->topic_order_events, c->cf->topic_dlq,
	    c->cf->topic_state };
	/* The changelog only when configured. */
	int ntopics = c->cf->topic_state[0] ? 6 : 5;
	rd_kafka_NewTopic_t *nt[6];
	rd_kafka_conf_t *conf;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	rd_kafka_t *rk;
	const rd_kafka_topic_result_t **res;
	char *cause = NULL, errstr[512];
	long partitions = 3;
	size_t nres;
	int status = 0;

	if (argc == 1 || (argc == 2 && strcmp(argv[0], "--partitions") != 0))
		return ctl_usage(c);
	if (argc == 2) {
		char *end;

		partitions = strtol(argv[1], &end, 10);
		if (*end != '\0' || partitions < 1 || partitions > 10000) {
			fprintf(stderr, "orderctl: --partitions %s: must be in 1..10000\n", argv[1]);
			return 2;
		}
	}
	conf = kafka_conf_new(c->cf, NULL, NULL, &cause);
	if (conf == NULL) {
		log_plain("orderctl", "%s", cause);
		free(cause);
		return 2;
	}
	if (ctl_kafka_check(c, NULL, 0, NULL)) {
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		return ctl_fail("kafka: %s", errstr);
	for (int i = 0; i < ntopics; i++) {
		nt[i] = rd_kafka_NewTopic_new(names[i], i == 4 ? 1 : (int)partitions, -1,
		    errstr, sizeof(errstr));
		/* The changelog keeps the latest record of every order. */
		if (i == 5)
			rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
	}
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)ntopics, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev == NULL || rd_kafka_event_error(ev)) {
		status = ctl_fail("kafka: creating topics: %s", ev ?
		    rd_kafka_event_error_string(ev) : "timed out");
	} else {
		res = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &nres);
		for (size_t i = 0; i < nres; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				printf("%s: created\n", rd_kafka_topic_result_name(res[i]));
			else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				printf("%s: exists\n", rd_kafka_topic_result_name(res[i]));
			else
				status = ctl_fail("%s: %s", rd_kafka_topic_result_name(res[i]),
				    rd_kafka_topic_result_error_string(res[i]));
		}
	}
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	for (int i = 0; i < ntopics; i++)
		rd_kafka_NewTopic_destroy(nt[i]);
	rd_kafka_destroy(rk);
	return status;
}

const struct ctl_entry ctl_topics_create_entry = {
	.name = "topics create",
	.usage = "topics create [--partitions N]",
	.help = "create the configured topics (default 3)",
	.needs = CTL_KAFKA,
	.min_args = 0, .max_args = 2,
	.group_usage = true,
	.exec = ctl_topics_create,
};
