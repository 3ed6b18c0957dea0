/* check_redis_async.c: the async Redis module on a libuv loop against the shared redis-server of tests/servers.sh: replies, pipelining, close, from outside and inside callbacks. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "inventory.h"
#include "redis.h"
#include "redis_async_fixture.h"
#include "testutil.h"
#include "util.h"

#define NPIPE 1000

static int
shared_port(void)
{
	return atoi(tu_env("ORDERD_TEST_REDIS_PORT"));
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

static Suite *
redis_async_suite(void)
{
	Suite *s = suite_create("redis-async");
	TCase *shared = tcase_create("shared-server");

	tcase_add_checked_fixture(shared, setup, teardown);
	tcase_set_timeout(shared, 120);
	tcase_add_test(shared, test_eval_replies);
	tcase_add_test(shared, test_pipeline_in_order);
	tcase_add_test(shared, test_close_cancels_pending);
	tcase_add_test(shared, test_close_inside_callback);
	tcase_add_test(shared, test_close_inside_failure_callback);
	tcase_add_test(shared, test_close_inside_state_cb);
	suite_add_tcase(s, shared);
	return s;
}

int
main(void)
{
	return tu_run(redis_async_suite());
}
