/* event.c: decoding and validating the contract's input events, encoding its outputs. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "escape.h"
#include "event.h"
#include "util.h"

/* The namespace of orderd's name-based event ids (fixed forever: changing
 * it would make a re-published event look new). */
static const uuid_t event_namespace = {
	0x6f, 0x3b, 0x8c, 0x2e, 0x5d, 0x1a, 0x4c, 0x7e,
	0x9a, 0x40, 0x0b, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b,
};

static const struct {
	const char *name;
	enum saga_event type;
} event_types[] = {
	{ "OrderCreated", SAGA_EV_ORDER_CREATED },
	{ "OrderCancellationRequested", SAGA_EV_CANCEL_REQUESTED },
	{ "PaymentSucceeded", SAGA_EV_PAYMENT_SUCCEEDED },
	{ "PaymentFailed", SAGA_EV_PAYMENT_FAILED },
};

bool
event_valid_name(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
		    c == '-'))
			return false;
	}
	return true;
}

static int event_fail(char err[EVENT_ERROR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
event_fail(char err[EVENT_ERROR_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, EVENT_ERROR_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A JSON integer: jansson keeps 1 and 1.0 apart, and 1.0 is not a quantity. */
static int
event_get_int(json_t *obj, const char *field, const char *where, int64_t min,
    int64_t max, int64_t *out, char err[EVENT_ERROR_MAX])
{
	json_t *v = json_object_get(obj, field);

	if (v == NULL || json_is_null(v))
		return event_fail(err, "%s%s: missing", where, field);
	if (!json_is_integer(v))
		return event_fail(err, "%s%s: not an integer", where, field);
	*out = json_integer_value(v);
	if (*out < min || *out > max) {
		if (max == INT64_MAX)
			return event_fail(err, "%s%s: %lld is out of range (>= %lld)",
			    where, field, (long long)*out, (long long)min);
		return event_fail(err, "%s%s: %lld is out of range %lld..%lld", where,
		    field, (long long)*out, (long long)min, (long long)max);
	}
	return 0;
}

static int
event_get_string(json_t *obj, const char *field, bool required, size_t min,
    size_t max, const char **out, char err[EVENT_ERROR_MAX])
{
	json_t *v = json_object_get(obj, field);
	size_t len;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return required ? event_fail(err, "%s: missing", field) : 0;
	if (!json_is_string(v))
		return event_fail(err, "%s: not a string", field);
	len = json_string_length(v);
	if (len < min || len > max)
		return event_fail(err, "%s: length %zu is out of range %zu..%zu",
		    field, len, min, max);
	if (memchr(json_string_value(v), '\0', len) != NULL)
		return event_fail(err, "%s: contains a NUL character", field);
	*out = json_string_value(v);
	return 0;
}

/* Validates an items array and sums its lines per sku, in first-seen order. */
static int
event_items_lines(json_t *items, struct saga_line *lines, int *nlines,
    char err[EVENT_ERROR_MAX])
{
	size_t n;

	*nlines = 0;
	if (items == NULL || json_is_null(items))
		return event_fail(err, "items: missing");
	if (!json_is_array(items))
		return event_fail(err, "items: not an array");
	n = json_array_size(items);
	if (n < 1 || n > SAGA_MAX_LINES)
		return event_fail(err, "items: %zu lines is out of range 1..%d", n,
		    SAGA_MAX_LINES);
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(items, i), *sku;
		char where[32];
		int64_t qty;
		int line, err2;

		snprintf(where, sizeof(where), "items[%zu].", i);
		if (!json_is_object(item))
			return event_fail(err, "items[%zu]: not an object", i);
		sku = json_object_get(item, "sku");
		if (sku == NULL || json_is_null(sku))
			return event_fail(err, "%ssku: missing", where);
		if (!json_is_string(sku))
			return event_fail(err, "%ssku: not a string", where);
		if (!event_valid_name(json_string_value(sku), json_string_length(sku),
		    SAGA_SKU_MAX))
			return event_fail(err, "%ssku: must be 1..%d of [A-Za-z0-9._:-]",
			    where, SAGA_SKU_MAX);
		if ((err2 = event_get_int(item, "qty", where, 1, EVENT_QTY_MAX, &qty, err)) < 0)
			return err2;
		/* The same sku on several lines is one reservation of the sum. */
		for (line = 0; line < *nlines; line++)
			if (strcmp(lines[line].sku, json_string_value(sku)) == 0)
				break;
		if (line == *nlines) {
			snprintf(lines[line].sku, sizeof(lines[line].sku), "%s",
			    json_string_value(sku));
			lines[line].qty = 0;
			(*nlines)++;
		}
		lines[line].qty += qty;
	}
	return 0;
}

int
event_lines_from_json(const char *items_json, struct saga_line *lines, int *nlines)
{
	char err[EVENT_ERROR_MAX];
	json_t *items = json_loads(items_json ? items_json : "", 0, NULL);
	int e;

	*nlines = 0;
	if (items == NULL)
		return -EINVAL;
	e = event_items_lines(items, lines, nlines, err);
	json_decref(items);
	return e;
}

int
event_lines_format(const struct saga_line *lines, int nlines, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (int i = 0; i < nlines; i++) {
		int n = snprintf(buf + off, len - off, "%s%s %lld", i ? ";" : "",
		    lines[i].sku, (long long)lines[i].qty);

		if (n < 0 || (size_t)n >= len - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	return (int)off;
}

int
event_lines_parse(const char *text, struct saga_line *lines, int *nlines)
{
	const char *p = text;

	*nlines = 0;
	while (p != NULL && *p != '\0') {
		const char *sp = strchr(p, ' '), *end;
		char *qend;
		long long qty;

		if (sp == NULL || *nlines == SAGA_MAX_LINES ||
		    !event_valid_name(p, (size_t)(sp - p), SAGA_SKU_MAX))
			return -EINVAL;
		qty = strtoll(sp + 1, &qend, 10);
		if (qend == sp + 1 || (*qend != ';' && *qend != '\0') || qty < 1)
			return -EINVAL;
		memcpy(lines[*nlines].sku, p, (size_t)(sp - p));
		lines[*nlines].sku[sp - p] = '\0';
		lines[*nlines].qty = qty;
		(*nlines)++;
		end = qend;
		p = *end == ';' ? end + 1 : end;
	}
	return 0;
}

int
event_decode(const void *value, size_t len, const void *key, size_t key_len,
    struct event *ev, bool *rejectable, char err[EVENT_ERROR_MAX])
{
	json_error_t jerr;
	const char *s;
	json_t *v;
	int e;

	memset(ev, 0, sizeof(*ev));
	*rejectable = false;
	err[0] = '\0';
	if (value == NULL || len == 0)
		return event_fail(err, "empty value");
	if (len > EVENT_VALUE_MAX)
		return event_fail(err, "value of %zu bytes is larger than %d", len,
		    EVENT_VALUE_MAX);
	/* jansson checks UTF-8 and refuses NUL bytes inside strings by default. */
	ev->root = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
	if (ev->root == NULL) {
		/* jansson quotes the bytes it choked on: they are the sender's. */
		char *why = escape_str(jerr.text, 64);

		e = event_fail(err, "not JSON: %s (line %d, column %d)", why, jerr.line,
		    jerr.column);
		free(why);
		return e;
	}
	if (!json_is_object(ev->root))
		return event_fail(err, "not a JSON object");

	if ((e = event_get_string(ev->root, "event_id", true, 1, EVENT_ID_MAX, &s, err)) < 0)
		return e;
	snprintf(ev->event_id, sizeof(ev->event_id), "%s", s);
	v = json_object_get(ev->root, "order_id");
	if (v == NULL || json_is_null(v))
		return event_fail(err, "order_id: missing");
	if (!json_is_string(v))
		return event_fail(err, "order_id: not a string");
	if (!event_valid_name(json_string_value(v), json_string_length(v),
	    EVENT_ORDER_ID_MAX))
		return event_fail(err, "order_id: must be 1..%d of [A-Za-z0-9._:-]",
		    EVENT_ORDER_ID_MAX);
	snprintf(ev->order_id, sizeof(ev->order_id), "%s", json_string_value(v));

	if ((e = event_get_string(ev->root, "type", true, 1, 64, &s, err)) < 0)
		return e;
	ev->type_name = NULL;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(event_types); i++) {
		if (strcmp(event_types[i].name, s) == 0) {
			ev->type = event_types[i].type;
			ev->type_name = event_types[i].name;
		}
	}
	if (ev->type_name == NULL) {
		char *t = escape_str(s, 64);

		e = event_fail(err, "type: unknown type '%s'", t);
		free(t);
		return e;
	}
	/* Co-partitioning of orders and payments rests on key == order_id. */
	if (key == NULL || key_len == 0)
		return event_fail(err, "no message key (must be the order_id)");
	if (key_len != strlen(ev->order_id) || memcmp(key, ev->order_id, key_len) != 0)
		return event_fail(err, "message key does not match order_id '%s'",
		    ev->order_id);
	if (ev->type == SAGA_EV_ORDER_CREATED)
		*rejectable = true;

	v = json_object_get(ev->root, "version");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return event_fail(err, "version: not an integer >= 1");
	}
	if ((e = event_get_string(ev->root, "occurred_at", false, 1, 64, &s, err)) < 0)
		return e;

	switch (ev->type) {
	case SAGA_EV_ORDER_CREATED:
		if ((e = event_get_string(ev->root, "customer_id", true, 1, 256,
		    &ev->customer_id, err)) < 0)
			return e;
		ev->items = json_object_get(ev->root, "items");
		if ((e = event_items_lines(ev->items, ev->lines, &ev->nlines, err)) < 0)
			return e;
		if ((e = event_get_int(ev->root, "amount_cents", "", 0, INT64_MAX,
		    &ev->amount_cents, err)) < 0)
			return e;
		if ((e = event_get_string(ev->root, "currency", true, 3, 3, &s, err)) < 0)
			return e;
		for (int i = 0; i < 3; i++)
			if (s[i] < 'A' || s[i] > 'Z') {
				char *c = escape_str(s, 16);

				e = event_fail(err, "currency: '%s' is not 3 upper-case letters", c);
				free(c);
				return e;
			}
		memcpy(ev->currency, s, 4);
		break;
	case SAGA_EV_CANCEL_REQUESTED:
		if ((e = event_get_string(ev->root, "reason", false, 0, 1024,
		    &ev->reason, err)) < 0)
			return e;
		break;
	case SAGA_EV_PAYMENT_SUCCEEDED:
		if ((e = event_get_string(ev->root, "payment_id", true, 1, 128,
		    &ev->payment_id, err)) < 0)
			return e;
		break;
	case SAGA_EV_PAYMENT_FAILED:
		if ((e = event_get_string(ev->root, "reason", true, 0, 1024,
		    &ev->reason, err)) < 0)
			return e;
		break;
	default:
		return event_fail(err, "type: unknown type");
	}
	*rejectable = false;
	return 0;
}

void
event_free(struct event *ev)
{
	if (ev == NULL)
		return;
	json_decref(ev->root);
	ev->root = NULL;
	ev->items = NULL;
}

void
event_output_id(char out[37], const char *order_id, enum saga_output type,
    const char *payment_id)
{
	char name[EVENT_ORDER_ID_MAX + 256 + 64];
	uuid_t u;
	int n;

	n = snprintf(name, sizeof(name), "%s\n%s", order_id, saga_output_name(type));
	if (type == SAGA_OUT_REFUND_REQUESTED && payment_id != NULL)
		n = snprintf(name, sizeof(name), "%s\n%s\n%s", order_id,
		    saga_output_name(type), payment_id);
	if (n < 0 || (size_t)n >= sizeof(name))
		n = (int)sizeof(name) - 1;
	uuid_generate_sha1(u, event_namespace, name, (size_t)n);
	uuid_unparse_lower(u, out);
}

void
event_state_id(char out[37], const char *order_id, int64_t epoch, int64_t version)
{
	char name[EVENT_ORDER_ID_MAX + 64];
	uuid_t u;
	int n = snprintf(name, sizeof(name), "%s\nOrderState\n%lld\n%lld", order_id,
	    (long long)epoch, (long long)version);

	if (n < 0 || (size_t)n >= sizeof(name))
		n = (int)sizeof(name) - 1;
	uuid_generate_sha1(u, event_namespace, name, (size_t)n);
	uuid_unparse_lower(u, out);
}

void
event_format_time(char out[32], int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

char *
event_encode(const struct event_output *o)
{
	char when[32];
	json_t *root;
	char *s;

	event_format_time(when, o->occurred_ms);
	root = json_pack("{s:s, s:s, s:i, s:s, s:s}", "event_id", o->event_id,
	    "type", saga_output_name(o->type), "version", 1, "occurred_at", when,
	    "order_id", o->order_id);
	if (root == NULL)
		return NULL;
	switch (o->type) {
	case SAGA_OUT_PAYMENT_REQUESTED:
		json_object_set_new(root, "amount_cents", json_integer(o->amount_cents));
		json_object_set_new(root, "currency", json_string(o->currency));
		json_object_set_new(root, "customer_id", json_string(o->customer_id));
		break;
	case SAGA_OUT_REFUND_REQUESTED:
		json_object_set_new(root, "payment_id", json_string(o->payment_id));
		json_object_set_new(root, "amount_cents", json_integer(o->amount_cents));
		json_object_set_new(root, "reason", json_string(o->reason ? o->reason : ""));
		break;
	case SAGA_OUT_ORDER_CONFIRMED: {
		json_t *items = json_loads(o->items_json ? o->items_json : "", 0, NULL);

		if (items == NULL) {
			json_decref(root);
			return NULL;
		}
		json_object_set_new(root, "items", items);
		json_object_set_new(root, "payment_id", json_string(o->payment_id ?
		    o->payment_id : ""));
		break;
	}
	case SAGA_OUT_ORDER_REJECTED:
		json_object_set_new(root, "reason", json_string(o->reason ? o->reason : ""));
		if (o->sku != NULL)
			json_object_set_new(root, "sku", json_string(o->sku));
		break;
	case SAGA_OUT_ORDER_CANCELLED:
		json_object_set_new(root, "reason", json_string(o->reason ? o->reason : ""));
		break;
	default:
		json_decref(root);
		return NULL;
	}
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return s;
}
