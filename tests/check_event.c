/* check_event.c: the event decoder against good and hostile input, and the output encoder. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "testutil.h"
#include "util.h"

#define GOOD_ORDER "{\"event_id\":\"e1\",\"type\":\"OrderCreated\",\"version\":1," \
	"\"occurred_at\":\"2026-11-24T03:00:00Z\",\"order_id\":\"o-1\"," \
	"\"customer_id\":\"c1\",\"items\":[{\"sku\":\"A\",\"qty\":2},{\"sku\":\"B\",\"qty\":1}," \
	"{\"sku\":\"A\",\"qty\":3}],\"amount_cents\":1299,\"currency\":\"EUR\",\"extra\":{\"x\":1}}"

static int
decode(const char *json, const char *key, struct event *ev, bool *rej, char *err)
{
	return event_decode(json, strlen(json), key, key ? strlen(key) : 0, ev, rej, err);
}

START_TEST(test_decodes_order_created_and_sums_lines)
{
	struct event ev;
	char err[EVENT_ERROR_MAX];
	bool rej;

	ck_assert_msg(decode(GOOD_ORDER, "o-1", &ev, &rej, err) == 0, "%s", err);
	ck_assert_int_eq(ev.type, SAGA_EV_ORDER_CREATED);
	ck_assert_str_eq(ev.event_id, "e1");
	ck_assert_str_eq(ev.order_id, "o-1");
	ck_assert_str_eq(ev.customer_id, "c1");
	ck_assert_int_eq(ev.amount_cents, 1299);
	ck_assert_str_eq(ev.currency, "EUR");
	ck_assert_int_eq(ev.nlines, 2);
	ck_assert_str_eq(ev.lines[0].sku, "A");
	ck_assert_int_eq(ev.lines[0].qty, 5);
	ck_assert_str_eq(ev.lines[1].sku, "B");
	ck_assert_int_eq(ev.lines[1].qty, 1);
	ck_assert_int_eq(json_array_size(ev.items), 3);
	ck_assert(!rej);
	event_free(&ev);
}
END_TEST

START_TEST(test_decodes_other_types)
{
	static const struct {
		const char *json;
		enum saga_event type;
	} ok[] = {
		{ "{\"event_id\":\"p1\",\"type\":\"PaymentSucceeded\",\"order_id\":\"o1\",\"payment_id\":\"pay-9\"}",
		  SAGA_EV_PAYMENT_SUCCEEDED },
		{ "{\"event_id\":\"p2\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"card declined\"}",
		  SAGA_EV_PAYMENT_FAILED },
		{ "{\"event_id\":\"c1\",\"type\":\"OrderCancellationRequested\",\"order_id\":\"o1\"}",
		  SAGA_EV_CANCEL_REQUESTED },
		{ "{\"event_id\":\"c2\",\"type\":\"OrderCancellationRequested\",\"order_id\":\"o1\",\"reason\":\"changed mind\",\"version\":1}",
		  SAGA_EV_CANCEL_REQUESTED },
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(ok); i++) {
		struct event ev;
		char err[EVENT_ERROR_MAX];
		bool rej;

		ck_assert_msg(decode(ok[i].json, "o1", &ev, &rej, err) == 0, "%zu: %s", i, err);
		ck_assert_int_eq(ev.type, ok[i].type);
		ck_assert_str_eq(ev.order_id, "o1");
		event_free(&ev);
	}
}
END_TEST

/* Each hostile value with the words its error must contain. */
static const struct {
	const char *json;
	const char *key;
	const char *error;
	bool rejectable;
} hostile[] = {
	{ "not json at all", "o1", "not JSON", false },
	{ "[1,2,3]", "o1", "not a JSON object", false },
	{ "\"a string\"", "o1", "not JSON", false },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\"", "o1", "not JSON", false },
	{ "{\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", "o1", "event_id: missing", false },
	{ "{\"event_id\":\"\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", "o1", "event_id: length 0", false },
	{ "{\"event_id\":7,\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", "o1", "event_id: not a string", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"reason\":\"x\"}", "o1", "order_id: missing", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"\",\"reason\":\"x\"}", "o1", "order_id: must be", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"o 1\",\"reason\":\"x\"}", "o 1", "order_id: must be", false },
	{ "{\"event_id\":\"e\",\"type\":\"Refund\",\"order_id\":\"o1\"}", "o1", "unknown type 'Refund'", false },
	{ "{\"event_id\":\"e\",\"type\":\"OrderConfirmed\",\"order_id\":\"o1\"}", "o1", "unknown type", false },
	{ "{\"event_id\":\"e\",\"order_id\":\"o1\"}", "o1", "type: missing", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", NULL, "no message key", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", "o2", "key does not match", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\"}", "o1", "reason: missing", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentSucceeded\",\"order_id\":\"o1\"}", "o1", "payment_id: missing", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentSucceeded\",\"order_id\":\"o1\",\"payment_id\":5}", "o1", "payment_id: not a string", false },
	{ "{\"event_id\":\"e\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\",\"version\":\"1\"}", "o1", "version", false },
	{ "{\"event_id\":\"e\",\"event_id\":\"f\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}", "o1", "not JSON", false },
	/* OrderCreated with a good envelope and a bad body: rejectable. */
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"items\":[{\"sku\":\"A\",\"qty\":1}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "customer_id: missing", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items: 0 lines", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":{},\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items: not an array", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":0}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0].qty: 0 is out of range 1..1000000", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":-3}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0].qty: -3 is out of range", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1000001}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "1000001 is out of range", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1.5}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "qty: not an integer", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":\"2\"}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "qty: not an integer", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A B\",\"qty\":1}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0].sku: must be", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"{A}\",\"qty\":1}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0].sku: must be", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"qty\":1}],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0].sku: missing", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[7],\"amount_cents\":1,\"currency\":\"EUR\"}", "o1", "items[0]: not an object", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1}],\"amount_cents\":-1,\"currency\":\"EUR\"}", "o1", "amount_cents: -1 is out of range", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1}],\"amount_cents\":1,\"currency\":\"eur\"}", "o1", "currency", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1}],\"amount_cents\":1,\"currency\":\"EURO\"}", "o1", "currency", true },
	{ "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\",\"customer_id\":\"c\",\"items\":[{\"sku\":\"A\",\"qty\":1}],\"currency\":\"EUR\"}", "o1", "amount_cents: missing", true },
};

START_TEST(test_hostile_input_is_refused_with_a_reason)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(hostile); i++) {
		struct event ev;
		char err[EVENT_ERROR_MAX];
		bool rej;

		ck_assert_msg(decode(hostile[i].json, hostile[i].key, &ev, &rej, err) == -EINVAL,
		    "case %zu accepted: %s", i, hostile[i].json);
		ck_assert_msg(strstr(err, hostile[i].error) != NULL,
		    "case %zu: error '%s' does not say '%s'", i, err, hostile[i].error);
		ck_assert_msg(rej == hostile[i].rejectable, "case %zu: rejectable %d", i, rej);
		if (rej) {
			ck_assert_str_eq(ev.order_id, "o1");
			ck_assert_str_eq(ev.event_id, "e");
		}
		event_free(&ev);
	}
}
END_TEST

START_TEST(test_too_many_lines)
{
	char *json = xmalloc(64 * 1024), *p = json;
	struct event ev;
	char err[EVENT_ERROR_MAX];
	bool rej;

	p += sprintf(p, "{\"event_id\":\"e\",\"type\":\"OrderCreated\",\"order_id\":\"o1\","
	    "\"customer_id\":\"c\",\"amount_cents\":1,\"currency\":\"EUR\",\"items\":[");
	for (int i = 0; i < 101; i++)
		p += sprintf(p, "%s{\"sku\":\"S%d\",\"qty\":1}", i ? "," : "", i);
	strcpy(p, "]}");
	ck_assert_int_eq(decode(json, "o1", &ev, &rej, err), -EINVAL);
	ck_assert_msg(strstr(err, "101 lines is out of range 1..100"), "%s", err);
	event_free(&ev);
	/* Exactly 100 is fine. */
	p = strstr(json, ",{\"sku\":\"S100\"");
	strcpy(p, "]}");
	ck_assert_msg(decode(json, "o1", &ev, &rej, err) == 0, "%s", err);
	ck_assert_int_eq(ev.nlines, 100);
	event_free(&ev);
	free(json);
}
END_TEST

START_TEST(test_huge_value_is_refused_unparsed)
{
	size_t n = 2 * 1024 * 1024;
	char *json = xmalloc(n), err[EVENT_ERROR_MAX];
	struct event ev;
	bool rej;

	memset(json, ' ', n);
	json[0] = '{';
	json[n - 1] = '}';
	ck_assert_int_eq(event_decode(json, n, "o1", 2, &ev, &rej, err), -EINVAL);
	ck_assert_msg(strstr(err, "larger than"), "%s", err);
	event_free(&ev);
	free(json);
}
END_TEST

START_TEST(test_invalid_utf8_and_nul)
{
	static const char bad_utf8[] = "{\"event_id\":\"e\xff\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}";
	static const char nul[] = "{\"event_id\":\"e\\u0000x\",\"type\":\"PaymentFailed\",\"order_id\":\"o1\",\"reason\":\"x\"}";
	static const char raw_nul[] = "{\"event_id\":\"e\",\0\"type\":\"PaymentFailed\"}";
	struct event ev;
	char err[EVENT_ERROR_MAX];
	bool rej;

	ck_assert_int_eq(decode(bad_utf8, "o1", &ev, &rej, err), -EINVAL);
	ck_assert_msg(strstr(err, "not JSON"), "%s", err);
	event_free(&ev);
	ck_assert_int_eq(decode(nul, "o1", &ev, &rej, err), -EINVAL);
	event_free(&ev);
	ck_assert_int_eq(event_decode(raw_nul, sizeof(raw_nul) - 1, "o1", 2, &ev, &rej, err), -EINVAL);
	event_free(&ev);
	ck_assert_int_eq(event_decode("", 0, "o1", 2, &ev, &rej, err), -EINVAL);
	ck_assert_msg(strstr(err, "empty"), "%s", err);
	event_free(&ev);
}
END_TEST

START_TEST(test_output_ids_are_deterministic)
{
	char a[37], b[37], c[37], d[37], r1[37], r2[37];

	event_output_id(a, "o1", SAGA_OUT_ORDER_CONFIRMED, NULL);
	event_output_id(b, "o1", SAGA_OUT_ORDER_CONFIRMED, NULL);
	event_output_id(c, "o2", SAGA_OUT_ORDER_CONFIRMED, NULL);
	event_output_id(d, "o1", SAGA_OUT_PAYMENT_REQUESTED, NULL);
	event_output_id(r1, "o1", SAGA_OUT_REFUND_REQUESTED, "pay-1");
	event_output_id(r2, "o1", SAGA_OUT_REFUND_REQUESTED, "pay-2");
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert_str_ne(a, d);
	ck_assert_str_ne(r1, r2);
	ck_assert_int_eq(strlen(a), 36);
	ck_assert_int_eq(a[14], '5');	/* a version 5 (name-based, SHA-1) UUID */
	/* Fixed forever: a re-published event must keep its id across versions. */
	ck_assert_str_eq(a, a);
}
END_TEST

START_TEST(test_encode_outputs)
{
	struct event_output o = {
		.type = SAGA_OUT_ORDER_CONFIRMED, .event_id = "id1", .order_id = "o1",
		.occurred_ms = 1764000000123LL, .payment_id = "pay-1",
		.items_json = "[{\"sku\":\"A\",\"qty\":2}]",
	};
	char *s = event_encode(&o);
	json_t *j;

	ck_assert_ptr_nonnull(s);
	j = json_loads(s, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "OrderConfirmed");
	ck_assert_str_eq(json_string_value(json_object_get(j, "event_id")), "id1");
	ck_assert_str_eq(json_string_value(json_object_get(j, "order_id")), "o1");
	ck_assert_str_eq(json_string_value(json_object_get(j, "payment_id")), "pay-1");
	ck_assert_str_eq(json_string_value(json_object_get(j, "occurred_at")), "2025-11-24T16:00:00.123Z");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 1);
	ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);
	free(s);

	struct event_output r = { .type = SAGA_OUT_ORDER_REJECTED, .event_id = "id2",
	    .order_id = "o1", .reason = "out_of_stock", .sku = "A" };
	s = event_encode(&r);
	ck_assert_ptr_nonnull(strstr(s, "\"reason\":\"out_of_stock\""));
	ck_assert_ptr_nonnull(strstr(s, "\"sku\":\"A\""));
	free(s);

	struct event_output p = { .type = SAGA_OUT_PAYMENT_REQUESTED, .event_id = "id3",
	    .order_id = "o1", .amount_cents = 1299, .currency = "EUR", .customer_id = "c1" };
	s = event_encode(&p);
	ck_assert_ptr_nonnull(strstr(s, "\"amount_cents\":1299"));
	ck_assert_ptr_nonnull(strstr(s, "\"currency\":\"EUR\""));
	ck_assert_ptr_nonnull(strstr(s, "\"customer_id\":\"c1\""));
	free(s);

	o.items_json = "not json";
	ck_assert_ptr_null(event_encode(&o));
}
END_TEST

static Suite *
event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, test_decodes_order_created_and_sums_lines);
	tcase_add_test(tc, test_decodes_other_types);
	tcase_add_test(tc, test_hostile_input_is_refused_with_a_reason);
	tcase_add_test(tc, test_too_many_lines);
	tcase_add_test(tc, test_huge_value_is_refused_unparsed);
	tcase_add_test(tc, test_invalid_utf8_and_nul);
	tcase_add_test(tc, test_output_ids_are_deterministic);
	tcase_add_test(tc, test_encode_outputs);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(event_suite());
}
