/* check_http_e2e.c: /metrics and /healthz of a real orderd under load, with a private Redis stopped and restarted, and promtool's verdict on a live scrape. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "http_client.h"
#include "status.h"
#include "testutil.h"
#include "util.h"

#define REDIS_SH ABS_TOP_SRCDIR "/contrib/redis.sh"
#define ORDERS 300
#define WAIT_MS 60000

/* Runs "contrib/redis.sh CMD DIR [--aof]" and returns the port it printed (start). */
static int
redis_sh(const char *cmd, const char *dir)
{
	char *line = xasprintf("%s %s %s%s", REDIS_SH, cmd, dir,
	    strcmp(cmd, "start") == 0 ? " --aof" : "");
	FILE *p = popen(line, "r");
	int port = 0, st;

	ck_assert_ptr_nonnull(p);
	if (fscanf(p, "%d", &port) != 1)
		port = 0;
	st = pclose(p);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", line);
	free(line);
	return port;
}

static char *
scrape(int port)
{
	char *body = NULL, *ct = NULL;
	int st = http_client_get(port, "/metrics", &body, &ct);

	ck_assert_msg(st == 200, "GET /metrics: %d", st);
	ck_assert_str_eq(ct, STATUS_METRICS_CONTENT_TYPE);
	free(ct);
	return body;
}

/* Polls /healthz until its status is want (and its body holds needle);
 * returns the milliseconds it took, or fails after timeout_ms. */
static int
await_health(int port, int want, const char *needle, int timeout_ms)
{
	int64_t t0 = util_mono_us(), until = t0 + (int64_t)timeout_ms * 1000;
	char *body = NULL;
	int st;

	do {
		free(body);
		st = http_client_get(port, "/healthz", &body, NULL);
		if (st == want && (needle == NULL || strstr(body, needle) != NULL)) {
			free(body);
			return (int)((util_mono_us() - t0) / 1000);
		}
		usleep(100000);
	} while (util_mono_us() < until);
	ck_abort_msg("/healthz: want %d%s%s within %d ms, last %d: %s", want,
	    needle ? " naming " : "", needle ? needle : "", timeout_ms, st, body);
	return -1;
}

static void
order_created(struct h *h, const char *oid)
{
	char *eid = xasprintf("c-%s", oid);

	h_send(h, H_ORDERS, oid, "{s:s, s:s, s:s, s:s, s:[{s:s, s:i}], s:i, s:s}",
	    "event_id", eid, "type", "OrderCreated", "order_id", oid, "customer_id", "c1",
	    "items", "sku", "A", "qty", 1, "amount_cents", 100, "currency", "EUR");
	free(eid);
}

/* What paysim would answer: mostly success, every tenth a failure. */
static void
pay(struct h *h, const char *oid, int i)
{
	char *eid = xasprintf("p-%s", oid), *pid = xasprintf("pay-%s", oid);

	if (i % 10 == 9)
		h_send(h, H_PAYMENTS, oid, "{s:s, s:s, s:s, s:s}", "event_id", eid,
		    "type", "PaymentFailed", "order_id", oid, "reason", "card_declined");
	else
		h_send(h, H_PAYMENTS, oid, "{s:s, s:s, s:s, s:s}", "event_id", eid,
		    "type", "PaymentSucceeded", "order_id", oid, "payment_id", pid);
	free(eid);
	free(pid);
}

/* promtool check metrics on a scrape: exit 0 and not one lint remark. */
static void
promtool_check(struct h *h, const char *text)
{
	char *path = xasprintf("%s/scrape.txt", h->dir);
	char *cmd = xasprintf("promtool check metrics < %s 2>&1", path), *out = NULL;
	FILE *f = fopen(path, "w"), *p;
	size_t len = 0;
	char buf[4096];
	int st;

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	out = xstrdup("");
	while (fgets(buf, sizeof(buf), p) != NULL) {
		char *more = xasprintf("%s%s", out, buf);

		free(out);
		out = more;
		len += strlen(buf);
	}
	st = pclose(p);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 127,
	    "promtool is not installed (contrib/install-deps.sh: prometheus)");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && len == 0,
	    "promtool check metrics: exit %d:\n%s", WEXITSTATUS(st), out);
	free(out);
	free(cmd);
	free(path);
}

START_TEST(test_metrics_and_health_under_load)
{
	char *rdir = tu_tmpdir(), *set, *a, *b, *oid[ORDERS];
	int rport = redis_sh("start", rdir), hport = tu_free_port(), ms;
	struct h *h = h_new("http", 3);

	set = xasprintf("http.listen=127.0.0.1:%d", hport);
	h_set(h, set);
	free(set);
	h_use_redis(h, rport);
	h_start(h);
	await_health(hport, 200, "ok", 15000);
	h_stock(h, "A", 1000000);
	for (int i = 0; i < ORDERS; i++)
		oid[i] = tu_unique("o");

	/* Half the orders in, answered with payment requests; the first scrape. */
	for (int i = 0; i < ORDERS / 2; i++)
		order_created(h, oid[i]);
	for (int i = 0; i < ORDERS / 2; i++)
		ck_assert_msg(h_wait(h, H_PAYMENT_REQUESTS, oid[i], "PaymentRequested", WAIT_MS),
		    "no PaymentRequested for %s", oid[i]);
	a = scrape(hport);
	ck_assert_double_ge(tu_metric(a, "orderd_events_consumed_total{type=\"OrderCreated\"}"),
	    ORDERS / 2);
	ck_assert_double_ge(tu_metric(a, "orderd_saga_transitions_total{state=\"RESERVED\"}"),
	    ORDERS / 2);
	ck_assert_double_ge(tu_metric(a, "orderd_step_duration_seconds_count"), ORDERS / 2);

	/* The rest of the orders and every payment, while scraping. */
	for (int i = ORDERS / 2; i < ORDERS; i++) {
		order_created(h, oid[i]);
		if (i % 50 == 0)
			free(scrape(hport));
	}
	for (int i = 0; i < ORDERS; i++) {
		if (i >= ORDERS / 2)
			ck_assert_msg(h_wait(h, H_PAYMENT_REQUESTS, oid[i], "PaymentRequested",
			    WAIT_MS), "no PaymentRequested for %s", oid[i]);
		pay(h, oid[i], i);
	}
	for (int i = 0; i < ORDERS; i++)
		ck_assert_msg(h_wait(h, H_ORDER_EVENTS, oid[i], i % 10 == 9 ? "OrderCancelled" :
		    "OrderConfirmed", WAIT_MS), "no outcome for %s", oid[i]);
	/* The relay marks rows published a moment after the outcome arrived. */
	for (int i = 0; i < 100; i++) {
		b = scrape(hport);
		if (tu_metric(b, "orderd_outbox_pending") == 0 &&
		    tu_metric(b, "orderd_relay_published_total") >= 2 * ORDERS)
			break;
		free(b);
		b = NULL;
		usleep(100000);
	}
	ck_assert_msg(b != NULL, "the outbox never drained");

	/* The counters moved between the scrapes. */
	ck_assert_double_eq(tu_metric(b, "orderd_events_consumed_total{type=\"OrderCreated\"}"),
	    ORDERS);
	ck_assert_double_eq(tu_metric(b, "orderd_events_consumed_total{type=\"PaymentSucceeded\"}"),
	    ORDERS - ORDERS / 10);
	ck_assert_double_eq(tu_metric(b, "orderd_events_consumed_total{type=\"PaymentFailed\"}"),
	    ORDERS / 10);
	ck_assert_double_gt(tu_metric(b, "orderd_saga_transitions_total{state=\"CONFIRMED\"}"),
	    tu_metric(a, "orderd_saga_transitions_total{state=\"CONFIRMED\"}"));
	ck_assert_double_eq(tu_metric(b, "orderd_saga_transitions_total{state=\"CONFIRMED\"}"),
	    ORDERS - ORDERS / 10);
	ck_assert_double_eq(tu_metric(b, "orderd_saga_transitions_total{state=\"CANCELLED\"}"),
	    ORDERS / 10);
	ck_assert_double_gt(tu_metric(b, "orderd_step_duration_seconds_count"),
	    tu_metric(a, "orderd_step_duration_seconds_count"));
	ck_assert_double_eq(tu_metric(b, "orderd_step_duration_seconds_count"),
	    tu_metric(b, "orderd_step_duration_seconds_bucket{le=\"+Inf\"}"));
	ck_assert_double_gt(tu_metric(b, "orderd_redis_call_duration_seconds_count"),
	    tu_metric(a, "orderd_redis_call_duration_seconds_count"));
	ck_assert_double_gt(tu_metric(b, "orderd_journal_commit_duration_seconds_count"),
	    tu_metric(a, "orderd_journal_commit_duration_seconds_count"));
	ck_assert_double_gt(tu_metric(b, "orderd_outbox_ack_duration_seconds_count"),
	    tu_metric(a, "orderd_outbox_ack_duration_seconds_count"));
	ck_assert_double_gt(tu_metric(b, "orderd_relay_produced_total"),
	    tu_metric(a, "orderd_relay_produced_total"));
	ck_assert_double_gt(tu_metric(b, "orderd_http_requests_total{code=\"2xx\"}"),
	    tu_metric(a, "orderd_http_requests_total{code=\"2xx\"}"));
	/* Every saga is over: nothing live, nothing in flight. */
	ck_assert_double_eq(tu_metric(b, "orderd_sagas_live{state=\"NEW\"}"), 0);
	ck_assert_double_eq(tu_metric(b, "orderd_sagas_live{state=\"RESERVED\"}"), 0);
	ck_assert_double_eq(tu_metric(b, "orderd_steps_in_flight"), 0);
	ck_assert_double_eq(tu_metric(b, "orderd_outbox_oldest_pending_age_seconds"), 0);
	ck_assert_double_eq(tu_metric(b, "orderd_redis_up"), 1);
	ck_assert_double_eq(tu_metric(b, "orderd_broker_down"), 0);
	ck_assert_double_gt(tu_metric(b, "process_resident_memory_bytes"), 1 << 20);
	ck_assert_double_gt(tu_metric(b, "process_cpu_seconds_total"), 0);
	{
		/* Lag per consumed partition, caught up by now. */
		char *s = xasprintf("orderd_consumer_lag{topic=\"%s\",partition=\"0\"}",
		    h->topic[H_ORDERS]);

		ck_assert_double_eq(tu_metric(b, s), 0);
		free(s);
	}
	promtool_check(h, b);
	free(a);
	free(b);
	await_health(hport, 200, "ok", 5000);

	/* Redis stops: /healthz says so within seconds, and comes back with it. */
	redis_sh("stop", rdir);
	ms = await_health(hport, 503, "redis", 10000);
	ck_assert_int_lt(ms, 10000);
	b = scrape(hport);
	ck_assert_double_eq(tu_metric(b, "orderd_redis_up"), 0);
	free(b);
	ck_assert_int_eq(redis_sh("start", rdir), rport);
	await_health(hport, 200, "ok", 20000);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	redis_sh("stop", rdir);
	for (int i = 0; i < ORDERS; i++)
		free(oid[i]);
	free(rdir);
	h_free(h);
}
END_TEST

START_TEST(test_bind_failure_stops_the_start)
{
	struct h *h = h_new("httpbusy", 1);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), st;
	char *set, *out = NULL;

	/* Someone else listens on the port orderd is told to use. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	set = xasprintf("http.listen=127.0.0.1:%d", ntohs(sin.sin_port));
	h_set(h, set);
	st = h_run_orderd(h, &out);
	ck_assert_msg(st == 1, "orderd exit %d:\n%s", st, out);
	ck_assert_msg(strstr(out, "http.listen") != NULL && strstr(out, "in use") != NULL,
	    "no message naming http.listen:\n%s", out);
	close(fd);
	free(set);
	free(out);
	h_free(h);
}
END_TEST

static Suite *
http_e2e_suite(void)
{
	Suite *s = suite_create("http_e2e");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, test_metrics_and_health_under_load);
	tcase_add_test(tc, test_bind_failure_stops_the_start);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(http_e2e_suite());
}
