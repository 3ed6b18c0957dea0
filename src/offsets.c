/* offsets.c: when an input offset may be stored: a hold per consumed message, a mark per order at work, the records that linger. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>

#include "config.h"
#include "engine_int.h"
#include "event.h"
#include "journal.h"
#include "kafka.h"
#include "relay.h"
#include "saga.h"
#include "util.h"

#define OFFSETS_LINGER_TICK_MS 50	/* how often lingering records are looked at */

static void offsets_linger_cb(uv_timer_t *t);

/* The order's mark, made when missing. */
static struct order_mark *
offsets_mark_get(struct engine *e, const char *order_id, int32_t partition)
{
	struct order_mark *m;

	HASH_FIND_STR(e->marks, order_id, m);
	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		snprintf(m->order_id, sizeof(m->order_id), "%s", order_id);
		m->partition = -1;
		HASH_ADD_STR(e->marks, order_id, m);
	}
	if (partition >= 0)
		m->partition = partition;
	return m;
}

/* The order changed in the open transaction: at its end, if it is at rest,
 * its changelog record is written and its holds resolved. */
struct order_mark *
offsets_mark(struct engine *e, const char *order_id, int32_t partition)
{
	struct order_mark *m = offsets_mark_get(e, order_id, partition);

	if (!m->dirty) {
		m->dirty = true;
		m->dirty_next = e->dirty_head;
		e->dirty_head = m;
	}
	return m;
}

static struct tp_queue *
offsets_queue(struct engine *e, const char *topic, int32_t partition)
{
	char key[sizeof(((struct tp_queue *)0)->key)];
	struct tp_queue *q;

	snprintf(key, sizeof(key), "%d/%s", (int)partition, topic);
	HASH_FIND_STR(e->tps, key, q);
	if (q == NULL) {
		q = xcalloc(1, sizeof(*q));
		snprintf(q->key, sizeof(q->key), "%s", key);
		/* Our copy: librdkafka's name lives as long as its topic handle. */
		q->topic = strchr(q->key, '/') + 1;
		q->partition = partition;
		q->tail = &q->head;
		HASH_ADD_STR(e->tps, key, q);
	}
	return q;
}

/* A consumed message, last on its partition's queue: its offset waits. */
struct hold *
offsets_hold_new(struct engine *e, const char *topic, int32_t partition, int64_t offset)
{
	struct tp_queue *q = offsets_queue(e, topic, partition);
	struct hold *h = xcalloc(1, sizeof(*h));

	h->offset = offset;
	h->need = OFFSETS_HOLD_OPEN;
	*q->tail = h;
	q->tail = &h->next;
	return h;
}

/* After a message was applied: its hold waits for its order when the order
 * is not at rest, else it is resolved with this transaction. */
void
offsets_hold_attach(struct engine *e, struct hold *h, const char *order_id)
{
	struct order_mark *m = NULL;

	if (order_id != NULL && order_id[0] != '\0') {
		HASH_FIND_STR(e->marks, order_id, m);
		if (m == NULL && steps_in_flight(e, order_id))
			m = offsets_mark_get(e, order_id, -1);
	}
	if (m != NULL) {
		h->order_next = m->holds;
		m->holds = h;
	} else {
		h->order_next = e->resolved;
		e->resolved = h;
	}
}

/* The order's changelog record, into the outbox. */
static void
offsets_snapshot(struct engine *e, const struct order_mark *m)
{
	int64_t epoch, version = 0;
	char id[37];
	/* The row's version grew with its update in this transaction; an order
	 * touched otherwise (created, or a parked event) needs a bump of its own. */
	int err = m->bumped ? 0 : journal_order_bump(e->j, m->order_id);

	if (err == 0) {
		JCHECK_DUP(e, "writing a changelog record", journal_changelog_add(e->j,
		    m->order_id, e->cf->topic_state, e->now));
	} else if (err == -ENOENT) {
		/* Not created: what is parked for it, and what expired (so
		 * that a record after an expiry, parking nothing, replaces the
		 * one that still parked it), if anything. */
		JCHECK(e, "counting parked events", journal_parked_version(e->j, m->order_id,
		    &version));
		if (version == 0 || m->partition < 0)
			return;
		epoch = ownership_epoch(e, m->partition);
		event_state_id(id, m->order_id, epoch, version);
		err = journal_changelog_add_parked(e->j, m->order_id, e->cf->topic_state, id,
		    e->now, m->partition, epoch, version);
		if (err == -EEXIST)
			return;
		JCHECK(e, "writing a changelog record", err);
	} else {
		engine_journal_fatal(e, "bumping an order's version", err);
	}
	e->outbox_added = true;
}

/*
 * Whether the record of an order at rest waits a little: an order RESERVED
 * waits for its payment, which usually comes within milliseconds and puts
 * it in flight again, so its record would be replaced by the next one at
 * once.  Waiting saves a record (a journal row, a message, a mark) per order.
 * It delays only the offsets of the order's messages (their holds resolve
 * with the record), never an output; a crash meanwhile is the same as a
 * crash before the record: the messages come again from Kafka.
 */
static bool
offsets_linger(const struct engine *e, const struct order_mark *m)
{
	int64_t linger = e->cf->saga_state_record_linger_ms;

	return linger > 0 && !e->flush_marks && e->cf->topic_state[0] != '\0' &&
	    m->state == SAGA_RESERVED && e->now - m->rest_at < linger;
}

/* Puts every lingering mark whose time is up (every one with force) back on
 * the dirty list of a transaction of its own: offsets_close_marks writes their
 * records.  Returns whether there was any. */
bool
offsets_linger_flush(struct engine *e, bool force)
{
	int64_t linger = e->cf->saga_state_record_linger_ms;
	struct order_mark *m, *next;

	/* Oldest first: the head tells whether anything is due. */
	if (e->linger_head == NULL || e->j == NULL ||
	    (!force && util_now_ms() - e->linger_head->rest_at < linger))
		return false;
	engine_begin(e);
	for (m = e->linger_head; m != NULL; m = next) {
		next = m->lnext;
		if (!force && e->now - m->rest_at < linger)
			break;
		offsets_mark(e, m->order_id, -1);
	}
	engine_commit(e);
	return true;
}

static void
offsets_linger_cb(uv_timer_t *t)
{
	struct engine *e = t->data;

	offsets_linger_flush(e, false);
	if (e->nlingering == 0)
		uv_timer_stop(t);
}

/* Before a commit: every order touched that is at rest gets its changelog
 * record (unless it lingers), and the holds of its messages are resolved.
 * Returns whether any hold was resolved in this transaction. */
bool
offsets_close_marks(struct engine *e)
{
	struct order_mark *m, *next;

	for (m = e->dirty_head; m != NULL; m = next) {
		next = m->dirty_next;
		m->dirty = false;
		m->dirty_next = NULL;
		if (m->lingering) {
			m->lingering = false;
			e->nlingering--;
			DL_DELETE2(e->linger_head, m, lprev, lnext);
		}
		if (steps_in_flight(e, m->order_id)) {
			m->bumped = false;
			m->rest_at = 0;
			continue;
		}
		if (m->rest_at == 0)
			m->rest_at = e->now;
		if (offsets_linger(e, m)) {
			/* Its row's version bump is left unused: a record in a
			 * later transaction bumps it again. */
			m->bumped = false;
			m->lingering = true;
			e->nlingering++;
			DL_APPEND2(e->linger_head, m, lprev, lnext);
			if (!uv_is_active((uv_handle_t *)&e->linger_timer))
				uv_timer_start(&e->linger_timer, offsets_linger_cb,
				    OFFSETS_LINGER_TICK_MS, OFFSETS_LINGER_TICK_MS);
			continue;
		}
		if (e->cf->topic_state[0] != '\0')
			offsets_snapshot(e, m);
		while (m->holds != NULL) {
			struct hold *h = m->holds;

			m->holds = h->order_next;
			h->order_next = e->resolved;
			e->resolved = h;
		}
		HASH_DEL(e->marks, m);
		free(m);
	}
	e->dirty_head = NULL;
	return e->resolved != NULL;
}

/* After the commit: the holds resolved in it wait for every row up to
 * need, the last one in the outbox then: a little more than these messages
 * caused, never less. */
void
offsets_resolve(struct engine *e, int64_t need)
{
	for (struct hold *h = e->resolved; h != NULL; h = h->order_next)
		h->need = need;
	e->resolved = NULL;
}

/* Takes off q the holds at its head whose outputs are all acknowledged
 * (their need at most acked): returns the offset of the last one, the one
 * to store, or -1 when the head still waits. */
int64_t
offsets_take(struct tp_queue *q, int64_t acked)
{
	struct hold *h;
	int64_t last = -1;

	while ((h = q->head) != NULL && h->need != OFFSETS_HOLD_OPEN && h->need <= acked) {
		q->head = h->next;
		if (q->head == NULL)
			q->tail = &q->head;
		last = h->offset;
		free(h);
	}
	return last;
}

/* Stores the offset of every partition up to its first message whose
 * outputs are not all acknowledged yet. */
void
offsets_release(struct engine *e)
{
	int64_t acked = e->relay != NULL ? relay_acked_through(e->relay) : 0;
	struct tp_queue *q, *tmp;

	HASH_ITER(hh, e->tps, q, tmp) {
		int64_t last = offsets_take(q, acked);

		if (last >= 0 && e->consumer != NULL)
			kafka_store_offset(e->consumer, q->topic, q->partition, last);
	}
}

void
offsets_acked(void *arg)
{
	offsets_release(arg);
}

/* True when no consumed message waits for anything and no order is marked. */
bool
offsets_idle(const struct engine *e)
{
	const struct tp_queue *q, *tmp;

	if (e->marks != NULL)
		return false;
	HASH_ITER(hh, e->tps, q, tmp)
		if (q->head != NULL)
			return false;
	return e->resolved == NULL;
}

/* The partitions were revoked, their holds all released: their queues go. */
void
offsets_drop_queues(struct engine *e)
{
	struct tp_queue *q, *tmp;

	HASH_ITER(hh, e->tps, q, tmp) {
		HASH_DEL(e->tps, q);
		free(q);
	}
}

/* Holds and marks: all in memory only (the next start reads Kafka again). */
void
offsets_free(struct engine *e)
{
	struct tp_queue *q, *qt;
	struct order_mark *m, *mt;
	struct hold *h;

	HASH_ITER(hh, e->tps, q, qt) {
		while ((h = q->head) != NULL) {
			q->head = h->next;
			free(h);
		}
		HASH_DEL(e->tps, q);
		free(q);
	}
	HASH_ITER(hh, e->marks, m, mt) {
		HASH_DEL(e->marks, m);
		free(m);
	}
	e->dirty_head = NULL;
	e->linger_head = NULL;
	e->nlingering = 0;
	e->resolved = NULL;	/* those are in the queues, freed above */
}
