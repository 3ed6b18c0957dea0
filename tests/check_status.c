/* check_status.c: status.c's /metrics and /healthz rendering of made-up figures: the exposition format, every sample, the health reasons. */
#include "autoconfig.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "status.h"
#include "status_figures.h"
#include "testutil.h"
#include "util.h"

/* What the rendering is given; test_health changes some of it. */
static struct status_figures fig;

/* The value of the sample line that starts with prefix (name and labels). */
static const char *
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 :
	    NULL)
		if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
			return l + n + 1;
	return NULL;
}

static void
expect_sample(const char *text, const char *prefix, const char *value)
{
	const char *v = sample(text, prefix);
	size_t n = strlen(value);

	ck_assert_msg(v != NULL, "no sample %s in:\n%s", prefix, text);
	ck_assert_msg(strncmp(v, value, n) == 0 && v[n] == '\n', "%s: want %s, got %.20s",
	    prefix, value, v);
}

START_TEST(test_exposition_format)
{
	struct status_input in;
	struct http_buf b = { NULL, 0, 0 };
	char family[128] = "";
	bool typed = false;

	status_figures_fill(&fig, &in);
	status_render_metrics(&in, &b);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.p[b.len - 1], '\n');
	/* Every line is a HELP, a TYPE, or a sample of the family just typed. */
	for (char *l = b.p, *e; *l; l = e + 1) {
		char name[128];

		e = strchr(l, '\n');
		ck_assert_ptr_nonnull(e);
		if (strncmp(l, "# HELP ", 7) == 0) {
			ck_assert_int_eq(sscanf(l + 7, "%127s", family), 1);
			typed = false;
			continue;
		}
		if (strncmp(l, "# TYPE ", 7) == 0) {
			char type[32];

			ck_assert_int_eq(sscanf(l + 7, "%127s %31s", name, type), 2);
			ck_assert_str_eq(name, family);
			ck_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0)
				ck_assert_msg(strstr(name, "_total") == name + strlen(name) - 6,
				    "counter %s without _total", name);
			typed = true;
			continue;
		}
		ck_assert_msg(typed, "sample before its TYPE: %.*s", (int)(e - l), l);
		ck_assert_msg(strncmp(l, family, strlen(family)) == 0,
		    "sample outside its family %s: %.*s", family, (int)(e - l), l);
		ck_assert(strncmp(l, "orderd_", 7) == 0 || strncmp(l, "process_", 8) == 0);
		ck_assert_ptr_nonnull(memchr(l, ' ', (size_t)(e - l)));
	}

	/* An invalid OrderCreated counts as an OrderCreated; no label set twice. */
	expect_sample(b.p, "orderd_events_consumed_total{type=\"OrderCreated\"}", "103");
	ck_assert_ptr_null(strstr(strstr(b.p, "{type=\"OrderCreated\"}") + 1,
	    "{type=\"OrderCreated\"}"));
	expect_sample(b.p, "orderd_events_consumed_total{type=\"PaymentFailed\"}", "7");
	ck_assert_ptr_null(strstr(b.p, "PaymentDeadline"));
	expect_sample(b.p, "orderd_duplicates_dropped_total", "5");
	expect_sample(b.p, "orderd_dead_letters_total", "4");
	expect_sample(b.p, "orderd_parked_expired_total", "2");
	expect_sample(b.p, "orderd_parked_events", "3");
	expect_sample(b.p, "orderd_saga_transitions_total{state=\"NEW\"}", "103");
	expect_sample(b.p, "orderd_saga_transitions_total{state=\"CANCELLED\"}", "0");
	expect_sample(b.p, "orderd_sagas_live{state=\"RESERVED\"}", "20");
	expect_sample(b.p, "orderd_steps_in_flight", "12");
	expect_sample(b.p, "orderd_outbox_pending", "3");
	expect_sample(b.p, "orderd_outbox_oldest_pending_age_seconds", "1.234");
	expect_sample(b.p, "orderd_redis_up", "1");
	expect_sample(b.p, "orderd_broker_down", "0");
	expect_sample(b.p, "orderd_relay_published_total", "8");
	expect_sample(b.p, "orderd_consumer_lag{topic=\"orders\",partition=\"0\"}", "42");
	expect_sample(b.p, "orderd_consumer_lag{topic=\"we\\\"ird\\\\\",partition=\"2\"}", "0");
	expect_sample(b.p, "orderd_http_requests_total{code=\"2xx\"}", "11");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"idle\"}", "7");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"partial\"}", "0");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"writing\"}", "0");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"finished\"}", "2");
	expect_sample(b.p, "orderd_http_connections_rejected_total", "1");
	expect_sample(b.p, "orderd_http_connections_peer_rejected_total", "3");
	expect_sample(b.p, "orderd_http_connections_open{state=\"idle\"}", "4");
	expect_sample(b.p, "orderd_http_connections_open{state=\"writing\"}", "1");
	expect_sample(b.p, "orderd_http_connections_open{state=\"finished\"}", "0");
	expect_sample(b.p, "process_resident_memory_bytes", "1048576");
	expect_sample(b.p, "process_cpu_seconds_total", "1.50");
	ck_assert_ptr_nonnull(strstr(b.p, "orderd_build_info{version=\"" PACKAGE_VERSION "\""));

	/* Histograms: cumulative, in seconds, +Inf equals _count. */
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.00005\"}", "2");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.0001\"}", "2");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.0005\"}", "3");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"1\"}", "3");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"2.5\"}", "4");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"10\"}", "4");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"+Inf\"}", "5");
	expect_sample(b.p, "orderd_step_duration_seconds_count", "5");
	expect_sample(b.p, "orderd_step_duration_seconds_sum", "22.00038");
	expect_sample(b.p, "orderd_outbox_ack_duration_seconds_bucket{le=\"0.0025\"}", "1");
	expect_sample(b.p, "orderd_outbox_ack_duration_seconds_sum", "0.0015");
	expect_sample(b.p, "orderd_redis_call_duration_seconds_count", "0");
	expect_sample(b.p, "orderd_redis_call_duration_seconds_sum", "0");
	expect_sample(b.p, "orderd_consumer_batch_events_bucket{le=\"50\"}", "1");
	expect_sample(b.p, "orderd_consumer_batch_events_sum", "7");
	{
		/* Every bucket of every histogram is >= the one before. */
		const char *hists[] = { "orderd_step_duration_seconds",
		    "orderd_redis_call_duration_seconds", "orderd_journal_commit_duration_seconds",
		    "orderd_outbox_ack_duration_seconds", "orderd_consumer_batch_events" };

		for (size_t h = 0; h < UTIL_ARRAY_SIZE(hists); h++) {
			char pfx[160];
			unsigned long long prev = 0, v;
			int nb = 0;

			snprintf(pfx, sizeof(pfx), "%s_bucket{le=\"", hists[h]);
			for (const char *p = strstr(b.p, pfx); p != NULL; p = strstr(p + 1, pfx)) {
				const char *sp = strchr(p, ' ');

				v = strtoull(sp + 1, NULL, 10);
				ck_assert_uint_ge(v, prev);
				prev = v;
				nb++;
			}
			ck_assert_int_eq(nb, METRICS_BUCKETS + 1);
		}
	}
	http_buf_free(&b);

	/* Without the journal, its gauges are left out rather than shown as 0. */
	in.journal_ok = false;
	in.relay = NULL;
	in.process_ok = false;
	status_render_metrics(&in, &b);
	ck_assert_ptr_null(strstr(b.p, "orderd_sagas_live"));
	ck_assert_ptr_null(strstr(b.p, "orderd_outbox_pending"));
	ck_assert_ptr_null(strstr(b.p, "process_"));
	expect_sample(b.p, "orderd_relay_published_total", "0");
	http_buf_free(&b);
}
END_TEST

START_TEST(test_health)
{
	struct status_input in;
	struct http_buf b = { NULL, 0, 0 };

	status_figures_fill(&fig, &in);
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 200);
	ck_assert_str_eq(b.p, "ok\n");
	http_buf_free(&b);

	fig.engine.redis_up = false;
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 503);
	ck_assert_str_eq(b.p, "redis: not connected\n");
	http_buf_free(&b);

	fig.relay.broker_down = true;
	in.outbox_oldest_age_ms = 60001;
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 503);
	ck_assert_str_eq(b.p, "redis: not connected\nkafka: all brokers down\n"
	    "outbox: oldest unpublished row is 60001 ms old (http.unhealthy_outbox_age_ms = 60000)\n");
	http_buf_free(&b);

	fig.engine.redis_up = true;
	fig.relay.broker_down = false;
	ck_assert_int_eq(status_render_health(&in, 70000, &b), 200);
	http_buf_free(&b);

	in.journal_ok = false;
	in.journal_error = "disk I/O error";
	ck_assert_int_eq(status_render_health(&in, 70000, &b), 503);
	ck_assert_str_eq(b.p, "journal: disk I/O error\n");
	http_buf_free(&b);
}
END_TEST

static Suite *
status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *render = tcase_create("render");

	tcase_add_test(render, test_exposition_format);
	tcase_add_test(render, test_health);
	suite_add_tcase(s, render);
	return s;
}

int
main(void)
{
	return tu_run(status_suite());
}
