/* relay_bench.c: the outbox relay alone: rows per second draining a backlog of outbox rows, and outbox commit -> broker acknowledgement latency of every row at a fixed rate. */
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
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "config.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "tool.h"
#include "util.h"

#define RLB_PROG "relay_bench"
#define RLB_FILL_TXN 1000		/* rows per transaction when filling a backlog */
#define RLB_TICK_MS 1			/* the insert timer of the latency mode */
#define RLB_PROGRESS_US 2000000
#define RLB_TIMEOUT_US (600 * 1000000LL)

typedef void (*rlb_dr_fn)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/*
 * Every row's acknowledgement time, exactly: the program is linked with
 * -Wl,--wrap=rd_kafka_conf_set_dr_msg_cb, so the producer's delivery
 * report callback (kafka.c's, which hands each report to the relay) is
 * registered through here and each report passes through rlb_dr_cb (on
 * the loop thread, where the relay sees it) before it.  m->_private is the
 * outbox row id (the message's opaque).
 */
void __real_rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf, rlb_dr_fn cb);
void __wrap_rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf, rlb_dr_fn cb);

struct rlb {
	uv_loop_t loop;
	struct config *cf;
	struct journal *j;
	struct relay *r;
	uv_timer_t tick;		/* latency mode: inserts rows on schedule */
	uv_timer_t watch;		/* progress and the overall timeout */
	uv_prepare_t idle;		/* stops the loop once the relay is idle */
	const char *topic;
	char *payload;
	size_t payload_len;
	bool progress;
	int64_t next_progress_us, deadline_us;
	/* rows */
	int64_t total;			/* rows of the measured run */
	int64_t inserted;
	int64_t first_id;		/* outbox id of the first measured row */
	int64_t *commit_us;		/* per row: when its transaction committed */
	int64_t *ack_us;		/* per row: its first successful delivery report */
	int64_t acked;
	/* latency mode */
	double rate;
	int64_t start_us;
	bool waiting_idle;		/* the prepare handle stops the loop when idle */
	bool timed_out;
};

static struct rlb *rlb_self;
static rlb_dr_fn rlb_relay_dr;

static void
rlb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct rlb *b = rlb_self;
	int64_t i = (int64_t)(intptr_t)m->_private - b->first_id;

	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && b->ack_us != NULL && b->first_id > 0 &&
	    i >= 0 && i < b->inserted && b->ack_us[i] == 0) {
		b->ack_us[i] = util_mono_us();
		b->acked++;
	}
	rlb_relay_dr(rk, m, opaque);
}

void
__wrap_rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf, rlb_dr_fn cb)
{
	rlb_relay_dr = cb;
	__real_rd_kafka_conf_set_dr_msg_cb(conf, rlb_dr_cb);
}

static void
rlb_die(const char *what, const char *detail)
{
	fprintf(stderr, RLB_PROG ": %s: %s\n", what, detail);
	exit(1);
}

static int64_t
rlb_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* The peak resident set of this process in kB (VmHWM). */
static long
rlb_peak_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Adds outbox row number seq (inside the caller's transaction); returns its id. */
static int64_t
rlb_add_row(struct rlb *b, int64_t seq)
{
	char order_id[64], event_id[64];
	struct journal_outbox_row row = {
		.topic = b->topic, .event_id = event_id, .order_id = order_id,
		.type = "OrderConfirmed", .headers = "{}",
		.payload = b->payload, .payload_len = b->payload_len,
		.created_at = util_now_ms(),
	};

	snprintf(order_id, sizeof(order_id), "bench-order-%" PRId64, seq);
	snprintf(event_id, sizeof(event_id), "bench-%" PRId64 "-%012" PRId64,
	    (int64_t)getpid(), seq);
	row.key = order_id;
	row.key_len = strlen(order_id);
	if (journal_outbox_add(b->j, &row) < 0)
		rlb_die("journal_outbox_add", journal_errmsg(b->j));
	return row.id;
}

/* Adds n rows in one transaction; returns the id of the first. */
static int64_t
rlb_add_rows(struct rlb *b, int64_t seq, int64_t n)
{
	int64_t first = 0;

	if (journal_begin(b->j, "bench") < 0)
		rlb_die("journal_begin", journal_errmsg(b->j));
	for (int64_t k = 0; k < n; k++) {
		int64_t id = rlb_add_row(b, seq + k);

		if (k == 0)
			first = id;
	}
	if (journal_commit(b->j) < 0)
		rlb_die("journal_commit", journal_errmsg(b->j));
	return first;
}

static void
rlb_idle_cb(uv_prepare_t *h)
{
	struct rlb *b = h->data;

	if (b->waiting_idle && b->inserted == b->total && relay_idle(b->r))
		uv_stop(&b->loop);
}

static void
rlb_watch_cb(uv_timer_t *t)
{
	struct rlb *b = t->data;
	int64_t now = util_mono_us();

	if (now > b->deadline_us) {
		b->timed_out = true;
		uv_stop(&b->loop);
		return;
	}
	if (!b->progress || now < b->next_progress_us)
		return;
	b->next_progress_us = now + RLB_PROGRESS_US;
	fprintf(stderr, RLB_PROG ": rows %" PRId64 "/%" PRId64 ", published %" PRIu64
	    ", in flight %" PRId64 "\n", b->inserted, b->total, relay_snapshot(b->r)->published,
	    relay_snapshot(b->r)->in_flight);
}

/* Runs the loop until the relay has published and marked every row. */
static void
rlb_run_until_idle(struct rlb *b)
{
	b->waiting_idle = true;
	b->deadline_us = util_mono_us() + RLB_TIMEOUT_US;
	uv_run(&b->loop, UV_RUN_DEFAULT);
	b->waiting_idle = false;
	if (b->timed_out)
		rlb_die("relay", "not idle after 600 s");
}

static void
rlb_tick_cb(uv_timer_t *t)
{
	struct rlb *b = t->data;
	int64_t due = (int64_t)((double)(util_mono_us() - b->start_us) * b->rate / 1e6) + 1;
	int64_t n, first, now;

	if (due > b->total)
		due = b->total;
	if ((n = due - b->inserted) <= 0)
		return;
	first = rlb_add_rows(b, b->inserted, n);
	now = util_mono_us();
	if (b->first_id == 0)
		b->first_id = first;
	if (first != b->first_id + b->inserted)
		rlb_die("outbox", "row ids are not contiguous");
	for (int64_t k = 0; k < n; k++)
		b->commit_us[b->inserted + k] = now;
	b->inserted += n;
	relay_kick(b->r);
	if (b->inserted == b->total)
		uv_timer_stop(&b->tick);
}

static int
rlb_cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, c = *(const int64_t *)y;

	return a < c ? -1 : a > c;
}

/* Nearest rank, as loadgen: the smallest value with at least q of all at or below it. */
static double
rlb_quantile_ms(const int64_t *sorted, int64_t n, int pct)
{
	return n > 0 ? (double)sorted[(n * pct + 99) / 100 - 1] / 1e3 : 0.0;
}

static void
rlb_start_relay(struct rlb *b)
{
	char *cause = NULL;

	if (relay_new(&b->r, &b->loop, b->j, b->cf, &cause) < 0)
		rlb_die("relay_new", cause != NULL ? cause : "failed");
}

/*
 * Starts the relay and publishes one row through it, so that its producer
 * has its id and the topic's partitions before anything is measured.
 */
static void
rlb_start_warm(struct rlb *b)
{
	rlb_start_relay(b);
	rlb_add_rows(b, -1, 1);
	relay_kick(b->r);
	b->inserted = b->total = 0;
	rlb_run_until_idle(b);
}

static void
rlb_backlog(struct rlb *b, int64_t rows)
{
	int64_t t0, t1, c0, c1;

	rlb_start_warm(b);
	/* Committed while the relay is idle and not kicked: a backlog. */
	t0 = util_mono_us();
	for (int64_t seq = 0; seq < rows; seq += RLB_FILL_TXN)
		rlb_add_rows(b, seq, rows - seq < RLB_FILL_TXN ? rows - seq : RLB_FILL_TXN);
	b->inserted = b->total = rows;
	t1 = util_mono_us();
	printf("relay_backlog_rows %" PRId64 "\n", rows);
	printf("relay_backlog_fill_rows_per_s %.0f\n", (double)rows / ((double)(t1 - t0) / 1e6));
	c0 = rlb_cpu_us();
	t0 = util_mono_us();
	relay_kick(b->r);
	rlb_run_until_idle(b);
	t1 = util_mono_us();
	c1 = rlb_cpu_us();
	if (relay_snapshot(b->r)->published != (uint64_t)rows + 1)
		rlb_die("relay", "published count differs from the backlog");
	printf("relay_backlog_seconds %.3f\n", (double)(t1 - t0) / 1e6);
	printf("relay_backlog_rows_per_s %.0f\n", (double)rows / ((double)(t1 - t0) / 1e6));
	printf("relay_backlog_cpu_us_per_row %.2f\n", (double)(c1 - c0) / (double)rows);
	printf("relay_backlog_delivery_errors %" PRIu64 "\n", relay_snapshot(b->r)->errors);
}

static void
rlb_latency(struct rlb *b, double rate, double seconds, const char *latencies)
{
	const struct relay_snapshot *st;
	int64_t *lat, n = 0, c0, c1, t0, t1;
	struct metrics_hist before;

	b->rate = rate;
	b->total = (int64_t)(rate * seconds);
	if (b->total < 1)
		rlb_die("--rate/--seconds", "no rows to insert");
	b->commit_us = xcalloc((size_t)b->total, sizeof(*b->commit_us));
	b->ack_us = xcalloc((size_t)b->total, sizeof(*b->ack_us));
	rlb_start_warm(b);
	b->total = (int64_t)(rate * seconds);
	before = relay_snapshot(b->r)->ack_latency;

	c0 = rlb_cpu_us();
	t0 = b->start_us = util_mono_us();
	uv_timer_start(&b->tick, rlb_tick_cb, RLB_TICK_MS, RLB_TICK_MS);
	rlb_run_until_idle(b);
	t1 = util_mono_us();
	c1 = rlb_cpu_us();
	if (b->acked != b->total)
		rlb_die("relay", "a row was not acknowledged");
	lat = xmalloc((size_t)b->total * sizeof(*lat));
	for (int64_t i = 0; i < b->total; i++)
		lat[n++] = b->ack_us[i] - b->commit_us[i];
	if (latencies != NULL) {
		FILE *f = fopen(latencies, "w");

		if (f == NULL)
			rlb_die(latencies, strerror(errno));
		for (int64_t i = 0; i < n; i++)
			fprintf(f, "%.3f\n", (double)lat[i] / 1e3);
		if (fclose(f) != 0)
			rlb_die(latencies, strerror(errno));
	}
	qsort(lat, (size_t)n, sizeof(*lat), rlb_cmp_i64);
	st = relay_snapshot(b->r);
	/* The relay's own histogram, for comparison: bucket upper bounds of
	 * (ack time - created_at in ms), over the measured rows only. */
	for (int i = 0; i <= METRICS_BUCKETS; i++)
		before.buckets[i] = st->ack_latency.buckets[i] - before.buckets[i];
	before.count = st->ack_latency.count - before.count;
	printf("relay_latency_rows %" PRId64 "\n", n);
	printf("relay_latency_offered_rows_per_s %.0f\n", rate);
	printf("relay_latency_achieved_rows_per_s %.0f\n",
	    (double)n / ((double)(t1 - t0) / 1e6));
	printf("relay_latency_p50_ms %.3f\n", rlb_quantile_ms(lat, n, 50));
	printf("relay_latency_p90_ms %.3f\n", rlb_quantile_ms(lat, n, 90));
	printf("relay_latency_p99_ms %.3f\n", rlb_quantile_ms(lat, n, 99));
	printf("relay_latency_max_ms %.3f\n", (double)lat[n - 1] / 1e3);
	printf("relay_latency_hist_p50_le_ms %.1f\n", (double)metrics_quantile(&before, 0.50) / 1e3);
	printf("relay_latency_hist_p99_le_ms %.1f\n", (double)metrics_quantile(&before, 0.99) / 1e3);
	printf("relay_latency_cpu_us_per_row %.2f\n", (double)(c1 - c0) / (double)n);
	free(lat);
}

static void
rlb_close_cb(uv_handle_t *h)
{
	(void)h;
}

static void
rlb_usage(FILE *f)
{
	fprintf(f, "usage: " RLB_PROG " [-c FILE] [-s SECTION.KEY=VALUE]... --topic T\n"
	    "                   (--backlog N | --rate R --seconds S [--latencies FILE])\n"
	    "                   [--size BYTES]\n"
	    "\n"
	    "Opens a new journal at [journal] path (it must not exist), starts the\n"
	    "relay and publishes one row through it, then either fills the outbox\n"
	    "with N rows for topic T, kicks the relay and runs it until every row is\n"
	    "acknowledged and marked (--backlog), or runs the relay while a\n"
	    "1 ms timer commits rows at R per second for S seconds and records each\n"
	    "row's commit -> acknowledgement latency (--rate; --latencies writes them\n"
	    "in ms, one per line).  The relay's producer is configured from [kafka].\n"
	    "Prints 'name value' lines.  BYTES (payload size) defaults to 300.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "backlog", required_argument, NULL, 'B' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "latencies", required_argument, NULL, 'L' },
		{ "size", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool_config_args ca = { 0 };
	struct rlb b = { 0 };
	struct journal_options jo = { .busy_timeout_ms = 5000 };
	const char *latencies = NULL;
	int64_t backlog = 0, size = 300;
	double rate = 0, seconds = 0;
	char *cause = NULL;
	struct stat sb;
	int c;

	while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ca.path = optarg; break;
		case 's': tool_config_args_add(&ca, optarg); break;
		case 't': b.topic = optarg; break;
		case 'B': backlog = strtoll(optarg, NULL, 10); break;
		case 'r': rate = strtod(optarg, NULL); break;
		case 'S': seconds = strtod(optarg, NULL); break;
		case 'L': latencies = optarg; break;
		case 'b': size = strtoll(optarg, NULL, 10); break;
		case 'h': rlb_usage(stdout); return 0;
		default: rlb_usage(stderr); return 2;
		}
	}
	if (optind < argc || b.topic == NULL || size < 16 || size > 1000000 ||
	    (backlog > 0) == (rate > 0) || (rate > 0 && seconds <= 0)) {
		rlb_usage(stderr);
		return 2;
	}
	if (tool_config_load(&ca, &b.cf, &cause) != 0)
		rlb_die("configuration", cause);
	if (stat(b.cf->journal_path, &sb) == 0)
		rlb_die(b.cf->journal_path, "exists; the benchmark wants a new journal");
	jo.synchronous_full = b.cf->journal_synchronous_full;
	if (journal_open(&b.j, b.cf->journal_path, &jo, &cause) < 0)
		rlb_die("journal", cause);
	b.payload = xmalloc((size_t)size + 1);
	memset(b.payload, 'x', (size_t)size);
	memcpy(b.payload, "{\"pad\":\"", 8);
	memcpy(b.payload + size - 2, "\"}", 2);
	b.payload[size] = '\0';
	b.payload_len = (size_t)size;
	rlb_self = &b;
	b.progress = isatty(STDERR_FILENO);
	b.next_progress_us = util_mono_us() + RLB_PROGRESS_US;
	uv_loop_init(&b.loop);
	uv_timer_init(&b.loop, &b.tick);
	b.tick.data = &b;
	uv_timer_init(&b.loop, &b.watch);
	b.watch.data = &b;
	uv_timer_start(&b.watch, rlb_watch_cb, 100, 100);
	uv_prepare_init(&b.loop, &b.idle);
	b.idle.data = &b;
	uv_prepare_start(&b.idle, rlb_idle_cb);

	printf("relay_synchronous %s\n", b.cf->journal_synchronous_full ? "full" : "normal");
	printf("relay_row_bytes %" PRId64 "\n", size);
	if (backlog > 0)
		rlb_backlog(&b, backlog);
	else
		rlb_latency(&b, rate, seconds, latencies);
	printf("relay_bench_peak_rss_kb %ld\n", rlb_peak_rss_kb());
	fflush(stdout);

	relay_close(b.r, 5000);
	uv_close((uv_handle_t *)&b.tick, rlb_close_cb);
	uv_close((uv_handle_t *)&b.watch, rlb_close_cb);
	uv_close((uv_handle_t *)&b.idle, rlb_close_cb);
	uv_run(&b.loop, UV_RUN_DEFAULT);
	uv_loop_close(&b.loop);
	journal_free(b.j);
	config_free(b.cf);
	tool_config_args_free(&ca);
	free(b.payload);
	free(b.commit_us);
	free(b.ack_us);
	return 0;
}
