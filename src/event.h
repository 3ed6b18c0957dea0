/* event.h: the contract's event JSON: decoding and validating inputs, encoding outputs, deterministic ids. */
#ifndef ORDERD_EVENT_H
#define ORDERD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "saga.h"

#define EVENT_ID_MAX 128
#define EVENT_ORDER_ID_MAX 64
#define EVENT_VALUE_MAX (1024 * 1024)	/* larger values go to the DLQ */
#define EVENT_ERROR_MAX 256
#define EVENT_QTY_MAX 1000000

/* A decoded input event.  Strings point into root and live as long as it. */
struct event {
	enum saga_event type;
	const char *type_name;
	char event_id[EVENT_ID_MAX + 1];
	char order_id[EVENT_ORDER_ID_MAX + 1];
	json_t *root;			/* the whole object (owned) */
	/* OrderCreated */
	const char *customer_id;
	json_t *items;			/* the array as received (borrowed from root) */
	int nlines;			/* items summed per sku, in first-seen order */
	struct saga_line lines[SAGA_MAX_LINES];
	int64_t amount_cents;
	char currency[4];
	/* PaymentSucceeded */
	const char *payment_id;
	/* PaymentFailed, OrderCancellationRequested (optional there) */
	const char *reason;
};

/*
 * Decodes and validates one message value (and its Kafka key, which must
 * equal the order id).  Returns 0, or -EINVAL with a one-line reason in err
 * ("items[2].qty: 0 is out of range 1..1000000").  On -EINVAL, ev->event_id
 * and ev->order_id are filled when they themselves were valid (else empty),
 * and *rejectable is set for an OrderCreated whose envelope is good but
 * whose body is not, so the order can be answered with OrderRejected.
 * event_free must be called after either result.
 */
int event_decode(const void *value, size_t len, const void *key, size_t key_len,
    struct event *ev, bool *rejectable, char err[EVENT_ERROR_MAX]);
void event_free(struct event *ev);

/* The lines of a stored items array (as decoded: summed per sku). */
int event_lines_from_json(const char *items_json, struct saga_line *lines, int *nlines);

/* Lines as compact text, "sku qty;sku qty" (the orders.lines column): the
 * sku alphabet has neither space nor ';', so it reads back without JSON.
 * Returns the length, or -ENOSPC when buf is too small. */
int event_lines_format(const struct saga_line *lines, int nlines, char *buf, size_t len);
int event_lines_parse(const char *text, struct saga_line *lines, int *nlines);
#define EVENT_LINES_TEXT_MAX (SAGA_MAX_LINES * (SAGA_SKU_MAX + 24))

/* Checks the order id / sku alphabet of the contract: 1..max of [A-Za-z0-9._:-]. */
bool event_valid_name(const char *s, size_t len, size_t max);

/* The deterministic event id of an output: a name-based (SHA-1) UUID of the
 * order id, the output type and, for refunds, the payment id.  The same saga
 * step of the same order always gets the same id. */
void event_output_id(char out[37], const char *order_id, enum saga_output type,
    const char *payment_id);
/* The id of an order's changelog record (epoch, version): deterministic too. */
void event_state_id(char out[37], const char *order_id, int64_t epoch, int64_t version);

/* What an output says; fields not used by a type may be NULL / 0. */
struct event_output {
	enum saga_output type;
	const char *event_id;
	const char *order_id;
	int64_t occurred_ms;
	int64_t amount_cents;
	const char *currency;
	const char *customer_id;
	const char *payment_id;
	const char *items_json;		/* OrderConfirmed: the items array as stored */
	const char *reason;
	const char *sku;		/* OrderRejected out_of_stock */
};

/* Encodes an output event as compact JSON (caller frees), or NULL on a
 * malformed items_json. */
char *event_encode(const struct event_output *out);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds. */
void event_format_time(char out[32], int64_t ms);

#endif
