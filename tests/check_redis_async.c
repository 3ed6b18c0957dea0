/* check_redis_async.c: the async Redis module on a libuv loop against real redis-servers: replies, pipelining, NOSCRIPT, timeouts and their reload, restarts, close. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "redis.h"
#include "testutil.h"
#include "util.h"

#define REDIS_SH ABS_TOP_SRCDIR "/contrib/redis.sh"
#define NPIPE 1000

static uv_loop_t loop;
static uv_timer_t tick;		/* wakes uv_run(UV_RUN_ONCE) so waits can time out */
static char *scripts[INVENTORY_SCRIPT_COUNT];
static char prefix[96];
static struct redis *rd;
static int ups, downs, closed, state_mismatch;
static bool close_on_down;	/* on_state closes rd when the connection is lost */

/* The private server of the "private" test case, for stops, pauses and flushes
 * that must not disturb the tests sharing the harness's server. */
static char *priv_dir;
static int priv_port;

/* What one call's callback saw. */
struct res {
	int calls;
	int status;
	int type;
	char str[128];
	long long integer;
	size_t elements;
	long long el[2];
};

static void
on_reply(redisReply *reply, int status, void *arg)
{
	struct res *x = arg;

	x->calls++;
	x->status = status;
	x->type = -1;
	if (reply == NULL)
		return;
	x->type = reply->type;
	if (reply->str != NULL)
		snprintf(x->str, sizeof(x->str), "%s", reply->str);
	x->integer = reply->integer;
	x->elements = reply->elements;
	for (size_t i = 0; i < reply->elements && i < 2; i++)
		x->el[i] = reply->element[i]->integer;
}

static void on_closed(void *arg);

static void
on_state(bool up, void *arg)
{
	(void)arg;
	if (up)
		ups++;
	else
		downs++;
	if (redis_is_up(rd) != up)
		state_mismatch++;
	if (!up && close_on_down)
		redis_close(rd, on_closed, NULL);
}

static void
on_closed(void *arg)
{
	(void)arg;
	closed++;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *counter reaches target or ms pass; true when reached. */
static bool
run_until(const int *counter, int target, int ms)
{
	int64_t end = util_mono_us() + (int64_t)ms * 1000;

	uv_timer_start(&tick, on_tick, 5, 5);
	while (*counter < target && util_mono_us() < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&tick);
	return *counter >= target;
}

static void
run_for(int ms)
{
	static const int never;

	run_until(&never, 1, ms);
}

/* Runs contrib/redis.sh VERB DIR; returns the port it prints for start and restart. */
static int
redis_sh(const char *verb, const char *dir)
{
	char *cmd = xasprintf("'%s' %s '%s'", REDIS_SH, verb, dir), line[64] = "";
	FILE *f = popen(cmd, "r");
	int rc, port = 0;

	ck_assert_msg(f != NULL, "popen %s", cmd);
	if (fgets(line, sizeof(line), f) != NULL)
		port = atoi(line);
	rc = pclose(f);
	ck_assert_msg(rc == 0, "%s failed (status %d)", cmd, rc);
	free(cmd);
	return port;
}

static void
setup(void)
{
	char *cause = NULL, *p;

	/* hiredis 0.14 writes with write(2): a closed peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uv_timer_init(&loop, &tick), 0);
	ck_assert_msg(inventory_read_scripts(scripts, &cause) == 0, "%s", cause);
	p = tu_unique("ta");
	snprintf(prefix, sizeof(prefix), "%s:", p);
	free(p);
	rd = NULL;
	ups = downs = closed = state_mismatch = 0;
	close_on_down = false;
}

static void
teardown(void)
{
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		free(scripts[i]);
		scripts[i] = NULL;
	}
}

/* Once per private test case, in Check's parent process, so the server is
 * stopped even when a test fails. */
static void
priv_start(void)
{
	priv_dir = tu_tmpdir();
	priv_port = redis_sh("start", priv_dir);
	ck_assert_int_gt(priv_port, 0);
}

static void
priv_stop(void)
{
	char *cmd;

	redis_sh("stop", priv_dir);
	cmd = xasprintf("rm -rf '%s'", priv_dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(priv_dir);
	priv_dir = NULL;
}

/* Each private test gets a fresh, running server on the same port. */
static void
priv_setup(void)
{
	setup();
	ck_assert_int_eq(redis_sh("restart", priv_dir), priv_port);
}

static int
shared_port(void)
{
	return atoi(tu_env("ORDERD_TEST_REDIS_PORT"));
}

/* Creates rd against port and waits until it is up. */
static void
open_redis(int port, int timeout_ms)
{
	struct redis_options opt = {
		.host = "127.0.0.1", .port = port, .timeout_ms = timeout_ms,
		.backoff_min_ms = 50, .backoff_max_ms = 200,
	};

	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	ck_assert_ptr_nonnull(rd);
	ck_assert_msg(run_until(&ups, 1, 10000), "not up on port %d within 10 s", port);
	ck_assert_int_eq(ups, 1);
	ck_assert(redis_is_up(rd));
}

/* Closes rd and checks that the loop has nothing left. */
static void
close_redis(void)
{
	if (!closed) {
		redis_close(rd, on_closed, NULL);
		ck_assert_msg(run_until(&closed, 1, 5000), "closed_cb never ran");
	}
	ck_assert_int_eq(closed, 1);
	rd = NULL;
	uv_close((uv_handle_t *)&tick, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_int_eq(state_mismatch, 0);
}

/* Calls script s (stock_add or reserve) for (sku, id, qty) through rd, as
 * orderd builds the call; the call lives on our stack, so the module must
 * copy it. */
static int
eval_cb(enum inventory_script s, const char *sku, const char *id, const char *qty,
    redis_reply_fn cb, void *arg)
{
	struct inventory_call c;

	ck_assert(s == INVENTORY_STOCK_ADD || s == INVENTORY_RESERVE);
	ck_assert_int_eq(s == INVENTORY_STOCK_ADD ?
	    inventory_call_stock_add(&c, prefix, sku, id, atoll(qty)) :
	    inventory_call_reserve(&c, prefix, sku, id, atoll(qty)), 0);
	return redis_eval(rd, c.script, c.nkeys, c.keys, c.nargs, c.args, cb, arg);
}

static void
eval(enum inventory_script s, const char *sku, const char *id, const char *qty,
    struct res *x)
{
	ck_assert_int_eq(eval_cb(s, sku, id, qty, on_reply, x), 0);
}

static void
expect_status(const struct res *x, const char *want)
{
	ck_assert_int_eq(x->calls, 1);
	ck_assert_int_eq(x->status, 0);
	ck_assert_msg(x->type == REDIS_REPLY_STATUS && strcmp(x->str, want) == 0,
	    "reply type %d '%s', want status %s", x->type, x->str, want);
}

/* A synchronous side connection, as an operator's redis-cli would be. */
static void
sync_command(int port, const char *cmd, const char *want)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;

	ck_assert_msg(c != NULL && c->err == 0, "connect %d", port);
	r = redisCommand(c, cmd);
	ck_assert_msg(r != NULL, "%s: %s", cmd, c->errstr);
	ck_assert_msg(r->type != REDIS_REPLY_ERROR && (want == NULL || strcmp(r->str, want) == 0),
	    "%s: %s", cmd, r->str ? r->str : "(no string)");
	freeReplyObject(r);
	redisFree(c);
}

START_TEST(test_eval_replies)
{
	struct res add = { 0 }, again = { 0 }, held = { 0 }, short_ = { 0 }, bad = { 0 },
	    get = { 0 };
	char k1[INVENTORY_KEY_MAX];
	const char *hget[3] = { "HGET", k1, "available" };
	const char *sub[2] = { "SUBSCRIBE", "x" };

	open_redis(shared_port(), 10000);
	ck_assert_int_eq(inventory_key_stock(k1, sizeof(k1), prefix, "A"), 0);
	/* All pipelined in one go, answered in order. */
	eval(INVENTORY_STOCK_ADD, "A", "adj-1", "10", &add);
	eval(INVENTORY_STOCK_ADD, "A", "adj-1", "10", &again);
	eval(INVENTORY_RESERVE, "A", "o1", "3", &held);
	eval(INVENTORY_RESERVE, "A", "o2", "100", &short_);
	eval(INVENTORY_RESERVE, "A", "o3", "0", &bad);
	ck_assert_int_eq(redis_command_argv(rd, 3, hget, NULL, on_reply, &get), 0);
	ck_assert_uint_eq(redis_pending(rd), 6);
	ck_assert(run_until(&get.calls, 1, 10000));
	ck_assert_uint_eq(redis_pending(rd), 0);

	ck_assert_int_eq(add.calls, 1);
	ck_assert_int_eq(add.status, 0);
	ck_assert_int_eq(add.type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(add.elements, 2);
	ck_assert_int_eq(add.el[0], 1);
	ck_assert_int_eq(add.el[1], 10);
	ck_assert_int_eq(again.calls, 1);
	ck_assert_int_eq(again.el[0], 0);	/* idempotent by adjustment id */
	ck_assert_int_eq(again.el[1], 10);
	expect_status(&held, "RESERVED");
	expect_status(&short_, "REJECTED");
	/* A Lua error is a reply, not a failed call. */
	ck_assert_int_eq(bad.calls, 1);
	ck_assert_int_eq(bad.status, 0);
	ck_assert_int_eq(bad.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strstr(bad.str, "bad quantity") != NULL, "%s", bad.str);
	ck_assert_int_eq(get.calls, 1);
	ck_assert_int_eq(get.type, REDIS_REPLY_STRING);
	ck_assert_str_eq(get.str, "7");

	/* Refused outright: the callback never runs. */
	ck_assert_int_eq(redis_eval(rd, INVENTORY_SCRIPT_COUNT, 0, NULL, 0, NULL, on_reply, &get), -EINVAL);
	ck_assert_int_eq(redis_command_argv(rd, 2, sub, NULL, on_reply, &get), -EINVAL);
	ck_assert_int_eq(redis_command_argv(rd, 0, sub, NULL, on_reply, &get), -EINVAL);
	run_for(50);
	ck_assert_int_eq(get.calls, 1);
	ck_assert_int_eq(downs, 0);
	close_redis();
}
END_TEST

static int pipe_next, pipe_bad_order, pipe_bad_reply, pipe_done;

static void
on_pipe_reply(redisReply *reply, int status, void *arg)
{
	int i = (int)(intptr_t)arg;

	if (i != pipe_next)
		pipe_bad_order++;
	pipe_next = i + 1;
	if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2 || reply->element[0]->integer != 1 ||
	    reply->element[1]->integer != i + 1)
		pipe_bad_reply++;
	pipe_done++;
}

START_TEST(test_pipeline_in_order)
{
	char id[32];

	pipe_next = pipe_bad_order = pipe_bad_reply = pipe_done = 0;
	open_redis(shared_port(), 10000);
	/* Every call is queued before the loop runs again: hiredis writes them
	 * in one go and each reply must go to its own call. */
	for (int i = 0; i < NPIPE; i++) {
		snprintf(id, sizeof(id), "adj-%d", i);
		ck_assert_int_eq(eval_cb(INVENTORY_STOCK_ADD, "P", id, "1", on_pipe_reply,
		    (void *)(intptr_t)i), 0);
	}
	ck_assert_uint_eq(redis_pending(rd), NPIPE);
	ck_assert_msg(run_until(&pipe_done, NPIPE, 30000), "%d of %d answered", pipe_done, NPIPE);
	run_for(20);
	ck_assert_int_eq(pipe_done, NPIPE);
	ck_assert_int_eq(pipe_bad_order, 0);
	ck_assert_int_eq(pipe_bad_reply, 0);
	ck_assert_uint_eq(redis_pending(rd), 0);
	close_redis();
}
END_TEST

START_TEST(test_noscript_is_retried)
{
	static const char *const flush[2] = { "SCRIPT", "FLUSH" };
	struct res add = { 0 }, fl = { 0 }, held[20], again = { 0 };
	char order[16], sha[41];
	redisContext *c;
	redisReply *r;

	memset(held, 0, sizeof(held));
	open_redis(priv_port, 10000);
	eval(INVENTORY_STOCK_ADD, "N", "adj", "100", &add);
	/* The flush is pipelined before the calls: every one of them meets
	 * NOSCRIPT first and must still answer normally. */
	ck_assert_int_eq(redis_command_argv(rd, 2, flush, NULL, on_reply, &fl), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(order, sizeof(order), "o%d", i);
		eval(INVENTORY_RESERVE, "N", order, "1", &held[i]);
	}
	ck_assert(run_until(&held[19].calls, 1, 10000));
	ck_assert_int_eq(add.calls, 1);
	ck_assert_int_eq(add.el[1], 100);
	ck_assert_int_eq(fl.calls, 1);
	ck_assert_str_eq(fl.str, "OK");
	for (int i = 0; i < 20; i++)
		expect_status(&held[i], "RESERVED");

	/* Flushed from another connection, as an operator would. */
	sync_command(priv_port, "SCRIPT FLUSH", "OK");
	eval(INVENTORY_RESERVE, "N", "o0", "1", &again);
	ck_assert(run_until(&again.calls, 1, 10000));
	expect_status(&again, "RESERVED");	/* the replay of o0 */

	/* The retry loaded the script again (its sha computed without loading it). */
	c = redisConnect("127.0.0.1", priv_port);
	ck_assert(c != NULL && c->err == 0);
	r = redisCommand(c, "EVAL %s 0 %s", "return redis.sha1hex(ARGV[1])",
	    scripts[INVENTORY_RESERVE]);
	ck_assert(r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40);
	snprintf(sha, sizeof(sha), "%s", r->str);
	freeReplyObject(r);
	r = redisCommand(c, "SCRIPT EXISTS %s", sha);
	ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	ck_assert_int_eq(r->element[0]->integer, 1);
	freeReplyObject(r);
	redisFree(c);
	run_for(20);
	ck_assert_int_eq(again.calls, 1);
	ck_assert_int_eq(ups, 1);
	ck_assert_int_eq(downs, 0);
	close_redis();
}
END_TEST

START_TEST(test_timeout_then_reconnect)
{
	struct res x[3], after = { 0 }, late = { 0 };
	int64_t t0, took_ms;

	memset(x, 0, sizeof(x));
	open_redis(priv_port, 300);
	/* Redis stops answering everyone for 3 s; our calls must not wait. */
	sync_command(priv_port, "CLIENT PAUSE 3000 ALL", "OK");
	t0 = util_mono_us();
	eval(INVENTORY_STOCK_ADD, "T", "adj-1", "5", &x[0]);
	eval(INVENTORY_RESERVE, "T", "o1", "1", &x[1]);
	eval(INVENTORY_RESERVE, "T", "o2", "1", &x[2]);
	ck_assert(run_until(&x[2].calls, 1, 2000));
	took_ms = (util_mono_us() - t0) / 1000;
	ck_assert_msg(took_ms >= 280 && took_ms < 1500, "timed out after %lld ms",
	    (long long)took_ms);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(x[i].calls, 1);
		ck_assert_int_eq(x[i].status, -ETIMEDOUT);
		ck_assert_int_eq(x[i].type, -1);
	}
	ck_assert_int_eq(downs, 1);
	ck_assert(!redis_is_up(rd));
	ck_assert_uint_eq(redis_pending(rd), 0);
	ck_assert_int_eq(eval_cb(INVENTORY_RESERVE, "T", "o3", "1", on_reply, &late), -ENOTCONN);

	/* Reconnect attempts fail while the pause lasts; then it comes back by itself. */
	ck_assert_msg(run_until(&ups, 2, 10000), "not up again after the pause");
	ck_assert(redis_is_up(rd));
	eval(INVENTORY_STOCK_ADD, "T", "adj-2", "5", &after);
	ck_assert(run_until(&after.calls, 1, 5000));
	ck_assert_int_eq(after.status, 0);
	ck_assert_int_eq(after.type, REDIS_REPLY_ARRAY);
	ck_assert_int_eq(after.el[0], 1);
	run_for(50);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(x[i].calls, 1);
	ck_assert_int_eq(late.calls, 0);
	ck_assert_int_eq(after.calls, 1);
	ck_assert_int_eq(ups, 2);
	ck_assert_int_eq(downs, 1);
	close_redis();
}
END_TEST

/* SIGHUP's redis.timeout_ms: a shorter one applies to the next call, and
 * caps the one already waiting. */
START_TEST(test_set_timeout_shorter)
{
	struct res before = { 0 }, after = { 0 };
	int64_t t1, took_ms;

	open_redis(priv_port, 5000);
	sync_command(priv_port, "CLIENT PAUSE 3000 ALL", "OK");
	eval(INVENTORY_STOCK_ADD, "T", "adj-1", "5", &before);
	run_for(100);
	t1 = util_mono_us();
	redis_set_timeout(rd, 300);
	eval(INVENTORY_RESERVE, "T", "o1", "1", &after);
	ck_assert(run_until(&after.calls, 1, 2000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_msg(took_ms >= 280 && took_ms < 1500, "timed out after %lld ms, not 300",
	    (long long)took_ms);
	ck_assert_int_eq(after.status, -ETIMEDOUT);
	ck_assert_int_eq(before.calls, 1);
	ck_assert_int_eq(before.status, -ETIMEDOUT);
	ck_assert_int_eq(downs, 1);
	/* Back after the pause, with the new timeout still. */
	ck_assert_msg(run_until(&ups, 2, 10000), "not up again after the pause");
	close_redis();
}
END_TEST

/* ... and a longer one lets a call wait out a pause the old one would not. */
START_TEST(test_set_timeout_longer)
{
	struct res x = { 0 };
	int64_t t0, took_ms;

	open_redis(priv_port, 300);
	redis_set_timeout(rd, 5000);
	sync_command(priv_port, "CLIENT PAUSE 1000 ALL", "OK");
	t0 = util_mono_us();
	eval(INVENTORY_STOCK_ADD, "T", "adj-1", "5", &x);
	ck_assert(run_until(&x.calls, 1, 4000));
	took_ms = (util_mono_us() - t0) / 1000;
	ck_assert_int_eq(x.status, 0);
	ck_assert_int_eq(x.type, REDIS_REPLY_ARRAY);
	ck_assert_msg(took_ms >= 500, "answered after %lld ms: was Redis paused?",
	    (long long)took_ms);
	ck_assert_int_eq(downs, 0);
	close_redis();
}
END_TEST

START_TEST(test_server_stop_and_restart)
{
	static const char *const ping[1] = { "PING" };
	struct res x[5], late = { 0 }, after = { 0 };
	int port;

	memset(x, 0, sizeof(x));
	open_redis(priv_port, 2000);
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "adj-%d", i);
		eval(INVENTORY_STOCK_ADD, "S", id, "1", &x[i]);
	}
	/* The server goes away with the calls queued on the connection. */
	redis_sh("stop", priv_dir);
	ck_assert(run_until(&x[4].calls, 1, 5000));
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(x[i].calls, 1);
		ck_assert_int_eq(x[i].status, -ENOTCONN);
	}
	ck_assert(run_until(&downs, 1, 1000));
	ck_assert_int_eq(downs, 1);
	ck_assert(!redis_is_up(rd));
	ck_assert_int_eq(eval_cb(INVENTORY_STOCK_ADD, "S", "adj-x", "1", on_reply, &late), -ENOTCONN);
	ck_assert_int_eq(redis_command_argv(rd, 1, ping, NULL, on_reply, &late), -ENOTCONN);
	ck_assert_uint_eq(redis_pending(rd), 0);

	/* Refused reconnects: no further state changes. */
	run_for(600);
	ck_assert_int_eq(ups, 1);
	ck_assert_int_eq(downs, 1);

	port = redis_sh("start", priv_dir);
	ck_assert_int_eq(port, priv_port);
	ck_assert_msg(run_until(&ups, 2, 10000), "not up after the restart");
	/* A new server has no scripts: the connect loaded them again. */
	eval(INVENTORY_STOCK_ADD, "S", "adj-0", "1", &after);
	ck_assert(run_until(&after.calls, 1, 5000));
	ck_assert_int_eq(after.status, 0);
	ck_assert_int_eq(after.type, REDIS_REPLY_ARRAY);
	ck_assert_int_eq(after.el[0], 1);
	ck_assert_int_eq(after.el[1], 1);
	run_for(20);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(x[i].calls, 1);
	ck_assert_int_eq(late.calls, 0);
	ck_assert_int_eq(ups, 2);
	ck_assert_int_eq(downs, 1);
	close_redis();
}
END_TEST

START_TEST(test_close_cancels_pending)
{
	struct res x[100], late = { 0 };

	memset(x, 0, sizeof(x));
	open_redis(shared_port(), 10000);
	for (int i = 0; i < 100; i++) {
		char id[16];

		snprintf(id, sizeof(id), "adj-%d", i);
		eval(INVENTORY_STOCK_ADD, "C", id, "1", &x[i]);
	}
	ck_assert_uint_eq(redis_pending(rd), 100);
	redis_close(rd, on_closed, NULL);
	/* Outside any callback the cancellations happen before redis_close returns. */
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(x[i].calls, 1);
		ck_assert_int_eq(x[i].status, -ECANCELED);
	}
	ck_assert_uint_eq(redis_pending(rd), 0);
	ck_assert(!redis_is_up(rd));
	ck_assert_int_eq(eval_cb(INVENTORY_STOCK_ADD, "C", "adj-x", "1", on_reply, &late), -ENOTCONN);
	redis_close(rd, on_closed, NULL);	/* ignored */
	ck_assert_int_eq(closed, 0);
	ck_assert(run_until(&closed, 1, 5000));
	run_for(50);
	ck_assert_int_eq(closed, 1);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(x[i].calls, 1);
	ck_assert_int_eq(late.calls, 0);
	ck_assert_int_eq(downs, 0);	/* redis_close never calls state_cb */
	close_redis();
}
END_TEST

static struct res inner[10];

static void
on_reply_closing(redisReply *reply, int status, void *arg)
{
	on_reply(reply, status, arg);
	if (arg == &inner[3])
		redis_close(rd, on_closed, NULL);
}

START_TEST(test_close_inside_callback)
{
	static const char *const incr[2] = { "INCR", NULL };
	char key[INVENTORY_KEY_MAX];
	const char *argv[2] = { incr[0], key };

	memset(inner, 0, sizeof(inner));
	open_redis(shared_port(), 10000);
	snprintf(key, sizeof(key), "%scounter", prefix);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(redis_command_argv(rd, 2, argv, NULL, on_reply_closing,
		    &inner[i]), 0);
	ck_assert(run_until(&closed, 1, 5000));
	run_for(50);
	/* The replies before the close are delivered, the rest cancelled. */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(inner[i].calls, 1);
		if (i <= 3) {
			ck_assert_int_eq(inner[i].status, 0);
			ck_assert_int_eq(inner[i].type, REDIS_REPLY_INTEGER);
			ck_assert_int_eq(inner[i].integer, i + 1);
		} else {
			ck_assert_int_eq(inner[i].status, -ECANCELED);
		}
	}
	ck_assert_int_eq(closed, 1);
	close_redis();
}
END_TEST

/* Our connection's id on the shared server. */
static long long
our_client_id(void)
{
	static const char *const id[2] = { "CLIENT", "ID" };
	struct res me = { 0 };

	ck_assert_int_eq(redis_command_argv(rd, 2, id, NULL, on_reply, &me), 0);
	ck_assert(run_until(&me.calls, 1, 5000));
	ck_assert_int_eq(me.type, REDIS_REPLY_INTEGER);
	return me.integer;
}

/* Makes the shared server drop our connection (and no other). */
static void
kill_client(long long id)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "CLIENT KILL ID %lld", id);
	sync_command(shared_port(), cmd, NULL);
}

static struct res lost[5];

static void
on_reply_close_on_failure(redisReply *reply, int status, void *arg)
{
	on_reply(reply, status, arg);
	if (arg == &lost[1] && status < 0)
		redis_close(rd, on_closed, NULL);
}

/* Closing from the callback of a failed call, with more failures queued
 * behind it: each call still ends exactly once, and state_cb stays quiet. */
START_TEST(test_close_inside_failure_callback)
{
	static const char *const ping[1] = { "PING" };

	long long id;

	memset(lost, 0, sizeof(lost));
	open_redis(shared_port(), 10000);
	id = our_client_id();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(redis_command_argv(rd, 1, ping, NULL,
		    on_reply_close_on_failure, &lost[i]), 0);
	kill_client(id);	/* the PINGs are still in our output buffer */
	ck_assert(run_until(&closed, 1, 5000));
	run_for(50);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(lost[i].calls, 1);
		ck_assert_int_eq(lost[i].status, -ENOTCONN);
	}
	ck_assert_int_eq(downs, 0);
	ck_assert_int_eq(ups, 1);
	close_redis();
}
END_TEST

/* Closing from state_cb(false): the calls have ended before it runs. */
START_TEST(test_close_inside_state_cb)
{
	static const char *const ping[1] = { "PING" };
	struct res x[3];
	long long id;

	memset(x, 0, sizeof(x));
	close_on_down = true;
	open_redis(shared_port(), 10000);
	id = our_client_id();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(redis_command_argv(rd, 1, ping, NULL, on_reply, &x[i]), 0);
	kill_client(id);
	ck_assert(run_until(&closed, 1, 5000));
	run_for(50);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(x[i].calls, 1);
		ck_assert_int_eq(x[i].status, -ENOTCONN);
	}
	ck_assert_int_eq(downs, 1);
	ck_assert_int_eq(ups, 1);
	close_redis();
}
END_TEST

/* A loopback port nobody listens on. */
static int
dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

START_TEST(test_never_up_then_close)
{
	struct redis_options opt = {
		.host = "127.0.0.1", .port = dead_port(), .timeout_ms = 300,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	struct res late = { 0 };
	char *bad[INVENTORY_SCRIPT_COUNT] = { NULL };
	struct redis *r2 = NULL;

	ck_assert_int_eq(redis_new(&r2, &loop, &opt, bad, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(r2);
	opt.port = 0;
	ck_assert_int_eq(redis_new(&r2, &loop, &opt, scripts, NULL, NULL), -EINVAL);
	opt.port = dead_port();

	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	run_for(500);	/* many refused attempts */
	ck_assert_int_eq(ups, 0);
	ck_assert_int_eq(downs, 0);
	ck_assert(!redis_is_up(rd));
	ck_assert_int_eq(eval_cb(INVENTORY_RESERVE, "D", "o1", "1", on_reply, &late), -ENOTCONN);
	close_redis();
	ck_assert_int_eq(late.calls, 0);
}
END_TEST

/* A loopback listener that is not Redis; returns its fd, *port its port. */
static int
fake_listen(int backlog, int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Runs the loop until the module connects to the fake listener and sends
 * something; returns the accepted fd (buf holds the first bytes) or -1. */
static int
fake_accept_command(int lfd, int ms, char *buf, size_t len)
{
	int64_t end = util_mono_us() + (int64_t)ms * 1000;
	int cfd = -1;
	ssize_t n = 0;

	fcntl(lfd, F_SETFL, O_NONBLOCK);
	while (util_mono_us() < end) {
		run_for(5);
		if (cfd < 0)
			cfd = accept(lfd, NULL, NULL);
		if (cfd < 0)
			continue;
		n = recv(cfd, buf, len - 1, MSG_DONTWAIT);
		if (n > 0) {
			buf[n] = '\0';
			return cfd;
		}
	}
	if (cfd >= 0)
		close(cfd);
	return -1;
}

/*
 * A listener whose accept queue is full drops SYNs, so a connect never
 * completes: the module must give it up after timeout_ms and try again.
 * Once the queue has room, the next attempt connects and sends SCRIPT LOAD
 * long before the stuck SYN's first retransmission (1 s, then 3 s).
 */
START_TEST(test_connect_timeout)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct redis_options opt = {
		.host = "127.0.0.1", .timeout_ms = 200,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	int lfd = fake_listen(0, &opt.port), fill, cfd;
	char buf[64] = "";

	/* Linux's accept queue with backlog 0 holds one connection: this one
	 * fills it, and further SYNs are dropped. */
	a.sin_port = htons((uint16_t)opt.port);
	fill = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fill, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	run_for(1200);
	ck_assert_int_eq(ups, 0);

	/* Make room: accept and drop the filler, then wait for SCRIPT LOAD. */
	cfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(fill);
	cfd = fake_accept_command(lfd, 700, buf, sizeof(buf));
	ck_assert_msg(cfd >= 0, "no command within 700 ms of the queue having room");
	ck_assert_msg(strstr(buf, "SCRIPT") != NULL, "first bytes: %s", buf);
	ck_assert_int_eq(ups, 0);	/* never answered */
	close(cfd);
	close(lfd);
	close_redis();
}
END_TEST

/*
 * A reset connection makes libuv report a poll error (and stop the watcher);
 * hiredis's bundled adapter ignores it and the connection would hang until a
 * timeout.  The module must see it at once and connect again.
 */
START_TEST(test_reset_is_noticed_at_once)
{
	struct redis_options opt = {
		.host = "127.0.0.1", .timeout_ms = 5000,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int lfd = fake_listen(8, &opt.port), cfd;
	char buf[64];
	int64_t t0, took_ms;

	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	cfd = fake_accept_command(lfd, 2000, buf, sizeof(buf));
	ck_assert_msg(cfd >= 0, "the module never connected");
	ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(cfd);	/* RST */
	t0 = util_mono_us();
	cfd = fake_accept_command(lfd, 2000, buf, sizeof(buf));
	took_ms = (util_mono_us() - t0) / 1000;
	ck_assert_msg(cfd >= 0, "no reconnect within 2 s of the reset (timeout_ms is 5 s)");
	ck_assert_msg(took_ms < 1000, "reconnected after %lld ms", (long long)took_ms);
	ck_assert_int_eq(ups, 0);
	close(cfd);
	close(lfd);
	close_redis();
}
END_TEST

static Suite *
redis_async_suite(void)
{
	Suite *s = suite_create("redis-async");
	TCase *shared = tcase_create("shared-server");
	TCase *priv = tcase_create("private-server");
	TCase *none = tcase_create("no-server");

	tcase_add_checked_fixture(shared, setup, teardown);
	tcase_set_timeout(shared, 120);
	tcase_add_test(shared, test_eval_replies);
	tcase_add_test(shared, test_pipeline_in_order);
	tcase_add_test(shared, test_close_cancels_pending);
	tcase_add_test(shared, test_close_inside_callback);
	tcase_add_test(shared, test_close_inside_failure_callback);
	tcase_add_test(shared, test_close_inside_state_cb);
	suite_add_tcase(s, shared);

	tcase_add_unchecked_fixture(priv, priv_start, priv_stop);
	tcase_add_checked_fixture(priv, priv_setup, teardown);
	tcase_set_timeout(priv, 120);
	tcase_add_test(priv, test_noscript_is_retried);
	tcase_add_test(priv, test_timeout_then_reconnect);
	tcase_add_test(priv, test_set_timeout_shorter);
	tcase_add_test(priv, test_set_timeout_longer);
	tcase_add_test(priv, test_server_stop_and_restart);
	suite_add_tcase(s, priv);

	tcase_add_checked_fixture(none, setup, teardown);
	tcase_set_timeout(none, 60);
	tcase_add_test(none, test_never_up_then_close);
	tcase_add_test(none, test_connect_timeout);
	tcase_add_test(none, test_reset_is_noticed_at_once);
	suite_add_tcase(s, none);
	return s;
}

int
main(void)
{
	return tu_run(redis_async_suite());
}
