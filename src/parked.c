/* parked.c: parked-event expiry: an event parked longer than [saga] parked_max_age_ms for an order that never arrived goes to the DLQ, out of the inbox's parked and the engine's waiters. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>

#include "config.h"
#include "engine_int.h"
#include "journal.h"
#include "log.h"
#include "util.h"

#define PARKED_TICK_MS 1000	/* how often the oldest parked event is looked at */
#define PARKED_PER_TICK 1000	/* events handled per pass: the rest next tick */
#define PARKED_REASON "order never arrived"

/*
 * The parked events are kept in memory in a FIFO by received_at, not
 * found by scanning the journal: the only index that reaches them,
 * inbox_unapplied, is by order id, so a scan would read every parked row
 * once a second, and the point of expiry is that there may be many of them
 * (whoever can write the payments topic can park events at will).  The
 * FIFO costs a pass O(expired) and one line of memory per parked event,
 * which the journal holds anyway; it is filled as events are parked
 * (engine.c) and rebuilt from the journal at every assignment
 * (parked_load), with each event's own received_at, so a restart keeps
 * their age.  Only events of orders not created are in it: an order that
 * is created takes its events out (parked_forget), they wait for its steps
 * then, not for the clock.
 */
struct parked_event {
	struct parked_event *prev, *next;	/* the FIFO, oldest first (utlist) */
	struct parked_event *oprev, *onext;	/* its order's */
	struct parked_order *po;
	int64_t received_at;
	int32_t partition;
	char event_id[EVENT_ID_MAX + 1];
};

/* An order not created yet with events in the FIFO. */
struct parked_order {
	UT_hash_handle hh;
	char order_id[EVENT_ORDER_ID_MAX + 1];
	struct parked_event *events;
	int n;
};

/* Takes pe out of the FIFO and its order (the order too when it was its
 * last) and frees it; returns whether its order has none left. */
static bool
parked_drop(struct engine *e, struct parked_event *pe)
{
	struct parked_order *po = pe->po;
	bool last;

	DL_DELETE(e->parked_head, pe);
	DL_DELETE2(po->events, pe, oprev, onext);
	free(pe);
	e->stats.parked_pending--;
	last = --po->n == 0;
	if (last) {
		HASH_DEL(e->parked_orders, po);
		free(po);
	}
	return last;
}

void
parked_note(struct engine *e, const char *order_id, const char *event_id, int32_t partition,
    int64_t received_at)
{
	struct parked_order *po;
	struct parked_event *pe = xcalloc(1, sizeof(*pe));

	HASH_FIND_STR(e->parked_orders, order_id, po);
	if (po == NULL) {
		po = xcalloc(1, sizeof(*po));
		snprintf(po->order_id, sizeof(po->order_id), "%s", order_id);
		HASH_ADD_STR(e->parked_orders, order_id, po);
	}
	snprintf(pe->event_id, sizeof(pe->event_id), "%s", event_id);
	pe->partition = partition;
	pe->received_at = received_at;
	pe->po = po;
	po->n++;
	DL_APPEND2(po->events, pe, oprev, onext);
	/* Events are parked as they arrive, so appending keeps the order; a
	 * wall clock set back puts one a little early, which only delays the
	 * events behind it until it is due. */
	DL_APPEND(e->parked_head, pe);
	e->stats.parked_pending++;
}

void
parked_forget(struct engine *e, const char *order_id)
{
	struct parked_order *po;

	HASH_FIND_STR(e->parked_orders, order_id, po);
	if (po == NULL)
		return;
	while (!parked_drop(e, po->events))
		;
}

void
parked_free(struct engine *e)
{
	while (e->parked_head != NULL)
		parked_drop(e, e->parked_head);
}

static int
parked_load_one(const char *order_id, const char *event_id, int32_t partition,
    int64_t received_at, void *arg)
{
	parked_note(arg, order_id, event_id, partition, received_at);
	return 0;
}

int
parked_load(struct engine *e)
{
	parked_free(e);
	return journal_parked_events(e->j, parked_load_one, e);
}

/* One expired event: to the DLQ as an undecodable one goes (dlq row and
 * DeadLetter outbox row, its id "dlq:topic:partition:offset", so a replay
 * is recognisable), its inbox row ignored (a redelivery is still a
 * duplicate), and its order's changelog record written again. */
static void
parked_expire_one(struct engine *e, const char *order_id, const struct journal_inbox_row *r)
{
	struct dead_letter d = { r->topic, r->partition, r->offset, order_id, strlen(order_id),
	    r->payload, r->payload_len };

	outputs_dead_letter(e, &d, PARKED_REASON, NULL, false, r->traceparent);
	JCHECK(e, "updating the inbox", journal_inbox_set_status(e->j, order_id, r->event_id,
	    "ignored", e->now));
	/* The record of an order not created carries its parked events: the
	 * next one lists this one among the events seen, not parked. */
	offsets_mark(e, order_id, r->partition);
	e->stats.parked_expired++;
	log_msg(LOG_LEVEL_INFO, "engine", order_id, "%s %s parked since %lld: %s, to the DLQ",
	    r->type, r->event_id, (long long)r->received_at, PARKED_REASON);
}

int
parked_expire(struct engine *e, int64_t cutoff, int limit)
{
	int expired = 0, n = 0;

	if (e->parked_head == NULL || e->parked_head->received_at > cutoff)
		return 0;
	engine_begin(e);
	while (n < limit && e->parked_head != NULL && e->parked_head->received_at <= cutoff) {
		struct parked_event *pe = e->parked_head;
		char order_id[EVENT_ORDER_ID_MAX + 1];
		struct journal_inbox_row *row = NULL;
		int found = 0;

		n++;
		snprintf(order_id, sizeof(order_id), "%s", pe->po->order_id);
		/* A partition owned elsewhere now: its owner expires it (an
		 * assignment that gives it back loads it again). */
		if (ownership_owns(e, pe->partition)) {
			found = journal_parked_get(e->j, order_id, pe->event_id, &row);
			if (found < 0)
				engine_journal_fatal(e, "reading a parked event", found);
		}
		/* Not found: no longer parked (a restore replaced it). */
		if (found > 0)
			parked_expire_one(e, order_id, row);
		journal_inbox_rows_free(row, found > 0 ? 1 : 0);
		/* The order has nothing else parked: nothing for it waits. */
		if (parked_drop(e, pe) && found > 0)
			engine_waiter_forget(e, order_id);
		expired += found > 0;
	}
	engine_commit(e);
	return expired;
}

static void
parked_cb(uv_timer_t *t)
{
	struct engine *e = t->data;

	/* A revocation waits for the work under way to finish: none is added. */
	if (e->stopping || e->revoking)
		return;
	parked_expire(e, util_now_ms() - e->cf->saga_parked_max_age_ms, PARKED_PER_TICK);
}

void
parked_start(struct engine *e)
{
	uv_timer_start(&e->parked_timer, parked_cb, PARKED_TICK_MS, PARKED_TICK_MS);
}
