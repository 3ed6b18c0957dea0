/* outputs.c: what the pipeline writes to the outbox for others to read: a transition's output event, and a message that goes to the DLQ. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "engine_int.h"
#include "event.h"
#include "journal.h"
#include "log.h"
#include "saga.h"
#include "util.h"

#define OUTPUTS_DLQ_VALUE_MAX 4000000	/* under the relay's message.max.bytes */

/* Writes one output event to the outbox (a repeat of its id is a no-op). */
void
outputs_event(struct engine *e, const struct order_ctx *oc, enum saga_output type,
    const char *payment_id, const char *traceparent)
{
	struct event_output out = {
		.type = type,
		.order_id = oc->order_id,
		.occurred_ms = e->now,
		.amount_cents = oc->row.amount_cents,
		.currency = oc->row.currency,
		.customer_id = oc->row.customer_id,
		.payment_id = payment_id ? payment_id : oc->row.payment_id,
		.items_json = oc->row.items,
		.reason = saga_reason_name(oc->so.reason),
		.sku = NULL,
	};
	struct journal_outbox_row row = { 0 };
	char event_id[37];
	json_t *headers;
	char *payload, *hjson;

	if (type == SAGA_OUT_ORDER_REJECTED && oc->so.reason == SAGA_REASON_OUT_OF_STOCK)
		out.sku = oc->so.reason_line >= 0 ? oc->so.lines[oc->so.reason_line].sku :
		    oc->row.reason_sku[0] ? oc->row.reason_sku : NULL;
	event_output_id(event_id, oc->order_id, type, out.payment_id);
	out.event_id = event_id;
	payload = event_encode(&out);
	if (payload == NULL)
		log_fatal("engine", "order %s: cannot encode %s", oc->order_id,
		    saga_output_name(type));
	/* The relay adds event_id from its column; only other headers here. */
	if (traceparent != NULL && *traceparent) {
		headers = json_pack("{s:s}", "traceparent", traceparent);
		hjson = json_dumps(headers, JSON_COMPACT);
		json_decref(headers);
	} else {
		hjson = xstrdup("{}");
	}

	row.topic = type == SAGA_OUT_PAYMENT_REQUESTED || type == SAGA_OUT_REFUND_REQUESTED ?
	    e->cf->topic_payment_requests : e->cf->topic_order_events;
	row.key = oc->order_id;
	row.key_len = strlen(oc->order_id);
	row.event_id = event_id;
	row.order_id = oc->order_id;
	row.type = saga_output_name(type);
	row.headers = hjson;
	row.payload = payload;
	row.payload_len = strlen(payload);
	row.created_at = e->now;
	JCHECK_DUP(e, "adding to the outbox", journal_outbox_add(e->j, &row));
	e->outbox_added = true;
	log_msg(LOG_LEVEL_DEBUG, "saga", oc->order_id, "%s queued (%s)",
	    saga_output_name(type), event_id);
	free(payload);
	free(hjson);
}

/* A message that cannot be processed: journaled in dlq, its bytes go to
 * the DLQ topic with the reason in header "error"; an OrderCreated whose
 * envelope was good is answered with OrderRejected(invalid). */
void
outputs_dead_letter(struct engine *e, const struct dead_letter *m,
    const char *error, const struct event *ev, bool rejectable, const char *traceparent)
{
	const char *topic = m->topic;
	struct journal_outbox_row row = { 0 };
	char event_id[96], part[16], off[24];
	json_t *headers;
	char *hjson;
	int err;

	e->stats.dead_letters++;
	log_msg(LOG_LEVEL_WARN, "engine", ev && ev->order_id[0] ? ev->order_id : NULL,
	    "%s[%d]@%lld goes to the DLQ: %s", topic, (int)m->partition,
	    (long long)m->offset, error);
	err = journal_dlq_add(e->j, topic, m->partition, m->offset, m->key, m->key_len,
	    error, m->payload, m->len, e->now);
	if (err == -EEXIST)
		return;		/* that offset was parked before a crash */
	JCHECK(e, "parking a message", err);
	snprintf(event_id, sizeof(event_id), "dlq:%s:%d:%lld", topic, (int)m->partition,
	    (long long)m->offset);
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	headers = json_pack("{s:s, s:s, s:s, s:s}", "error", error,
	    "orderd.topic", topic, "orderd.partition", part, "orderd.offset", off);
	if (m->len > OUTPUTS_DLQ_VALUE_MAX) {
		char n[24];

		snprintf(n, sizeof(n), "%zu", m->len);
		json_object_set_new(headers, "orderd.truncated", json_string(n));
	}
	if (traceparent != NULL)
		json_object_set_new(headers, "traceparent", json_string(traceparent));
	hjson = json_dumps(headers, JSON_COMPACT);
	json_decref(headers);
	row.topic = e->cf->topic_dlq;
	row.key = m->key;
	row.key_len = m->key_len;
	row.event_id = event_id;
	row.type = "DeadLetter";
	row.headers = hjson;
	row.payload = m->payload ? m->payload : "";
	row.payload_len = m->len;
	if (m->len > OUTPUTS_DLQ_VALUE_MAX) {
		/* More than the relay may produce: the bytes stay in the journal's
		 * dlq table (orderctl dlq list), the topic gets the headers. */
		row.payload = "";
		row.payload_len = 0;
	}
	row.created_at = e->now;
	JCHECK_DUP(e, "adding to the outbox", journal_outbox_add(e->j, &row));
	e->outbox_added = true;
	free(hjson);

	if (rejectable && ev != NULL) {
		struct order_ctx oc;
		struct saga_effects fx;

		engine_order_load(e, ev->order_id, &oc);
		if (!oc.exists)
			oc.row.partition = m->partition;
		saga_apply(&oc.so, false, SAGA_EV_ORDER_INVALID, &fx);
		engine_effects(e, &oc, &fx, NULL, ev->event_id, traceparent);
		engine_order_done(&oc);
		/* A payment that came first now meets a rejected order: refund. */
		if (fx.disposition == SAGA_APPLIED)
			engine_drain_waiting(e, ev->order_id);
	}
}
