/* engine.c: the batch pipeline (decode, journal, saga, steps, outputs: journal first, then Redis, then the outbox) and the engine's lifecycle. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uthash.h>

#include "cluster.h"
#include "config.h"
#include "engine.h"
#include "engine_int.h"
#include "event.h"
#include "fault.h"
#include "inventory.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "relay.h"
#include "saga.h"
#include "util.h"

#define ENGINE_STEPS_HIGH 20000		/* pause consuming above this many steps in memory */

/* An order with events that wait (for its steps) or are parked (for its
 * OrderCreated): settling it looks for them in the journal, others skip. */
struct waiter {
	UT_hash_handle hh;
	char order_id[EVENT_ORDER_ID_MAX + 1];
};

/* A write to the journal failed: orderd cannot keep its promise without
 * it, so it stops; the next start replays the journal (nothing was acked). */
void
engine_journal_fatal(struct engine *e, const char *what, int err)
{
	journal_fatal(e->j, "engine", what, err);
}

void
engine_begin(struct engine *e)
{
	int err = journal_begin(e->j, "engine");

	if (err < 0)
		engine_journal_fatal(e, "begin", err);
	e->now = util_now_ms();
	e->outbox_added = false;
}

void
engine_commit(struct engine *e)
{
	int64_t t0, need = 0;
	int err;

	if (offsets_close_marks(e))
		JCHECK(e, "reading the outbox", journal_outbox_max_id(e->j, &need));
	t0 = util_mono_us();
	err = journal_commit(e->j);
	metrics_observe(&e->stats.commit_latency, util_mono_us() - t0);
	if (err < 0)
		engine_journal_fatal(e, "commit", err);
	offsets_resolve(e, need);
	if (e->outbox_added && e->relay != NULL)
		relay_kick(e->relay);
	offsets_release(e);
}

/* Loads an order; a missing one is SAGA_NONE with no lines. */
void
engine_order_load(struct engine *e, const char *order_id, struct order_ctx *oc)
{
	int err;

	memset(oc, 0, sizeof(*oc));
	snprintf(oc->order_id, sizeof(oc->order_id), "%s", order_id);
	oc->so.state = SAGA_NONE;
	oc->so.reason_line = -1;
	err = journal_order_get(e->j, order_id, &oc->row);
	if (err == -ENOENT) {
		oc->row.partition = -1;
		return;
	}
	if (err < 0)
		engine_journal_fatal(e, "reading an order", err);
	oc->exists = true;
	engine_order_parse(oc);
}

/* Fills the saga's view of an order from its row. */
void
engine_order_parse(struct order_ctx *oc)
{
	if (saga_state_parse(oc->row.state, &oc->so.state) < 0)
		log_fatal("engine", "order %s has an unknown state '%s' in the journal",
		    oc->order_id, oc->row.state);
	if (event_lines_parse(oc->row.lines ? oc->row.lines : "", oc->so.lines,
	    &oc->so.nlines) < 0)
		log_fatal("engine", "order %s has unreadable lines in the journal",
		    oc->order_id);
	oc->so.reason = SAGA_REASON_NONE;
	oc->so.reason_line = -1;
	if (oc->row.reason[0] != '\0')
		saga_reason_parse(oc->row.reason, &oc->so.reason);
	for (int i = 0; i < oc->so.nlines && oc->row.reason_sku[0]; i++)
		if (strcmp(oc->so.lines[i].sku, oc->row.reason_sku) == 0)
			oc->so.reason_line = i;
}

void
engine_order_done(struct order_ctx *oc)
{
	journal_order_release(&oc->row);
}

static void
engine_waiter_add(struct engine *e, const char *order_id)
{
	struct waiter *w;

	HASH_FIND_STR(e->waiters, order_id, w);
	if (w != NULL)
		return;
	w = xcalloc(1, sizeof(*w));
	snprintf(w->order_id, sizeof(w->order_id), "%s", order_id);
	HASH_ADD_STR(e->waiters, order_id, w);
}

static bool
engine_waiter_take(struct engine *e, const char *order_id)
{
	struct waiter *w;

	HASH_FIND_STR(e->waiters, order_id, w);
	if (w == NULL)
		return false;
	HASH_DEL(e->waiters, w);
	free(w);
	return true;
}

int
engine_waiter_load(const char *order_id, void *arg)
{
	engine_waiter_add(arg, order_id);
	return 0;
}

void
engine_waiter_forget(struct engine *e, const char *order_id)
{
	(void)engine_waiter_take(e, order_id);
}

bool
engine_waiter_has(struct engine *e, const char *order_id)
{
	struct waiter *w;

	HASH_FIND_STR(e->waiters, order_id, w);
	return w != NULL;
}

/*
 * Writes what a transition did: the order row, the intents of its steps
 * (returned as a new flight, to be sent after the commit), its output and
 * its deadline.  oc is updated to the new state.
 */
void
engine_effects(struct engine *e, struct order_ctx *oc, const struct saga_effects *fx,
    const struct event *ev, const char *cause_event_id, const char *traceparent)
{
	const char *payment_id = fx->record_payment && ev ? ev->payment_id : NULL;
	const char *reason_sku;

	enum saga_state prev_state = oc->so.state;
	enum saga_reason prev_reason = oc->so.reason;
	struct order_mark *m;

	if (fx->disposition != SAGA_APPLIED)
		return;
	m = offsets_mark(e, oc->order_id, oc->row.partition);
	m->state = fx->state;
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
		oc->row.lines = xmalloc(EVENT_LINES_TEXT_MAX);
		if (event_lines_format(oc->so.lines, oc->so.nlines, oc->row.lines,
		    EVENT_LINES_TEXT_MAX) < 0)
			log_fatal("engine", "order %s: lines do not fit", oc->order_id);
		if (traceparent != NULL)
			snprintf(oc->row.traceparent, sizeof(oc->row.traceparent), "%s",
			    traceparent);
		JCHECK(e, "adding an order", journal_order_insert(e->j, oc->order_id,
		    &oc->row, cause_event_id, e->now));
		oc->exists = true;
		/* Its parked events are drained now or after its steps: none expires. */
		parked_forget(e, oc->order_id);
	} else if (fx->state != prev_state || fx->reason != prev_reason || payment_id != NULL) {
		/* Settling commits or releases leaves the row as it is: no write. */
		int64_t epoch = ownership_epoch(e, oc->row.partition);
		int err = journal_order_update(e->j, oc->order_id, saga_state_name(fx->state),
		    payment_id, saga_reason_name(fx->reason), reason_sku, e->now,
		    ownership_owns(e, oc->row.partition) ? &epoch : NULL);

		JCHECK(e, "updating an order", err);
		m->bumped = err == 0;
		snprintf(oc->row.state, sizeof(oc->row.state), "%s", saga_state_name(fx->state));
		snprintf(oc->row.reason, sizeof(oc->row.reason), "%s", saga_reason_name(fx->reason));
		snprintf(oc->row.reason_sku, sizeof(oc->row.reason_sku), "%s",
		    reason_sku ? reason_sku : "");
		if (payment_id != NULL)
			snprintf(oc->row.payment_id, sizeof(oc->row.payment_id), "%s", payment_id);
	}
	if (fx->nsteps > 0) {
		struct flight *f = steps_flight_new(e, oc, fx->steps[0].kind, fx->nsteps,
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
		steps_list_send(e, f);
	}
	if (fx->output != SAGA_OUT_NONE)
		outputs_event(e, oc, fx->output, ev ? ev->payment_id : NULL, traceparent);
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
	if (!oc.exists && inbox != NULL)
		oc.row.partition = inbox->partition;
	if (!oc.exists && ev->type == SAGA_EV_ORDER_CREATED) {
		oc.so.nlines = ev->nlines;
		memcpy(oc.so.lines, ev->lines, (size_t)ev->nlines * sizeof(ev->lines[0]));
	}
	if (oc.exists)
		in_flight = steps_in_flight(e, ev->order_id);
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
		if (fx.disposition == SAGA_PARK) {
			e->stats.parked++;
			/* Its changelog record carries it to a new owner. */
			offsets_mark(e, ev->order_id, inbox->partition);
			parked_note(e, ev->order_id, ev->event_id, inbox->partition,
			    inbox->received_at);
		}
		if (fx.disposition == SAGA_PARK || fx.disposition == SAGA_WAIT)
			engine_waiter_add(e, ev->order_id);
	} else if (fx.disposition != SAGA_WAIT && fx.disposition != SAGA_PARK) {
		JCHECK(e, "updating the inbox", journal_inbox_set_status(e->j, ev->order_id, ev->event_id,
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
void
engine_drain_waiting(struct engine *e, const char *order_id)
{
	struct journal_inbox_row *rows;
	int n, i;

	if (!engine_waiter_take(e, order_id))
		return;
	n = journal_inbox_unapplied(e->j, order_id, &rows);
	if (n < 0)
		engine_journal_fatal(e, "reading waiting events", n);
	for (i = 0; i < n; i++) {
		struct event ev;
		char err[EVENT_ERROR_MAX];
		bool rejectable;

		if (event_decode(rows[i].payload, rows[i].payload_len, order_id,
		    strlen(order_id), &ev, &rejectable, err) < 0) {
			/* It was valid when it was journaled: the journal was changed
			 * (by hand, or by a version that reads events otherwise).
			 * Left waiting it would hold the order for ever (a payment
			 * lost that way ends in a timeout and no refund): it goes to
			 * the DLQ, out of the waiting, and the order goes on. */
			struct dead_letter d = { rows[i].topic, rows[i].partition,
			    rows[i].offset, order_id, strlen(order_id), rows[i].payload,
			    rows[i].payload_len };
			char why[EVENT_ERROR_MAX + 64];

			snprintf(why, sizeof(why), "journaled event no longer decodes: %s", err);
			log_msg(LOG_LEVEL_ERROR, "engine", order_id, "waiting event %s no "
			    "longer decodes (%s): to the DLQ", rows[i].event_id, err);
			event_free(&ev);
			outputs_dead_letter(e, &d, why, NULL, false, rows[i].traceparent);
			JCHECK(e, "updating the inbox", journal_inbox_set_status(e->j, order_id,
			    rows[i].event_id, "ignored", e->now));
			continue;
		}
		engine_apply(e, &ev, NULL, rows[i].traceparent);
		event_free(&ev);
		if (steps_in_flight(e, order_id))
			break;
	}
	/* Those after the one that started steps wait for them in turn. */
	if (i < n - 1)
		engine_waiter_add(e, order_id);
	journal_inbox_rows_free(rows, n);
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

void
engine_consume(struct engine *e, const struct engine_input *m)
{
	const char *topic = m->topic;
	const char *traceparent = m->traceparent;
	char err[EVENT_ERROR_MAX];
	struct event ev;
	bool rejectable;

	struct hold *h = offsets_hold_new(e, topic, m->partition, m->offset);

	if (event_decode(m->payload, m->len, m->key, m->key_len, &ev, &rejectable, err) < 0) {
		struct dead_letter d = { topic, m->partition, m->offset, m->key, m->key_len,
		    m->payload, m->len };

		outputs_dead_letter(e, &d, err, &ev, rejectable, traceparent);
		offsets_hold_attach(e, h, rejectable ? ev.order_id : NULL);
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
	offsets_hold_attach(e, h, ev.order_id);
	event_free(&ev);
}

static void
engine_consume_one(struct engine *e, const rd_kafka_message_t *m)
{
	char tpbuf[128];
	struct engine_input in = {
		.topic = rd_kafka_topic_name(m->rkt),
		.partition = m->partition,
		.offset = m->offset,
		.key = m->key,
		.key_len = m->key_len,
		.payload = m->payload,
		.len = m->len,
		.traceparent = engine_header(m, "traceparent", tpbuf, sizeof(tpbuf)),
	};

	engine_consume(e, &in);
}

void
engine_flow_control(struct engine *e)
{
	bool over = e->steps_in_memory > ENGINE_STEPS_HIGH;
	bool under = e->steps_in_memory < ENGINE_STEPS_HIGH / 2;

	if (e->consumer == NULL || e->stopping || e->revoking)
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
	/* Settling first, in the same transaction: one fsync for both, and the
	 * events of this batch see the orders' latest states. */
	settle_flights(e);
	for (size_t i = 0; i < n; i++) {
		/* Fetched before a revocation took its partition away: the
		 * owner reads it again from the committed offset. */
		if (!ownership_owns(e, msgs[i]->partition))
			continue;
		engine_consume_one(e, msgs[i]);
		if (i == n / 2)
			fault_at(FAULT_MID_BATCH);
	}
	engine_commit(e);
	fault_at(FAULT_AFTER_INTENT_COMMIT);
	e->stats.batches++;
	metrics_observe(&e->stats.batch_size, (int64_t)n);
	/* The offsets move when what the events caused is acknowledged
	 * (offsets_release), not at this commit. */
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(msgs[i]);
	steps_send(e);
	engine_flow_control(e);
}

/* Something orderd cannot go on with: its owner stops it (exit 1). */
void
engine_fatal(struct engine *e, const char *why)
{
	if (e->fatal_cb != NULL)
		e->fatal_cb(why, e->fatal_arg);
	else
		log_fatal("engine", "%s", why);
}

int
engine_check_topics(const struct config *cf, char **cause)
{
	const char *topics[] = { cf->topic_orders, cf->topic_payments, cf->topic_state,
	    cf->topic_payment_requests, cf->topic_order_events, cf->topic_dlq };
	int n = cf->topic_state[0] != '\0' ? 6 : 2, parts[6], err;
	int po, pp;

	/* The broker may still be starting: wait for it a while.  The outputs
	 * are described too: a missing right shows now, not at the first
	 * order. */
	if (cf->topic_state[0] == '\0') {
		topics[2] = cf->topic_payment_requests;
		topics[3] = cf->topic_order_events;
		topics[4] = cf->topic_dlq;
		n = 5;
	}
	if ((err = kafka_check_access(cf, topics, n, parts, 30000, cause)) < 0)
		return err == -ETIMEDOUT ? -ETIMEDOUT : -EACCES;
	po = parts[0];
	pp = parts[1];
	if (po < 0 || pp < 0) {
		*cause = xasprintf("topic '%s': does not exist (create it, with as many "
		    "partitions as the other)", po < 0 ? cf->topic_orders : cf->topic_payments);
		return -EINVAL;
	}
	if (po != pp) {
		*cause = xasprintf("topics '%s' (%d partitions) and '%s' (%d partitions) must "
		    "have the same partition count: they are co-partitioned by order_id",
		    cf->topic_orders, po, cf->topic_payments, pp);
		return -EINVAL;
	}
	if (cf->topic_state[0] != '\0') {
		int ps = parts[2];

		if (ps < 0) {
			*cause = xasprintf("topic '%s' (the changelog, [topics] state): does not "
			    "exist (orderctl topics create makes it, compacted)", cf->topic_state);
			return -EINVAL;
		}
		if (ps != po) {
			*cause = xasprintf("topics '%s' (%d partitions) and '%s' (%d partitions) "
			    "must have the same partition count: an order's changelog record "
			    "goes to its partition", cf->topic_orders, po, cf->topic_state, ps);
			return -EINVAL;
		}
	}
	for (int i = n - 3; i < n; i++)
		if (parts[i] < 0)
			log_warn("engine", "output topic '%s' does not exist: its events wait in the "
			    "outbox until it does", topics[i]);
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
	uv_close((uv_handle_t *)&e->parked_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->retry_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->stop_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->check_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->revoke_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->linger_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->snapshot_timer, engine_handle_closed);
	uv_close((uv_handle_t *)&e->settle_check, engine_handle_closed);
}

/* The orders with waiting or parked events: the journal has them too. */
void
engine_waiters_free(struct engine *e)
{
	struct waiter *w, *wt;

	HASH_ITER(hh, e->waiters, w, wt) {
		HASH_DEL(e->waiters, w);
		free(w);
	}
}

static void
engine_finish(struct engine *e)
{
	uint64_t events = 0;

	for (int i = 0; i < SAGA_EV_COUNT; i++)
		events += e->stats.consumed[i];
	log_info("engine", "%llu events in %llu batches (%llu duplicates, %llu dead "
	    "letters), %llu steps; journal commits %llu, p50 %lld us, p99 %lld us, "
	    "%lld checkpoints; Lua calls p50 %lld us, p99 %lld us", (unsigned long long)events,
	    (unsigned long long)e->stats.batches, (unsigned long long)e->stats.duplicates,
	    (unsigned long long)e->stats.dead_letters, (unsigned long long)e->stats.steps_done,
	    (unsigned long long)e->stats.commit_latency.count,
	    (long long)metrics_quantile(&e->stats.commit_latency, 0.5),
	    (long long)metrics_quantile(&e->stats.commit_latency, 0.99),
	    (long long)journal_checkpoints(e->j),
	    (long long)metrics_quantile(&e->stats.redis_latency, 0.5),
	    (long long)metrics_quantile(&e->stats.redis_latency, 0.99));
	snapshot_stop(e);
	/* The relay first: its last acknowledgements store offsets, which
	 * the consumer commits as it leaves the group. */
	if (e->relay != NULL) {
		relay_close(e->relay, 5000);
		e->relay = NULL;
	}
	if (e->consumer != NULL) {
		kafka_close(e->consumer, 0);
		e->consumer = NULL;
	}
	uv_timer_stop(&e->deadline_timer);
	uv_timer_stop(&e->parked_timer);
	uv_timer_stop(&e->revoke_timer);
	uv_timer_stop(&e->linger_timer);
	uv_timer_stop(&e->retry_timer);
	uv_timer_stop(&e->stop_timer);
	uv_timer_stop(&e->check_timer);
	uv_check_stop(&e->settle_check);
	/* Flights still out are in the journal as intents: the next start
	 * sends them again.  Their callbacks end with -ECANCELED first. */
	if (e->redis != NULL) {
		struct cluster *r = e->redis;

		cluster_close(r, engine_redis_closed, e);
	} else {
		engine_redis_closed(e);
	}
	steps_free(e);
	engine_waiters_free(e);
	parked_free(e);
	offsets_free(e);
	ownership_free(e);
	snapshot_free(e);
	/* The journal is main()'s: it outlives the engine. */
	e->j = NULL;
}

static void
engine_stop_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	/* Steps that cannot finish (Redis away) are in the journal already:
	 * no reason to wait for them. */
	bool steps_done = e->stats.steps_in_flight == 0 || !e->redis_ready;
	bool quiet;

	/* Records still lingering go out before the relay is asked to be idle. */
	offsets_linger_flush(e, true);
	quiet = steps_done && e->settle_head == NULL &&
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
	e->flush_marks = true;
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
	/* Credential rotation: e->cf has the new ones already. */
	if (e->redis != NULL)
		cluster_set_auth(e->redis, e->cf->redis_user, e->cf->redis_secret);
	/* The calls sent from now on, on every node. */
	if (e->redis != NULL)
		cluster_set_timeout(e->redis, e->cf->redis_timeout_ms);
}

void
engine_set_fatal(struct engine *e, void (*fn)(const char *why, void *arg), void *arg)
{
	e->fatal_cb = fn;
	e->fatal_arg = arg;
}

const struct engine_snapshot *
engine_snapshot(const struct engine *e)
{
	return &e->snap;
}

void
engine_journal_options(const struct config *cf, struct journal_options *jo)
{
	memset(jo, 0, sizeof(*jo));
	jo->synchronous_full = cf->journal_synchronous_full;
	/* How long a writer waits for another process's lock (orderctl, a
	 * sqlite3 shell) before orderd stops: journal_fatal. */
	jo->busy_timeout_ms = 5000;
	jo->checkpoint_thread = true;
}

int
engine_new(struct engine **out, uv_loop_t *loop, struct config *cf, struct journal *j,
    char **cause)
{
	static const char *const consumer_defaults[] = {
		"auto.offset.reset", "earliest",
		"partition.assignment.strategy", "range",
		"client.id", "orderd",
		/* librdkafka prefetches up to 64 MiB by default; 8 MiB is a few
		 * thousand events ahead, and memory stays flat under overload. */
		"queued.max.messages.kbytes", "8192",
		/* A killed instance's partitions move after 10 s, not 45: its
		 * orders wait for the new owner that long. */
		"session.timeout.ms", "10000",
		"heartbeat.interval.ms", "2000",
		NULL,
	};
	struct engine *e = xcalloc(1, sizeof(*e));
	struct cluster_options ro = {
		.cluster = cf->redis_cluster,
		.nodes = cf->redis_nodes,
		.host = cf->redis_host,
		.port = cf->redis_port,
		.timeout_ms = cf->redis_timeout_ms,
		.user = cf->redis_user,
		.password = cf->redis_secret,
		.refused_cb = steps_redis_refused,
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
	e->j = j;
	e->snap.stats = &e->stats;
	e->settle_tail = &e->settle_head;
	e->send_tail = &e->send_head;
	uv_timer_init(loop, &e->deadline_timer);
	uv_timer_init(loop, &e->parked_timer);
	uv_timer_init(loop, &e->retry_timer);
	uv_timer_init(loop, &e->stop_timer);
	uv_timer_init(loop, &e->check_timer);
	uv_timer_init(loop, &e->revoke_timer);
	uv_timer_init(loop, &e->linger_timer);
	uv_timer_init(loop, &e->snapshot_timer);
	uv_check_init(loop, &e->settle_check);
	e->deadline_timer.data = e->retry_timer.data = e->stop_timer.data = e;
	e->check_timer.data = e->settle_check.data = e->revoke_timer.data = e;
	e->linger_timer.data = e->snapshot_timer.data = e->parked_timer.data = e;
	e->open_handles = 9;

	/* The steps under way are resumed when the group assigns partitions:
	 * only those of the partitions this process gets (ownership_assign). */
	if ((err = inventory_read_scripts(scripts, cause)) < 0)
		goto fail;
	err = cluster_new(&e->redis, loop, &ro, scripts, steps_redis_state, e);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(scripts[i]);
	if (err < 0) {
		*cause = xasprintf("redis: %s", strerror(-err));
		goto fail;
	}
	if ((err = relay_new(&e->relay, loop, e->j, cf, cause)) < 0)
		goto fail;
	/* Nothing goes out before the assignment says which rows are ours. */
	relay_hold(e->relay, true);
	relay_set_ack_cb(e->relay, offsets_acked, e);
	conf = kafka_conf_new(cf, consumer_defaults, forced, cause);
	if (conf == NULL) {
		err = -EINVAL;
		goto fail;
	}
	if ((err = kafka_consumer_new(&e->consumer, loop, conf, topics, 2,
	    (size_t)cf->consumer_batch_max, engine_on_batch, ownership_rebalance, e, cause)) < 0)
		goto fail;
	uv_check_start(&e->settle_check, settle_cb);
	deadlines_start(e);
	parked_start(e);
	snapshot_start(e);
	log_info("engine", "consuming %s and %s as group %s; journal %s", cf->topic_orders,
	    cf->topic_payments, cf->consumer_group, cf->journal_path);
	*out = e;
	return 0;
fail:
	e->stopping = true;
	engine_finish(e);
	return err;
}
