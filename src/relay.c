/* relay.c: the outbox relay: reads unpublished rows in id order, produces them idempotently, marks them from delivery reports. */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "fault.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "relay.h"
#include "relay_int.h"
#include "util.h"

#define RELAY_PAGE 1000			/* rows read per journal query */
#define RELAY_IN_FLIGHT_MAX 10000	/* produced but not acknowledged */
#define RELAY_RETRY_MS 500		/* after a failed delivery or a full queue */
#define RELAY_MARK_DELAY_MS 10		/* gathers acknowledgements into one commit */
/* How often the relay asks whether another process (orderctl outbox retry
 * or drop) changed the journal: PRAGMA data_version, one cheap step. */
#define RELAY_CHECK_MS 1000

/*
 * A changelog record (type OrderState) says the order's outputs are out: a
 * new owner of its partition trusts it and never produces them again.  So
 * it is produced only once every row before it is acknowledged; outputs go
 * to other topics than the record, where the broker keeps no order
 * between them.
 */
#define RELAY_CHANGELOG_TYPE "OrderState"
/* Retention's changelog tombstone of an order it deleted: a record too (it
 * must not overtake the order's last record), produced with a null value
 * so that compaction drops the key. */
#define RELAY_TOMBSTONE_TYPE "OrderStateTombstone"

/* Why the last page stopped before its end. */
enum relay_stop {
	RELAY_STOP_NONE,
	RELAY_STOP_FULL,		/* librdkafka's queue is full */
	RELAY_STOP_SOLO,		/* a row to produce alone: wait for its report */
	RELAY_STOP_KILL,		/* a row produce refused for good: it dies */
};

struct relay_pending {
	struct relay_pending *next;
	struct journal_outbox_row row;	/* its strings and bytes are ours */
};

struct relay {
	uv_loop_t *loop;
	struct journal *j;
	struct kafka *producer;
	uv_timer_t fetch_timer;		/* coalesces kicks; also the retry timer */
	uv_timer_t mark_timer;		/* marks acknowledged rows in one transaction */
	uv_timer_t check_timer;		/* PRAGMA data_version every RELAY_CHECK_MS */
	int open_handles;
	struct relay_window w;		/* the cursor, the rows in flight, the rewind */
	bool more;			/* rows after the cursor may exist */
	bool fetch_scheduled;
	int64_t *acked;			/* ids acknowledged, not yet marked */
	size_t nacked, acked_cap;
	struct relay_snapshot snap;	/* published: relay_snapshot() */
	enum relay_stop stop;		/* why the last page stopped early */
	int64_t kill_id;		/* RELAY_STOP_KILL: the row, its topic, and why */
	char kill_topic[256];
	const char *kill_why;
	int64_t solo;			/* the row in flight alone (relay_window_solo); 0: none */
	int max_attempts;		/* [relay] max_attempts */
	/* Another connection committed (data_version moved): once nothing is
	 * in flight, go back to the lowest row to publish below the cursor (a
	 * row retried, or rows let go by a drop). */
	int64_t data_version;
	/* Some row is dead, so rows may be held behind it: the reads look
	 * (journal_outbox_pending).  Set by a death, and read from the journal
	 * at start and whenever another connection committed (a retry or a
	 * drop may have ended the last one). */
	bool any_dead;
	bool rescan;
	bool closing;
	bool held;			/* relay_hold(): nothing is read */
	/* Changelog records read but not produced yet: each waits until every
	 * row before it is acknowledged (relay_release). */
	struct relay_pending *pending_head, **pending_tail;
	size_t npending;
	void (*ack_fn)(void *arg);
	void *ack_arg;
};

static void relay_fetch_cb(uv_timer_t *t);

static void
relay_schedule(struct relay *r, uint64_t ms)
{
	if (r->closing)
		return;
	if (r->fetch_scheduled && ms > 0)
		return;
	r->fetch_scheduled = true;
	uv_timer_start(&r->fetch_timer, relay_fetch_cb, ms, 0);
}

static void
relay_pending_free(struct relay_pending *p)
{
	free((char *)p->row.topic);
	free((void *)p->row.key);
	free((char *)p->row.event_id);
	free((char *)p->row.order_id);
	free((char *)p->row.type);
	free((char *)p->row.headers);
	free((void *)p->row.payload);
	free(p);
}

static void
relay_pending_clear(struct relay *r)
{
	while (r->pending_head != NULL) {
		struct relay_pending *p = r->pending_head;

		r->pending_head = p->next;
		relay_pending_free(p);
	}
	r->pending_tail = &r->pending_head;
	r->npending = 0;
}

static void *
relay_dup(const void *p, size_t n)
{
	char *c = xmalloc(n + 1);

	if (n > 0)
		memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

static void
relay_pending_add(struct relay *r, const struct journal_outbox_row *row)
{
	struct relay_pending *p = xcalloc(1, sizeof(*p));

	p->row = *row;
	p->row.topic = relay_dup(row->topic, strlen(row->topic));
	p->row.key = row->key ? relay_dup(row->key, row->key_len) : NULL;
	p->row.event_id = relay_dup(row->event_id, strlen(row->event_id));
	p->row.order_id = row->order_id ? relay_dup(row->order_id, strlen(row->order_id)) : NULL;
	p->row.type = relay_dup(row->type, strlen(row->type));
	p->row.headers = row->headers ? relay_dup(row->headers, strlen(row->headers)) : NULL;
	p->row.payload = relay_dup(row->payload ? row->payload : "", row->payload_len);
	*r->pending_tail = p;
	r->pending_tail = &p->next;
	r->npending++;
}

static int relay_send(struct relay *r, const struct journal_outbox_row *row);
static void relay_kill(struct relay *r, int64_t id, const char *topic, const char *why);

/* Whether a produce error is the row's own and retrying cannot mend it
 * (kafka_produce: larger than the producer's message.max.bytes, a topic or
 * partition librdkafka knows does not exist). */
static bool
relay_produce_fatal(int err)
{
	return err == -EMSGSIZE || err == -ENOENT;
}

/*
 * Whether a delivery error is one retrying the row cannot mend: the broker
 * refuses this message (or its batch) as it is.  librdkafka has retried
 * whatever it could retry already (message.timeout.ms=0: for ever), so what
 * reaches the delivery report is its final word.  Authorization errors are
 * not here: they are about the principal, every row of the topic would
 * die, so orderd stops instead (kafka_fault) and nothing is lost.
 */
static bool
relay_err_permanent(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:	/* the topic's max.message.bytes */
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:		/* e.g. a compacted topic's null key */
	case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:	/* message.timestamp.*.max.ms */
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:		/* an invalid topic name */
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:		/* the topic is gone */
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:	/* a record's partition is gone */
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true;
	default:
		return false;
	}
}

/* Takes the changelog records of order_id from id on out of the pending
 * list: they wait behind the order's dead row id, and are read again once
 * it is retried or dropped. */
static void
relay_pending_drop_order(struct relay *r, const char *order_id, int64_t id)
{
	struct relay_pending **pp = &r->pending_head, *p;

	r->pending_tail = &r->pending_head;
	while ((p = *pp) != NULL) {
		if (p->row.id >= id && p->row.order_id != NULL &&
		    strcmp(p->row.order_id, order_id) == 0) {
			*pp = p->next;
			r->npending--;
			relay_pending_free(p);
			continue;
		}
		pp = &p->next;
		r->pending_tail = pp;
	}
}

/* kafka_producer_events.brokers_down: for /healthz, until a row is
 * acknowledged again. */
static void
relay_brokers_down(void *arg)
{
	struct relay *r = arg;

	r->snap.broker_down = true;
}

/* Produces the changelog records whose predecessors are all acknowledged. */
static void
relay_release(struct relay *r)
{
	struct relay_pending *p;

	/* Only the outputs count: records in flight do not hold back the
	 * next ones, so records flow one round trip behind the outputs. */
	while ((p = r->pending_head) != NULL && relay_window_releasable(&r->w, p->row.id)) {
		bool solo = relay_window_is_solo(&r->w, p->row.id);
		int err;

		/* To be produced alone: once nothing else is in flight. */
		if (solo && (r->snap.in_flight > 0 || r->solo != 0))
			return;
		if ((err = relay_send(r, &p->row)) < 0) {
			if (relay_produce_fatal(err)) {
				/* Dies; takes itself and its order's later
				 * records off the list. */
				relay_kill(r, p->row.id, p->row.topic, r->kill_why);
				continue;
			}
			relay_schedule(r, 20);
			return;
		}
		relay_window_sent(&r->w, p->row.id, true);
		if (solo)
			r->solo = p->row.id;
		r->pending_head = p->next;
		if (r->pending_head == NULL)
			r->pending_tail = &r->pending_head;
		r->npending--;
		relay_pending_free(p);
	}
}

static int
relay_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
relay_mark_cb(uv_timer_t *t)
{
	struct relay *r = t->data;
	int64_t now = util_now_ms();
	int err;

	if (r->nacked == 0)
		return;
	/* A busy journal (another process held its lock past the busy
	 * timeout) stops orderd, as it does for the engine: the rows stay
	 * unmarked, and are published again after the restart. */
	if ((err = journal_begin(r->j, "relay")) < 0)
		journal_fatal(r->j, "relay", "marking published rows", err);
	/* Acknowledgements come nearly in id order: runs of consecutive ids
	 * are marked with one statement each. */
	qsort(r->acked, r->nacked, sizeof(*r->acked), relay_cmp_id);
	for (size_t i = 0, k; i < r->nacked; i = k) {
		for (k = i + 1; k < r->nacked && r->acked[k] <= r->acked[k - 1] + 1; k++)
			;
		if ((err = journal_outbox_published_range(r->j, r->acked[i], r->acked[k - 1],
		    now)) < 0)
			journal_fatal(r->j, "relay", "marking published rows", err);
	}
	if ((err = journal_commit(r->j)) < 0)
		journal_fatal(r->j, "relay", "commit", err);
	r->snap.published += r->nacked;
	r->nacked = 0;
}

/* Journals a failed delivery of row id (its attempts and error as they
 * happen; dead when dead_now or after max_attempts): *f says what it made
 * of the row.  A busy journal stops orderd, as for every relay write. */
static void
relay_record_failure(struct relay *r, int64_t id, const char *why, bool dead_now,
    int max_attempts, struct journal_outbox_fate *f)
{
	int err;

	if ((err = journal_begin(r->j, "relay")) < 0)
		journal_fatal(r->j, "relay", "recording a failed delivery", err);
	if ((err = journal_outbox_failed(r->j, id, why, dead_now, max_attempts, util_now_ms(),
	    f)) < 0)
		journal_fatal(r->j, "relay", "recording a failed delivery", err);
	if ((err = journal_commit(r->j)) < 0)
		journal_fatal(r->j, "relay", "commit", err);
}

/*
 * Row id is dead (journaled): nothing waits for it any more, so what is
 * acknowledged through passes it and the offsets of the events behind it
 * are stored (the row is durable in the journal, for an operator); the
 * rows of other orders go on.  The later rows of its order must not
 * overtake it: the journal's reads hold them back (sql/queries.sql
 * outbox_pending), and its records waiting here leave the list.
 */
static void
relay_dead(struct relay *r, int64_t id, const struct journal_outbox_fate *f,
    const char *topic, const char *why)
{
	r->snap.dead++;
	r->any_dead = true;
	relay_window_dead(&r->w, id);
	if (f->order_id[0] != '\0')
		relay_pending_drop_order(r, f->order_id, id);
	log_error("relay", "outbox row %lld (%s%s%s to '%s') is dead after %d failed "
	    "deliver%s: %s; %s, the other rows go on (orderctl outbox list --dead, then "
	    "outbox retry or outbox drop)", (long long)id, f->order_id[0] ? "order '" : "a dead letter",
	    f->order_id, f->order_id[0] ? "'" : "", topic, f->attempts,
	    f->attempts == 1 ? "y" : "ies", why,
	    f->order_id[0] ? "the order's later rows wait for it" : "nothing waits for it");
	if (r->ack_fn != NULL)
		r->ack_fn(r->ack_arg);
	r->more = true;
	relay_schedule(r, 0);
}

/* Row id was refused by kafka_produce for good (alone: it never left):
 * it dies. */
static void
relay_kill(struct relay *r, int64_t id, const char *topic, const char *why)
{
	struct journal_outbox_fate f;
	struct relay_pending *p;
	char *t = xstrdup(topic);	/* topic may be the record's, freed below */

	relay_record_failure(r, id, why, true, r->max_attempts, &f);
	r->snap.errors++;
	/* A record: off the pending list, whatever the journal said. */
	if ((p = r->pending_head) != NULL && p->row.id == id) {
		r->pending_head = p->next;
		if (r->pending_head == NULL)
			r->pending_tail = &r->pending_head;
		r->npending--;
		relay_pending_free(p);
	}
	/* Not to publish any more (superseded meanwhile): not read again. */
	if (f.dead)
		relay_dead(r, id, &f, t, why);
	free(t);
}

/* A delivery report (kafka_producer_events.delivered), on the loop thread. */
static void
relay_delivered(const struct kafka_delivery *d, void *arg)
{
	struct relay *r = arg;
	int64_t id = (int64_t)(intptr_t)d->opaque;

	r->snap.in_flight--;
	if (d->err) {
		/* Produced alone (relay_window_solo): the verdict is its own. */
		bool alone = r->solo == id;
		bool access = kafka_err_is_access(d->err);
		bool permanent = relay_err_permanent(d->err);
		struct journal_outbox_fate f = { 0 };

		if (alone)
			r->solo = 0;
		/* Purged at the close: not an attempt, the next start sends it. */
		if (d->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
		    d->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
			relay_record_failure(r, id, d->errstr, permanent && alone,
			    access ? 0 : r->max_attempts, &f);
		if (access) {
			/* Retrying cannot mend it, and every row of the topic
			 * (or of the producer) would fail alike: the owner
			 * stops, the row waits in the outbox (not dead) for a
			 * start with the right granted. */
			if (d->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
				kafka_fault("kafka: not authorized to write to topic '%s' (outbox "
				    "row %lld): this principal needs WRITE on it (see the README's "
				    "Security section)", d->topic, (long long)id);
			else if (d->err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED)
				kafka_fault("kafka: not authorized for idempotent writes (outbox row "
				    "%lld): this principal needs IDEMPOTENT_WRITE on the cluster "
				    "(brokers before 2.8) or WRITE on the topic", (long long)id);
			else
				kafka_fault("kafka: delivery of outbox row %lld refused: %s",
				    (long long)id, d->errstr);
		}
		r->snap.errors++;
		if (f.dead) {
			relay_dead(r, id, &f, d->topic, d->errstr);
			relay_release(r);
			return;
		}
		if (permanent && !access) {
			/* The broker refuses a batch as a whole: produce the
			 * rows up to this one alone to tell which is to blame. */
			relay_window_solo(&r->w, id);
			log_warn("relay", "delivery of outbox row %lld refused: %s; producing "
			    "it again alone (it was in a batch with others)", (long long)id,
			    d->errstr);
		} else {
			/* Produce this row and every later one again, in
			 * order: the same event ids make the repeats
			 * recognisable. */
			log_warn("relay", "delivery of outbox row %lld failed (%d of %d): %s; "
			    "retrying", (long long)id, f.attempts, r->max_attempts, d->errstr);
		}
		relay_window_failed(&r->w, id);
		relay_schedule(r, RELAY_RETRY_MS);
		return;
	}
	if (r->solo == id) {
		/* Alone and in: the rows after it may go. */
		r->solo = 0;
		r->more = true;
		relay_schedule(r, 0);
	}
	(void)relay_window_acked(&r->w, id);
	relay_release(r);
	if (r->ack_fn != NULL)
		r->ack_fn(r->ack_arg);
	fault_at(FAULT_AFTER_DELIVERY);
	/* Traffic flows again. */
	r->snap.broker_down = false;
	if (d->timestamp_ms > 0)
		metrics_observe(&r->snap.ack_latency, (util_now_ms() - d->timestamp_ms) * 1000);
	if (r->nacked == r->acked_cap) {
		r->acked_cap = r->acked_cap ? r->acked_cap * 2 : 1024;
		r->acked = xrealloc(r->acked, r->acked_cap * sizeof(*r->acked));
	}
	r->acked[r->nacked++] = id;
	/* Marked in one transaction per few milliseconds, not per report:
	 * the broker has the rows already, the mark only saves a re-send. */
	if (r->nacked == 1)
		uv_timer_start(&r->mark_timer, relay_mark_cb, RELAY_MARK_DELAY_MS, 0);
	if (r->more && r->snap.in_flight < RELAY_IN_FLIGHT_MAX / 2)
		relay_schedule(r, 0);
}

/* Hands one row to the producer: 0, or kafka_produce's negative errno
 * (-ENOBUFS: its queue is full; relay_produce_fatal: never, r->kill_why
 * says why).  Kafka headers: event_id from its column, then the row's JSON
 * object of other headers (usually "{}", which costs no parse). */
static int
relay_send(struct relay *r, const struct journal_outbox_row *row)
{
	struct kafka_header one, *h = &one;
	struct kafka_message m = {
		.topic = row->topic,
		.partition = row->partitioned ? row->partition : KAFKA_PARTITION_ANY,
		.key = row->key,
		.key_len = row->key_len,
		.value = strcmp(row->type, RELAY_TOMBSTONE_TYPE) == 0 ? NULL : row->payload,
		.len = strcmp(row->type, RELAY_TOMBSTONE_TYPE) == 0 ? 0 : row->payload_len,
		.nheaders = 1,
		/* The Kafka timestamp is the outbox commit time: consumers see when
		 * the event happened, and the delivery report gives the latency. */
		.timestamp_ms = row->created_at,
		.opaque = (void *)(intptr_t)row->id,
	};
	json_t *obj = NULL, *v;
	const char *name, *why = NULL;
	int err;

	if (row->headers != NULL && strcmp(row->headers, "{}") != 0 &&
	    (obj = json_loads(row->headers, 0, NULL)) != NULL)
		h = xcalloc(1 + json_object_size(obj), sizeof(*h));
	h[0] = (struct kafka_header){ "event_id", row->event_id, strlen(row->event_id) };
	if (obj != NULL) {
		json_object_foreach(obj, name, v) {
			if (json_is_string(v))
				h[m.nheaders++] = (struct kafka_header){ name,
				    json_string_value(v), json_string_length(v) };
		}
	}
	m.headers = h;
	err = kafka_produce(r->producer, &m, &why);
	if (h != &one)
		free(h);
	json_decref(obj);
	if (err < 0) {
		r->kill_why = why;
		if (err == -EACCES)
			kafka_fault("kafka: not authorized to write to topic '%s' (outbox row %lld): "
			    "this principal needs WRITE on it (see the README's Security section)",
			    row->topic, (long long)row->id);
		else if (err != -ENOBUFS && !relay_produce_fatal(err))
			log_warn("relay", "producing outbox row %lld: %s",
			    (long long)row->id, why);
		return err;
	}
	r->snap.in_flight++;
	r->snap.produced++;
	return 0;
}

static int
relay_produce_row(const struct journal_outbox_row *row, void *arg)
{
	struct relay *r = arg;

	bool solo = relay_window_is_solo(&r->w, row->id);
	int err;

	if (strcmp(row->type, RELAY_CHANGELOG_TYPE) == 0 ||
	    strcmp(row->type, RELAY_TOMBSTONE_TYPE) == 0) {
		relay_pending_add(r, row);
		relay_window_read(&r->w, row->id);
		return 0;
	}
	/* To be produced alone: once nothing else is in flight (the records
	 * held back before it are released by then). */
	if (solo && (r->snap.in_flight > 0 || r->solo != 0 || r->pending_head != NULL)) {
		r->stop = RELAY_STOP_SOLO;
		return 1;	/* the cursor stays before this row */
	}
	if ((err = relay_send(r, row)) < 0) {
		if (relay_produce_fatal(err)) {
			/* Journaled after the page: no write while it is read. */
			r->stop = RELAY_STOP_KILL;
			r->kill_id = row->id;
			snprintf(r->kill_topic, sizeof(r->kill_topic), "%s", row->topic);
		} else {
			r->stop = RELAY_STOP_FULL;
		}
		return 1;	/* the cursor stays before this row */
	}
	relay_window_read(&r->w, row->id);
	relay_window_sent(&r->w, row->id, false);
	if (solo) {
		r->solo = row->id;
		r->stop = RELAY_STOP_SOLO;
		return 1;	/* nothing after it until its report */
	}
	return 0;
}

static void
relay_fetch_cb(uv_timer_t *t)
{
	struct relay *r = t->data;
	int64_t through = relay_acked_through(r);
	int n;

	r->fetch_scheduled = false;
	/* After a refusal (a right, the credentials) the owner is stopping:
	 * producing the same rows again would only repeat the refusal. */
	if (r->closing || r->held || kafka_faulted())
		return;
	if (r->rescan) {
		int64_t low;

		/* Nothing is produced until what is in flight is in: then
		 * every row to publish up to the cursor is one the relay
		 * does not know of (retried, or let go by a drop). */
		if (r->snap.in_flight > 0) {
			relay_schedule(r, 20);
			return;
		}
		if (r->nacked > 0) {
			uv_timer_stop(&r->mark_timer);
			relay_mark_cb(&r->mark_timer);
		}
		if (journal_outbox_first_pending(r->j, r->w.cursor, &low) < 0) {
			log_error("relay", "reading the outbox: %s", journal_errmsg(r->j));
			relay_schedule(r, RELAY_RETRY_MS);
			return;
		}
		r->rescan = false;
		if (low > 0) {
			log_info("relay", "outbox row %lld is to publish again (orderctl outbox "
			    "retry or drop): reading the outbox again from it", (long long)low);
			relay_window_failed(&r->w, low);
		}
	}
	switch (relay_window_rewind(&r->w, r->snap.in_flight)) {
	case RELAY_REWIND_NONE:
		break;
	case RELAY_REWIND_WAIT:
		relay_schedule(r, RELAY_RETRY_MS);
		return;
	case RELAY_REWIND_DONE:
		/* The records held back are read again with the rest. */
		relay_pending_clear(r);
		r->more = true;
		break;
	}
	for (;;) {
		if (r->snap.in_flight + (int64_t)r->npending >= RELAY_IN_FLIGHT_MAX) {
			r->more = true;	/* the delivery reports reschedule */
			break;
		}
		r->stop = RELAY_STOP_NONE;
		n = journal_outbox_pending(r->j, r->w.cursor, RELAY_PAGE, r->any_dead,
		    relay_produce_row, r);
		if (n < 0) {
			log_error("relay", "reading the outbox: %s", journal_errmsg(r->j));
			relay_schedule(r, RELAY_RETRY_MS);
			return;
		}
		if (r->stop == RELAY_STOP_KILL) {
			relay_kill(r, r->kill_id, r->kill_topic, r->kill_why);
			continue;	/* dead: the next page goes past it */
		}
		if (r->stop == RELAY_STOP_SOLO) {
			/* Its report (or the last one in flight) reschedules. */
			r->more = true;
			break;
		}
		if (r->stop == RELAY_STOP_FULL) {
			/* librdkafka's queue is full: let it drain a little. */
			r->more = true;
			relay_schedule(r, 20);
			break;
		}
		if (n < RELAY_PAGE) {
			int64_t max_id;

			relay_window_caught_up(&r->w);
			/* The rows not read up to the last one are not to
			 * publish (held behind a dead row among them): the
			 * offsets of the events behind them need not wait. */
			if (journal_outbox_max_id(r->j, &max_id) == 0)
				relay_window_skip(&r->w, max_id);
			r->more = false;
			break;
		}
	}
	relay_release(r);
	/* A page that passed rows not to publish (a dead row, those held
	 * behind it) moved what is acknowledged through: the engine's offsets
	 * need not wait for the next acknowledgement. */
	if (relay_acked_through(r) > through && r->ack_fn != NULL)
		r->ack_fn(r->ack_arg);
	if (r->snap.in_flight > 0)
		fault_at(FAULT_AFTER_PRODUCE);
	/* Serve the delivery reports of what was just produced soon. */
	kafka_poll(r->producer);
}

/* Another connection committed (orderctl outbox retry or drop, a stock
 * addition, a sqlite3 shell): look for rows to publish below the cursor. */
static void
relay_check_cb(uv_timer_t *t)
{
	struct relay *r = t->data;
	int64_t v;

	if (journal_data_version(r->j, &v) < 0 || v == r->data_version)
		return;
	r->data_version = v;
	(void)journal_outbox_any_dead(r->j, &r->any_dead);
	r->rescan = true;
	relay_schedule(r, 0);
}

int
relay_new(struct relay **out, uv_loop_t *loop, struct journal *j,
    const struct config *cf, char **cause)
{
	static const char *const defaults[] = {
		"linger.ms", "2",
		/* Never give up on a row: a broker outage only delays it. */
		"message.timeout.ms", "0",
		"queue.buffering.max.messages", "20000",
		/* A dead letter carries the original bytes, up to 4 MiB (the
		 * topics orderctl creates accept that much). */
		"message.max.bytes", "4194304",
		"client.id", "orderd-relay",
		NULL,
	};
	static const char *const forced[] = {
		"enable.idempotence", "true",
		"acks", "all",
		NULL,
	};
	struct relay *r = xcalloc(1, sizeof(*r));
	struct kafka_producer_events ev = { .delivered = relay_delivered,
	    .brokers_down = relay_brokers_down, .arg = r };
	rd_kafka_conf_t *conf;
	int err;

	*out = NULL;
	r->loop = loop;
	r->j = j;
	r->pending_tail = &r->pending_head;
	r->more = true;
	r->max_attempts = cf->relay_max_attempts;
	if (journal_data_version(j, &r->data_version) < 0)
		r->data_version = 0;
	(void)journal_outbox_any_dead(j, &r->any_dead);
	conf = kafka_conf_new(cf, defaults, forced, cause);
	if (conf == NULL) {
		err = -EINVAL;
		goto fail;
	}
	if ((err = kafka_producer_new(&r->producer, loop, conf, &ev, cause)) < 0)
		goto fail;
	uv_timer_init(loop, &r->fetch_timer);
	r->fetch_timer.data = r;
	uv_timer_init(loop, &r->mark_timer);
	r->mark_timer.data = r;
	uv_timer_init(loop, &r->check_timer);
	r->check_timer.data = r;
	r->open_handles = 3;
	uv_timer_start(&r->check_timer, relay_check_cb, RELAY_CHECK_MS, RELAY_CHECK_MS);
	relay_schedule(r, 0);
	*out = r;
	return 0;
fail:
	free(r);
	return err;
}

void
relay_kick(struct relay *r)
{
	r->more = true;
	relay_schedule(r, 0);
}

void
relay_hold(struct relay *r, bool held)
{
	r->held = held;
	if (!held)
		relay_kick(r);
}

int64_t
relay_acked_through(const struct relay *r)
{
	return relay_window_acked_through(&r->w, r->pending_head != NULL ?
	    r->pending_head->row.id : INT64_MAX);
}

void
relay_set_ack_cb(struct relay *r, void (*fn)(void *arg), void *arg)
{
	r->ack_fn = fn;
	r->ack_arg = arg;
}

bool
relay_idle(const struct relay *r)
{
	return !r->more && r->snap.in_flight == 0 && r->nacked == 0 &&
	    r->pending_head == NULL && !r->rescan &&
	    r->w.rewind_to == 0 && !r->fetch_scheduled;
}

const struct relay_snapshot *
relay_snapshot(const struct relay *r)
{
	return &r->snap;
}

static void
relay_handle_closed(uv_handle_t *h)
{
	struct relay *r = h->data;

	if (--r->open_handles == 0) {
		relay_pending_clear(r);
		relay_window_free(&r->w);
		free(r->acked);
		free(r);
	}
}

void
relay_close(struct relay *r, int flush_ms)
{
	if (r == NULL)
		return;
	r->closing = true;
	uv_timer_stop(&r->fetch_timer);
	uv_timer_stop(&r->check_timer);
	/* Delivery reports served by the flush are marked below. */
	(void)kafka_flush(r->producer, flush_ms);
	relay_mark_cb(&r->mark_timer);
	kafka_close(r->producer, 0);
	uv_close((uv_handle_t *)&r->fetch_timer, relay_handle_closed);
	uv_close((uv_handle_t *)&r->mark_timer, relay_handle_closed);
	uv_close((uv_handle_t *)&r->check_timer, relay_handle_closed);
}
