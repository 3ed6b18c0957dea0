/* loadgen.c: orderd-loadgen, which produces OrderCreated events at a given rate and, with --verify, checks that every order reaches a terminal event. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "config.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"
#include "util.h"

#define LOADGEN_PROG "orderd-loadgen"
#define LOADGEN_LOG "loadgen"
#define LOADGEN_PROGRESS_US 2000000
#define LOADGEN_METADATA_MS 10000
/* Messages taken from the consumer per call, so that producing goes on. */
#define LOADGEN_POLL_BATCH 10000
/* How long the end of a run waits for delivery reports after a signal. */
#define LOADGEN_STOP_FLUSH_US 5000000
/* Delivery errors logged one by one before they are only counted. */
#define LOADGEN_ERRORS_LOGGED 10
/* Missing orders named on stderr. */
#define LOADGEN_MISSING_LOGGED 10

enum loadgen_terminal {
	LOADGEN_NONE = 0,
	LOADGEN_CONFIRMED,
	LOADGEN_REJECTED,
	LOADGEN_CANCELLED,
};

/* One order of this run; its index is the number in its id. */
struct loadgen_order {
	int64_t produced_us;		/* when it was handed to the producer */
	int64_t terminal_us;		/* when its first terminal event came */
	char *terminal_id;		/* that event's event_id */
	enum loadgen_terminal terminal;
	bool conflict;			/* a second, different terminal event came */
};

struct loadgen {
	struct config *cf;
	/* options */
	int64_t norders;
	double rate;
	int64_t skus;
	int64_t lines_max;
	int64_t qty_max;
	int64_t timeout_s;
	const char *sku_prefix;
	char *id_prefix;		/* owned */
	size_t id_prefix_len;
	bool verify;
	const char *latencies_path;	/* --latencies: one latency in ms per line */
	FILE *latencies;
	struct tool_rng rng;
	/* run */
	rd_kafka_t *producer;
	rd_kafka_topic_t *orders_topic;	/* held so its metadata stays known */
	rd_kafka_t *consumer;
	struct loadgen_order *orders;
	int64_t produced, delivered, delivery_errors;
	int64_t terminal, confirmed, rejected, cancelled, duplicates, conflicts;
	int64_t first_produce_us, last_delivery_us, last_terminal_us;
	bool progress;
	int64_t next_progress_us;
};

enum {
	LOADGEN_OPT_ORDERS = 256,
	LOADGEN_OPT_RATE,
	LOADGEN_OPT_SKUS,
	LOADGEN_OPT_LINES_MAX,
	LOADGEN_OPT_VERIFY,
	LOADGEN_OPT_TIMEOUT_S,
	LOADGEN_OPT_SKU_PREFIX,
	LOADGEN_OPT_QTY_MAX,
	LOADGEN_OPT_SEED,
	LOADGEN_OPT_ID_PREFIX,
	LOADGEN_OPT_LATENCIES,
};

/* Beside -c, -s, --help and --version (tool_parse_args). */
static const struct option loadgen_options[] = {
	{ "orders", required_argument, NULL, LOADGEN_OPT_ORDERS },
	{ "rate", required_argument, NULL, LOADGEN_OPT_RATE },
	{ "skus", required_argument, NULL, LOADGEN_OPT_SKUS },
	{ "lines-max", required_argument, NULL, LOADGEN_OPT_LINES_MAX },
	{ "verify", no_argument, NULL, LOADGEN_OPT_VERIFY },
	{ "timeout-s", required_argument, NULL, LOADGEN_OPT_TIMEOUT_S },
	{ "sku-prefix", required_argument, NULL, LOADGEN_OPT_SKU_PREFIX },
	{ "qty-max", required_argument, NULL, LOADGEN_OPT_QTY_MAX },
	{ "seed", required_argument, NULL, LOADGEN_OPT_SEED },
	{ "id-prefix", required_argument, NULL, LOADGEN_OPT_ID_PREFIX },
	{ "latencies", required_argument, NULL, LOADGEN_OPT_LATENCIES },
	{ NULL, 0, NULL, 0 },
};

static void
loadgen_usage(void)
{
	printf("usage: " LOADGEN_PROG " [-c FILE] [-s SECTION.KEY=VALUE]... --orders N [--rate R]\n"
	    "                      [--skus N] [--lines-max N] [--qty-max Q] [--sku-prefix P]\n"
	    "                      [--id-prefix P] [--seed N] [--verify] [--timeout-s S]\n"
	    "                      [--latencies FILE]\n"
	    "\n"
	    "Produces N OrderCreated events on [topics] orders.  With --verify it then\n"
	    "reads [topics] order_events until every order has a terminal event and\n"
	    "prints one 'name value' line per figure; exit 1 when an order is missing\n"
	    "or got two different terminal events.\n"
	    "\n"
	    "  -c, --config FILE    configuration file (default %s)\n"
	    "  -s, --set S.K=V      override one configuration key; may repeat\n"
	    "      --orders N       orders to produce (required)\n"
	    "      --rate R         orders per second; 0 = as fast as possible (default 0)\n"
	    "      --skus N         skus to draw from (default 100)\n"
	    "      --lines-max N    lines per order, drawn from 1..N (default 3)\n"
	    "      --qty-max Q      quantity per line, drawn from 1..Q (default 3)\n"
	    "      --sku-prefix P   skus are P0 .. P(N-1) (default \"sku-\")\n"
	    "      --id-prefix P    order ids are P0 .. P(N-1) (default \"lg-RANDOM-\")\n"
	    "      --seed N         seed of the drawn lines (default random)\n"
	    "      --verify         wait for every order's terminal event\n"
	    "      --timeout-s S    how long --verify waits after producing (default 120)\n"
	    "      --latencies FILE with --verify: write each answered order's latency\n"
	    "                       (produced -> terminal event) in ms, one per line,\n"
	    "                       in order of production\n"
	    "  -h, --help           show this help\n"
	    "  -V, --version        show the version\n", config_default_path);
}

static int
loadgen_digits(int64_t n)
{
	int d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* Checks that prefix followed by any number below n is a name of the
 * contract's alphabet and length. */
static int
loadgen_check_prefix(const char *opt, const char *prefix, int64_t n, char **cause)
{
	char *first;
	bool ok;

	if (strlen(prefix) + (size_t)loadgen_digits(n > 0 ? n - 1 : 0) > EVENT_ORDER_ID_MAX) {
		*cause = xasprintf("%s %s: too long, names are at most %d bytes", opt,
		    prefix, EVENT_ORDER_ID_MAX);
		return -EINVAL;
	}
	first = xasprintf("%s0", prefix);
	ok = event_valid_name(first, strlen(first), EVENT_ORDER_ID_MAX);
	free(first);
	if (!ok) {
		*cause = xasprintf("%s %s: only [A-Za-z0-9._:-] may be used", opt, prefix);
		return -EINVAL;
	}
	return 0;
}

/* The index of one of our order ids, or -1 for anybody else's. */
static int64_t
loadgen_index(const struct loadgen *lg, const char *id, size_t len)
{
	int64_t n = 0;
	size_t i = lg->id_prefix_len;

	if (len <= i || memcmp(id, lg->id_prefix, i) != 0)
		return -1;
	/* Exactly the digits we write: no sign, no leading zero. */
	if (id[i] == '0' && len > i + 1)
		return -1;
	for (; i < len; i++) {
		if (id[i] < '0' || id[i] > '9')
			return -1;
		n = n * 10 + (id[i] - '0');
		if (n >= lg->norders)
			return -1;
	}
	return n;
}

/* A sku's unit price, fixed per sku so that amounts look plausible. */
static int64_t
loadgen_price(int64_t sku)
{
	return 100 + (sku * 7919) % 9900;
}

/* A new OrderCreated for order_id, as compact JSON (caller frees); its
 * event_id, a random UUID, goes to event_id too. */
static char *
loadgen_encode(struct loadgen *lg, const char *order_id, char event_id[37])
{
	char when[32], sku[EVENT_ORDER_ID_MAX + 1], customer[32], *s;
	int64_t nlines = 1 + (int64_t)tool_rng_below(&lg->rng, (uint64_t)lg->lines_max);
	int64_t amount = 0;
	json_t *items = json_array(), *root;
	uuid_t u;

	for (int64_t i = 0; i < nlines; i++) {
		int64_t k = (int64_t)tool_rng_below(&lg->rng, (uint64_t)lg->skus);
		int64_t qty = 1 + (int64_t)tool_rng_below(&lg->rng, (uint64_t)lg->qty_max);

		snprintf(sku, sizeof(sku), "%s%" PRId64, lg->sku_prefix, k);
		json_array_append_new(items, json_pack("{s:s, s:I}", "sku", sku,
		    "qty", (json_int_t)qty));
		amount += qty * loadgen_price(k);
	}
	snprintf(customer, sizeof(customer), "cust-%" PRIu64,
	    tool_rng_below(&lg->rng, 1000));
	uuid_generate_random(u);
	uuid_unparse_lower(u, event_id);
	event_format_time(when, util_now_ms());
	root = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:o, s:I, s:s}",
	    "event_id", event_id, "type", "OrderCreated", "version", 1,
	    "occurred_at", when, "order_id", order_id, "customer_id", customer,
	    "items", items, "amount_cents", (json_int_t)amount, "currency", "EUR");
	if (root == NULL || (s = json_dumps(root, JSON_COMPACT)) == NULL)
		log_fatal(LOADGEN_LOG, "out of memory encoding an order");
	json_decref(root);
	return s;
}

static void
loadgen_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct loadgen *lg = opaque;

	(void)rk;
	lg->last_delivery_us = util_mono_us();
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		lg->delivered++;
		return;
	}
	if (lg->delivery_errors++ < LOADGEN_ERRORS_LOGGED)
		log_error(LOADGEN_LOG, "order %.*s not delivered: %s", (int)m->key_len,
		    (const char *)m->key, rd_kafka_err2str(m->err));
}

static enum loadgen_terminal
loadgen_terminal_type(const char *type)
{
	if (strcmp(type, "OrderConfirmed") == 0)
		return LOADGEN_CONFIRMED;
	if (strcmp(type, "OrderRejected") == 0)
		return LOADGEN_REJECTED;
	if (strcmp(type, "OrderCancelled") == 0)
		return LOADGEN_CANCELLED;
	return LOADGEN_NONE;
}

/* Takes one message of order-events; the caller destroys it. */
static void
loadgen_take(struct loadgen *lg, const rd_kafka_message_t *m, int64_t now)
{
	const char *order_id, *type, *event_id;
	enum loadgen_terminal t;
	struct loadgen_order *o;
	json_t *root;
	int64_t n;

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn(LOADGEN_LOG, "consumer: %s", rd_kafka_message_errstr(m));
		return;
	}
	/* Other runs' and other clients' events are skipped by their key,
	 * without decoding them. */
	if (m->key != NULL && loadgen_index(lg, m->key, m->key_len) < 0)
		return;
	root = json_loadb(m->payload != NULL ? m->payload : "", m->len, 0, NULL);
	order_id = json_string_value(json_object_get(root, "order_id"));
	type = json_string_value(json_object_get(root, "type"));
	event_id = json_string_value(json_object_get(root, "event_id"));
	if (order_id == NULL || type == NULL || event_id == NULL ||
	    (t = loadgen_terminal_type(type)) == LOADGEN_NONE ||
	    (n = loadgen_index(lg, order_id, strlen(order_id))) < 0) {
		json_decref(root);
		return;
	}
	o = &lg->orders[n];
	if (o->terminal == LOADGEN_NONE) {
		o->terminal = t;
		o->terminal_us = now;
		o->terminal_id = xstrdup(event_id);
		lg->terminal++;
		lg->last_terminal_us = now;
		if (t == LOADGEN_CONFIRMED)
			lg->confirmed++;
		else if (t == LOADGEN_REJECTED)
			lg->rejected++;
		else
			lg->cancelled++;
	} else if (o->terminal == t && strcmp(o->terminal_id, event_id) == 0) {
		/* The same event again: a re-publish, which consumers dedupe. */
		lg->duplicates++;
	} else if (!o->conflict) {
		o->conflict = true;
		lg->conflicts++;
		log_error(LOADGEN_LOG, "order %s: second terminal event %s %s after %s",
		    order_id, type, event_id, o->terminal_id);
	}
	json_decref(root);
}

static void
loadgen_show_progress(struct loadgen *lg, int64_t now)
{
	if (!lg->progress || now < lg->next_progress_us)
		return;
	lg->next_progress_us = now + LOADGEN_PROGRESS_US;
	if (lg->verify)
		fprintf(stderr, LOADGEN_PROG ": produced %" PRId64 "/%" PRId64 ", delivered %"
		    PRId64 ", terminal %" PRId64 "\n", lg->produced, lg->norders,
		    lg->delivered, lg->terminal);
	else
		fprintf(stderr, LOADGEN_PROG ": produced %" PRId64 "/%" PRId64 ", delivered %"
		    PRId64 "\n", lg->produced, lg->norders, lg->delivered);
}

/* Serves delivery reports and takes what order-events has, waiting up to
 * timeout_ms for something to happen. */
static void
loadgen_service(struct loadgen *lg, int timeout_ms)
{
	rd_kafka_message_t *m;

	if (lg->consumer == NULL) {
		rd_kafka_poll(lg->producer, timeout_ms);
	} else {
		rd_kafka_poll(lg->producer, 0);
		for (int n = 0; n < LOADGEN_POLL_BATCH; n++) {
			if ((m = rd_kafka_consumer_poll(lg->consumer, n == 0 ? timeout_ms : 0)) == NULL)
				break;
			loadgen_take(lg, m, util_mono_us());
			rd_kafka_message_destroy(m);
		}
	}
	loadgen_show_progress(lg, util_mono_us());
}

/* Produces order n, waiting for room in the local queue. */
static void
loadgen_produce_one(struct loadgen *lg, int64_t n)
{
	char order_id[EVENT_ORDER_ID_MAX + 1], event_id[37], *value;
	rd_kafka_resp_err_t e;

	snprintf(order_id, sizeof(order_id), "%s%" PRId64, lg->id_prefix, n);
	value = loadgen_encode(lg, order_id, event_id);
	for (;;) {
		e = rd_kafka_producev(lg->producer, RD_KAFKA_V_TOPIC(lg->cf->topic_orders),
		    RD_KAFKA_V_KEY(order_id, strlen(order_id)),
		    RD_KAFKA_V_VALUE(value, strlen(value)),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_HEADER("event_id", event_id, -1),
		    RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		loadgen_service(lg, 10);
	}
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* Counted like a failed delivery: the order will be missing. */
		if (lg->delivery_errors++ < LOADGEN_ERRORS_LOGGED)
			log_error(LOADGEN_LOG, "order %s not produced: %s", order_id,
			    rd_kafka_err2str(e));
	}
	lg->orders[n].produced_us = util_mono_us();
	if (lg->produced++ == 0)
		lg->first_produce_us = lg->orders[n].produced_us;
	free(value);
}

/* Produces every order at the rate asked for, then waits for delivery. */
static void
loadgen_produce(struct loadgen *lg)
{
	int64_t start = util_mono_us(), deadline;

	while (lg->produced < lg->norders && !tool_stopping()) {
		int64_t target = lg->norders;

		if (lg->rate > 0) {
			/* Catch up with the schedule in a burst, then sleep: pacing
			 * each order alone would spin at high rates. */
			target = (int64_t)((double)(util_mono_us() - start) * lg->rate / 1e6) + 1;
			if (target > lg->norders)
				target = lg->norders;
		}
		while (lg->produced < target && !tool_stopping()) {
			loadgen_produce_one(lg, lg->produced);
			if (lg->produced % 1024 == 0)
				loadgen_service(lg, 0);
		}
		loadgen_service(lg, lg->rate > 0 && lg->produced < lg->norders ? 1 : 0);
	}
	/* After a signal the wait is bounded; otherwise message.timeout.ms
	 * bounds it and every message gets its report. */
	deadline = util_mono_us() + LOADGEN_STOP_FLUSH_US;
	while (rd_kafka_outq_len(lg->producer) > 0 &&
	    (!tool_stopping() || util_mono_us() < deadline))
		loadgen_service(lg, 10);
}

/* Waits for the terminal events of the delivered orders. */
static void
loadgen_wait_terminal(struct loadgen *lg)
{
	int64_t deadline = util_mono_us() + lg->timeout_s * 1000000;

	while (lg->terminal < lg->delivered && util_mono_us() < deadline &&
	    !tool_stopping())
		loadgen_service(lg, 100);
}

/*
 * Reads order-events from its current end: the end offsets are asked for
 * now, before the first order goes out, so no answer can slip by (an
 * assignment at "end" would resolve it only when fetching starts).
 */
static int
loadgen_assign_end(struct loadgen *lg, char **cause)
{
	const char *topic = lg->cf->topic_order_events;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t e;
	int status = TOOL_EXIT_FAIL;

	rkt = rd_kafka_topic_new(lg->consumer, topic, NULL);
	e = kafka_topic_metadata(lg->consumer, rkt, LOADGEN_METADATA_MS, &md);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*cause = xasprintf("topic %s: %s", topic, rd_kafka_err2str(e));
		goto out;
	}
	l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t hi;

		/* A topic created a moment ago may not have elected its leaders yet. */
		e = kafka_high_watermark(lg->consumer, topic, p,
		    util_mono_us() + LOADGEN_METADATA_MS * 1000LL, &hi, NULL);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			*cause = xasprintf("topic %s [%" PRId32 "]: end offset: %s", topic, p,
			    rd_kafka_err2str(e));
			goto out;
		}
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = hi;
	}
	if ((e = rd_kafka_assign(lg->consumer, l)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*cause = xasprintf("topic %s: assign: %s", topic, rd_kafka_err2str(e));
		goto out;
	}
	status = 0;
out:
	if (l != NULL)
		rd_kafka_topic_partition_list_destroy(l);
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return status;
}

/*
 * Asks for the orders topic's metadata now.  Otherwise librdkafka (2.0)
 * learns the partitions of a topic first produced to only at its next
 * metadata refresh, about a second later, and the first second of orders
 * would wait for it: time that would be counted as orderd's latency.
 */
static void
loadgen_warm_producer(struct loadgen *lg)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e;

	lg->orders_topic = rd_kafka_topic_new(lg->producer, lg->cf->topic_orders, NULL);
	e = kafka_topic_metadata(lg->producer, lg->orders_topic, LOADGEN_METADATA_MS, &md);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn(LOADGEN_LOG, "topic %s: %s", lg->cf->topic_orders, rd_kafka_err2str(e));
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
}

/* Creates the producer and, for --verify, the consumer; returns 0 or an
 * exit status with *cause. */
static int
loadgen_open(struct loadgen *lg, char **cause)
{
	static const char *const producer_defaults[] = { "linger.ms", "5", NULL };
	static const char *const producer_forced[] = {
		"enable.idempotence", "true", "acks", "all", NULL,
	};
	/* librdkafka wants a group.id even for assign(); this one is never
	 * joined nor committed to: loadgen_assign_end chooses the offsets. */
	char *group = xasprintf(LOADGEN_PROG "-%s", lg->id_prefix);
	const char *consumer_forced[] = {
		"group.id", group, "enable.auto.commit", "false",
		"enable.partition.eof", "false", NULL,
	};
	const char *topics[2] = { lg->cf->topic_orders, lg->cf->topic_order_events };
	int parts[2];
	rd_kafka_conf_t *conf;
	char err[512];
	int status = TOOL_EXIT_USAGE;

	if ((conf = kafka_conf_new(lg->cf, producer_defaults, producer_forced, cause)) == NULL)
		goto out;
	/* A refused password or certificate: one line, at once. */
	if (kafka_check_access(lg->cf, topics, lg->verify ? 2 : 1, parts, LOADGEN_METADATA_MS,
	    cause) < 0) {
		rd_kafka_conf_destroy(conf);
		status = TOOL_EXIT_FAIL;
		goto out;
	}
	rd_kafka_conf_set_opaque(conf, lg);
	rd_kafka_conf_set_dr_msg_cb(conf, loadgen_dr_cb);
	if ((lg->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka producer: %s", err);
		goto out;
	}
	loadgen_warm_producer(lg);
	if (!lg->verify) {
		status = 0;
		goto out;
	}
	if ((conf = kafka_conf_new(lg->cf, NULL, consumer_forced, cause)) == NULL)
		goto out;
	if ((lg->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka consumer: %s", err);
		goto out;
	}
	rd_kafka_poll_set_consumer(lg->consumer);
	status = loadgen_assign_end(lg, cause);
out:
	free(group);
	return status;
}

static void
loadgen_close(struct loadgen *lg)
{
	if (lg->consumer != NULL) {
		rd_kafka_consumer_close(lg->consumer);
		rd_kafka_destroy(lg->consumer);
		lg->consumer = NULL;
	}
	if (lg->producer != NULL) {
		/* Only after a signal can messages be left: drop them. */
		rd_kafka_purge(lg->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(lg->producer, 1000);
		if (lg->orders_topic != NULL)
			rd_kafka_topic_destroy(lg->orders_topic);
		lg->orders_topic = NULL;
		rd_kafka_destroy(lg->producer);
		lg->producer = NULL;
	}
}

static int
loadgen_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes n latencies (us) to the --latencies file as ms, one per line, and
 * closes it; returns 0 or -EIO (logged). */
static int
loadgen_write_latencies(struct loadgen *lg, const int64_t *lat, int64_t n)
{
	FILE *f = lg->latencies;
	int failed;

	lg->latencies = NULL;
	for (int64_t i = 0; i < n; i++)
		fprintf(f, "%.3f\n", (double)lat[i] / 1e3);
	failed = ferror(f);
	if (fclose(f) != 0 || failed) {
		log_error(LOADGEN_LOG, "--latencies %s: %s", lg->latencies_path,
		    strerror(errno));
		return -EIO;
	}
	return 0;
}

/* Prints the figures; returns the exit status. */
static int
loadgen_report(struct loadgen *lg)
{
	double seconds;
	int64_t *lat, n = 0, missing;

	printf("orders %" PRId64 "\n", lg->produced);
	if (!lg->verify) {
		seconds = (double)(lg->last_delivery_us - lg->first_produce_us) / 1e6;
		printf("throughput_orders_per_s %.1f\n",
		    seconds > 0 ? (double)lg->delivered / seconds : 0.0);
		return lg->delivery_errors > 0 || lg->delivered < lg->produced ?
		    TOOL_EXIT_FAIL : TOOL_EXIT_OK;
	}
	missing = lg->produced - lg->terminal;
	/* A few names make a loss traceable in orderd's logs and journal. */
	for (int64_t i = 0, shown = 0; i < lg->produced && shown < LOADGEN_MISSING_LOGGED; i++)
		if (lg->orders[i].terminal == LOADGEN_NONE) {
			log_warn(LOADGEN_LOG, "order %s%" PRId64 ": no terminal event",
			    lg->id_prefix, i);
			shown++;
		}
	lat = xmalloc((size_t)(lg->terminal > 0 ? lg->terminal : 1) * sizeof(*lat));
	for (int64_t i = 0; i < lg->produced; i++)
		if (lg->orders[i].terminal != LOADGEN_NONE)
			lat[n++] = lg->orders[i].terminal_us - lg->orders[i].produced_us;
	if (lg->latencies != NULL && loadgen_write_latencies(lg, lat, n) < 0) {
		free(lat);
		return TOOL_EXIT_FAIL;
	}
	qsort(lat, (size_t)n, sizeof(*lat), loadgen_cmp_i64);
	seconds = (double)(lg->last_terminal_us - lg->first_produce_us) / 1e6;
	printf("confirmed %" PRId64 "\n", lg->confirmed);
	printf("rejected %" PRId64 "\n", lg->rejected);
	printf("cancelled %" PRId64 "\n", lg->cancelled);
	printf("missing %" PRId64 "\n", missing);
	printf("duplicates %" PRId64 "\n", lg->duplicates);
	printf("conflicts %" PRId64 "\n", lg->conflicts);
	printf("throughput_orders_per_s %.1f\n",
	    n > 0 && seconds > 0 ? (double)n / seconds : 0.0);
	/* The rate the orders actually went out at (--rate, or as fast as
	 * possible): shows whether the offered load exceeded the capacity. */
	seconds = lg->produced > 1 ? (double)(lg->orders[lg->produced - 1].produced_us -
	    lg->first_produce_us) / 1e6 : 0;
	printf("offered_orders_per_s %.1f\n",
	    seconds > 0 ? (double)(lg->produced - 1) / seconds : 0.0);
	/* Nearest rank: the smallest latency with at least p of all at or
	 * below it. */
	printf("latency_p50_ms %.1f\n", n > 0 ? (double)lat[(n * 50 + 99) / 100 - 1] / 1e3 : 0.0);
	printf("latency_p99_ms %.1f\n", n > 0 ? (double)lat[(n * 99 + 99) / 100 - 1] / 1e3 : 0.0);
	free(lat);
	return missing > 0 || lg->conflicts > 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* What the options give loadgen_parse_args besides lg's fields. */
struct loadgen_args {
	struct loadgen *lg;
	const char *id_prefix;		/* --id-prefix, or NULL */
	bool seeded;			/* --seed was given */
};

/* One of loadgen_options (tool_cli.option). */
static int
loadgen_option(int val, const char *arg, void *ctx, char **cause)
{
	struct loadgen_args *a = ctx;
	struct loadgen *lg = a->lg;
	int64_t v;

	switch (val) {
	case LOADGEN_OPT_ORDERS:
		return tool_parse_int("--orders", arg, 1, 1000000000, &lg->norders, cause);
	case LOADGEN_OPT_RATE:
		return tool_parse_double("--rate", arg, 0, 1e9, &lg->rate, cause);
	case LOADGEN_OPT_SKUS:
		return tool_parse_int("--skus", arg, 1, 1000000000, &lg->skus, cause);
	case LOADGEN_OPT_LINES_MAX:
		return tool_parse_int("--lines-max", arg, 1, 100, &lg->lines_max, cause);
	case LOADGEN_OPT_QTY_MAX:
		return tool_parse_int("--qty-max", arg, 1, EVENT_QTY_MAX, &lg->qty_max, cause);
	case LOADGEN_OPT_TIMEOUT_S:
		return tool_parse_int("--timeout-s", arg, 0, 86400, &lg->timeout_s, cause);
	case LOADGEN_OPT_SKU_PREFIX:
		lg->sku_prefix = arg;
		return 0;
	case LOADGEN_OPT_ID_PREFIX:
		a->id_prefix = arg;
		return 0;
	case LOADGEN_OPT_SEED:
		if (tool_parse_int("--seed", arg, 0, INT64_MAX, &v, cause) < 0)
			return -EINVAL;
		tool_rng_seed(&lg->rng, (uint64_t)v);
		a->seeded = true;
		return 0;
	case LOADGEN_OPT_VERIFY:
		lg->verify = true;
		return 0;
	case LOADGEN_OPT_LATENCIES:
	default:	/* loadgen_options has no other */
		lg->latencies_path = arg;
		return 0;
	}
}

/* Parses the command line into lg and ca; returns 0, 1 for a printed
 * --help/--version, or -EINVAL with *cause. */
static int
loadgen_parse_args(int argc, char **argv, struct loadgen *lg,
    struct tool_config_args *ca, char **cause)
{
	struct loadgen_args a = { .lg = lg };
	const struct tool_cli cli = {
		.prog = LOADGEN_PROG, .options = loadgen_options, .usage = loadgen_usage,
		.option = loadgen_option, .ctx = &a,
	};
	int r;

	if ((r = tool_parse_args(&cli, argc, argv, ca, cause)) != 0)
		return r;
	if (lg->norders == 0) {
		*cause = xstrdup("--orders: required (see --help)");
		return -EINVAL;
	}
	if (lg->latencies_path != NULL && !lg->verify) {
		*cause = xstrdup("--latencies: needs --verify (see --help)");
		return -EINVAL;
	}
	if (loadgen_check_prefix("--sku-prefix", lg->sku_prefix, lg->skus, cause) < 0)
		return -EINVAL;
	if (a.id_prefix != NULL) {
		if (loadgen_check_prefix("--id-prefix", a.id_prefix, lg->norders, cause) < 0)
			return -EINVAL;
		lg->id_prefix = xstrdup(a.id_prefix);
	} else {
		/* Random per run, so a run never mistakes another's events for
		 * its own, whatever the seed. */
		lg->id_prefix = xasprintf("lg-%012" PRIx64 "-",
		    tool_random_u64() & UINT64_C(0xffffffffffff));
	}
	lg->id_prefix_len = strlen(lg->id_prefix);
	if (!a.seeded)
		tool_rng_seed(&lg->rng, tool_random_u64());
	return 0;
}

int
main(int argc, char **argv)
{
	struct loadgen lg = {
		.skus = 100, .lines_max = 3, .qty_max = 3, .timeout_s = 120,
		.sku_prefix = "sku-",
	};
	struct tool_config_args ca = { 0 };
	char *cause = NULL;
	int status, r;

	if ((r = loadgen_parse_args(argc, argv, &lg, &ca, &cause)) != 0) {
		status = r > 0 ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
		goto out;
	}
	tool_scrub_argv(LOADGEN_PROG, argc, argv);
	if (tool_config_load(&ca, &lg.cf, &cause) != 0) {
		status = TOOL_EXIT_USAGE;
		goto out;
	}
	/* Opened now, so that a bad path fails before the run, not after. */
	if (lg.latencies_path != NULL &&
	    (lg.latencies = fopen(lg.latencies_path, "w")) == NULL) {
		cause = xasprintf("--latencies %s: %s", lg.latencies_path, strerror(errno));
		status = TOOL_EXIT_USAGE;
		goto out;
	}
	tool_signals_init();
	lg.progress = isatty(STDERR_FILENO);
	lg.next_progress_us = util_mono_us() + LOADGEN_PROGRESS_US;
	lg.orders = xcalloc((size_t)lg.norders, sizeof(*lg.orders));
	if ((status = loadgen_open(&lg, &cause)) == 0) {
		loadgen_produce(&lg);
		if (lg.verify)
			loadgen_wait_terminal(&lg);
		if (lg.delivery_errors > LOADGEN_ERRORS_LOGGED)
			log_error(LOADGEN_LOG, "%" PRId64 " orders not delivered in all",
			    lg.delivery_errors);
		status = loadgen_report(&lg);
	}
	loadgen_close(&lg);
out:
	if (cause != NULL)
		log_plain(LOADGEN_PROG, "%s", cause);
	free(cause);
	if (lg.latencies != NULL)
		fclose(lg.latencies);
	if (lg.orders != NULL)
		for (int64_t i = 0; i < lg.norders; i++)
			free(lg.orders[i].terminal_id);
	free(lg.orders);
	free(lg.id_prefix);
	config_free(lg.cf);
	tool_config_args_free(&ca);
	return status;
}
