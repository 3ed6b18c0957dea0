/* status.c: renders orderd's figures as Prometheus metrics and a health verdict, and serves both over http.c. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* For their version strings (orderd_build_info) only. */
#include <http_parser.h>
#include <librdkafka/rdkafka.h>
#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "saga.h"
#include "status.h"
#include "util.h"

struct status {
	const struct config *cf;
	const struct engine_snapshot *snap;	/* the engine's, read on every request */
	struct http_server *srv;
	double start_time_seconds;	/* of this process, from /proc/self/stat */
};

/* A family's HELP and TYPE lines. */
static void
status_family(struct http_buf *b, const char *name, const char *type, const char *help)
{
	http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
status_value(struct http_buf *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	status_family(b, name, type, help);
	http_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void
status_gauge_i(struct http_buf *b, const char *name, const char *help, int64_t v)
{
	status_family(b, name, "gauge", help);
	http_buf_printf(b, "%s %" PRId64 "\n", name, v);
}

/* A label value with \, " and newline escaped, as the format requires. */
static void
status_label(struct http_buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			http_buf_append(b, "\\\\", 2);
		else if (*v == '"')
			http_buf_append(b, "\\\"", 2);
		else if (*v == '\n')
			http_buf_append(b, "\\n", 2);
		else
			http_buf_append(b, v, 1);
	}
}

/* Microseconds as exact decimal seconds ("0.00025", "2.5", "10"): no
 * floating-point noise in bucket bounds or sums. */
static void
status_seconds(char *buf, size_t len, int64_t us)
{
	const char *sign = us < 0 ? "-" : "";
	uint64_t u = us < 0 ? (uint64_t)-us : (uint64_t)us;
	int n = snprintf(buf, len, "%s%" PRIu64 ".%06" PRIu64, sign, u / 1000000, u % 1000000);

	/* Trailing zeros, then a bare point, go. */
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

/*
 * A histogram family from fixed buckets: cumulative _bucket lines, +Inf,
 * then _sum and _count.  _count is the +Inf bucket by construction.
 * seconds: the figures are microseconds, shown as seconds; else they are
 * plain numbers (events per batch).
 */
static void
status_hist(struct http_buf *b, const char *name, const char *help,
    const struct metrics_hist *h, bool seconds)
{
	char le[32], sum[32];
	uint64_t cum = 0;

	status_family(b, name, "histogram", help);
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->buckets[i];
		if (seconds)
			status_seconds(le, sizeof(le), metrics_bucket_us[i]);
		else
			snprintf(le, sizeof(le), "%" PRId64, metrics_bucket_us[i]);
		http_buf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, cum);
	}
	cum += h->buckets[METRICS_BUCKETS];
	http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	if (seconds)
		status_seconds(sum, sizeof(sum), h->sum_us);
	else
		snprintf(sum, sizeof(sum), "%" PRId64, h->sum_us);
	http_buf_printf(b, "%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, cum);
}

void
status_render_metrics(const struct status_input *in, struct http_buf *b)
{
	static const struct relay_snapshot no_relay;
	static const struct http_stats no_http;
	static const int classes[] = { 2, 4, 5 };	/* never a 1xx or a redirect */
	const struct engine_stats *es = in->engine;
	const struct relay_snapshot *rs = in->relay ? in->relay : &no_relay;
	const struct http_stats *hs = in->http ? in->http : &no_http;
	unsigned long hp = http_parser_version();

	status_family(b, "orderd_build_info", "gauge",
	    "Always 1; the labels name the versions of orderd and its libraries.");
	http_buf_printf(b, "orderd_build_info{version=\"%s\",librdkafka=\"%s\",libuv=\"%s\","
	    "sqlite=\"%s\",http_parser=\"%lu.%lu.%lu\"} 1\n", PACKAGE_VERSION,
	    rd_kafka_version_str(), uv_version_string(), sqlite3_libversion(),
	    (hp >> 16) & 255, (hp >> 8) & 255, hp & 255);

	/* An invalid OrderCreated is still an OrderCreated consumed: the
	 * event names repeat, and one label set must appear once. */
	status_family(b, "orderd_events_consumed_total", "counter",
	    "Input events decoded and journaled, by type (duplicates not included).");
	for (int t = 0; t < SAGA_EV_COUNT; t++) {
		const char *name = saga_event_name(t);
		uint64_t n = 0;
		bool seen = false;

		if (t == SAGA_EV_DEADLINE)
			continue;	/* not a Kafka event: orderd_deadlines_fired_total */
		for (int u = 0; u < t; u++)
			seen |= u != SAGA_EV_DEADLINE && strcmp(saga_event_name(u), name) == 0;
		if (seen)
			continue;
		for (int u = t; u < SAGA_EV_COUNT; u++)
			if (u != SAGA_EV_DEADLINE && strcmp(saga_event_name(u), name) == 0)
				n += es->consumed[u];
		http_buf_printf(b, "orderd_events_consumed_total{type=\"%s\"} %" PRIu64 "\n",
		    name, n);
	}
	status_value(b, "orderd_duplicates_dropped_total", "counter",
	    "Input events dropped because their event_id was seen before.", es->duplicates);
	status_value(b, "orderd_dead_letters_total", "counter",
	    "Messages that could not be processed, sent to the DLQ topic.", es->dead_letters);
	status_value(b, "orderd_events_parked_total", "counter",
	    "Events that arrived before their OrderCreated and were parked.", es->parked);
	status_value(b, "orderd_parked_expired_total", "counter",
	    "Parked events whose OrderCreated never arrived within parked_max_age_ms, "
	    "sent to the DLQ.", es->parked_expired);
	status_gauge_i(b, "orderd_parked_events",
	    "Events parked now for an order not created yet (partitions owned).",
	    es->parked_pending);

	status_family(b, "orderd_saga_transitions_total", "counter",
	    "Saga transitions into each state.");
	for (int s = SAGA_NEW; s <= SAGA_CANCELLED; s++)
		http_buf_printf(b, "orderd_saga_transitions_total{state=\"%s\"} %" PRIu64 "\n",
		    saga_state_name(s), es->sagas_by_state[s]);
	if (in->journal_ok) {
		status_family(b, "orderd_sagas_live", "gauge",
		    "Orders whose saga is under way, by state (from the journal).");
		http_buf_printf(b, "orderd_sagas_live{state=\"NEW\"} %" PRId64 "\n"
		    "orderd_sagas_live{state=\"RESERVED\"} %" PRId64 "\n", in->orders_new,
		    in->orders_reserved);
	}
	status_value(b, "orderd_deadlines_fired_total", "counter",
	    "Payment deadlines that passed and cancelled their order.", es->deadlines_fired);
	status_value(b, "orderd_steps_completed_total", "counter",
	    "Redis steps (reserve, commit, release) answered.", es->steps_done);
	status_gauge_i(b, "orderd_steps_in_flight",
	    "Redis steps sent and not answered yet.", es->steps_in_flight);
	status_value(b, "orderd_redis_retries_total", "counter",
	    "Redis step calls sent again after a failure or a timeout.", es->redis_retries);
	status_value(b, "orderd_consumer_batches_total", "counter",
	    "Batches of consumed messages, each one journal transaction.", es->batches);

	status_hist(b, "orderd_step_duration_seconds",
	    "From a step's journaled intent to its Redis answer.", &es->step_latency, true);
	status_hist(b, "orderd_redis_call_duration_seconds",
	    "Round trip of one Redis Lua call.", &es->redis_latency, true);
	status_hist(b, "orderd_journal_commit_duration_seconds",
	    "One journal commit, fsync included.", &es->commit_latency, true);
	status_hist(b, "orderd_outbox_ack_duration_seconds",
	    "From an outbox row's creation to the broker's acknowledgement.",
	    &rs->ack_latency, true);
	status_hist(b, "orderd_consumer_batch_events",
	    "Events per consumed batch.", &es->batch_size, false);

	if (in->journal_ok) {
		char age[32];

		status_gauge_i(b, "orderd_outbox_pending",
		    "Outbox rows not acknowledged by the broker yet (counted up to 1e6).",
		    in->outbox_pending);
		status_family(b, "orderd_outbox_oldest_pending_age_seconds", "gauge",
		    "Age of the first unpublished outbox row; 0 when none is pending.");
		status_seconds(age, sizeof(age), in->outbox_oldest_age_ms * 1000);
		http_buf_printf(b, "orderd_outbox_oldest_pending_age_seconds %s\n", age);
		status_gauge_i(b, "orderd_outbox_dead",
		    "Outbox rows the broker refused for good (dead): not published until "
		    "orderctl outbox retry or drop; their orders' later rows wait.",
		    in->outbox_dead);
	}
	status_value(b, "orderd_relay_produced_total", "counter",
	    "Outbox rows handed to the Kafka producer.", rs->produced);
	status_value(b, "orderd_relay_published_total", "counter",
	    "Outbox rows marked published after the broker's acknowledgement.", rs->published);
	status_value(b, "orderd_relay_errors_total", "counter",
	    "Failed deliveries of outbox rows (produced again, unless the row died).",
	    rs->errors);
	status_value(b, "orderd_relay_dead_total", "counter",
	    "Outbox rows that died: refused for good, or relay.max_attempts failed deliveries.",
	    rs->dead);
	status_gauge_i(b, "orderd_relay_in_flight",
	    "Outbox rows produced and not acknowledged yet.", rs->in_flight);

	status_gauge_i(b, "orderd_redis_up",
	    "1 while the Redis connection is up, else 0.", es->redis_up ? 1 : 0);
	status_gauge_i(b, "orderd_broker_down",
	    "1 after librdkafka reported every broker down, until traffic flows again.",
	    rs->broker_down ? 1 : 0);
	status_family(b, "orderd_consumer_lag", "gauge",
	    "Messages between the consumer's position and the high watermark, per partition.");
	for (int i = 0; i < in->nlag; i++) {
		http_buf_append(b, "orderd_consumer_lag{topic=\"", 27);
		status_label(b, in->lag[i].topic);
		http_buf_printf(b, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
		    in->lag[i].partition, in->lag[i].lag);
	}

	status_family(b, "orderd_http_requests_total", "counter",
	    "HTTP requests answered, by status class.");
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(classes); i++)
		http_buf_printf(b, "orderd_http_requests_total{code=\"%dxx\"} %" PRIu64 "\n",
		    classes[i], hs->by_class[classes[i]]);
	status_family(b, "orderd_http_connections_open", "gauge",
	    "HTTP connections open now, by what they are doing.");
	for (int st = 0; st < HTTP_CONN_STATES; st++)
		http_buf_printf(b, "orderd_http_connections_open{state=\"%s\"} %d\n",
		    http_conn_state_name(st), hs->by_state[st]);
	status_family(b, "orderd_http_connections_evicted_total", "counter",
	    "HTTP connections closed to make room for a new one, by what they were doing.");
	for (int st = 0; st < HTTP_CONN_STATES; st++)
		http_buf_printf(b, "orderd_http_connections_evicted_total{state=\"%s\"} %" PRIu64
		    "\n", http_conn_state_name(st), hs->evicted[st]);
	status_value(b, "orderd_http_connections_rejected_total", "counter",
	    "New HTTP connections turned away at the server's limit (nothing sent yet, "
	    "every other connection writing a response).", hs->rejected);
	status_value(b, "orderd_http_connections_peer_rejected_total", "counter",
	    "New HTTP connections turned away at their peer's limit (nothing sent yet, "
	    "every other connection of the peer writing a response).", hs->peer_rejected);
	status_value(b, "orderd_http_timeouts_total", "counter",
	    "HTTP connections closed or answered 408 by the timeout.", hs->timeouts);

	/* The names every Prometheus client library uses for its process. */
	if (in->process_ok) {
		status_family(b, "process_cpu_seconds_total", "counter",
		    "User and system CPU time spent in seconds.");
		http_buf_printf(b, "process_cpu_seconds_total %.2f\n", in->cpu_seconds);
		status_gauge_i(b, "process_resident_memory_bytes",
		    "Resident memory size in bytes.", in->rss_bytes);
		status_gauge_i(b, "process_virtual_memory_bytes",
		    "Virtual memory size in bytes.", in->virtual_bytes);
		status_family(b, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		http_buf_printf(b, "process_start_time_seconds %.2f\n", in->start_time_seconds);
		status_gauge_i(b, "process_open_fds", "Number of open file descriptors.",
		    in->open_fds);
		status_gauge_i(b, "process_max_fds", "Maximum number of open file descriptors.",
		    in->max_fds);
	}
}

int
status_render_health(const struct status_input *in, int64_t unhealthy_outbox_age_ms,
    struct http_buf *out)
{
	size_t start = out->len;

	if (!in->engine->redis_up)
		http_buf_printf(out, "redis: not connected\n");
	if (in->relay != NULL && in->relay->broker_down)
		http_buf_printf(out, "kafka: all brokers down\n");
	if (!in->journal_ok)
		http_buf_printf(out, "journal: %s\n", in->journal_error ? in->journal_error :
		    "query failed");
	else if (in->outbox_oldest_age_ms > unhealthy_outbox_age_ms)
		http_buf_printf(out, "outbox: oldest unpublished row is %" PRId64 " ms old "
		    "(http.unhealthy_outbox_age_ms = %" PRId64 ")\n", in->outbox_oldest_age_ms,
		    unhealthy_outbox_age_ms);
	if (out->len > start)
		return 503;
	http_buf_printf(out, "ok\n");
	return 200;
}

/* A whole /proc file: their size says 0, so read until EOF.  Returns 0 or
 * a negative errno; *out (caller frees) is NUL-terminated. */
static int
status_read_proc(const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	*out = NULL;
	if (fd < 0)
		return -errno;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len - 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			free(buf);
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (cap - len < 1024) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* The boot time, for the process start time: the wall clock minus the
 * time since boot, as the kernel computes /proc/stat's btime.  Not read
 * from /proc/stat, which the unit's ProcSubset=pid hides. */
static double
status_boot_time(void)
{
	struct timespec real, boot;

	if (clock_gettime(CLOCK_REALTIME, &real) < 0 ||
	    clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
		return 0;
	return (double)(real.tv_sec - boot.tv_sec) +
	    (double)(real.tv_nsec - boot.tv_nsec) / 1e9;
}

/* The fields of /proc/self/stat after the command name, which may hold
 * blanks and parentheses: fields[0] is field 3 (state). */
static int
status_proc_stat(char ***fields, char **text)
{
	char *p, *save = NULL;
	int n = 0;

	if (status_read_proc("/proc/self/stat", text) < 0)
		return -EIO;
	if ((p = strrchr(*text, ')')) == NULL)
		return -EIO;
	*fields = xcalloc(64, sizeof(**fields));
	for (p = strtok_r(p + 1, " \n", &save); p != NULL && n < 64;
	    p = strtok_r(NULL, " \n", &save))
		(*fields)[n++] = p;
	return n;
}

static void
status_read_process(struct status_input *in)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char **f = NULL, *text = NULL;
	struct rlimit rl;
	struct dirent *d;
	DIR *dir;
	int n = status_proc_stat(&f, &text);

	/* Fields 14, 15 (utime, stime), 23 (vsize) and 24 (rss, pages). */
	if (n >= 22 && tck > 0 && page > 0) {
		in->cpu_seconds = (double)(strtoull(f[11], NULL, 10) +
		    strtoull(f[12], NULL, 10)) / (double)tck;
		in->virtual_bytes = strtoll(f[20], NULL, 10);
		in->rss_bytes = strtoll(f[21], NULL, 10) * page;
		in->process_ok = true;
	}
	free(f);
	free(text);
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((d = readdir(dir)) != NULL)
			if (d->d_name[0] != '.')
				in->open_fds++;
		closedir(dir);
		in->open_fds--;		/* the one opendir holds */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		in->max_fds = rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
}

/* Gathers a scrape's figures: what the engine and the relay published
 * (the journal's gauges and the consumer's lag gathered by the engine),
 * the HTTP server's own and /proc. */
static void
status_collect(struct status *st, struct status_input *in)
{
	const struct engine_snapshot *s = st->snap;

	memset(in, 0, sizeof(*in));
	in->engine = s->stats;
	in->relay = s->relay;
	in->http = http_server_stats(st->srv);
	in->journal_ok = s->journal_ok;
	if (!s->journal_ok) {
		in->journal_error = s->journal_error;
	} else {
		in->orders_new = s->orders_new;
		in->orders_reserved = s->orders_reserved;
		in->outbox_pending = s->outbox_pending;
		in->outbox_dead = s->outbox_dead;
		if (s->outbox_oldest_created > 0) {
			in->outbox_oldest_age_ms = util_now_ms() - s->outbox_oldest_created;
			if (in->outbox_oldest_age_ms < 0)
				in->outbox_oldest_age_ms = 0;
		}
	}
	in->lag = s->lag;
	in->nlag = s->nlag;
	status_read_process(in);
	in->start_time_seconds = st->start_time_seconds;
}

static void
status_metrics_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	struct status_input in;

	status_collect(arg, &in);
	res->content_type = STATUS_METRICS_CONTENT_TYPE;
	status_render_metrics(&in, &res->body);
}

static void
status_healthz_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	struct status *st = arg;
	struct status_input in;

	status_collect(st, &in);
	res->status = status_render_health(&in, st->cf->http_unhealthy_outbox_age_ms,
	    &res->body);
}

static const struct http_route status_routes[] = {
	{ "/metrics", status_metrics_cb },
	{ "/healthz", status_healthz_cb },
};

int
status_new(struct status **out, uv_loop_t *loop, const struct config *cf,
    const struct engine_snapshot *snap, char **cause)
{
	struct status *st = xcalloc(1, sizeof(*st));
	char **f = NULL, *text = NULL, *inner = NULL;
	long tck = sysconf(_SC_CLK_TCK);
	int err;

	*out = NULL;
	st->cf = cf;
	st->snap = snap;
	/* The start time never changes: field 22 (ticks after boot), once. */
	if (status_proc_stat(&f, &text) >= 20 && tck > 0)
		st->start_time_seconds = status_boot_time() +
		    (double)strtoull(f[19], NULL, 10) / (double)tck;
	free(f);
	free(text);
	err = http_server_new(&st->srv, loop, cf->http_listen, NULL, status_routes,
	    (int)UTIL_ARRAY_SIZE(status_routes), st, &inner);
	if (err < 0) {
		*cause = xasprintf("http.listen = %s", inner);
		goto fail;
	}
	log_info("status", "serving /metrics and /healthz on %s", cf->http_listen);
	*out = st;
	return 0;
fail:
	free(inner);
	free(st);
	return err;
}

int
status_port(const struct status *st)
{
	return http_server_port(st->srv);
}

static void
status_freed(void *arg)
{
	struct status *st = arg;

	free(st);
}

void
status_close(struct status *st)
{
	if (st == NULL)
		return;
	st->snap = NULL;
	http_server_close(st->srv, status_freed, st);
}
