/* redis.c: calls on the Redis connection: sending, the per-call timeout, replies, and the NOSCRIPT reload and retry. */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "log.h"
#include "redis.h"
#include "redis_int.h"
#include "util.h"

static void redis_on_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void
redis_arm_timer(struct redis *r)
{
	int64_t left_us;

	if (r->state == REDIS_STATE_CONNECTING)
		return;		/* the connect timeout is running */
	if (r->sent.head == NULL) {
		uv_timer_stop(&r->timer);
		return;
	}
	left_us = r->sent.head->deadline_us - util_mono_us();
	uv_timer_start(&r->timer, redis_on_timer,
	    left_us <= 0 ? 0 : (uint64_t)(left_us + 999) / 1000, 0);
}

/* Hands one call to hiredis; on success hiredis holds it until redis_on_reply(). */
int
redis_send(struct redis *r, struct redis_call *c, int argc, const char **argv,
    const size_t *argvlen)
{
	if (r->ac == NULL ||
	    redisAsyncCommandArgv(r->ac, redis_on_reply, c, argc, argv, argvlen) != REDIS_OK)
		return -ENOTCONN;
	c->start_us = util_mono_us();
	c->deadline_us = c->start_us + (int64_t)r->timeout_ms * 1000;
	redis_list_push(&r->sent, c);
	/* Calls are answered in order, so only the oldest needs a deadline;
	 * a running timer already covers an older call. */
	if (!uv_is_active((uv_handle_t *)&r->timer))
		redis_arm_timer(r);
	return 0;
}

struct redis_call *
redis_call_new(struct redis *r, size_t extra, enum redis_call_kind kind, int script,
    redis_reply_fn cb, void *arg)
{
	struct redis_call *c = xcalloc(1, sizeof(*c) + extra);

	c->r = r;
	c->kind = kind;
	c->script = script;
	c->cb = cb;
	c->arg = arg;
	return c;
}

int
redis_send_load(struct redis *r, enum redis_call_kind kind, int s)
{
	const char *argv[3] = { "SCRIPT", "LOAD", r->src[s] };
	struct redis_call *c = redis_call_new(r, 0, kind, s, NULL, NULL);
	int err = redis_send(r, c, 3, argv, NULL);

	if (err < 0)
		free(c);
	return err;
}

/* Ends a user call: the record is freed before cb runs, so cb may do anything. */
void
redis_complete(struct redis *r, struct redis_call *c, redisReply *reply, int status)
{
	redis_reply_fn cb = c->cb;
	void *arg = c->arg;

	r->pending--;
	free(c);
	cb(reply, status, arg);
}

/* NOSCRIPT: Redis lost its scripts.  SCRIPT LOAD goes out before the
 * repeated call on the same connection, so Redis runs them in that order. */
static int
redis_retry_noscript(struct redis *r, struct redis_call *c)
{
	log_debug(REDIS_COMPONENT, "NOSCRIPT for %s: loading it and calling again",
	    inventory_script_name(c->script));
	c->retried = true;
	if (!r->reloading[c->script] &&
	    redis_send_load(r, REDIS_CALL_RELOAD, c->script) == 0)
		r->reloading[c->script] = true;
	return redis_send(r, c, c->argc, c->argv, c->argvlen);
}

static void
redis_on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
	struct redis_call *c = privdata;
	struct redis *r = c->r;
	redisReply *reply = reply_;

	(void)ac;
	redis_list_remove(&r->sent, c);
	if (r->sent.head == NULL)
		uv_timer_stop(&r->timer);	/* nothing left to time out */
	if (reply == NULL) {
		/* The context is going away: no user code may run inside
		 * hiredis's teardown, so the call waits on r->failed. */
		if (c->kind == REDIS_CALL_USER) {
			c->status = r->closing ? -ECANCELED : r->fail_status;
			redis_list_push(&r->failed, c);
		} else {
			free(c);
		}
		return;
	}
	switch (c->kind) {
	case REDIS_CALL_LOAD:
		redis_on_load_reply(r, c, reply);
		return;
	case REDIS_CALL_AUTH:
		redis_on_auth_reply(r, c, reply);
		return;
	case REDIS_CALL_REAUTH:
		redis_on_reauth_reply(r, c, reply);
		return;
	case REDIS_CALL_RELOAD:
		r->reloading[c->script] = false;
		if (reply->type == REDIS_REPLY_ERROR)
			log_warn(REDIS_COMPONENT, "SCRIPT LOAD %s: %s",
			    inventory_script_name(c->script), reply->str);
		free(c);
		return;
	case REDIS_CALL_USER:
		break;
	}
	if (c->script >= 0 && !c->retried && reply->type == REDIS_REPLY_ERROR &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		if (redis_retry_noscript(r, c) == 0)
			return;
		/* Only when the context is already being freed. */
		c->status = r->closing ? -ECANCELED : -ENOTCONN;
		redis_list_push(&r->failed, c);
		return;
	}
	redis_complete(r, c, reply, 0);
}

void
redis_on_timer(uv_timer_t *t)
{
	struct redis *r = t->data;
	struct redis_call *c = r->sent.head;

	if (r->ac == NULL)
		return;
	if (r->state == REDIS_STATE_CONNECTING) {
		snprintf(r->why, sizeof(r->why), "connect timed out after %d ms", r->timeout_ms);
		redis_drop(r, -ETIMEDOUT);
	} else if (c != NULL) {
		if (util_mono_us() < c->deadline_us) {
			redis_arm_timer(r);	/* the oldest call is younger than the last deadline */
			return;
		}
		/* Its own timeout, which a reload may have changed since. */
		snprintf(r->why, sizeof(r->why), "no reply within %lld ms",
		    (long long)((c->deadline_us - c->start_us + 999) / 1000));
		redis_drop(r, -ETIMEDOUT);
	}
	redis_settle(r);
}

/* ---- the API ---- */

int
redis_eval(struct redis *r, enum inventory_script s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    redis_reply_fn cb, void *arg)
{
	struct redis_call *c;
	size_t extra, bytes = 0;
	char *p;
	int argc, err;

	if ((unsigned)s >= INVENTORY_SCRIPT_COUNT || nkeys < 0 || nargs < 0 ||
	    (nkeys > 0 && keys == NULL) || (nargs > 0 && args == NULL) || cb == NULL)
		return -EINVAL;
	if (r->closing || r->state != REDIS_STATE_UP)
		return -ENOTCONN;
	argc = 3 + nkeys + nargs;
	for (int i = 0; i < nkeys; i++)
		bytes += strlen(keys[i]) + 1;
	for (int i = 0; i < nargs; i++)
		bytes += strlen(args[i]) + 1;
	/* One allocation: record, argvlen[], argv[], then the strings. */
	extra = (size_t)argc * (sizeof(size_t) + sizeof(char *)) + bytes + 16;
	c = redis_call_new(r, extra, REDIS_CALL_USER, (int)s, cb, arg);
	c->argc = argc;
	c->argvlen = (size_t *)(c + 1);
	c->argv = (const char **)(c->argvlen + argc);
	p = (char *)(c->argv + argc);
	c->argv[0] = "EVALSHA";
	c->argv[1] = r->sha[s];		/* r outlives its calls; the sha never changes */
	c->argv[2] = p;
	p += snprintf(p, 16, "%d", nkeys) + 1;
	for (int i = 0; i < nkeys + nargs; i++) {
		const char *a = i < nkeys ? keys[i] : args[i - nkeys];
		size_t n = strlen(a);

		memcpy(p, a, n + 1);
		c->argv[3 + i] = p;
		p += n + 1;
	}
	for (int i = 0; i < argc; i++)
		c->argvlen[i] = strlen(c->argv[i]);
	err = redis_send(r, c, c->argc, c->argv, c->argvlen);
	if (err < 0) {
		free(c);
		return err;
	}
	r->pending++;
	return 0;
}

/* Commands after which hiredis calls a callback more than once. */
static bool
redis_is_multi_reply(const char *cmd, size_t len)
{
	static const char *const names[] = {
		"SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE",
		"SSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(names); i++)
		if (len == strlen(names[i]) && strncasecmp(cmd, names[i], len) == 0)
			return true;
	return false;
}

int
redis_command_argv(struct redis *r, int argc, const char *const *argv,
    const size_t *argvlen, redis_reply_fn cb, void *arg)
{
	struct redis_call *c;
	int err;

	if (argc <= 0 || argv == NULL || argv[0] == NULL || cb == NULL ||
	    redis_is_multi_reply(argv[0], argvlen != NULL ? argvlen[0] : strlen(argv[0])))
		return -EINVAL;
	if (r->closing || r->state != REDIS_STATE_UP)
		return -ENOTCONN;
	c = redis_call_new(r, 0, REDIS_CALL_USER, -1, cb, arg);
	/* hiredis formats (copies) the arguments into its output buffer here. */
	err = redis_send(r, c, argc, (const char **)argv, argvlen);
	if (err < 0) {
		free(c);
		return err;
	}
	r->pending++;
	return 0;
}

void
redis_set_timeout(struct redis *r, int timeout_ms)
{
	int64_t cap;

	if (timeout_ms <= 0 || timeout_ms == r->timeout_ms)
		return;
	r->timeout_ms = timeout_ms;
	/* A shorter timeout caps the calls already sent: none waits longer
	 * than the new value from now, and the deadlines stay in the order
	 * of the calls, as the one timer on the oldest call needs. */
	cap = util_mono_us() + (int64_t)timeout_ms * 1000;
	for (struct redis_call *c = r->sent.tail; c != NULL && c->deadline_us > cap; c = c->prev)
		c->deadline_us = cap;
	if (r->ac != NULL && !r->closing)
		redis_arm_timer(r);
}

size_t
redis_pending(const struct redis *r)
{
	return r->pending;
}
