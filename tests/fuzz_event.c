/* fuzz_event.c: libFuzzer target: hostile bytes into the event decoder, and every decoded event round-tripped through the encoder. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "saga.h"
#include "util.h"

/*
 * The first byte of an input, modulo 5, picks how the message key is formed,
 * so the key checks are fuzzed too; the rest is the message value (the seeds
 * in tests/fuzz/corpus/ start with 'A'..'E' for 0..4):
 *   0  the order id the value itself decodes to (no key first, then that key)
 *   1  the fixed key "o-1"
 *   2  the next byte is a length N, the N bytes after it are the key
 *   3  no key at all, then a non-NULL key of length 0
 *   4  the value is not an event but a stored items array
 *      (event_lines_from_json, as the journal's recovery reads it)
 * Every invariant that fails aborts, which libFuzzer reports as a crash.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_event: %s:%d: invariant '%s' broken: ",\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

static bool
fuzz_valid_string(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	return n >= min && n <= max;
}

/* The lines of an items array as the contract defines them, counted here
 * independently of event.c: the raw qty total and the number of lines. */
static void
fuzz_raw_items(json_t *items, size_t *nraw, int64_t *total)
{
	*nraw = json_array_size(items);
	*total = 0;
	for (size_t i = 0; i < *nraw; i++)
		*total += json_integer_value(json_object_get(json_array_get(items, i), "qty"));
}

static void
fuzz_check_lines(const struct saga_line *lines, int nlines, size_t nraw,
    int64_t raw_total, const char *what)
{
	int64_t sum = 0;

	FUZZ_ASSERT(nlines >= 1 && nlines <= SAGA_MAX_LINES, "%s: %d lines", what, nlines);
	FUZZ_ASSERT((size_t)nlines <= nraw, "%s: %d lines out of %zu", what, nlines, nraw);
	for (int i = 0; i < nlines; i++) {
		size_t len = strnlen(lines[i].sku, sizeof(lines[i].sku));

		FUZZ_ASSERT(len < sizeof(lines[i].sku), "%s: line %d sku not terminated", what, i);
		FUZZ_ASSERT(event_valid_name(lines[i].sku, len, SAGA_SKU_MAX),
		    "%s: line %d sku '%s'", what, i, lines[i].sku);
		FUZZ_ASSERT(lines[i].qty >= 1 && lines[i].qty <= (int64_t)nraw * EVENT_QTY_MAX,
		    "%s: line %d qty %lld", what, i, (long long)lines[i].qty);
		for (int j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(lines[i].sku, lines[j].sku) != 0,
			    "%s: sku '%s' on lines %d and %d", what, lines[i].sku, j, i);
		sum += lines[i].qty;
	}
	FUZZ_ASSERT(sum == raw_total, "%s: lines sum to %lld, items to %lld", what,
	    (long long)sum, (long long)raw_total);
	FUZZ_ASSERT(sum <= (int64_t)SAGA_MAX_LINES * EVENT_QTY_MAX, "%s: qty sum %lld",
	    what, (long long)sum);
}

static json_t *
fuzz_encode(const struct event_output *o)
{
	char *s = event_encode(o);
	json_t *j;

	FUZZ_ASSERT(s != NULL, "event_encode of a %s failed", saga_output_name(o->type));
	j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(j != NULL && json_is_object(j), "event_encode wrote bad JSON: %s", s);
	free(s);
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(j, "type")),
	    saga_output_name(o->type)) == 0, "output type");
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(j, "order_id")),
	    o->order_id) == 0, "output order_id");
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(j, "event_id")),
	    o->event_id) == 0, "output event_id");
	FUZZ_ASSERT(json_integer_value(json_object_get(j, "version")) == 1, "output version");
	return j;
}

static void
fuzz_same_string(json_t *obj, const char *field, const char *want)
{
	const char *got = json_string_value(json_object_get(obj, field));

	FUZZ_ASSERT(got != NULL && strcmp(got, want) == 0, "output %s '%s' != '%s'",
	    field, got ? got : "(null)", want);
}

/* A decoded event: its fields within the contract, and the outputs it would
 * cause encoded and read back unchanged. */
static void
fuzz_check_event(const struct event *ev, const char *key, size_t key_len)
{
	struct event_output o = { .event_id = NULL };
	char id[37], id2[37];
	json_t *j;

	FUZZ_ASSERT(ev->root != NULL && json_is_object(ev->root), "root");
	FUZZ_ASSERT(ev->type_name != NULL, "type_name");
	FUZZ_ASSERT(fuzz_valid_string(ev->event_id, 1, EVENT_ID_MAX), "event_id '%s'",
	    ev->event_id);
	FUZZ_ASSERT(event_valid_name(ev->order_id, strlen(ev->order_id), EVENT_ORDER_ID_MAX),
	    "order_id '%s'", ev->order_id);
	FUZZ_ASSERT(key != NULL && key_len == strlen(ev->order_id) &&
	    memcmp(key, ev->order_id, key_len) == 0, "key is not the order id");

	event_output_id(id, ev->order_id, SAGA_OUT_ORDER_CONFIRMED, NULL);
	event_output_id(id2, ev->order_id, SAGA_OUT_ORDER_CONFIRMED, NULL);
	FUZZ_ASSERT(strlen(id) == 36 && strcmp(id, id2) == 0, "output id not deterministic");
	o.event_id = id;
	o.order_id = ev->order_id;
	o.occurred_ms = 1764000000123LL;

	switch (ev->type) {
	case SAGA_EV_ORDER_CREATED: {
		struct saga_line lines[SAGA_MAX_LINES];
		int64_t raw_total;
		char *items_json, *again;
		size_t nraw;
		int nlines;

		FUZZ_ASSERT(fuzz_valid_string(ev->customer_id, 1, 256), "customer_id");
		FUZZ_ASSERT(ev->amount_cents >= 0, "amount_cents %lld", (long long)ev->amount_cents);
		FUZZ_ASSERT(strlen(ev->currency) == 3, "currency '%s'", ev->currency);
		for (int i = 0; i < 3; i++)
			FUZZ_ASSERT(ev->currency[i] >= 'A' && ev->currency[i] <= 'Z', "currency");
		FUZZ_ASSERT(json_is_array(ev->items), "items");
		fuzz_raw_items(ev->items, &nraw, &raw_total);
		FUZZ_ASSERT(nraw >= 1 && nraw <= SAGA_MAX_LINES, "%zu items", nraw);
		fuzz_check_lines(ev->lines, ev->nlines, nraw, raw_total, "decoded");

		/* What the engine stores, and reads back on recovery. */
		items_json = json_dumps(ev->items, JSON_COMPACT | JSON_PRESERVE_ORDER);
		FUZZ_ASSERT(items_json != NULL, "json_dumps(items)");
		FUZZ_ASSERT(event_lines_from_json(items_json, lines, &nlines) == 0,
		    "stored items do not decode: %s", items_json);
		FUZZ_ASSERT(nlines == ev->nlines, "stored items: %d lines, decoded %d", nlines,
		    ev->nlines);
		for (int i = 0; i < nlines; i++)
			FUZZ_ASSERT(strcmp(lines[i].sku, ev->lines[i].sku) == 0 &&
			    lines[i].qty == ev->lines[i].qty, "stored items: line %d differs", i);

		/* OrderConfirmed carries the items as ordered. */
		o.type = SAGA_OUT_ORDER_CONFIRMED;
		o.items_json = items_json;
		o.payment_id = "pay-1";
		j = fuzz_encode(&o);
		again = json_dumps(json_object_get(j, "items"), JSON_COMPACT | JSON_PRESERVE_ORDER);
		FUZZ_ASSERT(again != NULL && strcmp(again, items_json) == 0,
		    "OrderConfirmed items changed: %s", again ? again : "(null)");
		FUZZ_ASSERT(event_lines_from_json(again, lines, &nlines) == 0 &&
		    nlines == ev->nlines, "OrderConfirmed items do not decode");
		fuzz_check_lines(lines, nlines, nraw, raw_total, "confirmed");
		free(again);
		json_decref(j);
		free(items_json);

		o.type = SAGA_OUT_PAYMENT_REQUESTED;
		o.amount_cents = ev->amount_cents;
		o.currency = ev->currency;
		o.customer_id = ev->customer_id;
		j = fuzz_encode(&o);
		fuzz_same_string(j, "currency", ev->currency);
		fuzz_same_string(j, "customer_id", ev->customer_id);
		FUZZ_ASSERT(json_integer_value(json_object_get(j, "amount_cents")) ==
		    ev->amount_cents, "PaymentRequested amount");
		json_decref(j);

		o.type = SAGA_OUT_ORDER_REJECTED;
		o.reason = "out_of_stock";
		o.sku = ev->lines[ev->nlines - 1].sku;
		j = fuzz_encode(&o);
		fuzz_same_string(j, "sku", o.sku);
		json_decref(j);
		break;
	}
	case SAGA_EV_PAYMENT_SUCCEEDED:
		FUZZ_ASSERT(fuzz_valid_string(ev->payment_id, 1, 128), "payment_id");
		event_output_id(id2, ev->order_id, SAGA_OUT_REFUND_REQUESTED, ev->payment_id);
		o.event_id = id2;
		o.type = SAGA_OUT_REFUND_REQUESTED;
		o.payment_id = ev->payment_id;
		o.amount_cents = 1299;
		o.reason = "payment_failed";
		j = fuzz_encode(&o);
		fuzz_same_string(j, "payment_id", ev->payment_id);
		json_decref(j);
		break;
	case SAGA_EV_PAYMENT_FAILED:
		FUZZ_ASSERT(fuzz_valid_string(ev->reason, 0, 1024), "reason");
		/* fall through */
	case SAGA_EV_CANCEL_REQUESTED:
		FUZZ_ASSERT(ev->reason == NULL || strlen(ev->reason) <= 1024, "reason");
		o.type = SAGA_OUT_ORDER_CANCELLED;
		o.reason = ev->reason ? ev->reason : "customer_request";
		j = fuzz_encode(&o);
		fuzz_same_string(j, "reason", o.reason);
		json_decref(j);
		break;
	default:
		FUZZ_ASSERT(false, "decoded to type %d", (int)ev->type);
	}
}

static void
fuzz_decode(const uint8_t *value, size_t len, const char *key, size_t key_len,
    bool *decoded, char order_id[EVENT_ORDER_ID_MAX + 1])
{
	char err[EVENT_ERROR_MAX];
	struct event ev;
	bool rejectable = true;
	int e;

	e = event_decode(value, len, key, key_len, &ev, &rejectable, err);
	FUZZ_ASSERT(e == 0 || e == -EINVAL, "event_decode returned %d", e);
	FUZZ_ASSERT(memchr(err, '\0', EVENT_ERROR_MAX) != NULL, "err not terminated");
	FUZZ_ASSERT(memchr(ev.event_id, '\0', sizeof(ev.event_id)) != NULL, "event_id");
	FUZZ_ASSERT(memchr(ev.order_id, '\0', sizeof(ev.order_id)) != NULL, "order_id");
	if (e == 0) {
		FUZZ_ASSERT(!rejectable, "decoded and rejectable");
		fuzz_check_event(&ev, key, key_len);
	} else {
		FUZZ_ASSERT(err[0] != '\0', "refused without a reason");
		/* A rejectable order must be answerable: its ids are good. */
		if (rejectable) {
			FUZZ_ASSERT(ev.type == SAGA_EV_ORDER_CREATED, "rejectable type %d",
			    (int)ev.type);
			FUZZ_ASSERT(fuzz_valid_string(ev.event_id, 1, EVENT_ID_MAX),
			    "rejectable without an event id");
			FUZZ_ASSERT(event_valid_name(ev.order_id, strlen(ev.order_id),
			    EVENT_ORDER_ID_MAX), "rejectable without an order id");
		}
		if (ev.order_id[0] != '\0')
			FUZZ_ASSERT(event_valid_name(ev.order_id, strlen(ev.order_id),
			    EVENT_ORDER_ID_MAX), "a bad order id kept: '%s'", ev.order_id);
	}
	if (decoded != NULL)
		*decoded = e == 0;
	if (order_id != NULL)
		memcpy(order_id, ev.order_id, EVENT_ORDER_ID_MAX + 1);
	event_free(&ev);
}

/* A stored items array, as the journal hands it back. */
static void
fuzz_lines_from_json(const uint8_t *data, size_t size)
{
	struct saga_line lines[SAGA_MAX_LINES];
	char *s = xstrndup((const char *)data, size);
	json_t *items;
	int nlines = -1;

	if (event_lines_from_json(s, lines, &nlines) == 0) {
		int64_t total;
		size_t nraw;

		items = json_loads(s, 0, NULL);
		FUZZ_ASSERT(items != NULL && json_is_array(items), "accepted non-array");
		fuzz_raw_items(items, &nraw, &total);
		fuzz_check_lines(lines, nlines, nraw, total, "stored");
		json_decref(items);
	} else {
		FUZZ_ASSERT(nlines >= 0 && nlines <= SAGA_MAX_LINES, "refused with %d lines",
		    nlines);
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char order_id[EVENT_ORDER_ID_MAX + 1];
	bool decoded;
	size_t n;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		fuzz_decode(data + 1, size - 1, NULL, 0, &decoded, order_id);
		FUZZ_ASSERT(!decoded, "decoded without a key");
		if (order_id[0] != '\0')
			fuzz_decode(data + 1, size - 1, order_id, strlen(order_id), NULL, NULL);
		break;
	case 1:
		fuzz_decode(data + 1, size - 1, "o-1", 3, NULL, NULL);
		break;
	case 2:
		if (size < 2)
			break;
		n = data[1] < size - 2 ? data[1] : size - 2;
		fuzz_decode(data + 2 + n, size - 2 - n, (const char *)data + 2, n, NULL, NULL);
		break;
	case 3:
		fuzz_decode(data + 1, size - 1, NULL, 0, &decoded, NULL);
		FUZZ_ASSERT(!decoded, "decoded without a key");
		fuzz_decode(data + 1, size - 1, "", 0, &decoded, NULL);
		FUZZ_ASSERT(!decoded, "decoded with an empty key");
		break;
	default:
		fuzz_lines_from_json(data + 1, size - 1);
		break;
	}
	return 0;
}
