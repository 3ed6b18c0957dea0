/* kafka_bench.c: the broker limit alone, through librdkafka as orderd uses it: N records produced (idempotent, acks=all) to a topic, then the same N consumed. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <librdkafka/rdkafka.h>

#include "util.h"

#define KB_PROG "kafka_bench"
/* Records produced and acknowledged before the clock starts, so that the
 * producer id and the topic's partitions are known (consumed with the rest). */
#define KB_WARMUP 100

struct kb {
	int64_t delivered, failed, last_dr_us;
};

static void
kb_die(const char *what, const char *detail)
{
	fprintf(stderr, KB_PROG ": %s: %s\n", what, detail);
	exit(1);
}

static void
kb_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];

	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		kb_die(k, err);
}

static int64_t
kb_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void
kb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kb *k = opaque;

	(void)rk;
	if (m->err)
		k->failed++;
	else
		k->delivered++;
	k->last_dr_us = util_mono_us();
}

/* Produces n records of size bytes; returns the seconds from the first
 * produce to the last delivery report. */
static double
kb_produce(const char *bootstrap, const char *topic, int64_t n, int64_t size,
    const char *linger, int64_t *cpu_us)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct kb k = { 0 };
	char err[512], key[32], *value;
	int64_t t0 = 0, c0 = 0;
	rd_kafka_t *rk;

	kb_set(conf, "bootstrap.servers", bootstrap);
	kb_set(conf, "enable.idempotence", "true");
	kb_set(conf, "acks", "all");
	kb_set(conf, "linger.ms", linger);
	kb_set(conf, "queue.buffering.max.messages", "1000000");
	rd_kafka_conf_set_opaque(conf, &k);
	rd_kafka_conf_set_dr_msg_cb(conf, kb_dr_cb);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL)
		kb_die("producer", err);
	value = xmalloc((size_t)size);
	memset(value, 'x', (size_t)size);
	for (int64_t i = -KB_WARMUP; i < n; i++) {
		rd_kafka_resp_err_t e;

		snprintf(key, sizeof(key), "order-%" PRId64, i);
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, (size_t)size),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
		    RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 5);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			kb_die("produce", rd_kafka_err2str(e));
		if (i == -1) {
			while (k.delivered + k.failed < KB_WARMUP)
				rd_kafka_poll(rk, 1);
			c0 = kb_cpu_us();
			t0 = util_mono_us();
		}
		if (i % 1024 == 0)
			rd_kafka_poll(rk, 0);
	}
	while (k.delivered + k.failed < n + KB_WARMUP)
		rd_kafka_poll(rk, 10);
	*cpu_us = kb_cpu_us() - c0;
	if (k.failed > 0)
		kb_die("produce", "some deliveries failed");
	rd_kafka_destroy(rk);
	free(value);
	return (double)(k.last_dr_us - t0) / 1e6;
}

/* Consumes n records from the beginning of every partition; returns the
 * seconds from the assignment to the n-th record. */
static double
kb_consume(const char *bootstrap, const char *topic, int64_t n, int64_t *cpu_us)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t e;
	char err[512], group[64];
	int64_t got = 0, t0, t1 = 0, c0;
	rd_kafka_t *rk;

	snprintf(group, sizeof(group), KB_PROG "-%" PRId64, util_now_ms());
	kb_set(conf, "bootstrap.servers", bootstrap);
	kb_set(conf, "group.id", group);
	kb_set(conf, "enable.auto.commit", "false");
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL)
		kb_die("consumer", err);
	rd_kafka_poll_set_consumer(rk);
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if ((e = rd_kafka_metadata(rk, 0, rkt, &md, 10000)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		kb_die("metadata", rd_kafka_err2str(e));
	if (md->topic_cnt != 1 || md->topics[0].err)
		kb_die(topic, "no such topic");
	l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, topic,
		    md->topics[0].partitions[i].id)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	c0 = kb_cpu_us();
	t0 = util_mono_us();
	if ((e = rd_kafka_assign(rk, l)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		kb_die("assign", rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
	while (got < n) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

		if (m == NULL) {
			if (util_mono_us() - t0 > 120 * 1000000LL)
				kb_die("consume", "timed out");
			continue;
		}
		if (!m->err) {
			got++;
			t1 = util_mono_us();
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			kb_die("consume", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	*cpu_us = kb_cpu_us() - c0;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return (double)(t1 - t0) / 1e6;
}

static void
kb_usage(FILE *f)
{
	fprintf(f, "usage: " KB_PROG " --bootstrap HOST:PORT --topic T [--messages N] [--size BYTES]\n"
	    "                   [--linger MS]\n"
	    "\n"
	    "Produces N records of BYTES bytes (keys order-0 ..) to the existing topic\n"
	    "T with an idempotent producer (acks=all, linger.ms MS), then consumes N\n"
	    "records of T from the beginning.  Prints 'name value' lines.  Defaults:\n"
	    "N 400000, BYTES 300, MS 5.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "messages", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "linger", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bootstrap = NULL, *topic = NULL, *linger = "5";
	int64_t n = 400000, size = 300, pcpu, ccpu;
	double tp, tc;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': bootstrap = optarg; break;
		case 't': topic = optarg; break;
		case 'n': n = strtoll(optarg, NULL, 10); break;
		case 's': size = strtoll(optarg, NULL, 10); break;
		case 'l': linger = optarg; break;
		case 'h': kb_usage(stdout); return 0;
		default: kb_usage(stderr); return 2;
		}
	}
	if (optind < argc || bootstrap == NULL || topic == NULL || n < 1 || size < 1) {
		kb_usage(stderr);
		return 2;
	}
	tp = kb_produce(bootstrap, topic, n, size, linger, &pcpu);
	tc = kb_consume(bootstrap, topic, n + KB_WARMUP, &ccpu);
	printf("kafka_messages %" PRId64 "\n", n);
	printf("kafka_message_bytes %" PRId64 "\n", size);
	printf("kafka_produce_per_s %.0f\n", (double)n / tp);
	printf("kafka_consume_per_s %.0f\n", (double)(n + KB_WARMUP) / tc);
	/* Each record is produced once and consumed once. */
	printf("kafka_produce_consume_per_s %.0f\n",
	    (double)n / (tp + tc * (double)n / (double)(n + KB_WARMUP)));
	printf("kafka_produce_client_cpu_us_per_msg %.2f\n", (double)pcpu / (double)n);
	printf("kafka_consume_client_cpu_us_per_msg %.2f\n", (double)ccpu / (double)(n + KB_WARMUP));
	printf("librdkafka_version %s\n", rd_kafka_version_str());
	return 0;
}
