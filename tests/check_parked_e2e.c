/* check_parked_e2e.c: a payment for an order that never arrives, through a real orderd, broker and Redis: parked, kept over a restart, then a dead letter ("order never arrived") on the DLQ topic, in /metrics and orderctl dlq list; its OrderCreated afterwards is a new order. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "http_client.h"
#include "testutil.h"
#include "util.h"

#define WAIT_MS 30000

/* The value of the sample named exactly so in a scrape of /metrics, or -1. */
static double
metric(int port, const char *sample)
{
	char *body = NULL, *ct = NULL;
	double v;

	ck_assert_int_eq(http_client_get(port, "/metrics", &body, &ct), 200);
	v = tu_metric(body, sample);
	free(body);
	free(ct);
	return v;
}

/* Polls the sample until it reads want, up to WAIT_MS; returns the last value. */
static double
await_metric(int port, const char *sample, double want)
{
	double v = -1;

	for (int i = 0; i < WAIT_MS / 100; i++) {
		if ((v = metric(port, sample)) == want)
			break;
		usleep(100000);
	}
	return v;
}

START_TEST(test_parked_payment_expires)
{
	struct h *h = h_new("parkexp", 3);
	int port = tu_free_port();
	char *listen = xasprintf("http.listen=127.0.0.1:%d", port), *out = NULL, *id;
	const struct h_msg *m;
	long long received;
	json_t *doc, *msgs;

	h_set(h, listen);
	/* First run: longer than the test, so the event is still parked when
	 * orderd stops. */
	h_set(h, "saga.parked_max_age_ms=600000");
	h_start(h);
	h_stock(h, "A", 10);
	h_send(h, H_PAYMENTS, "ghost", "{s:s, s:s, s:s, s:s}", "event_id", "p-ghost",
	    "type", "PaymentSucceeded", "order_id", "ghost", "payment_id", "pay-ghost");
	for (int i = 0; i < 400 && h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = "
	    "'p-ghost'") < 1; i++)
		usleep(50000);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'p-ghost' AND "
	    "status = 'parked'"), 1);
	received = h_sql(h, "SELECT received_at FROM inbox WHERE event_id = 'p-ghost'");
	ck_assert_double_eq(await_metric(port, "orderd_parked_events", 1), 1);
	ck_assert_double_eq(metric(port, "orderd_parked_expired_total"), 0);
	ck_assert_int_eq(h_stop(h), 0);

	/* Restarted with 2 s: the event is as old as its received_at, parked
	 * again from the journal, and expires. */
	h_set(h, "saga.parked_max_age_ms=2000");
	h_start(h);
	m = h_wait(h, H_DLQ, "ghost", NULL, WAIT_MS);
	ck_assert_msg(m != NULL, "no dead letter for ghost within %d ms", WAIT_MS);
	ck_assert_str_eq(m->error, "order never arrived");
	ck_assert_ptr_nonnull(strstr(m->raw, "\"p-ghost\""));
	id = xasprintf("dlq:%s:", h->topic[H_PAYMENTS]);
	ck_assert_msg(strncmp(m->event_id, id, strlen(id)) == 0, "event_id %s", m->event_id);
	free(id);
	ck_assert_double_eq(await_metric(port, "orderd_parked_expired_total", 1), 1);
	ck_assert_double_eq(await_metric(port, "orderd_parked_events", 0), 0);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'p-ghost' AND "
	    "status = 'ignored' AND received_at = %lld", received), 1);
	/* The changelog record after it parks nothing and knows it as seen. */
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "order_id = 'ghost' AND json_array_length(payload, '$.parked') = 0 AND "
	    "json_extract(payload, '$.events[0]') = 'p-ghost'"), 1);
	ck_assert_int_eq(h_ctl(h, &out, "dlq list --json"), 0);
	doc = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	msgs = json_object_get(doc, "messages");
	ck_assert_int_eq(json_array_size(msgs), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "topic")),
	    h->topic[H_PAYMENTS]);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "error")),
	    "order never arrived");
	json_decref(doc);
	free(out);

	/* The order arrives after all: a new order, asked to pay; the expired
	 * payment is not applied (it stays in the DLQ). */
	h_send(h, H_ORDERS, "ghost", "{s:s, s:s, s:i, s:s, s:s, s:[{s:s, s:i}], s:i, s:s}",
	    "event_id", "c-ghost", "type", "OrderCreated", "version", 1, "order_id", "ghost",
	    "customer_id", "cust-1", "items", "sku", "A", "qty", 2, "amount_cents", 100,
	    "currency", "EUR");
	ck_assert_ptr_nonnull(h_wait(h, H_PAYMENT_REQUESTS, "ghost", "PaymentRequested",
	    WAIT_MS));
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "ghost", "OrderConfirmed", 1000), 0);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM orders WHERE order_id = 'ghost' AND "
	    "state = 'RESERVED'"), 1);
	ck_assert_int_eq(h_count(h, H_DLQ, "ghost", NULL, 0), 1);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	free(listen);
	h_free(h);
}
END_TEST

static Suite *
parked_e2e_suite(void)
{
	Suite *s = suite_create("parked_e2e");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_parked_payment_expires);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(parked_e2e_suite());
}
