/* steps.c: the Redis side of the saga: every step's Lua call sent, answered and retried, the inventory checked, stock adjustments applied. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "cluster.h"
#include "config.h"
#include "engine_int.h"
#include "inventory.h"
#include "journal.h"
#include "log.h"
#include "saga.h"
#include "util.h"

#define STEPS_RETRY_MS 1000		/* a step or stock adjustment that did not go in */
#define STEPS_INVENTORY_CHECK_MS 5000	/* how often a Redis that lost its data is looked at */

/* A stock adjustment of the journal on its way to Redis: in flight (its
 * reply callback owns it) or on engine.adjust_retry. */
struct adjustment {
	struct engine *e;
	struct adjustment *next;	/* on engine.adjust_retry */
	char *id, *sku;
	int64_t qty;
	bool warned;			/* its failure was logged */
};

static void steps_retry_cb(uv_timer_t *t);
static void steps_check_inventory(struct engine *e);
static void steps_check_inventory_cb(uv_timer_t *t);

void
steps_list_send(struct engine *e, struct flight *f)
{
	if (f->listed)
		return;
	f->listed = true;
	f->next = NULL;
	*e->send_tail = f;
	e->send_tail = &f->next;
}

struct flight *
steps_flight_new(struct engine *e, const struct order_ctx *oc,
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
	f->snap = oc->row;
	f->snap.items = oc->row.items ? xstrdup(oc->row.items) : NULL;
	f->snap.lines = oc->row.lines ? xstrdup(oc->row.lines) : NULL;
	HASH_ADD_STR(e->flights, order_id, f);
	e->steps_in_memory += nsteps;
	e->stats.steps_in_flight += nsteps;
	return f;
}

/* Frees a flight already taken out of engine.flights. */
void
steps_flight_free(struct engine *e, struct flight *f)
{
	e->steps_in_memory -= f->nsteps;
	e->stats.steps_in_flight -= f->nsteps;
	journal_order_release(&f->snap);
	free(f->traceparent);
	free(f);
}

/* What waits on the retry lists goes again in STEPS_RETRY_MS (or sooner,
 * when the timer runs already): never in a tight loop. */
static void
steps_retry_arm(struct engine *e)
{
	if (!uv_is_active((uv_handle_t *)&e->retry_timer))
		uv_timer_start(&e->retry_timer, steps_retry_cb, STEPS_RETRY_MS, 0);
}

/* Puts a flight aside for STEPS_RETRY_MS. */
static void
steps_retry_later(struct engine *e, struct flight *f)
{
	if (f->listed)
		return;
	f->listed = true;
	f->next = e->retry_head;
	e->retry_head = f;
	steps_retry_arm(e);
}

static void
steps_reply(redisReply *reply, int status, void *arg)
{
	struct flight_step *s = arg;
	struct flight *f = s->f;
	struct engine *e = f->e;
	enum saga_step_result res = SAGA_RES_RESERVED;

	s->sent = false;
	if (status < 0) {
		/* Timed out or disconnected: sent again once Redis is back. */
		if (status != -ECANCELED) {
			e->stats.redis_retries++;
			steps_list_send(e, f);
		}
		return;
	}
	if (reply->type != REDIS_REPLY_STATUS ||
	    saga_result_parse(reply->str, &res) < 0 ||
	    (f->kind == SAGA_STEP_COMMIT && res == SAGA_RES_MISSING)) {
		/* An error, or a commit of a reservation Redis does not have (it
		 * lost its data): settling would record a sale Redis never made.
		 * Try again later; orderctl recover --rebuild-redis brings the
		 * reservation back from the journal. */
		if (!f->warned)
			log_msg(LOG_LEVEL_ERROR, "redis", f->order_id, "%s of %s answered %s; "
			    "retrying every %d ms%s", saga_step_name(f->kind), s->sku,
			    reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS ?
			    reply->str : "an unexpected reply", STEPS_RETRY_MS,
			    res == SAGA_RES_MISSING ? " (orderctl recover --rebuild-redis?)" : "");
		f->warned = true;
		e->stats.redis_retries++;
		steps_retry_later(e, f);
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

/* The Lua call of one step of f (see inventory.h). */
static int
steps_call(struct engine *e, const struct flight *f, const struct flight_step *s,
    struct inventory_call *c)
{
	const char *prefix = e->cf->redis_prefix;
	/* The record of a line that is over outlives the order in the journal
	 * (retention; SIGHUP changes apply to the calls sent from now on). */
	int64_t keep = inventory_keep_ms(e->cf->retention_orders_max_age_hours);

	switch (f->kind) {
	case SAGA_STEP_RESERVE:
		return inventory_call_reserve(c, prefix, s->sku, f->order_id, s->qty, keep);
	case SAGA_STEP_COMMIT:
		return inventory_call_commit(c, prefix, s->sku, f->order_id, keep);
	default:
		return inventory_call_release(c, prefix, s->sku, f->order_id, keep);
	}
}

/* Sends the calls of every flight on the send list (when Redis is up). */
void
steps_send(struct engine *e)
{
	struct inventory_call c;

	while (e->send_head != NULL) {
		struct flight *f = e->send_head;

		if (e->redis == NULL || !e->redis_ready || !cluster_is_up(e->redis))
			return;
		for (int i = 0; i < f->nsteps; i++) {
			struct flight_step *s = &f->steps[i];
			int err;

			if (s->done || s->sent)
				continue;
			/* The prefix, sku and order id limits make these fit;
			 * a key cut short would be another order's. */
			if (steps_call(e, f, s, &c) < 0)
				log_fatal("engine", "the Redis keys of sku %s of order %s do not fit "
				    "in %d bytes", s->sku, f->order_id, INVENTORY_KEY_MAX);
			err = cluster_eval(e->redis, c.script, c.nkeys, c.keys, c.nargs, c.args,
			    steps_reply, s);
			if (err == -ENOTCONN)
				return;	/* stays listed; state_cb(true) sends again */
			if (err < 0)
				log_fatal("engine", "cluster_eval: %s", strerror(-err));
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

static void
steps_adjustment_free(struct adjustment *a)
{
	free(a->id);
	free(a->sku);
	free(a);
}

/* The adjustments on the retry list are dropped: the journal, which still
 * has them unapplied, lists them again (at "ready"). */
static void
steps_adjustments_drop(struct engine *e)
{
	struct adjustment *a, *next;

	for (a = e->adjust_retry; a != NULL; a = next) {
		next = a->next;
		steps_adjustment_free(a);
	}
	e->adjust_retry = NULL;
}

/*
 * An adjustment that did not go in.  It stays unapplied in the journal,
 * and is sent again in STEPS_RETRY_MS while Redis stays ready: an error
 * answered by a Redis that stays up (OOM, WRONGTYPE, a cluster
 * redirection that failed) would otherwise wait for the next start.  One
 * line says why, the first time; why is what the call or its answer said.
 */
static void
steps_adjustment_later(struct engine *e, struct adjustment *a, const char *what,
    const char *why)
{
	if (!a->warned)
		log_warn("engine", "stock adjustment %s of sku %s %s: %s; sending it again "
		    "every %d ms while Redis is ready", a->id, a->sku, what, why, STEPS_RETRY_MS);
	a->warned = true;
	a->next = e->adjust_retry;
	e->adjust_retry = a;
	steps_retry_arm(e);
}

static void
steps_adjustment_reply(redisReply *reply, int status, void *arg)
{
	struct adjustment *a = arg;
	struct engine *e = a->e;

	if (status == 0 && reply->type == REDIS_REPLY_ARRAY) {
		int err = journal_stock_adjustment_applied(e->j, a->id, util_now_ms());

		/* Not marked: "ready" sends it again, and stock_add.lua
		 * knows its id, so nothing is added twice. */
		if (err < 0)
			log_error("engine", "stock adjustment %s: %s", a->id, journal_errmsg(e->j));
		else
			log_info("engine", "stock adjustment %s applied", a->id);
		steps_adjustment_free(a);
	} else if (status == -ECANCELED) {
		steps_adjustment_free(a);	/* stopping: the next start sends it */
	} else {
		steps_adjustment_later(e, a, "not applied yet", status < 0 ? strerror(-status) :
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
	}
}

static void
steps_adjustment_send(struct engine *e, struct adjustment *a)
{
	struct inventory_call c;
	int err;

	if (inventory_call_stock_add(&c, e->cf->redis_prefix, a->sku, a->id, a->qty) < 0) {
		log_error("engine", "stock adjustment %s: the Redis keys of sku %s do not fit "
		    "in %d bytes; not applied", a->id, a->sku, INVENTORY_KEY_MAX);
		steps_adjustment_free(a);
		return;
	}
	err = cluster_eval(e->redis, c.script, c.nkeys, c.keys, c.nargs, c.args,
	    steps_adjustment_reply, a);
	/* -ENOTCONN: Redis went down again; the next "ready" reads the
	 * journal anew, and the retry covers a Redis that did not. */
	if (err < 0)
		steps_adjustment_later(e, a, "not sent", strerror(-err));
}

static int
steps_adjustment_one(const char *id, const char *sku, int64_t qty, void *arg)
{
	struct engine *e = arg;
	struct adjustment *a = xcalloc(1, sizeof(*a));

	a->e = e;
	a->id = xstrdup(id);
	a->sku = xstrdup(sku);
	a->qty = qty;
	steps_adjustment_send(e, a);
	return 0;
}

/* Every adjustment the journal has not marked applied goes out.  A
 * journal that cannot list them is said and asked again in STEPS_RETRY_MS:
 * stock added while Redis was away must not wait for the next start. */
static void
steps_adjustments_send(struct engine *e)
{
	int n;

	steps_adjustments_drop(e);
	e->adjust_reread = false;
	n = journal_stock_adjustments_unapplied(e->j, steps_adjustment_one, e);
	if (n < 0) {
		log_error("engine", "reading the stock adjustments not applied: %s; reading "
		    "them again in %d ms", journal_errmsg(e->j), STEPS_RETRY_MS);
		e->adjust_reread = true;
		steps_retry_arm(e);
	}
}

static void
steps_retry_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	struct flight *f = e->retry_head, *next;
	struct adjustment *a, *anext;

	e->retry_head = NULL;
	for (; f != NULL; f = next) {
		next = f->next;
		f->listed = false;
		steps_list_send(e, f);
	}
	/* Not ready: they wait, and "ready" reads them from the journal. */
	if (e->redis_ready && !e->stopping && e->adjust_reread) {
		steps_adjustments_send(e);
	} else if (e->redis_ready && !e->stopping) {
		a = e->adjust_retry;
		e->adjust_retry = NULL;
		for (; a != NULL; a = anext) {
			anext = a->next;
			steps_adjustment_send(e, a);
		}
	}
	steps_send(e);
}

/* Redis holds the inventory: stock added while it was away goes in, the
 * steps that waited go out. */
static void
steps_redis_ready(struct engine *e)
{
	e->redis_ready = true;
	e->stats.redis_up = true;
	steps_adjustments_send(e);
	steps_send(e);
}

static void
steps_inventory_reply(redisReply *reply, int status, void *arg)
{
	struct engine *e = arg;

	if (status == -ECANCELED)
		return;
	if (status == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
		/* A Redis restarted without persistence, or flushed: reserving
		 * against it would reject orders and commits would sell nothing. */
		if (!e->stats.redis_lost)
			log_error("engine", "Redis has lost the inventory (no stock for a sku "
			    "the journal added): steps wait; stop orderd and run orderctl "
			    "recover --rebuild-redis");
		e->stats.redis_lost = true;
		uv_timer_start(&e->check_timer, steps_check_inventory_cb,
		    STEPS_INVENTORY_CHECK_MS, 0);
		return;
	}
	if (status < 0)
		return;		/* down again: state_cb(true) checks anew */
	if (e->stats.redis_lost)
		log_info("engine", "Redis holds the inventory again");
	e->stats.redis_lost = false;
	steps_redis_ready(e);
}

/* Does Redis hold the stock of the sku the journal saw applied last?  Not
 * ready until it is known: steps against a Redis that lost its data would
 * reject orders and sell nothing. */
static void
steps_check_inventory(struct engine *e)
{
	char sku[SAGA_SKU_MAX + 1], key[INVENTORY_KEY_MAX];
	const char *argv[2] = { "EXISTS", key };
	int found = journal_stock_adjustment_latest_applied(e->j, sku, sizeof(sku)), err;

	if (found < 0) {
		/* Not "none applied": that would skip the check. */
		log_error("engine", "reading the latest stock adjustment applied (is the "
		    "inventory in Redis?): %s; steps wait, checking again in %d ms",
		    journal_errmsg(e->j), STEPS_INVENTORY_CHECK_MS);
		uv_timer_start(&e->check_timer, steps_check_inventory_cb,
		    STEPS_INVENTORY_CHECK_MS, 0);
		return;
	}
	if (found == 0) {
		steps_redis_ready(e);
		return;
	}
	if (inventory_key_stock(key, sizeof(key), e->cf->redis_prefix, sku) < 0)
		log_fatal("engine", "the Redis key of sku %s does not fit in %d bytes", sku,
		    INVENTORY_KEY_MAX);
	err = cluster_command_argv(e->redis, 1, 2, argv, NULL, steps_inventory_reply, e);
	if (err == -ENOTCONN)
		return;		/* down again: state_cb(true) checks anew */
	if (err < 0) {
		/* Redis stays up, so no state_cb(true) would come. */
		log_error("engine", "checking that Redis holds the inventory: %s; steps wait, "
		    "checking again in %d ms", strerror(-err), STEPS_INVENTORY_CHECK_MS);
		uv_timer_start(&e->check_timer, steps_check_inventory_cb,
		    STEPS_INVENTORY_CHECK_MS, 0);
	}
}

static void
steps_check_inventory_cb(uv_timer_t *t)
{
	struct engine *e = t->data;

	if (e->redis != NULL && cluster_is_up(e->redis) && !e->stopping)
		steps_check_inventory(e);
}

void
steps_redis_state(bool up, void *arg)
{
	struct engine *e = arg;

	e->redis_ready = false;
	e->stats.redis_up = false;
	if (!up) {
		log_warn("engine", "Redis is down: steps wait, events are still journaled");
		return;
	}
	e->redis_was_up = true;
	steps_check_inventory(e);
}

/*
 * Redis refused our credentials (or our ACL user may not load the
 * scripts).  Before it ever accepted them this is the configuration:
 * orderd stops, exit 1, rather than journal events it can never settle.
 * Later it is most likely a password rotation caught half-way:
 * redis_conn.c has logged it and retries, and a SIGHUP with the new
 * password ends it.
 */
void
steps_redis_refused(const char *why, void *arg)
{
	struct engine *e = arg;
	char *msg;

	if (e->stopping)
		return;
	if (e->redis_was_up) {
		log_error("redis", "%s; retrying (a SIGHUP applies new credentials)", why);
		return;
	}
	msg = xasprintf("redis: %s", why);
	engine_fatal(e, msg);
	free(msg);
}

/* Every flight and stock adjustment, sent or not: their intents are in the
 * journal for the next start. */
void
steps_free(struct engine *e)
{
	struct flight *f, *tmp;

	HASH_ITER(hh, e->flights, f, tmp) {
		HASH_DEL(e->flights, f);
		steps_flight_free(e, f);
	}
	e->send_head = NULL;
	e->send_tail = &e->send_head;
	e->settle_head = NULL;
	e->settle_tail = &e->settle_head;
	e->retry_head = NULL;
	steps_adjustments_drop(e);
}
