/* redis_int.h: what the Redis connection's files (redis.c, redis_conn.c) share and nobody else sees: struct redis, its calls, and the functions each file offers the other. */
#ifndef ORDERD_REDIS_INT_H
#define ORDERD_REDIS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "redis.h"

#define REDIS_COMPONENT "redis"
#define REDIS_SHA_LEN 40

enum redis_state {
	REDIS_STATE_DOWN = 0,	/* no context: waiting for the retry timer */
	REDIS_STATE_CONNECTING,	/* context created, TCP connect in progress */
	REDIS_STATE_LOADING,	/* connected, SCRIPT LOADs outstanding */
	REDIS_STATE_UP,		/* usable: calls are accepted */
};

enum redis_call_kind {
	REDIS_CALL_USER = 0,	/* redis_eval() or redis_command_argv() */
	REDIS_CALL_LOAD,	/* SCRIPT LOAD while connecting */
	REDIS_CALL_RELOAD,	/* SCRIPT LOAD after a NOSCRIPT reply */
	REDIS_CALL_AUTH,	/* AUTH first thing on a new connection */
	REDIS_CALL_REAUTH,	/* AUTH with new credentials on an up connection */
};

/*
 * One command handed to hiredis.  hiredis holds the pointer as privdata from
 * redisAsyncCommandArgv() until it calls redis_on_reply() for it (with a
 * reply, or with NULL when the context goes away), which it does exactly
 * once; the record is never freed while hiredis holds it.
 */
struct redis_call {
	struct redis_call *prev, *next;
	struct redis *r;
	enum redis_call_kind kind;
	int script;		/* enum inventory_script, or -1 for a plain command */
	redis_reply_fn cb;
	void *arg;
	int status;		/* on r->failed: what cb will be told */
	bool retried;		/* the NOSCRIPT retry was used */
	int64_t start_us;	/* when sent */
	/* When it times out: start_us + timeout_ms, or earlier when
	 * redis_set_timeout() shortened it.  Never before an older call's,
	 * so the oldest call's is the next. */
	int64_t deadline_us;
	/* Script calls keep their arguments for the NOSCRIPT retry; they live
	 * in the same allocation, after the record. */
	int argc;
	const char **argv;
	size_t *argvlen;
};

struct redis_list {
	struct redis_call *head, *tail;
};

struct redis {
	uv_loop_t *loop;
	char *host;
	int port;
	int timeout_ms;		/* for calls sent from now on, and connects */
	int backoff_min_ms;
	int backoff_max_ms;
	char *src[INVENTORY_SCRIPT_COUNT];
	char sha[INVENTORY_SCRIPT_COUNT][REDIS_SHA_LEN + 1];
	bool reloading[INVENTORY_SCRIPT_COUNT];	/* a RELOAD is outstanding */
	void (*state_cb)(bool up, void *arg);
	void *state_arg;
	char *user;		/* "" = the default user */
	char *password;		/* "" = no AUTH */
	void (*refused_cb)(const char *why, void *arg);
	bool refused;		/* this connection was refused (why says how) */

	redisAsyncContext *ac;	/* NULL between a context's end and the next connect */
	enum redis_state state;
	int loads_left;		/* SCRIPT LOAD replies still expected */
	bool load_failed;

	/* Our adapter: hiredis's addRead/... hooks drive this watcher. */
	uv_poll_t poll;
	bool poll_open;		/* initialised, close callback not yet run */
	int poll_events;
	uv_timer_t timer;	/* connect timeout, then the oldest call's deadline */
	uv_timer_t retry;	/* backoff before the next connect */
	bool connect_pending;	/* retry came while the old watcher was closing */
	int backoff_ms;
	uint64_t rng;

	struct redis_list sent;		/* held by hiredis, in the order sent */
	struct redis_list failed;	/* released without a reply, cb not yet run */
	size_t pending;			/* user calls whose cb has not run */
	int fail_status;		/* what calls of a dying context are told */
	bool ctx_lost;			/* context gone, consequences not yet drawn */
	bool was_up;			/* ... and it had been up */
	bool warned;			/* the WARN for being down is logged */
	bool settling;
	char why[512];			/* why the last context ended, for the log */

	bool closing;
	int handles;			/* uv handles not yet closed */
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

/* The lists of calls: a call is on at most one of them at a time. */
static inline void
redis_list_push(struct redis_list *l, struct redis_call *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

static inline void
redis_list_remove(struct redis_list *l, struct redis_call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
}

/* ---- redis.c: calls ---- */

/* A new call record with extra bytes after it; never fails (xcalloc). */
struct redis_call *redis_call_new(struct redis *r, size_t extra, enum redis_call_kind kind,
    int script, redis_reply_fn cb, void *arg);
/* Hands one call to hiredis, which holds it until it gives it back to
 * redis.c's reply callback; -ENOTCONN when there is no context (the
 * caller still owns c then). */
int redis_send(struct redis *r, struct redis_call *c, int argc, const char **argv,
    const size_t *argvlen);
/* SCRIPT LOAD of script s, as a call of kind; 0 or -ENOTCONN. */
int redis_send_load(struct redis *r, enum redis_call_kind kind, int s);
/* Ends a user call: frees c, then runs its callback. */
void redis_complete(struct redis *r, struct redis_call *c, redisReply *reply, int status);
/* r->timer's callback: the connect timeout, then the oldest call's deadline. */
void redis_on_timer(uv_timer_t *t);

/* ---- redis_conn.c: the connection's life ---- */

/* Connects unless closing or connected already; failures retry with the backoff. */
void redis_connect(struct redis *r);
/* Declares the connection broken: the calls hiredis holds end with status
 * (-ECANCELED once closing), at the next redis_settle(). */
void redis_drop(struct redis *r, int status);
/* After every entry into hiredis, outside it: the failed calls' callbacks,
 * then the consequences of a lost context. */
void redis_settle(struct redis *r);
/* The answers to the calls a new connection begins with, and to the AUTH
 * of redis_set_auth(); each frees c. */
void redis_on_auth_reply(struct redis *r, struct redis_call *c, redisReply *reply);
void redis_on_load_reply(struct redis *r, struct redis_call *c, redisReply *reply);
void redis_on_reauth_reply(struct redis *r, struct redis_call *c, redisReply *reply);

#endif
