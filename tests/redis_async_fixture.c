/* redis_async_fixture.c: the loop, the connection and the callbacks shared by the tests of the async Redis module. */
#include "autoconfig.h"

#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "redis.h"
#include "redis_async_fixture.h"
#include "testutil.h"
#include "util.h"

uv_loop_t loop;
static uv_timer_t tick;		/* wakes uv_run(UV_RUN_ONCE) so waits can time out */
char *scripts[INVENTORY_SCRIPT_COUNT];
char prefix[96];
struct redis *rd;
int ups, downs, closed;
static int state_mismatch;
bool close_on_down;

void
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

void
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

void
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
bool
run_until(const int *counter, int target, int ms)
{
	int64_t end = util_mono_us() + (int64_t)ms * 1000;

	uv_timer_start(&tick, on_tick, 5, 5);
	while (*counter < target && util_mono_us() < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&tick);
	return *counter >= target;
}

void
run_for(int ms)
{
	static const int never;

	run_until(&never, 1, ms);
}

void
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

void
teardown(void)
{
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		free(scripts[i]);
		scripts[i] = NULL;
	}
}

/* Creates rd against port and waits until it is up. */
void
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
void
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
int
eval_cb(enum inventory_script s, const char *sku, const char *id, const char *qty,
    redis_reply_fn cb, void *arg)
{
	struct inventory_call c;

	ck_assert(s == INVENTORY_STOCK_ADD || s == INVENTORY_RESERVE);
	ck_assert_int_eq(s == INVENTORY_STOCK_ADD ?
	    inventory_call_stock_add(&c, prefix, sku, id, atoll(qty)) :
	    inventory_call_reserve(&c, prefix, sku, id, atoll(qty), 0), 0);
	return redis_eval(rd, c.script, c.nkeys, c.keys, c.nargs, c.args, cb, arg);
}

void
eval(enum inventory_script s, const char *sku, const char *id, const char *qty,
    struct res *x)
{
	ck_assert_int_eq(eval_cb(s, sku, id, qty, on_reply, x), 0);
}

void
expect_status(const struct res *x, const char *want)
{
	ck_assert_int_eq(x->calls, 1);
	ck_assert_int_eq(x->status, 0);
	ck_assert_msg(x->type == REDIS_REPLY_STATUS && strcmp(x->str, want) == 0,
	    "reply type %d '%s', want status %s", x->type, x->str, want);
}

/* A synchronous side connection, as an operator's redis-cli would be. */
void
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
