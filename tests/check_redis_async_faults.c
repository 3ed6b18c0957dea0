/* check_redis_async_faults.c: the async Redis module against a redis-server of its own that the tests flush, pause, stop and restart: NOSCRIPT, timeouts and their reload, reconnects. */
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

#define REDIS_SH ABS_TOP_SRCDIR "/contrib/redis.sh"

/* The private server of the "private" test case, for stops, pauses and flushes
 * that must not disturb the tests sharing the harness's server (those of
 * tests/check_redis_async among them, which make -j may run meanwhile). */
static char *priv_dir;
static int priv_port;

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

static Suite *
redis_async_faults_suite(void)
{
	Suite *s = suite_create("redis-async-faults");
	TCase *priv = tcase_create("private-server");

	tcase_add_unchecked_fixture(priv, priv_start, priv_stop);
	tcase_add_checked_fixture(priv, priv_setup, teardown);
	tcase_set_timeout(priv, 120);
	tcase_add_test(priv, test_noscript_is_retried);
	tcase_add_test(priv, test_timeout_then_reconnect);
	tcase_add_test(priv, test_set_timeout_shorter);
	tcase_add_test(priv, test_set_timeout_longer);
	tcase_add_test(priv, test_server_stop_and_restart);
	suite_add_tcase(s, priv);
	return s;
}

int
main(void)
{
	return tu_run(redis_async_faults_suite());
}
