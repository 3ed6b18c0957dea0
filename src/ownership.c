/* ownership.c: the partitions this instance owns: their epochs, their orders restored from the changelog, what belongs elsewhere superseded, their steps recovered, and their revocation. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uthash.h>

#include "config.h"
#include "engine_int.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "relay.h"
#include "saga.h"
#include "util.h"

#define OWNERSHIP_REVOKE_MS 30000	/* to finish a revoked assignment's work */
#define OWNERSHIP_RESTORE_MS 120000	/* to read a partition of the changelog */
#define OWNERSHIP_RESTORE_BATCH 2000	/* changelog records per journal commit */

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
ownership_recover_collect(const struct journal_step *st, void *arg)
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

/* The order's line of sku, or -1. */
static int
ownership_line_of(const struct order_ctx *oc, const char *sku)
{
	for (int l = 0; l < oc->so.nlines; l++)
		if (strcmp(oc->so.lines[l].sku, sku) == 0)
			return l;
	return -1;
}

int
ownership_recover(struct engine *e, char **cause)
{
	struct recover_ctx rc = { NULL, 0, 0 };
	int64_t dead, pending, published, oldest;
	int norders = 0, n;

	n = journal_steps_in_flight(e->j, ownership_recover_collect, &rc);
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
		/* Still under way in this process (an assignment that came back
		 * before its revocation finished). */
		if (steps_in_flight(e, rc.v[i].order_id)) {
			i = k;
			continue;
		}
		engine_order_load(e, rc.v[i].order_id, &oc);
		/* A step for a sku that is not among the order's lines (or of
		 * an order that is not there) came from a journal changed by
		 * hand: its answer would count for no line, and a REJECTED one
		 * would still let PaymentRequested out.  Refused, before any. */
		for (size_t m = i; m < k; m++) {
			if (ownership_line_of(&oc, rc.v[m].sku) >= 0)
				continue;
			*cause = xasprintf("journal: step %lld (%s of %s) of order %s is for no "
			    "line of %s: the journal was changed by hand or is damaged; "
			    "correct or delete that step (sqlite3, saga_steps) and start again",
			    (long long)rc.v[m].id, saga_step_name(rc.v[m].kind), rc.v[m].sku,
			    rc.v[m].order_id, oc.exists ? "the order" : "an order not there");
			engine_order_done(&oc);
			free(rc.v);
			return -EBADMSG;
		}
		f = steps_flight_new(e, &oc, rc.v[i].kind, (int)(k - i),
		    oc.row.traceparent);
		for (size_t m = i; m < k; m++) {
			struct flight_step *s = &f->steps[m - i];

			s->step_id = rc.v[m].id;
			snprintf(s->sku, sizeof(s->sku), "%s", rc.v[m].sku);
			s->qty = rc.v[m].qty;
			s->line = ownership_line_of(&oc, s->sku);
		}
		engine_order_done(&oc);
		f->recovered = true;
		steps_list_send(e, f);
		norders++;
		i = k;
	}
	free(rc.v);
	if (journal_orders_with_unapplied_events(e->j, engine_waiter_load, e) < 0) {
		*cause = xasprintf("reading waiting events: %s", journal_errmsg(e->j));
		return -EIO;
	}
	/* Their age is their received_at: a restart does not make them young. */
	if (parked_load(e) < 0) {
		*cause = xasprintf("reading parked events: %s", journal_errmsg(e->j));
		return -EIO;
	}
	if (journal_outbox_stats(e->j, &pending, &published, &oldest, &dead) < 0)
		pending = dead = 0;
	{
		char (*ids)[JOURNAL_ORDER_ID_MAX + 1] = xmalloc(1000 * sizeof(*ids));
		int due = journal_deadlines_due(e->j, util_now_ms(), 1000, ids);

		free(ids);
		log_info("engine", "recovered from the journal: %d steps in flight for %d "
		    "orders, %lld outbox rows to publish, %s%d payment deadlines passed%s",
		    n, norders, (long long)pending, due == 1000 ? "over " : "",
		    due < 0 ? 0 : due, dead > 0 ? "; dead outbox rows wait for an "
		    "operator: orderctl outbox list --dead" : "");
	}
	return 0;
}

/* An order a restore took from the changelog (counted once). */
struct restored {
	UT_hash_handle hh;
	char order_id[EVENT_ORDER_ID_MAX + 1];
};

struct restore_ctx {
	struct engine *e;
	struct restored *orders;
	const int32_t *parts;
	int64_t *max_epoch;		/* per entry of parts */
	int nparts;
	int64_t records, restored;
	char *buf;
	size_t cap;
};

/* One changelog record: into the journal when newer than what it has. */
static int
ownership_restore_record(int32_t partition, const void *key, size_t key_len,
    const void *value, size_t len, void *arg)
{
	struct restore_ctx *rc = arg;
	struct engine *e = rc->e;
	const char *order_id, *state;
	json_t *rec;
	int64_t epoch;
	int err;

	(void)key;
	(void)key_len;
	if (value == NULL)
		return 0;	/* a tombstone */
	rec = json_loadb(value, len, 0, NULL);
	order_id = json_string_value(json_object_get(rec, "order_id"));
	state = json_string_value(json_object_get(rec, "state"));
	if (rec == NULL || order_id == NULL || state == NULL ||
	    !json_is_integer(json_object_get(rec, "epoch")) ||
	    !json_is_integer(json_object_get(rec, "version"))) {
		log_warn("engine", "changelog partition %d: a record that is not one of "
		    "orderd's; skipped", (int)partition);
		json_decref(rec);
		return 0;
	}
	epoch = json_integer_value(json_object_get(rec, "epoch"));
	for (int i = 0; i < rc->nparts; i++)
		if (rc->parts[i] == partition && epoch > rc->max_epoch[i])
			rc->max_epoch[i] = epoch;
	rc->records++;
	if (!steps_in_flight(e, order_id)) {
		if (len + 1 > rc->cap) {
			rc->cap = len + 1;
			rc->buf = xrealloc(rc->buf, rc->cap);
		}
		memcpy(rc->buf, value, len);
		rc->buf[len] = '\0';
		err = journal_restore(e->j, rc->buf, order_id, strcmp(state, "NONE") == 0,
		    e->cf->topic_state, e->now);
		if (err < 0) {
			json_decref(rec);
			return err;
		}
		if (err > 0) {
			struct restored *r;

			HASH_FIND_STR(rc->orders, order_id, r);
			if (r == NULL) {
				r = xcalloc(1, sizeof(*r));
				snprintf(r->order_id, sizeof(r->order_id), "%s", order_id);
				HASH_ADD_STR(rc->orders, order_id, r);
				rc->restored++;
			}
		}
	}
	json_decref(rec);
	if (rc->records % OWNERSHIP_RESTORE_BATCH == 0) {
		engine_commit(e);
		engine_begin(e);
	}
	return 0;
}

/*
 * Takes the n partitions parts (the array is the engine's now) in one
 * transaction: restores their orders from the changelog through read
 * (a record applies when its (epoch, version) is higher than the
 * journal's, whatever its offset), gives each partition the epoch after
 * the highest that this journal or the changelog knows, and supersedes
 * the unpublished rows and unanswered steps of partitions owned elsewhere.
 */
int
ownership_take(struct engine *e, int32_t *parts, int n, ownership_read_fn read,
    struct ownership_taken *out, char **cause)
{
	struct restore_ctx rc = { .e = e };
	int err;

	memset(out, 0, sizeof(*out));
	free(e->owned);
	free(e->epochs);
	e->owned = parts;
	e->epochs = xcalloc((size_t)n + 1, sizeof(*e->epochs));
	e->nowned = n;
	rc.parts = e->owned;
	rc.nparts = n;
	rc.max_epoch = xcalloc((size_t)n + 1, sizeof(*rc.max_epoch));
	engine_begin(e);
	if (e->cf->topic_state[0] != '\0' && n > 0) {
		err = read(e->cf, e->cf->topic_state, e->owned, n, OWNERSHIP_RESTORE_MS,
		    ownership_restore_record, &rc, cause);
		if (err < 0)
			return err;	/* the caller stops orderd: this transaction never commits */
	}
	for (int i = 0; i < n; i++) {
		int64_t mine = 0;

		JCHECK(e, "reading an epoch", journal_partition_epoch(e->j, e->owned[i], &mine));
		e->epochs[i] = (mine > rc.max_epoch[i] ? mine : rc.max_epoch[i]) + 1;
	}
	JCHECK(e, "taking partitions", journal_owned_set(e->j, e->owned, e->epochs, n));
	JCHECK(e, "superseding", journal_supersede_unowned(e->j, e->now, &out->rows,
	    &out->steps));
	engine_commit(e);
	free(rc.max_epoch);
	free(rc.buf);
	{
		struct restored *r, *tmp;

		HASH_ITER(hh, rc.orders, r, tmp) {
			HASH_DEL(rc.orders, r);
			free(r);
		}
	}
	out->records = rc.records;
	out->restored = rc.restored;
	return 0;
}

/*
 * The group assigned partitions: restore their orders from the changelog,
 * take ownership with a new epoch, supersede what this journal holds of
 * partitions owned elsewhere, resume the steps of its own, then consume.
 * Blocking: nothing else is consumed meanwhile anyway.
 */
static void
ownership_assign(struct engine *e, const rd_kafka_topic_partition_list_t *parts)
{
	int64_t t0 = util_now_ms();
	struct ownership_taken taken;
	char list[256] = "", *cause = NULL;
	int32_t *owned;
	size_t off = 0;
	int n = 0, err;

	if (e->revoking) {
		e->revoking = false;
		uv_timer_stop(&e->revoke_timer);
	}
	e->flush_marks = e->stopping;
	owned = xcalloc((size_t)parts->cnt + 1, sizeof(*owned));
	for (int i = 0; i < parts->cnt; i++) {
		if (strcmp(parts->elems[i].topic, e->cf->topic_orders) != 0)
			continue;
		owned[n++] = parts->elems[i].partition;
		if (off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d",
			    n > 1 ? "," : "", (int)parts->elems[i].partition);
	}
	if ((err = ownership_take(e, owned, n, kafka_read_partitions, &taken, &cause)) < 0)
		log_fatal("engine", "restoring partitions [%s] from the changelog: %s",
		    list, cause);
	log_info("engine", "assigned partitions [%s] of %s: restored %lld orders from %lld "
	    "changelog records in %lld ms; %lld outbox rows and %lld steps of partitions "
	    "owned elsewhere superseded", list, e->cf->topic_orders, (long long)taken.restored,
	    (long long)taken.records, (long long)(util_now_ms() - t0), (long long)taken.rows,
	    (long long)taken.steps);
	if ((err = ownership_recover(e, &cause)) < 0)
		log_fatal("engine", "%s", cause);
	if (!e->assigned) {
		e->assigned = true;
		relay_hold(e->relay, false);
	}
	/* Flow control holds for the new partitions too. */
	kafka_pause(e->consumer, e->paused);
	kafka_assign(e->consumer, parts);
	steps_send(e);
}

static void
ownership_revoke_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	bool quiet;

	offsets_linger_flush(e, true);
	quiet = e->flights == NULL && e->settle_head == NULL && offsets_idle(e);

	if (!quiet && util_now_ms() - e->revoke_started < OWNERSHIP_REVOKE_MS)
		return;
	if (!quiet)
		/* Its steps are in the journal; a new owner runs them again
		 * from Kafka and the changelog, and so does this process when
		 * it starts again. */
		log_fatal("engine", "partitions revoked, but %lld steps could not finish "
		    "within %d ms (Redis away?): exiting so that they move cleanly",
		    (long long)e->stats.steps_in_flight, OWNERSHIP_REVOKE_MS);
	uv_timer_stop(t);
	kafka_commit_sync(e->consumer);
	e->revoking = false;
	e->nowned = 0;
	engine_begin(e);
	JCHECK(e, "giving partitions up", journal_owned_set(e->j, NULL, NULL, 0));
	engine_commit(e);
	offsets_drop_queues(e);
	log_info("engine", "partitions revoked: steps finished, outbox flushed, offsets "
	    "committed in %lld ms", (long long)(util_now_ms() - e->revoke_started));
	kafka_assign(e->consumer, NULL);
}

void
ownership_rebalance(struct kafka *k, bool assign, const rd_kafka_topic_partition_list_t *parts,
    void *arg)
{
	struct engine *e = arg;

	(void)k;
	if (assign) {
		ownership_assign(e, parts);
		return;
	}
	/* Eager rebalancing: everything goes; the work under way finishes
	 * first, and nothing new is fetched meanwhile. */
	log_info("engine", "partitions revoked: finishing in-flight steps, flushing the "
	    "outbox, committing offsets");
	e->revoking = true;
	e->flush_marks = true;
	e->revoke_started = util_now_ms();
	kafka_pause(e->consumer, true);
	uv_timer_start(&e->revoke_timer, ownership_revoke_cb, 0, 20);
}

/* The partitions owned: the next assignment says anew. */
void
ownership_free(struct engine *e)
{
	free(e->owned);
	free(e->epochs);
	e->owned = NULL;
	e->epochs = NULL;
	e->nowned = 0;
}
