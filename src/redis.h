/* redis.h: orderd's one Redis connection, non-blocking on the libuv loop: script calls, timeouts and reconnects. */
#ifndef ORDERD_REDIS_H
#define ORDERD_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"

/*
 * Everything runs on the loop given to redis_new(), in the thread that runs
 * that loop; no call blocks.  hiredis 0.14 writes with write(2), so the
 * process must ignore SIGPIPE (orderd's main does; so do the tests).
 *
 * Callbacks may call any function of this module, including redis_close(),
 * from inside themselves.
 */
struct redis;

struct redis_options {
	/* A numeric address ("127.0.0.1"): hiredis resolves names with a
	 * blocking getaddrinfo().  Copied. */
	const char *host;
	int port;
	int timeout_ms;		/* per call and per connect; <= 0: 2000 */
	int backoff_min_ms;	/* first reconnect delay; <= 0: 100 */
	int backoff_max_ms;	/* reconnect delays double up to this; <= 0: 5000 */
	/* AUTH before anything else on every connection when password is
	 * not empty: "AUTH user password" (Redis 6 ACLs), or "AUTH password"
	 * (the default user) when user is empty.  Copied; NULL is "". */
	const char *user;
	const char *password;
	/*
	 * Called (may be NULL) when Redis refuses this client on a new
	 * connection: AUTH failed (WRONGPASS), a password is needed but
	 * none is configured (NOAUTH), or the ACL user may not load the
	 * scripts (NOPERM).  why is one line for the log, without the
	 * password.  The module retries with its backoff all the same; the
	 * caller decides whether to give up.  Gets the arg of redis_new().
	 */
	void (*refused_cb)(const char *why, void *arg);
};

/*
 * The end of one call.  status is 0 when Redis answered: reply is then never
 * NULL, and a Redis error reply is delivered as status 0 with
 * reply->type == REDIS_REPLY_ERROR.  Otherwise reply is NULL and status is
 *   -ETIMEDOUT  the oldest call on the connection waited more than
 *               timeout_ms: the connection was dropped and every call on it
 *               ends this way;
 *   -ENOTCONN   the connection was lost before the reply came;
 *   -ECANCELED  redis_close() was called first.
 * The reply belongs to hiredis and is valid during the callback only.
 */
typedef void (*redis_reply_fn)(redisReply *reply, int status, void *arg);

/*
 * Creates the connection object and starts connecting to opt->host:port.
 * Not being able to connect is not an error here: the module retries with a
 * jittered exponential backoff (backoff_min_ms .. backoff_max_ms), forever.
 * scripts[] are the Lua sources indexed by enum inventory_script (copied;
 * see inventory_read_scripts()).  The connection is "up" once connected AND
 * every script is loaded with SCRIPT LOAD; state_cb(true, arg) is called
 * then, and state_cb(false, arg) when an up connection is lost (after its
 * calls have ended).  state_cb may be NULL; redis_close() never calls it.
 * Returns 0 and *out (released by redis_close()), or -EINVAL.
 */
int redis_new(struct redis **out, uv_loop_t *loop, const struct redis_options *opt,
    char *const scripts[INVENTORY_SCRIPT_COUNT],
    void (*state_cb)(bool up, void *arg), void *arg);

/*
 * EVALSHA of one inventory script with nkeys keys and nargs args (all
 * NUL-terminated, copied).  On a NOSCRIPT error reply (Redis restarted or
 * SCRIPT FLUSH) the module sends SCRIPT LOAD and the call again, once,
 * without the caller seeing it.  Returns 0, and cb will be called exactly
 * once; or -ENOTCONN when the connection is not up (or is closing), or
 * -EINVAL; cb is then never called.
 */
int redis_eval(struct redis *r, enum inventory_script s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    redis_reply_fn cb, void *arg);

/*
 * Any command, argv-style; argvlen may be NULL for NUL-terminated
 * arguments.  The arguments are copied before this returns.  Same return
 * and callback contract as redis_eval(), without the NOSCRIPT retry.
 * (P|S)SUBSCRIBE, their UNSUBSCRIBEs and MONITOR answer more than once and
 * are refused with -EINVAL.
 */
int redis_command_argv(struct redis *r, int argc, const char *const *argv,
    const size_t *argvlen, redis_reply_fn cb, void *arg);

/*
 * New credentials (SIGHUP): used by every later connection, and sent at
 * once as AUTH on an up connection, so that a password that Redis refuses
 * shows in the log now, not at the next reconnect.  The connection keeps
 * working as it was authenticated either way.
 */
void redis_set_auth(struct redis *r, const char *user, const char *password);

/*
 * A new timeout_ms (SIGHUP); <= 0 is ignored.  Every call sent from now on
 * waits at most timeout_ms, and so does every later connect.  A call
 * already sent keeps its deadline, but waits no longer than timeout_ms
 * from now; a connect under way keeps its own.
 */
void redis_set_timeout(struct redis *r, int timeout_ms);

/* True between state_cb(true) and the loss of that connection or redis_close(). */
bool redis_is_up(const struct redis *r);
/* Calls accepted whose callback has not run yet. */
size_t redis_pending(const struct redis *r);

/*
 * Starts an orderly close: every pending call ends with -ECANCELED (one
 * that had already failed keeps its -ETIMEDOUT or -ENOTCONN), before this
 * returns, or, when called from inside a callback of this module, before
 * control goes back to the loop.  Then the connection and the module's uv
 * handles are closed, and closed_cb(arg) (may be NULL) runs from the loop
 * once all of them are released, after r is freed; no callback of this
 * module runs after it.  Until then r stays valid and refuses calls with
 * -ENOTCONN.  A second call is ignored.
 */
void redis_close(struct redis *r, void (*closed_cb)(void *arg), void *arg);

#endif
