/* check_cluster.c: the Redis Cluster router (cluster.c) against fake nodes on loopback: routing by slot, MOVED, ASK, TRYAGAIN, redirection loops, timeouts and their reload, close. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster.h"
#include "cluster_fakes.h"
#include "inventory.h"
#include "testutil.h"
#include "util.h"

/* Runs the loop until *flag or ms pass; returns *flag. */
static bool
run_until(const bool *flag, int ms)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;

	while (!*flag && util_mono_us() < until)
		uv_run(&loop, UV_RUN_ONCE);
	return *flag;
}

static void
run_for(int ms)
{
	bool never = false;

	run_until(&never, ms);
}

struct result {
	bool done;
	int status;
	int type;
	char str[256];
};

static void
on_result(redisReply *reply, int status, void *arg)
{
	struct result *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->status = status;
	if (reply != NULL) {
		r->type = reply->type;
		snprintf(r->str, sizeof(r->str), "%s", reply->str ? reply->str : "");
	}
}

struct state {
	bool up;
	int ups, downs;
	bool closed;
};

static void
on_state(bool up, void *arg)
{
	struct state *st = arg;

	st->up = up;
	if (up)
		st->ups++;
	else
		st->downs++;
}

static void
on_closed(void *arg)
{
	((struct state *)arg)->closed = true;
}

static char *fake_scripts[INVENTORY_SCRIPT_COUNT] = {
	"return 0", "return 1", "return 2", "return 3", "return 4",
};

static struct cluster *
router(struct state *st, int timeout_ms)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), fakes[0].port);
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = timeout_ms,
	    .backoff_min_ms = 20, .backoff_max_ms = 50 };
	struct cluster *c = NULL;

	memset(st, 0, sizeof(*st));
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, st), 0);
	free(nodes);
	ck_assert_msg(run_until(&st->up, 5000), "the router never came up");
	ck_assert(cluster_is_up(c));
	return c;
}

static void
router_close(struct cluster *c, struct state *st)
{
	cluster_close(c, on_closed, st);
	ck_assert(run_until(&st->closed, 5000));
}

static void
eval(struct cluster *c, const char *key, struct result *r)
{
	char rkey[INVENTORY_KEY_MAX];
	const char *keys[2] = { key, rkey };
	const char *args[2] = { "order-1", "1" };

	/* The reservation key of the same sku: same slot. */
	snprintf(rkey, sizeof(rkey), "%.*s:r:order-1", (int)(strchr(key, '}') + 1 - key), key);
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 2, keys, 2, args, on_result, r), 0);
}

START_TEST(test_routes_by_slot)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char lo[INVENTORY_KEY_MAX], hi[INVENTORY_KEY_MAX];
	const char *exists[2] = { "EXISTS", hi };
	const char *ping[1] = { "PING" };
	struct result r1, r2, r3, r4;

	key_in(lo, sizeof(lo), 0, 8191);
	key_in(hi, sizeof(hi), 8192, 16383);
	eval(c, lo, &r1);
	eval(c, hi, &r2);
	memset(&r3, 0, sizeof(r3));
	memset(&r4, 0, sizeof(r4));
	ck_assert_int_eq(cluster_command_argv(c, 1, 2, exists, NULL, on_result, &r3), 0);
	ck_assert_int_eq(cluster_command_argv(c, -1, 1, ping, NULL, on_result, &r4), 0);
	ck_assert_uint_eq(cluster_pending(c), 4);
	ck_assert(run_until(&r4.done, 2000) && run_until(&r1.done, 2000) &&
	    run_until(&r2.done, 2000) && run_until(&r3.done, 2000));
	ck_assert_int_eq(r1.status, 0);
	ck_assert_str_eq(r1.str, "DONE-0");
	ck_assert_str_eq(r2.str, "DONE-1");
	ck_assert_str_eq(r3.str, "DONE-1");
	ck_assert_str_eq(r4.str, "PONG");
	ck_assert_uint_eq(cluster_pending(c), 0);
	ck_assert_int_eq(fakes[2].served, 0);
	/* SUBSCRIBE answers more than once: refused, as by redis.c. */
	ck_assert_int_eq(cluster_command_argv(c, 1, 2, (const char *[]){ "SUBSCRIBE", "x" },
	    NULL, on_result, &r4), -EINVAL);
	router_close(c, &st);
}
END_TEST

START_TEST(test_moved_updates_the_map)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	/* The slot moves to fake 2: fake 0 says so, and so does the map. */
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	nranges = 0;
	if (slot > 0)
		ranges[nranges++] = (struct fake_range){ 0, slot - 1, 0 };
	ranges[nranges++] = (struct fake_range){ slot, slot, 2 };
	if (slot < 8191)
		ranges[nranges++] = (struct fake_range){ slot + 1, 8191, 0 };
	ranges[nranges++] = (struct fake_range){ 8192, 16383, 1 };
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-2");
	ck_assert_int_eq(fakes[0].moved, 1);
	/* The next call goes to the new master at once, and the map was read again. */
	run_for(300);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-2");
	ck_assert_int_eq(fakes[0].moved, 1);
	ck_assert_int_ge(fakes[0].cluster_slots + fakes[1].cluster_slots +
	    fakes[2].cluster_slots, 2);
	ck_assert(cluster_is_up(c));
	router_close(c, &st);
}
END_TEST

START_TEST(test_ask_sends_asking_first)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 8192, 16383);
	slot = cluster_keyslot(key, strlen(key));
	/* Slot migrating from fake 1 to fake 0: fake 0 serves it after ASKING only. */
	fake_add_rule(1, slot, FAKE_ASK, 0, -1);
	fake_add_rule(0, slot, FAKE_NEED_ASKING, 1, -1);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[0].askings, 1);
	ck_assert_int_eq(fakes[0].moved, 0);
	/* ASK changes nothing in the map: the next call asks fake 1 again. */
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[1].asked, 2);
	ck_assert_int_eq(fakes[0].askings, 2);
	router_close(c, &st);
}
END_TEST

START_TEST(test_tryagain_is_retried)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, 3);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[0].tryagain, 3);
	router_close(c, &st);
}
END_TEST

START_TEST(test_tryagain_gives_up_after_timeout)
{
	struct state st;
	struct cluster *c = router(&st, 300);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int64_t t0;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, -1);
	t0 = util_mono_us();
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_ge(util_mono_us() - t0, 250000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strncmp(r.str, "TRYAGAIN", 8) == 0, "%s", r.str);
	ck_assert_int_gt(fakes[0].tryagain, 3);
	router_close(c, &st);
}
END_TEST

/* SIGHUP's redis.timeout_ms reaches every node: a hanging master's calls
 * time out after the new value, and so does a call waiting for a slot,
 * parked before the change. */
START_TEST(test_set_timeout_every_node)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char busy[INVENTORY_KEY_MAX], lo[INVENTORY_KEY_MAX], hi[INVENTORY_KEY_MAX];
	struct result parked, r0, r1;
	int64_t t1, took_ms;

	key_in(busy, sizeof(busy), 0, 4095);
	key_in(lo, sizeof(lo), 4096, 8191);
	key_in(hi, sizeof(hi), 8192, 16383);
	fake_add_rule(0, cluster_keyslot(busy, strlen(busy)), FAKE_TRYAGAIN, 0, -1);
	fake_add_rule(0, cluster_keyslot(lo, strlen(lo)), FAKE_SILENT, 0, -1);
	fake_add_rule(1, cluster_keyslot(hi, strlen(hi)), FAKE_SILENT, 0, -1);
	eval(c, busy, &parked);
	run_for(100);
	ck_assert(!parked.done);
	t1 = util_mono_us();
	cluster_set_timeout(c, 300);
	ck_assert(run_until(&parked.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "gave up after %lld ms, not 300",
	    (long long)took_ms);
	ck_assert_int_eq(parked.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strncmp(parked.str, "TRYAGAIN", 8) == 0, "%s", parked.str);

	t1 = util_mono_us();
	eval(c, lo, &r0);
	eval(c, hi, &r1);
	ck_assert(run_until(&r0.done, 3000) && run_until(&r1.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "timed out after %lld ms, not 300",
	    (long long)took_ms);
	ck_assert_int_eq(r0.status, -ETIMEDOUT);
	ck_assert_int_eq(r1.status, -ETIMEDOUT);
	ck_assert_int_eq(fakes[0].silent, 1);
	ck_assert_int_eq(fakes[1].silent, 1);
	router_close(c, &st);
}
END_TEST

/* ... and a node met after the change connects with the new value. */
START_TEST(test_set_timeout_new_node)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int64_t t1, took_ms;
	int slot;

	cluster_set_timeout(c, 300);
	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	/* The slot moves to fake 2, unknown so far, which hangs. */
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	fake_add_rule(2, slot, FAKE_SILENT, 0, -1);
	nranges = 0;
	if (slot > 0)
		ranges[nranges++] = (struct fake_range){ 0, slot - 1, 0 };
	ranges[nranges++] = (struct fake_range){ slot, slot, 2 };
	if (slot < 8191)
		ranges[nranges++] = (struct fake_range){ slot + 1, 8191, 0 };
	ranges[nranges++] = (struct fake_range){ 8192, 16383, 1 };
	t1 = util_mono_us();
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_int_eq(r.status, -ETIMEDOUT);
	ck_assert_int_eq(fakes[2].silent, 1);
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "timed out after %lld ms, not 300",
	    (long long)took_ms);
	router_close(c, &st);
}
END_TEST

START_TEST(test_redirect_loop_is_capped)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	fake_add_rule(0, slot, FAKE_MOVED, 1, -1);
	fake_add_rule(1, slot, FAKE_MOVED, 0, -1);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strstr(r.str, "too many redirections") != NULL, "%s", r.str);
	ck_assert_int_eq(fakes[0].moved + fakes[1].moved, CLUSTER_REDIRECT_MAX + 1);
	ck_assert_uint_eq(cluster_pending(c), 0);
	router_close(c, &st);
}
END_TEST

START_TEST(test_close_cancels_waiting_calls)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char key[INVENTORY_KEY_MAX];
	struct result r;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, -1);
	eval(c, key, &r);
	run_for(100);
	ck_assert(!r.done);
	ck_assert_uint_eq(cluster_pending(c), 1);
	cluster_close(c, on_closed, &st);
	ck_assert(r.done);
	ck_assert_int_eq(r.status, -ECANCELED);
	ck_assert(!cluster_is_up(c));
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 1, (const char *[]){ key }, 0, NULL,
	    on_result, &r), -ENOTCONN);
	ck_assert(run_until(&st.closed, 3000));
	ck_assert_int_eq(st.downs, 0);
}
END_TEST

START_TEST(test_no_node_answers)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 200,
	    .backoff_min_ms = 20, .backoff_max_ms = 50 };
	struct cluster *c = NULL;
	struct state st = { 0 };
	struct result r = { 0 };

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, &st), 0);
	run_for(500);
	ck_assert(!cluster_is_up(c));
	ck_assert_int_eq(st.ups, 0);
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 1, (const char *[]){ "k" }, 0, NULL,
	    on_result, &r), -ENOTCONN);
	ck_assert_int_eq(cluster_command_argv(c, -1, 1, (const char *[]){ "PING" }, NULL,
	    on_result, &r), -ENOTCONN);
	router_close(c, &st);
	free(nodes);
}
END_TEST

START_TEST(test_bad_options)
{
	struct cluster_options o = { .cluster = true, .nodes = "127.0.0.1:7000,nonsense" };
	struct cluster *c = NULL;

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(c);
	o.nodes = NULL;
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	o.nodes = "";
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	o = (struct cluster_options){ .cluster = false, .host = "127.0.0.1", .port = 0 };
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_single_server_passthrough)
{
	struct cluster_options o = { .cluster = false, .host = "127.0.0.1",
	    .port = fakes[1].port, .timeout_ms = 2000 };
	struct cluster *c = NULL;
	struct state st = { 0 };
	char key[INVENTORY_KEY_MAX];
	struct result r;

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, &st), 0);
	ck_assert(run_until(&st.up, 3000));
	/* Any slot goes to the one server; CLUSTER SLOTS is never asked. */
	key_in(key, sizeof(key), 0, 8191);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-1");
	ck_assert_int_eq(fakes[1].cluster_slots, 0);
	router_close(c, &st);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *fake = tcase_create("router");

	tcase_add_checked_fixture(fake, setup, teardown);
	tcase_set_timeout(fake, 30);
	tcase_add_test(fake, test_routes_by_slot);
	tcase_add_test(fake, test_moved_updates_the_map);
	tcase_add_test(fake, test_ask_sends_asking_first);
	tcase_add_test(fake, test_tryagain_is_retried);
	tcase_add_test(fake, test_tryagain_gives_up_after_timeout);
	tcase_add_test(fake, test_redirect_loop_is_capped);
	tcase_add_test(fake, test_set_timeout_every_node);
	tcase_add_test(fake, test_set_timeout_new_node);
	tcase_add_test(fake, test_close_cancels_waiting_calls);
	tcase_add_test(fake, test_no_node_answers);
	tcase_add_test(fake, test_bad_options);
	tcase_add_test(fake, test_single_server_passthrough);
	suite_add_tcase(s, fake);
	return s;
}

int
main(void)
{
	return tu_run(cluster_suite());
}
