/* check_saga_e2e.c: one test per row of the saga table, through a real orderd, broker and Redis. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "harness.h"
#include "testutil.h"
#include "util.h"

#define WAIT_MS 20000

static void
order_created(struct h *h, const char *order_id, const char *event_id, json_t *items,
    long long amount)
{
	h_send(h, H_ORDERS, order_id, "{s:s, s:s, s:i, s:s, s:s, s:o, s:I, s:s}",
	    "event_id", event_id, "type", "OrderCreated", "version", 1, "order_id", order_id,
	    "customer_id", "cust-1", "items", items, "amount_cents", (json_int_t)amount,
	    "currency", "EUR");
}

static void
payment(struct h *h, const char *order_id, const char *event_id, bool ok, const char *pay_id)
{
	if (ok)
		h_send(h, H_PAYMENTS, order_id, "{s:s, s:s, s:s, s:s}", "event_id", event_id,
		    "type", "PaymentSucceeded", "order_id", order_id, "payment_id", pay_id);
	else
		h_send(h, H_PAYMENTS, order_id, "{s:s, s:s, s:s, s:s}", "event_id", event_id,
		    "type", "PaymentFailed", "order_id", order_id, "reason", "card_declined");
}

static void
cancel(struct h *h, const char *order_id, const char *event_id)
{
	h_send(h, H_ORDERS, order_id, "{s:s, s:s, s:s, s:s}", "event_id", event_id,
	    "type", "OrderCancellationRequested", "order_id", order_id, "reason", "changed mind");
}

/* Asserts an output's envelope: key, header event_id == body event_id ==
 * the deterministic id of (order, type), version, occurred_at. */
static const struct h_msg *
expect(struct h *h, int topic, const char *order_id, const char *type, const char *pay_id)
{
	const struct h_msg *m = h_wait(h, topic, order_id, type, WAIT_MS);
	enum saga_output out = SAGA_OUT_NONE;
	char id[37];

	ck_assert_msg(m != NULL, "no %s for %s within %d ms", type, order_id, WAIT_MS);
	ck_assert_str_eq(m->key, order_id);
	ck_assert_ptr_nonnull(m->event_id);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "event_id")), m->event_id);
	ck_assert_int_eq(json_integer_value(json_object_get(m->body, "version")), 1);
	ck_assert(json_is_string(json_object_get(m->body, "occurred_at")));
	for (int o = SAGA_OUT_PAYMENT_REQUESTED; o <= SAGA_OUT_ORDER_CANCELLED; o++)
		if (strcmp(saga_output_name(o), type) == 0)
			out = o;
	event_output_id(id, order_id, out, pay_id);
	ck_assert_str_eq(m->event_id, id);
	return m;
}

static void
expect_stock(struct h *h, const char *sku, long long av, long long res, long long sold)
{
	long long a, r, s;

	h_counters(h, sku, &a, &r, &s);
	ck_assert_msg(a == av && r == res && s == sold,
	    "%s: available/reserved/sold %lld/%lld/%lld, want %lld/%lld/%lld", sku, a, r, s,
	    av, res, sold);
}

static json_t *
line(const char *sku, int qty)
{
	return json_pack("{s:s, s:i}", "sku", sku, "qty", qty);
}

START_TEST(test_happy_path)
{
	struct h *h = h_new("happy", 3);
	const struct h_msg *m;
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	h_start(h);
	h_stock(h, "A", 10);
	h_produce(h, H_ORDERS, "o1", "{\"event_id\":\"c-o1\",\"type\":\"OrderCreated\","
	    "\"order_id\":\"o1\",\"customer_id\":\"cust-1\",\"items\":[{\"sku\":\"A\",\"qty\":2},"
	    "{\"sku\":\"A\",\"qty\":1}],\"amount_cents\":1299,\"currency\":\"EUR\","
	    "\"unknown_field\":true}", tp);
	m = expect(h, H_PAYMENT_REQUESTS, "o1", "PaymentRequested", NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(m->body, "amount_cents")), 1299);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "currency")), "EUR");
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "customer_id")), "cust-1");
	ck_assert_msg(m->traceparent && strcmp(m->traceparent, tp) == 0, "traceparent copied");
	expect_stock(h, "A", 7, 3, 0);
	payment(h, "o1", "p-o1", true, "pay-1");
	m = expect(h, H_ORDER_EVENTS, "o1", "OrderConfirmed", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "payment_id")), "pay-1");
	ck_assert_int_eq(json_array_size(json_object_get(m->body, "items")), 2);
	expect_stock(h, "A", 7, 0, 3);
	char st[32];
	h_reservation(h, "A", "o1", st, sizeof(st));
	ck_assert_str_eq(st, "COMMITTED");
	h_reconcile_ok(h);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "o1", NULL, 300), 1);
	ck_assert_int_eq(h_stop(h), 0);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
	h_free(h);
}
END_TEST

START_TEST(test_out_of_stock_holds_nothing)
{
	struct h *h = h_new("oos", 3);
	const struct h_msg *m;

	h_start(h);
	h_stock(h, "A", 2);
	order_created(h, "o2", "c-o2", json_pack("[o]", line("A", 3)), 500);
	m = expect(h, H_ORDER_EVENTS, "o2", "OrderRejected", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "out_of_stock");
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "sku")), "A");
	expect_stock(h, "A", 2, 0, 0);
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o2", NULL, 500), 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_multi_line_short_line_releases_held_lines)
{
	struct h *h = h_new("multi", 3);
	const struct h_msg *m;
	char st[32];

	h_start(h);
	h_stock(h, "A", 10);
	h_stock(h, "B", 1);
	h_stock(h, "C", 5);
	order_created(h, "o3", "c-o3", json_pack("[o,o,o]", line("A", 2), line("B", 5),
	    line("C", 1)), 900);
	m = expect(h, H_ORDER_EVENTS, "o3", "OrderRejected", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "out_of_stock");
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "sku")), "B");
	expect_stock(h, "A", 10, 0, 0);
	expect_stock(h, "B", 1, 0, 0);
	expect_stock(h, "C", 5, 0, 0);
	h_reservation(h, "A", "o3", st, sizeof(st));
	ck_assert_str_eq(st, "RELEASED");
	h_reservation(h, "B", "o3", st, sizeof(st));
	ck_assert_str_eq(st, "REJECTED");
	h_reservation(h, "C", "o3", st, sizeof(st));
	ck_assert_str_eq(st, "RELEASED");
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o3", NULL, 300), 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

static void
cancel_case(const char *name, int how, const char *reason)
{
	struct h *h = h_new(name, 3);
	const struct h_msg *m;

	if (how == 2)
		h_set(h, "saga.payment_timeout_ms=1500");
	h_start(h);
	h_stock(h, "A", 4);
	h_stock(h, "B", 4);
	order_created(h, "o4", "c-o4", json_pack("[o,o]", line("A", 4), line("B", 1)), 100);
	expect(h, H_PAYMENT_REQUESTS, "o4", "PaymentRequested", NULL);
	expect_stock(h, "A", 0, 4, 0);
	if (how == 0)
		payment(h, "o4", "p-o4", false, NULL);
	else if (how == 1)
		cancel(h, "o4", "x-o4");
	m = expect(h, H_ORDER_EVENTS, "o4", "OrderCancelled", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), reason);
	expect_stock(h, "A", 4, 0, 0);
	expect_stock(h, "B", 4, 0, 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "o4", NULL, 300), 1);
	ck_assert_int_eq(h_stop(h), 0);
	if (how == 2)
		ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM deadlines WHERE order_id = 'o4' "
		    "AND fired_at IS NOT NULL"), 1);
	h_free(h);
}

START_TEST(test_payment_failure_cancels)
{
	cancel_case("payfail", 0, "payment_failed");
}
END_TEST

START_TEST(test_customer_cancellation)
{
	cancel_case("custcancel", 1, "customer_request");
}
END_TEST

START_TEST(test_payment_timeout)
{
	cancel_case("timeout", 2, "payment_timeout");
}
END_TEST

START_TEST(test_late_payment_is_refunded)
{
	struct h *h = h_new("refund", 3);
	const struct h_msg *m;

	h_start(h);
	h_stock(h, "A", 3);
	order_created(h, "o5", "c-o5", json_pack("[o]", line("A", 3)), 4200);
	expect(h, H_PAYMENT_REQUESTS, "o5", "PaymentRequested", NULL);
	cancel(h, "o5", "x-o5");
	expect(h, H_ORDER_EVENTS, "o5", "OrderCancelled", NULL);
	expect_stock(h, "A", 3, 0, 0);
	payment(h, "o5", "p-o5", true, "pay-5");
	m = expect(h, H_PAYMENT_REQUESTS, "o5", "RefundRequested", "pay-5");
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "payment_id")), "pay-5");
	ck_assert_int_eq(json_integer_value(json_object_get(m->body, "amount_cents")), 4200);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "customer_request");
	/* The stock is not touched, and the order stays cancelled. */
	expect_stock(h, "A", 3, 0, 0);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "o5", NULL, 300), 1);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM orders WHERE order_id = 'o5' AND "
	    "state = 'CANCELLED'"), 1);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_duplicate_order_created_has_one_effect)
{
	struct h *h = h_new("duporder", 3);

	h_start(h);
	h_stock(h, "A", 10);
	order_created(h, "o6", "c-o6", json_pack("[o]", line("A", 2)), 100);
	order_created(h, "o6", "c-o6", json_pack("[o]", line("A", 2)), 100);
	/* Another event id, same order: a repeat too. */
	order_created(h, "o6", "c-o6-again", json_pack("[o]", line("A", 5)), 100);
	expect(h, H_PAYMENT_REQUESTS, "o6", "PaymentRequested", NULL);
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o6", NULL, 1500), 1);
	expect_stock(h, "A", 8, 2, 0);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE order_id = 'o6'"), 2);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM saga_steps WHERE order_id = 'o6'"), 1);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_duplicate_payment_has_one_effect)
{
	struct h *h = h_new("duppay", 3);

	h_start(h);
	h_stock(h, "A", 10);
	order_created(h, "o7", "c-o7", json_pack("[o]", line("A", 2)), 100);
	expect(h, H_PAYMENT_REQUESTS, "o7", "PaymentRequested", NULL);
	payment(h, "o7", "p-o7", true, "pay-7");
	payment(h, "o7", "p-o7", true, "pay-7");
	payment(h, "o7", "p-o7-second", true, "pay-7");
	expect(h, H_ORDER_EVENTS, "o7", "OrderConfirmed", NULL);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "o7", NULL, 1500), 1);
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o7", "RefundRequested", 0), 0);
	expect_stock(h, "A", 8, 0, 2);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_payment_before_order)
{
	struct h *h = h_new("payfirst", 3);

	h_start(h);
	h_stock(h, "A", 10);
	payment(h, "o8", "p-o8", true, "pay-8");
	/* Parked, not lost, not applied. */
	for (int i = 0; i < 100 && h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'p-o8'") < 1; i++)
		usleep(50000);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'p-o8' AND "
	    "status = 'parked'"), 1);
	order_created(h, "o8", "c-o8", json_pack("[o]", line("A", 4)), 100);
	expect(h, H_PAYMENT_REQUESTS, "o8", "PaymentRequested", NULL);
	expect(h, H_ORDER_EVENTS, "o8", "OrderConfirmed", NULL);
	expect_stock(h, "A", 6, 0, 4);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'p-o8' AND "
	    "status = 'applied'"), 1);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_cancel_before_order_then_order)
{
	struct h *h = h_new("cancelfirst", 3);
	const struct h_msg *m;

	h_start(h);
	h_stock(h, "A", 10);
	cancel(h, "o9", "x-o9");
	order_created(h, "o9", "c-o9", json_pack("[o]", line("A", 4)), 100);
	m = expect(h, H_ORDER_EVENTS, "o9", "OrderCancelled", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "customer_request");
	expect_stock(h, "A", 10, 0, 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_unknown_order_cancellation_is_kept)
{
	/* No OrderCreated ever comes: the cancellation is kept, nothing else. */
	struct h *h = h_new("unknown", 3);
	h_start(h);
	cancel(h, "nobody", "x-nobody");
	for (int i = 0; i < 200 && h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'x-nobody'") < 1; i++)
		usleep(50000);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'x-nobody' AND "
	    "status = 'parked'"), 1);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM orders"), 0);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, NULL, NULL, 500), 0);
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, NULL, NULL, 0), 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

START_TEST(test_invalid_input_goes_to_dlq_and_service_goes_on)
{
	struct h *h = h_new("dlq", 3);
	const struct h_msg *m;
	char *out = NULL;

	h_start(h);
	h_stock(h, "A", 5);
	h_produce(h, H_ORDERS, "bad1", "this is not json", NULL);
	h_produce(h, H_ORDERS, "o10", "{\"event_id\":\"c-o10\",\"type\":\"OrderCreated\","
	    "\"order_id\":\"o10\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":0}],"
	    "\"amount_cents\":1,\"currency\":\"EUR\"}", NULL);
	m = h_wait(h, H_DLQ, "bad1", NULL, WAIT_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->raw, "this is not json");
	ck_assert_ptr_nonnull(m->error);
	ck_assert_ptr_nonnull(strstr(m->error, "not JSON"));
	m = h_wait(h, H_DLQ, "o10", NULL, WAIT_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m->error, "qty: 0 is out of range"));
	m = expect(h, H_ORDER_EVENTS, "o10", "OrderRejected", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "invalid");
	/* The service goes on. */
	order_created(h, "o11", "c-o11", json_pack("[o]", line("A", 1)), 1);
	expect(h, H_PAYMENT_REQUESTS, "o11", "PaymentRequested", NULL);
	ck_assert_int_eq(h_ctl(h, &out, "dlq list --json"), 0);
	json_t *doc = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(json_array_size(json_object_get(doc, "messages")), 2);
	json_decref(doc);
	free(out);
	expect_stock(h, "A", 4, 1, 0);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

/* Starts orderd expecting it to refuse; returns its log. */
static char *
refused_start(struct h *h)
{
	char *out = NULL;
	int st = h_run_orderd(h, &out);

	ck_assert_msg(st == 1, "orderd exit %d, want 1:\n%s", st, out);
	return out;
}

START_TEST(test_partition_counts_must_match)
{
	struct h *h = h_new("mismatch", 3);
	char *other = xasprintf("%s.payments6", h->name), *set, *log;

	h_create_topic(h, other, 6);
	set = xasprintf("topics.payments=%s", other);
	h_set(h, set);
	log = refused_start(h);
	ck_assert_msg(strstr(log, "same partition count") != NULL, "%s", log);
	ck_assert_msg(strstr(log, "(3 partitions)") && strstr(log, "(6 partitions)"), "%s", log);
	free(log);
	free(set);
	free(other);
	h_free(h);
}
END_TEST

START_TEST(test_missing_topic_is_refused)
{
	struct h *h = h_new("notopic", 3);
	char *log;

	h_set(h, "topics.orders=no-such-topic-here");
	log = refused_start(h);
	ck_assert_msg(strstr(log, "'no-such-topic-here': does not exist") != NULL, "%s", log);
	free(log);
	h_free(h);
}
END_TEST

static Suite *
e2e_suite(void)
{
	Suite *s = suite_create("saga-e2e");
	TCase *tc = tcase_create("rows");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_happy_path);
	tcase_add_test(tc, test_out_of_stock_holds_nothing);
	tcase_add_test(tc, test_multi_line_short_line_releases_held_lines);
	tcase_add_test(tc, test_payment_failure_cancels);
	tcase_add_test(tc, test_customer_cancellation);
	tcase_add_test(tc, test_payment_timeout);
	tcase_add_test(tc, test_late_payment_is_refunded);
	tcase_add_test(tc, test_duplicate_order_created_has_one_effect);
	tcase_add_test(tc, test_duplicate_payment_has_one_effect);
	tcase_add_test(tc, test_payment_before_order);
	tcase_add_test(tc, test_cancel_before_order_then_order);
	tcase_add_test(tc, test_unknown_order_cancellation_is_kept);
	tcase_add_test(tc, test_invalid_input_goes_to_dlq_and_service_goes_on);
	tcase_add_test(tc, test_partition_counts_must_match);
	tcase_add_test(tc, test_missing_topic_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(e2e_suite());
}
