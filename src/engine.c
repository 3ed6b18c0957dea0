/* engine.c: orderd's core loop work: journal first, then Redis, then the outbox, for every batch of events. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "engine.h"
#include "event.h"
#include "fault.h"
#include "inventory.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"
#include "relay.h"
#include "saga.h"
#include "util.h"

#define ENGINE_STEPS_HIGH 50000		/* pause consuming above this many steps in memory */
#define ENGINE_DEADLINE_TICK_MS 250
#define ENGINE_DEADLINES_PER_TICK 256
#define ENGINE_RETRY_MS 1000		/* a step Redis answered with an error */
#define ENGINE_DLQ_VALUE_MAX 4000000	/* under the relay's message.max.bytes */

struct flight;

/* One Lua call of a transition. */
struct flight_step {
	struct flight *f;
	int64_t step_id;
	int line;
	char sku[SAGA_SKU_MAX + 1];
	int64_t qty;
	enum saga_step_result result;
	bool done;
	bool sent;
	int64_t sent_us;		/* when the Lua call went out */
};

/* The steps of one transition of one order: the order's next event waits
 * until all of them have their result. */
struct flight {
	struct flight *next;		/* on the engine's settle or send list */
	struct engine *e;
	char order_id[EVENT_ORDER_ID_MAX + 1];
	enum saga_step_kind kind;
	char *traceparent;		/* of the causing event, copied to outputs */
	bool listed;			/* on the send list */
	bool recovered;			/* rebuilt from the journal at start */
	int64_t created_us;		/* when its intents were written */
	int nsteps;
	int ndone;
	struct flight_step steps[];
};

struct adjustment {
	struct engine *e;
	char id[64];
};

struct engine {
	uv_loop_t *loop;
	struct config *cf;
	struct journal *j;
	struct redis *redis;
	struct kafka *consumer;
	struct relay *relay;
	uv_timer_t deadline_timer;
	uv_timer_t retry_timer;
	uv_timer_t stop_timer;
	uv_check_t settle_check;
	int open_handles;

	struct flight *settle_head, **settle_tail;
	struct flight *send_head, **send_tail;
	int64_t steps_in_memory;
	bool paused;
	bool outbox_added;

	int64_t now;			/* of the transaction being written */
	struct engine_stats stats;

	bool stopping;
	int64_t stop_deadline;
	void (*done)(void *arg);
	void *done_arg;
};

/* An order as the saga and the outputs need it. */
struct order_ctx {
	char order_id[EVENT_ORDER_ID_MAX + 1];
	bool exists;
	struct journal_order row;
	struct saga_order so;
};

static void engine_send(struct engine *e);
static void engine_retry_cb(uv_timer_t *t);

/* A write to the journal failed: orderd cannot keep its promise without
 * it, so it stops; the next start replays the journal (nothing was acked). */
static void
engine_journal_fatal(struct engine *e, const char *what, int err)
{
	journal_rollback(e->j);
	log_fatal("engine", "journal: %s: %s (%s)", what, strerror(-err),
	    journal_errmsg(e->j));
}

#define JCHECK(e, what, call) do { \
	int jc_err_ = (call); \
	if (jc_err_ < 0 && jc_err_ != -EEXIST) \
		engine_journal_fatal((e), (what), jc_err_); \
} while (0)

static void
engine_begin(struct engine *e)
{
	int err = journal_begin(e->j);

	if (err < 0)
		engine_journal_fatal(e, "begin", err);
	e->now = util_now_ms();
	e->outbox_added = false;
}

static void
engine_commit(struct engine *e)
{
	int64_t t0 = util_mono_us();
	int err = journal_commit(e->j);

	metrics_observe(&e->stats.commit_latency, util_mono_us() - t0);
	if (err < 0)
		engine_journal_fatal(e, "commit", err);
	if (e->outbox_added && e->relay != NULL)
		relay_kick(e->relay);
}

/* Loads an order; a missing one is SAGA_NONE with no lines. */
static void
engine_order_load(struct engine *e, const char *order_id, struct order_ctx *oc)
{
	int err;

	memset(oc, 0, sizeof(*oc));
	snprintf(oc->order_id, sizeof(oc->order_id), "%s", order_id);
	oc->so.state = SAGA_NONE;
	oc->so.reason_line = -1;
	err = journal_order_get(e->j, order_id, &oc->row);
	if (err == -ENOENT)
		return;
	if (err < 0)
		engine_journal_fatal(e, "reading an order", err);
	oc->exists = true;
	if (saga_state_parse(oc->row.state, &oc->so.state) < 0)
		log_fatal("engine", "order %s has an unknown state '%s' in the journal",
		    order_id, oc->row.state);
	if (oc->row.items != NULL && strcmp(oc->row.items, "[]") != 0 &&
	    event_lines_from_json(oc->row.items, oc->so.lines, &oc->so.nlines) < 0)
		log_fatal("engine", "order %s has unreadable items in the journal", order_id);
	if (oc->row.reason[0] != '\0')
		saga_reason_parse(oc->row.reason, &oc->so.reason);
	for (int i = 0; i < oc->so.nlines && oc->row.reason_sku[0]; i++)
		if (strcmp(oc->so.lines[i].sku, oc->row.reason_sku) == 0)
			oc->so.reason_line = i;
}

static void
engine_order_done(struct order_ctx *oc)
{
	journal_order_release(&oc->row);
}

static void
engine_list_send(struct engine *e, struct flight *f)
{
	if (f->listed)
		return;
	f->listed = true;
	f->next = NULL;
	*e->send_tail = f;
	e->send_tail = &f->next;
}

static struct flight *
engine_flight_new(struct engine *e, const struct order_ctx *oc,
    enum saga_step_kind kind, int nsteps, const char *traceparent)
{
	struct flight *f = xcalloc(1, sizeof(*f) + (size_t)nsteps * sizeof(f->steps[0]));

	f->e = e;
	f->created_us = util_mono_us();
	snprintf(f->order_id, sizeof(f->order_id), "%s", oc->order_id);
	f->kind = kind;
	f->nsteps = nsteps;
	f->traceparent = traceparent && *traceparent ? xstrdup(traceparent) : NULL;
	for (int i = 0; i < nsteps; i++)
		f->steps[i].f = f;
	e->steps_in_memory += nsteps;
	e->stats.steps_in_flight += nsteps;
	return f;
}

static void
engine_flight_free(struct engine *e, struct flight *f)
{
	e->steps_in_memory -= f->nsteps;
	e->stats.steps_in_flight -= f->nsteps;
	free(f->traceparent);
	free(f);
}

/* Writes one output event to the outbox (a repeat of its id is a no-op). */
static void
engine_output(struct engine *e, const struct order_ctx *oc, enum saga_output type,
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

	if (type == SAGA_OUT_ORDER_REJECTED && oc->so.reason == SAGA_REASON_OUT_OF_STOCK &&
	    oc->so.reason_line >= 0)
		out.sku = oc->so.lines[oc->so.reason_line].sku;
	event_output_id(event_id, oc->order_id, type, out.payment_id);
	out.event_id = event_id;
	payload = event_encode(&out);
	if (payload == NULL)
		log_fatal("engine", "order %s: cannot encode %s", oc->order_id,
		    saga_output_name(type));
	headers = json_pack("{s:s}", "event_id", event_id);
	if (traceparent != NULL && *traceparent)
		json_object_set_new(headers, "traceparent", json_string(traceparent));
	hjson = json_dumps(headers, JSON_COMPACT);
	json_decref(headers);

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
	JCHECK(e, "adding to the outbox", journal_outbox_add(e->j, &row));
	e->outbox_added = true;
	log_msg(LOG_LEVEL_DEBUG, "saga", oc->order_id, "%s queued (%s)",
	    saga_output_name(type), event_id);
	free(payload);
	free(hjson);
}

/*
 * Writes what a transition did: the order row, the intents of its steps
 * (returned as a new flight, to be sent after the commit), its output and
 * its deadline.  oc is updated to the new state.
 */
static void
engine_effects(struct engine *e, struct order_ctx *oc, const struct saga_effects *fx,
    const struct event *ev, const char *cause_event_id, const char *traceparent)
{
	const char *payment_id = fx->record_payment && ev ? ev->payment_id : NULL;
	const char *reason_sku;

	if (fx->disposition != SAGA_APPLIED)
		return;
	if (fx->state != oc->so.state && (unsigned)fx->state <= SAGA_CANCELLED)
		e->stats.sagas_by_state[fx->state]++;
	oc->so.state = fx->state;
	oc->so.reason = fx->reason;
	oc->so.reason_line = fx->reason_line;
	reason_sku = fx->reason_line >= 0 ? oc->so.lines[fx->reason_line].sku : NULL;
	if (!oc->exists) {
		/* The first event of an order: OrderCreated, valid or not. */
		snprintf(oc->row.state, sizeof(oc->row.state), "%s", saga_state_name(fx->state));
		snprintf(oc->row.reason, sizeof(oc->row.reason), "%s", saga_reason_name(fx->reason));
		if (ev != NULL && ev->customer_id != NULL) {
			snprintf(oc->row.customer_id, sizeof(oc->row.customer_id), "%s",
			    ev->customer_id);
			oc->row.amount_cents = ev->amount_cents;
			snprintf(oc->row.currency, sizeof(oc->row.currency), "%s", ev->currency);
			oc->row.items = json_dumps(ev->items, JSON_COMPACT | JSON_PRESERVE_ORDER);
		} else {
			oc->row.items = xstrdup("[]");
		}
		if (traceparent != NULL)
			snprintf(oc->row.traceparent, sizeof(oc->row.traceparent), "%s",
			    traceparent);
		JCHECK(e, "adding an order", journal_order_insert(e->j, oc->order_id,
		    &oc->row, cause_event_id, e->now));
		oc->exists = true;
	} else {
		JCHECK(e, "updating an order", journal_order_update(e->j, oc->order_id,
		    saga_state_name(fx->state), payment_id, saga_reason_name(fx->reason),
		    reason_sku, e->now));
		snprintf(oc->row.state, sizeof(oc->row.state), "%s", saga_state_name(fx->state));
		if (payment_id != NULL)
			snprintf(oc->row.payment_id, sizeof(oc->row.payment_id), "%s", payment_id);
	}
	if (fx->nsteps > 0) {
		struct flight *f = engine_flight_new(e, oc, fx->steps[0].kind, fx->nsteps,
		    traceparent);

		for (int i = 0; i < fx->nsteps; i++) {
			struct flight_step *s = &f->steps[i];
			const struct saga_line *l = &oc->so.lines[fx->steps[i].line];

			s->line = fx->steps[i].line;
			snprintf(s->sku, sizeof(s->sku), "%s", l->sku);
			s->qty = l->qty;
			JCHECK(e, "recording a step", journal_step_add(e->j, oc->order_id,
			    saga_step_name(f->kind), l->sku, l->qty, cause_event_id, e->now,
			    &s->step_id));
		}
		engine_list_send(e, f);
	}
	if (fx->output != SAGA_OUT_NONE)
		engine_output(e, oc, fx->output, ev ? ev->payment_id : NULL, traceparent);
	if (fx->deadline == SAGA_DEADLINE_SET)
		JCHECK(e, "setting a deadline", journal_deadline_set(e->j, oc->order_id,
		    e->now + e->cf->saga_payment_timeout_ms));
	else if (fx->deadline == SAGA_DEADLINE_CLEAR)
		JCHECK(e, "clearing a deadline", journal_deadline_clear(e->j, oc->order_id));
	log_msg(LOG_LEVEL_DEBUG, "saga", oc->order_id, "-> %s%s%s",
	    saga_state_name(fx->state), fx->nsteps ? ", steps: " : "",
	    fx->nsteps ? saga_step_name(fx->steps[0].kind) : "");
}

static const char *
engine_disposition_status(enum saga_disposition d)
{
	switch (d) {
	case SAGA_APPLIED:
		return "applied";
	case SAGA_WAIT:
		return "waiting";
	case SAGA_PARK:
		return "parked";
	default:
		return "ignored";
	}
}

/*
 * Applies one decoded event inside the open transaction.  A fresh event is
 * added to the inbox (a duplicate event id changes nothing); a replayed
 * waiting one has its inbox status updated.  Returns the disposition, or
 * -EEXIST for a duplicate.
 */
static int
engine_apply(struct engine *e, const struct event *ev, const struct journal_event *inbox,
    const char *traceparent)
{
	struct order_ctx oc;
	struct saga_effects fx;
	int in_flight = 0;

	engine_order_load(e, ev->order_id, &oc);
	if (!oc.exists && ev->type == SAGA_EV_ORDER_CREATED) {
		oc.so.nlines = ev->nlines;
		memcpy(oc.so.lines, ev->lines, (size_t)ev->nlines * sizeof(ev->lines[0]));
	}
	if (oc.exists) {
		in_flight = journal_order_in_flight(e->j, ev->order_id);
		if (in_flight < 0)
			engine_journal_fatal(e, "reading the steps of an order", in_flight);
	}
	saga_apply(&oc.so, in_flight > 0, ev->type, &fx);
	if (inbox != NULL) {
		struct journal_event row = *inbox;
		int err;

		row.status = engine_disposition_status(fx.disposition);
		err = journal_inbox_add(e->j, &row);
		if (err == -EEXIST) {
			e->stats.duplicates++;
			log_msg(LOG_LEVEL_DEBUG, "engine", ev->order_id,
			    "duplicate event %s dropped", ev->event_id);
			engine_order_done(&oc);
			return -EEXIST;
		}
		JCHECK(e, "adding to the inbox", err);
		e->stats.consumed[ev->type]++;
		if (fx.disposition == SAGA_PARK)
			e->stats.parked++;
	} else if (fx.disposition != SAGA_WAIT && fx.disposition != SAGA_PARK) {
		JCHECK(e, "updating the inbox", journal_inbox_set_status(e->j, ev->event_id,
		    engine_disposition_status(fx.disposition), e->now));
	}
	engine_effects(e, &oc, &fx, ev, ev->event_id, traceparent);
	engine_order_done(&oc);
	return fx.disposition;
}

/*
 * Applies the events that waited for this order, in arrival order, until
 * one of them starts steps again (the rest wait for those).
 */
static void
engine_drain_waiting(struct engine *e, const char *order_id)
{
	struct journal_inbox_row *rows;
	int n = journal_inbox_unapplied(e->j, order_id, &rows);

	if (n < 0)
		engine_journal_fatal(e, "reading waiting events", n);
	for (int i = 0; i < n; i++) {
		struct event ev;
		char err[EVENT_ERROR_MAX];
		bool rejectable;
		int in_flight;

		if (event_decode(rows[i].payload, rows[i].payload_len, order_id,
		    strlen(order_id), &ev, &rejectable, err) < 0) {
			/* It was valid when it was journaled: the journal is damaged. */
			log_error("engine", "waiting event %s no longer decodes: %s",
			    rows[i].event_id, err);
			event_free(&ev);
			continue;
		}
		engine_apply(e, &ev, NULL, rows[i].traceparent);
		event_free(&ev);
		in_flight = journal_order_in_flight(e->j, order_id);
		if (in_flight != 0)
			break;
	}
	journal_inbox_rows_free(rows, n);
}

/* A message that cannot be processed: journaled in dlq, its bytes go to
 * the DLQ topic with the reason in header "error"; an OrderCreated whose
 * envelope was good is answered with OrderRejected(invalid). */
static void
engine_dead_letter(struct engine *e, const rd_kafka_message_t *m, const char *topic,
    const char *error, const struct event *ev, bool rejectable, const char *traceparent)
{
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
	headers = json_pack("{s:s, s:s, s:s, s:s, s:s}", "error", error,
	    "event_id", event_id, "orderd.topic", topic, "orderd.partition", part,
	    "orderd.offset", off);
	if (m->len > ENGINE_DLQ_VALUE_MAX) {
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
	if (m->len > ENGINE_DLQ_VALUE_MAX) {
		/* More than the relay may produce: the bytes stay in the journal's
		 * dlq table (orderctl dlq list), the topic gets the headers. */
		row.payload = "";
		row.payload_len = 0;
	}
	row.created_at = e->now;
	JCHECK(e, "adding to the outbox", journal_outbox_add(e->j, &row));
	e->outbox_added = true;
	free(hjson);

	if (rejectable && ev != NULL) {
		struct order_ctx oc;
		struct saga_effects fx;

		engine_order_load(e, ev->order_id, &oc);
		saga_apply(&oc.so, false, SAGA_EV_ORDER_INVALID, &fx);
		engine_effects(e, &oc, &fx, NULL, ev->event_id, traceparent);
		engine_order_done(&oc);
		/* A payment that came first now meets a rejected order: refund. */
		if (fx.disposition == SAGA_APPLIED)
			engine_drain_waiting(e, ev->order_id);
	}
}

static const char *
engine_header(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
	rd_kafka_headers_t *hdrs;
	const void *v;
	size_t vlen;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, name, &v, &vlen) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    v == NULL || vlen == 0 || vlen >= len)
		return NULL;
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	/* A header goes into JSON and logs: keep it printable. */
	for (size_t i = 0; i < vlen; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return NULL;
	return buf;
}

static void
engine_consume_one(struct engine *e, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	char err[EVENT_ERROR_MAX], tpbuf[128];
	const char *traceparent = engine_header(m, "traceparent", tpbuf, sizeof(tpbuf));
	struct event ev;
	bool rejectable;

	if (event_decode(m->payload, m->len, m->key, m->key_len, &ev, &rejectable, err) < 0) {
		engine_dead_letter(e, m, topic, err, &ev, rejectable, traceparent);
		event_free(&ev);
		return;
	}
	struct journal_event inbox = {
		.event_id = ev.event_id,
		.topic = topic,
		.partition = m->partition,
		.offset = m->offset,
		.type = ev.type_name,
		.order_id = ev.order_id,
		.received_at = e->now,
		.traceparent = traceparent,
		.payload = m->payload,
		.payload_len = m->len,
	};
	engine_apply(e, &ev, &inbox, traceparent);
	event_free(&ev);
}

static void
engine_flow_control(struct engine *e)
{
	bool over = e->steps_in_memory > ENGINE_STEPS_HIGH;
	bool under = e->steps_in_memory < ENGINE_STEPS_HIGH / 2;

	if (e->consumer == NULL || e->stopping)
		return;
	if (!e->paused && over) {
		e->paused = true;
		kafka_pause(e->consumer, true);
		log_warn("engine", "%lld steps wait for Redis: consuming paused",
		    (long long)e->steps_in_memory);
	} else if (e->paused && under) {
		e->paused = false;
		kafka_pause(e->consumer, false);
		log_info("engine", "consuming resumed");
	}
}

/* One batch: one transaction, then the offsets, then the Lua calls. */
static void
engine_on_batch(rd_kafka_message_t **msgs, size_t n, void *arg)
{
	struct engine *e = arg;

	engine_begin(e);
	for (size_t i = 0; i < n; i++) {
		engine_consume_one(e, msgs[i]);
		if (i == n / 2)
			fault_at(FAULT_MID_BATCH);
	}
	engine_commit(e);
	fault_at(FAULT_AFTER_INTENT_COMMIT);
	e->stats.batches++;
	metrics_observe(&e->stats.batch_size, (int64_t)n);
	/* Only now may Kafka forget these events: the journal holds them. */
	for (size_t i = 0; i < n; i++) {
		bool last = true;

		for (size_t k = i + 1; k < n; k++)
			if (msgs[k]->rkt == msgs[i]->rkt && msgs[k]->partition == msgs[i]->partition)
				last = false;
		if (last)
			kafka_store_offset(e->consumer, rd_kafka_topic_name(msgs[i]->rkt),
			    msgs[i]->partition, msgs[i]->offset);
	}
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(msgs[i]);
	engine_send(e);
	engine_flow_control(e);
}

static void
engine_step_reply(redisReply *reply, int status, void *arg)
{
	struct flight_step *s = arg;
	struct flight *f = s->f;
	struct engine *e = f->e;
	enum saga_step_result res;

	s->sent = false;
	if (status < 0) {
		/* Timed out or disconnected: sent again once Redis is back. */
		if (status != -ECANCELED) {
			e->stats.redis_retries++;
			engine_list_send(e, f);
		}
		return;
	}
	if (reply->type != REDIS_REPLY_STATUS ||
	    saga_result_parse(reply->str, &res) < 0) {
		log_msg(LOG_LEVEL_ERROR, "redis", f->order_id, "%s of %s answered %s; retrying",
		    saga_step_name(f->kind), s->sku,
		    reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS ?
		    reply->str : "an unexpected reply");
		e->stats.redis_retries++;
		engine_list_send(e, f);
		if (!uv_is_active((uv_handle_t *)&e->retry_timer))
			uv_timer_start(&e->retry_timer, engine_retry_cb, ENGINE_RETRY_MS, 0);
		return;
	}
	if (s->done)
		return;
	s->done = true;
	s->result = res;
	metrics_observe(&e->stats.redis_latency, util_mono_us() - s->sent_us);
	metrics_observe(&e->stats.step_latency, util_mono_us() - f->created_us);
	e->stats.steps_done++;
	if (++f->ndone == f->nsteps) {
		f->next = NULL;
		*e->settle_tail = f;
		e->settle_tail = &f->next;
	}
}

/* Sends the calls of every flight on the send list (when Redis is up). */
static void
engine_send(struct engine *e)
{
	char prefix_keys[2][INVENTORY_KEY_MAX];
	char qty[24];

	while (e->send_head != NULL) {
		struct flight *f = e->send_head;
		enum inventory_script script = f->kind == SAGA_STEP_RESERVE ?
		    INVENTORY_RESERVE : f->kind == SAGA_STEP_COMMIT ?
		    INVENTORY_COMMIT : INVENTORY_RELEASE;

		if (e->redis == NULL || !redis_is_up(e->redis))
			return;
		for (int i = 0; i < f->nsteps; i++) {
			struct flight_step *s = &f->steps[i];
			const char *keys[2] = { prefix_keys[0], prefix_keys[1] };
			const char *args[2] = { f->order_id, qty };
			int err;

			if (s->done || s->sent)
				continue;
			inventory_key_stock(prefix_keys[0], sizeof(prefix_keys[0]),
			    e->cf->redis_prefix, s->sku);
			inventory_key_reservation(prefix_keys[1], sizeof(prefix_keys[1]),
			    e->cf->redis_prefix, s->sku, f->order_id);
			snprintf(qty, sizeof(qty), "%lld", (long long)s->qty);
			err = redis_eval(e->redis, script, 2, keys,
			    script == INVENTORY_RESERVE ? 2 : 1, args, engine_step_reply, s);
			if (err == -ENOTCONN)
				return;	/* stays listed; state_cb(true) sends again */
			if (err < 0)
				log_fatal("engine", "redis_eval: %s", strerror(-err));
			s->sent = true;
			s->sent_us = util_mono_us();
		}
		e->send_head = f->next;
		if (e->send_head == NULL)
			e->send_tail = &e->send_head;
		f->listed = false;
		f->next = NULL;
	}
}

/* Settles every flight whose steps all answered, in one transaction. */
static void
engine_settle_cb(uv_check_t *c)
{
	struct engine *e = c->data;
	struct flight *f, *next;

	if (e->settle_head == NULL)
		return;
	f = e->settle_head;
	e->settle_head = NULL;
	e->settle_tail = &e->settle_head;
	fault_at(FAULT_AFTER_REDIS);
	for (struct flight *r = f; r != NULL; r = r->next)
		if (r->recovered)
			fault_at(FAULT_DURING_RECOVERY);
	engine_begin(e);
	for (; f != NULL; f = next) {
		bool has[SAGA_MAX_LINES] = { false };
		enum saga_step_result res[SAGA_MAX_LINES];
		struct saga_effects fx;
		struct order_ctx oc;

		next = f->next;
		for (int i = 0; i < f->nsteps; i++) {
			struct flight_step *s = &f->steps[i];

			JCHECK(e, "recording a step result", journal_step_result(e->j,
			    s->step_id, saga_result_name(s->result), e->now));
			if (s->line >= 0 && s->line < SAGA_MAX_LINES) {
				has[s->line] = true;
				res[s->line] = s->result;
			}
			if ((f->kind == SAGA_STEP_COMMIT && s->result != SAGA_RES_COMMITTED) ||
			    (f->kind == SAGA_STEP_RELEASE && s->result != SAGA_RES_RELEASED &&
			    s->result != SAGA_RES_REJECTED))
				log_msg(LOG_LEVEL_ERROR, "saga", f->order_id,
				    "%s of %s answered %s: Redis lost this reservation "
				    "(see orderctl reconcile)", saga_step_name(f->kind), s->sku,
				    saga_result_name(s->result));
		}
		engine_order_load(e, f->order_id, &oc);
		saga_settle(&oc.so, f->kind, has, res, &fx);
		engine_effects(e, &oc, &fx, NULL, NULL, f->traceparent ? f->traceparent :
		    oc.row.traceparent);
		if (fx.nsteps == 0)
			engine_drain_waiting(e, f->order_id);
		engine_order_done(&oc);
		engine_flight_free(e, f);
	}
	engine_commit(e);
	engine_send(e);
	engine_flow_control(e);
}

static void
engine_deadline_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	char (*ids)[JOURNAL_ORDER_ID_MAX + 1];
	int n;

	if (e->stopping)
		return;
	ids = xmalloc(ENGINE_DEADLINES_PER_TICK * sizeof(*ids));
	n = journal_deadlines_due(e->j, util_now_ms(), ENGINE_DEADLINES_PER_TICK, ids);
	if (n < 0) {
		log_error("engine", "reading deadlines: %s", journal_errmsg(e->j));
		free(ids);
		return;
	}
	if (n == 0) {
		free(ids);
		return;
	}
	engine_begin(e);
	for (int i = 0; i < n; i++) {
		struct order_ctx oc;
		struct saga_effects fx;
		int in_flight;

		engine_order_load(e, ids[i], &oc);
		in_flight = journal_order_in_flight(e->j, ids[i]);
		if (in_flight < 0)
			engine_journal_fatal(e, "reading the steps of an order", in_flight);
		saga_apply(&oc.so, in_flight > 0, SAGA_EV_DEADLINE, &fx);
		if (fx.disposition != SAGA_WAIT) {
			JCHECK(e, "firing a deadline", journal_deadline_fired(e->j, ids[i], e->now));
			if (fx.disposition == SAGA_APPLIED) {
				e->stats.deadlines_fired++;
				log_msg(LOG_LEVEL_INFO, "saga", ids[i], "payment deadline passed");
			}
			engine_effects(e, &oc, &fx, NULL, NULL, oc.row.traceparent);
		}
		engine_order_done(&oc);
	}
	engine_commit(e);
	free(ids);
	engine_send(e);
}

static void
engine_retry_cb(uv_timer_t *t)
{
	engine_send(t->data);
}

static void
engine_adjustment_reply(redisReply *reply, int status, void *arg)
{
	struct adjustment *a = arg;
	struct engine *e = a->e;

	if (status == 0 && reply->type == REDIS_REPLY_ARRAY) {
		int err = journal_stock_adjustment_applied(e->j, a->id, util_now_ms());

		if (err < 0)
			log_error("engine", "stock adjustment %s: %s", a->id, journal_errmsg(e->j));
		else
			log_info("engine", "stock adjustment %s applied", a->id);
	} else if (status != -ECANCELED) {
		log_warn("engine", "stock adjustment %s not applied yet; orderctl or the "
		    "next start applies it", a->id);
	}
	free(a);
}

static int
engine_adjustment_one(const char *id, const char *sku, int64_t qty, void *arg)
{
	struct engine *e = arg;
	struct adjustment *a = xcalloc(1, sizeof(*a));
	char k1[INVENTORY_KEY_MAX], k2[INVENTORY_KEY_MAX], q[24];
	const char *keys[2] = { k1, k2 }, *args[2] = { id, q };

	a->e = e;
	snprintf(a->id, sizeof(a->id), "%s", id);
	inventory_key_stock(k1, sizeof(k1), e->cf->redis_prefix, sku);
	inventory_key_adds(k2, sizeof(k2), e->cf->redis_prefix, sku);
	snprintf(q, sizeof(q), "%lld", (long long)qty);
	if (redis_eval(e->redis, INVENTORY_STOCK_ADD, 2, keys, 2, args,
	    engine_adjustment_reply, a) < 0)
		free(a);
	return 0;
}

static void
engine_redis_state(bool up, void *arg)
{
	struct engine *e = arg;

	e->stats.redis_up = up;
	if (!up) {
		log_warn("engine", "Redis is down: steps wait, events are still journaled");
		return;
	}
	/* Stock added by an orderctl that could not reach Redis. */
	journal_stock_adjustments_unapplied(e->j, engine_adjustment_one, e);
	engine_send(e);
}

/* Recovery: every step whose intent has no result is sent again.  The
 * steps of one transition are consecutive rows of one order. */
struct recover_step {
	int64_t id;
	char order_id[EVENT_ORDER_ID_MAX + 1];
	enum saga_step_kind kind;
	char sku[SAGA_SKU_MAX + 1];
	int64_t qty;
};

struct recover_ctx {
	struct recover_step *v;
	size_t n, cap;
};

static int
engine_recover_collect(const struct journal_step *st, void *arg)
{
	struct recover_ctx *rc = arg;
	struct recover_step *r;

	if (rc->n == rc->cap) {
		rc->cap = rc->cap ? rc->cap * 2 : 64;
		rc->v = xrealloc(rc->v, rc->cap * sizeof(*rc->v));
	}
	r = &rc->v[rc->n++];
	r->id = st->id;
	snprintf(r->order_id, sizeof(r->order_id), "%s", st->order_id);
	if (saga_step_parse(st->kind, &r->kind) < 0)
		log_fatal("engine", "step %lld has an unknown kind '%s'", (long long)st->id,
		    st->kind);
	snprintf(r->sku, sizeof(r->sku), "%s", st->sku);
	r->qty = st->qty;
	return 0;
}

static int
engine_recover(struct engine *e, char **cause)
{
	struct recover_ctx rc = { NULL, 0, 0 };
	int64_t pending, published, oldest;
	int norders = 0, n;

	n = journal_steps_in_flight(e->j, engine_recover_collect, &rc);
	if (n < 0) {
		free(rc.v);
		*cause = xasprintf("reading steps in flight: %s", journal_errmsg(e->j));
		return n;
	}
	for (size_t i = 0; i < rc.n; ) {
		size_t k = i;
		struct order_ctx oc;
		struct flight *f;

		while (k < rc.n && strcmp(rc.v[k].order_id, rc.v[i].order_id) == 0 &&
		    rc.v[k].kind == rc.v[i].kind)
			k++;
		engine_order_load(e, rc.v[i].order_id, &oc);
		f = engine_flight_new(e, &oc, rc.v[i].kind, (int)(k - i),
		    oc.row.traceparent);
		for (size_t m = i; m < k; m++) {
			struct flight_step *s = &f->steps[m - i];

			s->step_id = rc.v[m].id;
			snprintf(s->sku, sizeof(s->sku), "%s", rc.v[m].sku);
			s->qty = rc.v[m].qty;
			s->line = -1;
			for (int l = 0; l < oc.so.nlines; l++)
				if (strcmp(oc.so.lines[l].sku, s->sku) == 0)
					s->line = l;
		}
		engine_order_done(&oc);
		f->recovered = true;
		engine_list_send(e, f);
		norders++;
		i = k;
	}
	free(rc.v);
	if (journal_outbox_stats(e->j, &pending, &published, &oldest) < 0)
		pending = 0;
	{
		char (*ids)[JOURNAL_ORDER_ID_MAX + 1] = xmalloc(1000 * sizeof(*ids));
		int due = journal_deadlines_due(e->j, util_now_ms(), 1000, ids);

		free(ids);
		log_info("engine", "recovered from the journal: %d steps in flight for %d "
		    "orders, %lld outbox rows to publish, %s%d payment deadlines passed",
		    n, norders, (long long)pending, due == 1000 ? "over " : "",
		    due < 0 ? 0 : due);
	}
	return 0;
}

static int
engine_check_topics(struct engine *e, char **cause)
{
	int64_t until = util_mono_us() + 30 * 1000000LL;
	int po, pp;

	/* The broker may still be starting: wait for it a while. */
	for (;;) {
		po = kafka_partition_count(e->consumer, e->cf->topic_orders, 5000);
		pp = kafka_partition_count(e->consumer, e->cf->topic_payments, 5000);
		if ((po != -ETIMEDOUT && po != -EIO && pp != -ETIMEDOUT && pp != -EIO) ||
		    util_mono_us() > until)
			break;
	}
	if (po < 0 || pp < 0) {
		*cause = xasprintf("topic '%s': %s", po < 0 ? e->cf->topic_orders :
		    e->cf->topic_payments, (po < 0 ? po : pp) == -ENOENT ?
		    "does not exist (create it, with as many partitions as the other)" :
		    "cannot read its metadata from the broker");
		return -EINVAL;
	}
	if (po != pp) {
		*cause = xasprintf("topics '%s' (%d partitions) and '%s' (%d partitions) must "
		    "have the same partition count: they are co-partitioned by order_id",
		    e->cf->topic_orders, po, e->cf->topic_payments, pp);
		return -EINVAL;
	}
	return 0;
}

static void
engine_handle_closed(uv_handle_t *h)
{
	struct engine *e = h->data;

	if (--e->open_handles > 0)
		return;
	{
		void (*done)(void *) = e->done;
		void *arg = e->done_arg;

		free(e);
		if (done != NULL)
			done(arg);
	}
}

static void
engine_redis_closed(void *arg)
{
	struct engine *e = arg;

	uv_close((uv_handle_t *)&e->deadline_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->retry_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->stop_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->settle_check, engine_handle_closed);
}

static void
engine_free_flights(struct engine *e)
{
	struct flight *f, *next;

	for (f = e->send_head; f != NULL; f = next) {
		next = f->next;
		engine_flight_free(e, f);
	}
	e->send_head = NULL;
	e->send_tail = &e->send_head;
	for (f = e->settle_head; f != NULL; f = next) {
		next = f->next;
		engine_flight_free(e, f);
	}
	e->settle_head = NULL;
	e->settle_tail = &e->settle_head;
}

static void
engine_finish(struct engine *e)
{
	if (e->consumer != NULL) {
		kafka_close(e->consumer, 0);
		e->consumer = NULL;
	}
	if (e->relay != NULL) {
		relay_close(e->relay, 5000);
		e->relay = NULL;
	}
	uv_timer_stop(&e->deadline_timer);
	uv_timer_stop(&e->retry_timer);
	uv_timer_stop(&e->stop_timer);
	uv_check_stop(&e->settle_check);
	/* Flights still out are in the journal as intents: the next start
	 * sends them again.  Their callbacks end with -ECANCELED first. */
	if (e->redis != NULL) {
		struct redis *r = e->redis;

		redis_close(r, engine_redis_closed, e);
	} else {
		engine_redis_closed(e);
	}
	engine_free_flights(e);
	journal_free(e->j);
	e->j = NULL;
}

static void
engine_stop_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	bool quiet = e->stats.steps_in_flight == 0 && e->settle_head == NULL &&
	    (e->relay == NULL || relay_idle(e->relay));

	if (quiet || util_now_ms() >= e->stop_deadline) {
		if (!quiet)
			log_warn("engine", "stopping with %lld steps in flight; the next "
			    "start resumes them", (long long)e->stats.steps_in_flight);
		uv_timer_stop(t);
		engine_finish(e);
	}
}

void
engine_stop(struct engine *e, int grace_ms, void (*done)(void *arg), void *arg)
{
	if (e->stopping)
		return;
	e->stopping = true;
	e->done = done;
	e->done_arg = arg;
	e->stop_deadline = util_now_ms() + grace_ms;
	if (e->consumer != NULL)
		kafka_pause(e->consumer, true);
	log_info("engine", "stopping: finishing in-flight steps and flushing the outbox");
	uv_timer_start(&e->stop_timer, engine_stop_cb, 0, 50);
}

void
engine_reload(struct engine *e, const struct config *next)
{
	(void)next;
	if (e->consumer != NULL)
		kafka_set_batch_max(e->consumer, (size_t)e->cf->consumer_batch_max);
}

const struct engine_stats *
engine_stats(const struct engine *e)
{
	((struct engine *)e)->stats.broker_down = kafka_brokers_down();
	return &e->stats;
}

struct journal *
engine_journal(struct engine *e)
{
	return e->j;
}

struct relay *
engine_relay(struct engine *e)
{
	return e->relay;
}

struct kafka *
engine_consumer(struct engine *e)
{
	return e->consumer;
}

int
engine_new(struct engine **out, uv_loop_t *loop, struct config *cf, char **cause)
{
	static const char *const consumer_defaults[] = {
		"auto.offset.reset", "earliest",
		"partition.assignment.strategy", "range",
		"client.id", "orderd",
		NULL,
	};
	struct engine *e = xcalloc(1, sizeof(*e));
	struct journal_options jo = {
		.synchronous_full = cf->journal_synchronous_full,
		.busy_timeout_ms = 5000,
	};
	struct redis_options ro = {
		.host = cf->redis_host,
		.port = cf->redis_port,
		.timeout_ms = cf->redis_timeout_ms,
	};
	char *scripts[INVENTORY_SCRIPT_COUNT] = { NULL };
	const char *forced[] = {
		"group.id", cf->consumer_group,
		/* An offset is stored only after the journal commit. */
		"enable.auto.offset.store", "false",
		"enable.auto.commit", "true",
		/* Static membership (last: NULL ends the list when unset): a
		 * restarted instance takes its partitions back at once instead
		 * of waiting out the dead member's session. */
		cf->consumer_instance_id[0] ? "group.instance.id" : NULL,
		cf->consumer_instance_id,
		NULL,
	};
	const char *topics[2] = { cf->topic_orders, cf->topic_payments };
	rd_kafka_conf_t *conf = NULL;
	int err;

	*out = NULL;
	e->loop = loop;
	e->cf = cf;
	e->settle_tail = &e->settle_head;
	e->send_tail = &e->send_head;
	uv_timer_init(loop, &e->deadline_timer);
	uv_timer_init(loop, &e->retry_timer);
	uv_timer_init(loop, &e->stop_timer);
	uv_check_init(loop, &e->settle_check);
	e->deadline_timer.data = e->retry_timer.data = e->stop_timer.data = e;
	e->settle_check.data = e;
	e->open_handles = 4;

	if ((err = journal_open(&e->j, cf->journal_path, &jo, cause)) < 0)
		goto fail;
	if ((err = engine_recover(e, cause)) < 0)
		goto fail;
	if ((err = inventory_read_scripts(scripts, cause)) < 0)
		goto fail;
	err = redis_new(&e->redis, loop, &ro, scripts, engine_redis_state, e);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(scripts[i]);
	if (err < 0) {
		*cause = xasprintf("redis: %s", strerror(-err));
		goto fail;
	}
	if ((err = relay_new(&e->relay, loop, e->j, cf, cause)) < 0)
		goto fail;
	conf = kafka_conf_new(cf, consumer_defaults, forced, cause);
	if (conf == NULL) {
		err = -EINVAL;
		goto fail;
	}
	if ((err = kafka_consumer_new(&e->consumer, loop, conf, topics, 2,
	    (size_t)cf->consumer_batch_max, engine_on_batch, e, cause)) < 0)
		goto fail;
	if ((err = engine_check_topics(e, cause)) < 0)
		goto fail;
	uv_check_start(&e->settle_check, engine_settle_cb);
	uv_timer_start(&e->deadline_timer, engine_deadline_cb, 0, ENGINE_DEADLINE_TICK_MS);
	log_info("engine", "consuming %s and %s as group %s; journal %s", cf->topic_orders,
	    cf->topic_payments, cf->consumer_group, cf->journal_path);
	*out = e;
	return 0;
fail:
	e->stopping = true;
	engine_finish(e);
	return err;
}
