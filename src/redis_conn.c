/* redis_conn.c: the life of the Redis connection: our libuv adapter for hiredis 0.14's hooks, connecting with AUTH and the SCRIPT LOADs, reconnects with backoff, a lost context and the close. */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "log.h"
#include "redis.h"
#include "redis_int.h"
#include "util.h"

/* xorshift64*: jitter only, so a per-connection generator is plenty and
 * leaves the process's rand() state alone. */
static uint32_t
redis_random(struct redis *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return (uint32_t)((r->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- the libuv adapter for hiredis 0.14's ev hooks ---- */

static void redis_on_poll(uv_poll_t *h, int status, int events);

static void
redis_poll_set(struct redis *r, int add, int del)
{
	int events = (r->poll_events | add) & ~del;
	int err;

	if (!r->poll_open || uv_is_closing((uv_handle_t *)&r->poll))
		return;
	/* hiredis asks for writability on every command: restarting an
	 * unchanged watcher costs an epoll_ctl() each time (libuv drops the fd
	 * from epoll in uv_poll_start), so only a change, or a watcher libuv
	 * stopped itself after reporting a poll error, restarts it. */
	if (events == r->poll_events && (events == 0) != uv_is_active((uv_handle_t *)&r->poll))
		return;
	r->poll_events = events;
	if (r->poll_events != 0)
		err = uv_poll_start(&r->poll, r->poll_events, redis_on_poll);
	else
		err = uv_poll_stop(&r->poll);
	if (err < 0)
		log_error(REDIS_COMPONENT, "uv_poll_start: %s", uv_strerror(err));
}

static void
redis_ev_add_read(void *privdata)
{
	redis_poll_set(privdata, UV_READABLE, 0);
}

static void
redis_ev_del_read(void *privdata)
{
	redis_poll_set(privdata, 0, UV_READABLE);
}

static void
redis_ev_add_write(void *privdata)
{
	redis_poll_set(privdata, UV_WRITABLE, 0);
}

static void
redis_ev_del_write(void *privdata)
{
	redis_poll_set(privdata, 0, UV_WRITABLE);
}

static void
redis_set_down(struct redis *r)
{
	if (r->state == REDIS_STATE_UP)
		r->was_up = true;
	r->state = REDIS_STATE_DOWN;
}

static void
redis_free_mem(struct redis *r)
{
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(r->src[i]);
	free(r->host);
	free(r->user);
	util_secret_free(r->password);
	free(r);
}

/* Whether an error reply says Redis will not serve this client as it is
 * configured (rather than that the call failed). */
static bool
redis_is_refusal(const char *err)
{
	return strncmp(err, "NOAUTH", 6) == 0 || strncmp(err, "WRONGPASS", 9) == 0 ||
	    strncmp(err, "NOPERM", 6) == 0 || strncmp(err, "ERR AUTH", 8) == 0 ||
	    strncmp(err, "ERR invalid password", 20) == 0 ||
	    strncmp(err, "ERR Client sent AUTH", 20) == 0;
}

/* Counts one closed handle; frees r after the last one once closing.
 * Returns true when r is gone. */
static bool
redis_handle_closed(struct redis *r)
{
	void (*cb)(void *);
	void *arg;

	if (--r->handles > 0 || !r->closing)
		return false;
	cb = r->closed_cb;
	arg = r->closed_arg;
	redis_free_mem(r);
	if (cb != NULL)
		cb(arg);
	return true;
}

static void
redis_on_handle_close(uv_handle_t *h)
{
	redis_handle_closed(h->data);
}

static void
redis_on_poll_close(uv_handle_t *h)
{
	struct redis *r = h->data;

	r->poll_open = false;
	if (redis_handle_closed(r))
		return;
	if (r->connect_pending && !r->closing) {
		r->connect_pending = false;
		redis_connect(r);
	}
}

/*
 * hiredis calls this when it frees a context (for any reason, sometimes
 * twice: 0.14 cleans up in __redisAsyncDisconnect and again in
 * __redisAsyncFree), just before it closes the socket.  The watcher must stop
 * before the fd is closed; the consequences for calls and state are drawn
 * later by redis_settle(), outside hiredis.
 */
static void
redis_ev_cleanup(void *privdata)
{
	struct redis *r = privdata;

	if (r->ac == NULL)
		return;
	if (r->why[0] == '\0')
		snprintf(r->why, sizeof(r->why), "%s",
		    r->ac->c.err != 0 ? r->ac->c.errstr : "connection closed");
	r->ac = NULL;
	redis_set_down(r);
	r->ctx_lost = true;
	uv_timer_stop(&r->timer);
	if (r->poll_open && !uv_is_closing((uv_handle_t *)&r->poll))
		uv_close((uv_handle_t *)&r->poll, redis_on_poll_close);
}

/* ---- a new connection: AUTH first, then the scripts ---- */

static int
redis_send_auth(struct redis *r, enum redis_call_kind kind)
{
	const char *argv[3] = { "AUTH", r->user, r->password };
	struct redis_call *c = redis_call_new(r, 0, kind, -1, NULL, NULL);
	int err;

	/* hiredis copies the arguments into its output buffer here. */
	err = r->user[0] != '\0' ? redis_send(r, c, 3, argv, NULL) :
	    redis_send(r, c, 2, (const char *[]){ "AUTH", r->password }, NULL);
	if (err < 0)
		free(c);
	return err;
}

/*
 * Declares the connection broken.  Outside hiredis the context is freed at
 * once; inside one of its callbacks hiredis frees it when the callback
 * returns.  Either way hiredis hands every held call back with a NULL reply
 * first, and the caller's redis_settle() (ours, or the poll callback's)
 * tells the users.
 */
void
redis_drop(struct redis *r, int status)
{
	r->fail_status = status;
	redis_set_down(r);
	if (r->ac != NULL)
		redisAsyncFree(r->ac);
}

/* The answer to the AUTH sent first on a connection: a refusal fails the
 * connect (the SCRIPT LOADs behind it fail with NOAUTH anyway). */
void
redis_on_auth_reply(struct redis *r, struct redis_call *c, redisReply *reply)
{
	free(c);
	if (reply->type != REDIS_REPLY_ERROR)
		return;
	r->load_failed = true;
	r->refused = true;
	snprintf(r->why, sizeof(r->why), "AUTH as user '%s' refused: %s",
	    r->user[0] != '\0' ? r->user : "default", reply->str);
}

/* One SCRIPT LOAD of a new connection answered: the last one makes the
 * connection up, or drops it when any failed. */
void
redis_on_load_reply(struct redis *r, struct redis_call *c, redisReply *reply)
{
	int s = c->script;

	free(c);
	if (reply->type == REDIS_REPLY_STRING && reply->len == REDIS_SHA_LEN) {
		memcpy(r->sha[s], reply->str, REDIS_SHA_LEN);
		r->sha[s][REDIS_SHA_LEN] = '\0';
	} else if (!r->load_failed) {
		r->load_failed = true;
		if (reply->type == REDIS_REPLY_ERROR && redis_is_refusal(reply->str)) {
			r->refused = true;
			if (strncmp(reply->str, "NOAUTH", 6) == 0)
				snprintf(r->why, sizeof(r->why), "Redis wants a password (%s): "
				    "set [redis] password_file (and user)", reply->str);
			else
				snprintf(r->why, sizeof(r->why), "SCRIPT LOAD %s refused to user "
				    "'%s': %s (see the ACL in the README's Security section)",
				    inventory_script_name(s), r->user[0] != '\0' ? r->user :
				    "default", reply->str);
		} else {
			snprintf(r->why, sizeof(r->why), "SCRIPT LOAD %s: %s",
			    inventory_script_name(s),
			    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		}
	}
	if (--r->loads_left > 0 || r->state != REDIS_STATE_LOADING)
		return;
	if (r->load_failed) {
		redis_drop(r, -ENOTCONN);
		return;
	}
	r->state = REDIS_STATE_UP;
	r->backoff_ms = r->backoff_min_ms;
	r->warned = false;
	log_info(REDIS_COMPONENT, "connected to %s:%d", r->host, r->port);
	if (r->state_cb != NULL)
		r->state_cb(true, r->state_arg);
}

/* The AUTH of redis_set_auth(): only told in the log, as the connection
 * goes on as it was authenticated either way. */
void
redis_on_reauth_reply(struct redis *r, struct redis_call *c, redisReply *reply)
{
	free(c);
	if (reply->type == REDIS_REPLY_ERROR)
		log_error(REDIS_COMPONENT, "%s:%d: the new credentials were refused "
		    "(AUTH as user '%s': %s); this connection stays authenticated as "
		    "before, the next one will fail", r->host, r->port,
		    r->user[0] != '\0' ? r->user : "default", reply->str);
	else
		log_info(REDIS_COMPONENT, "%s:%d: authenticated with the new credentials",
		    r->host, r->port);
}

/* ---- connection life ---- */

static void
redis_on_retry(uv_timer_t *t)
{
	redis_connect(t->data);
}

static void
redis_schedule_connect(struct redis *r)
{
	int cur = r->backoff_ms;
	int delay = r->backoff_min_ms +
	    (int)(redis_random(r) % (uint32_t)(cur - r->backoff_min_ms + 1));

	r->backoff_ms = cur > r->backoff_max_ms / 2 ? r->backoff_max_ms : cur * 2;
	log_debug(REDIS_COMPONENT, "next connect to %s:%d in %d ms", r->host, r->port, delay);
	uv_timer_start(&r->retry, redis_on_retry, (uint64_t)delay, 0);
}

/* A connect attempt failed; one WARN until the next success, then DEBUG. */
static void
redis_connect_failed(struct redis *r)
{
	if (r->refused) {
		/* Not a network matter: the same credentials will be refused
		 * again, so the owner hears of it every time. */
		r->refused = false;
		r->warned = true;
		redis_schedule_connect(r);
		if (r->refused_cb != NULL)
			r->refused_cb(r->why, r->state_arg);	/* logs it, or stops */
		else
			log_error(REDIS_COMPONENT, "%s:%d refused us: %s", r->host, r->port, r->why);
		return;
	}
	if (!r->warned) {
		log_warn(REDIS_COMPONENT, "cannot connect to %s:%d: %s; retrying",
		    r->host, r->port, r->why);
		r->warned = true;
	} else {
		log_debug(REDIS_COMPONENT, "connect to %s:%d failed: %s", r->host, r->port, r->why);
	}
	redis_schedule_connect(r);
}

static void
redis_after_loss(struct redis *r)
{
	bool was_up = r->was_up;

	r->was_up = false;
	if (r->closing)
		return;
	if (!was_up) {
		redis_connect_failed(r);
		return;
	}
	log_warn(REDIS_COMPONENT, "connection to %s:%d lost: %s; reconnecting",
	    r->host, r->port, r->why);
	r->warned = true;
	redis_schedule_connect(r);
	if (r->state_cb != NULL)
		r->state_cb(false, r->state_arg);
}

static void
redis_finish_close(struct redis *r)
{
	if (r->ac != NULL || r->failed.head != NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&r->timer))
		uv_close((uv_handle_t *)&r->timer, redis_on_handle_close);
	if (!uv_is_closing((uv_handle_t *)&r->retry))
		uv_close((uv_handle_t *)&r->retry, redis_on_handle_close);
}

/*
 * Runs after every entry into hiredis, outside it: tells users about the
 * calls hiredis gave back, then handles a lost context.  Re-entered from a
 * user callback it returns at once; the outer run picks up what was added.
 */
void
redis_settle(struct redis *r)
{
	if (r->settling)
		return;
	r->settling = true;
	for (;;) {
		struct redis_call *c = r->failed.head;

		if (c != NULL) {
			redis_list_remove(&r->failed, c);
			redis_complete(r, c, NULL, c->status);
			continue;
		}
		if (r->ctx_lost && r->ac == NULL) {
			r->ctx_lost = false;
			redis_after_loss(r);
			continue;
		}
		break;
	}
	r->settling = false;
	if (r->closing)
		redis_finish_close(r);
}

static void
redis_on_poll(uv_poll_t *h, int status, int events)
{
	struct redis *r = h->data;
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	if (status < 0) {
		/* libuv reports POLLERR as an error and stops the watcher; the
		 * bundled adapter returns here and the connection stalls.  A read
		 * makes hiredis find the socket error and tear down. */
		log_debug(REDIS_COMPONENT, "poll: %s", uv_strerror(status));
		redisAsyncHandleRead(ac);
	} else {
		if (events & UV_READABLE)
			redisAsyncHandleRead(ac);
		/* No new context can appear inside hiredis: NULL or the same. */
		if ((events & UV_WRITABLE) && r->ac != NULL)
			redisAsyncHandleWrite(ac);
	}
	redis_settle(r);
}

/* hiredis 0.14 calls this outside REDIS_IN_CALLBACK: freeing the context
 * here would be a use after free, so this only sends commands. */
static void
redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context when this returns. */
		snprintf(r->why, sizeof(r->why), "%s", ac->c.errstr);
		return;
	}
	log_debug(REDIS_COMPONENT, "TCP connected to %s:%d, loading scripts", r->host, r->port);
	r->state = REDIS_STATE_LOADING;
	r->loads_left = INVENTORY_SCRIPT_COUNT;
	r->load_failed = false;
	r->refused = false;
	memset(r->reloading, 0, sizeof(r->reloading));
	uv_timer_stop(&r->timer);
	/* AUTH first: Redis answers in order, so nothing runs before it. */
	if (r->password[0] != '\0' && redis_send_auth(r, REDIS_CALL_AUTH) < 0)
		log_fatal(REDIS_COMPONENT, "out of memory queueing AUTH");
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		/* Fails only when hiredis is out of memory (the context is
		 * neither disconnecting nor freeing here), like xmalloc. */
		if (redis_send_load(r, REDIS_CALL_LOAD, i) < 0)
			log_fatal(REDIS_COMPONENT, "out of memory queueing SCRIPT LOAD");
	}
}

void
redis_connect(struct redis *r)
{
	redisAsyncContext *ac;
	int err;

	if (r->closing || r->ac != NULL)
		return;
	/* The watcher of the previous socket must be fully closed before it
	 * can be initialised again; its close callback connects then. */
	if (r->poll_open) {
		r->connect_pending = true;
		return;
	}
	r->why[0] = '\0';
	r->fail_status = -ENOTCONN;
	log_debug(REDIS_COMPONENT, "connecting to %s:%d", r->host, r->port);
	ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL)
		log_fatal(REDIS_COMPONENT, "out of memory creating a hiredis context");
	if (ac->err != 0) {
		snprintf(r->why, sizeof(r->why), "%s", ac->errstr);
		redisAsyncFree(ac);
		redis_connect_failed(r);
		return;
	}
	err = uv_poll_init_socket(r->loop, &r->poll, ac->c.fd);
	if (err < 0) {
		snprintf(r->why, sizeof(r->why), "uv_poll_init_socket: %s", uv_strerror(err));
		redisAsyncFree(ac);	/* no hooks yet: nothing of ours runs */
		redis_connect_failed(r);
		return;
	}
	r->poll.data = r;
	r->poll_open = true;
	r->poll_events = 0;
	r->handles++;
	r->ac = ac;
	r->state = REDIS_STATE_CONNECTING;
	ac->data = r;
	ac->ev.data = r;
	ac->ev.addRead = redis_ev_add_read;
	ac->ev.delRead = redis_ev_del_read;
	ac->ev.addWrite = redis_ev_add_write;
	ac->ev.delWrite = redis_ev_del_write;
	ac->ev.cleanup = redis_ev_cleanup;
	/* Finds a peer that vanished while the connection is idle. */
	redisEnableKeepAlive(&ac->c);
	/* Also watches for writability, which is how hiredis sees the connect end. */
	redisAsyncSetConnectCallback(ac, redis_on_connect);
	/* 0.14 has no connect timeout: one that never completes is abandoned
	 * by redis_on_timer(). */
	uv_timer_start(&r->timer, redis_on_timer, (uint64_t)r->timeout_ms, 0);
}

/* ---- the API ---- */

int
redis_new(struct redis **out, uv_loop_t *loop, const struct redis_options *opt,
    char *const scripts[INVENTORY_SCRIPT_COUNT],
    void (*state_cb)(bool up, void *arg), void *arg)
{
	struct redis *r;
	int err;

	*out = NULL;
	if (loop == NULL || opt == NULL || opt->host == NULL || opt->port <= 0 ||
	    opt->port > 65535 || scripts == NULL)
		return -EINVAL;
	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->host = xstrdup(opt->host);
	r->port = opt->port;
	r->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 2000;
	r->backoff_min_ms = opt->backoff_min_ms > 0 ? opt->backoff_min_ms : 100;
	r->backoff_max_ms = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : 5000;
	if (r->backoff_max_ms < r->backoff_min_ms)
		r->backoff_max_ms = r->backoff_min_ms;
	r->backoff_ms = r->backoff_min_ms;
	r->rng = (uint64_t)util_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)r;
	if (r->rng == 0)
		r->rng = 1;
	r->state_cb = state_cb;
	r->state_arg = arg;
	r->user = xstrdup(opt->user != NULL ? opt->user : "");
	r->password = xstrdup(opt->password != NULL ? opt->password : "");
	r->refused_cb = opt->refused_cb;
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		if (scripts[i] == NULL) {
			err = -EINVAL;
			goto fail;
		}
		r->src[i] = xstrdup(scripts[i]);
	}
	/* Last, as nothing after them may fail: an initialised handle can only
	 * be released through the loop.  uv_timer_init() always returns 0. */
	uv_timer_init(loop, &r->timer);
	uv_timer_init(loop, &r->retry);
	r->timer.data = r;
	r->retry.data = r;
	r->handles = 2;
	redis_connect(r);
	*out = r;
	return 0;
fail:
	redis_free_mem(r);
	return err;
}

void
redis_set_auth(struct redis *r, const char *user, const char *password)
{
	if (user == NULL)
		user = "";
	if (password == NULL)
		password = "";
	if (strcmp(user, r->user) == 0 && strcmp(password, r->password) == 0)
		return;
	free(r->user);
	util_secret_free(r->password);
	r->user = xstrdup(user);
	r->password = xstrdup(password);
	if (r->state == REDIS_STATE_UP && !r->closing && r->password[0] != '\0')
		redis_send_auth(r, REDIS_CALL_REAUTH);
}

bool
redis_is_up(const struct redis *r)
{
	return r->state == REDIS_STATE_UP && !r->closing;
}

void
redis_close(struct redis *r, void (*closed_cb)(void *arg), void *arg)
{
	if (r == NULL || r->closing)
		return;
	r->closing = true;
	r->closed_cb = closed_cb;
	r->closed_arg = arg;
	r->connect_pending = false;
	uv_timer_stop(&r->retry);
	redis_drop(r, -ECANCELED);
	redis_settle(r);
}
