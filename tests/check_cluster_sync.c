/* check_cluster_sync.c: the blocking cluster client (cluster_sync.c) against fake nodes answering from a thread of their own: redirections, pipelines, SCAN of every master, scripts, no node. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster.h"
#include "cluster_fakes.h"
#include "cluster_sync.h"
#include "inventory.h"
#include "testutil.h"
#include "util.h"

static pthread_t loop_thread;
static uv_async_t loop_stop;

static void
on_loop_stop(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, NULL);
	uv_stop(&loop);
}

static void *
loop_main(void *arg)
{
	(void)arg;
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

/* The fakes answer from another thread while this one blocks in hiredis. */
static void
fakes_in_thread(void)
{
	uv_async_init(&loop, &loop_stop, on_loop_stop);
	ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
}

static void
fakes_back(void)
{
	uv_async_send(&loop_stop);
	ck_assert_int_eq(pthread_join(loop_thread, NULL), 0);
}

static struct cluster_sync *
sync_open(void)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), fakes[1].port);
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 1000 };
	struct cluster_sync *s = NULL;
	char *cause = NULL;

	fakes_in_thread();
	ck_assert_msg(cluster_sync_open(&s, &o, &cause) == 0, "%s", cause);
	free(nodes);
	return s;
}

static void
expect_reply(redisReply *r, const char *want)
{
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->str != NULL && strcmp(r->str, want) == 0, "got %s, want %s",
	    r->str ? r->str : "(no string)", want);
	freeReplyObject(r);
}

START_TEST(test_sync_follows_redirections)
{
	char k0[INVENTORY_KEY_MAX], k1[INVENTORY_KEY_MAX], moved[INVENTORY_KEY_MAX];
	char asked[INVENTORY_KEY_MAX], busy[INVENTORY_KEY_MAX];
	struct cluster_sync *s;
	redisReply *r;
	int slot;

	key_in(k0, sizeof(k0), 0, 4000);
	key_in(k1, sizeof(k1), 8192, 12000);
	key_in(moved, sizeof(moved), 4001, 8191);
	key_in(asked, sizeof(asked), 12001, 16383);
	key_in(busy, sizeof(busy), 6000, 8191);
	if (cluster_keyslot(busy, strlen(busy)) == cluster_keyslot(moved, strlen(moved)))
		key_in(busy, sizeof(busy), 0, 4000);
	slot = cluster_keyslot(moved, strlen(moved));
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	fake_add_rule(1, cluster_keyslot(asked, strlen(asked)), FAKE_ASK, 2, -1);
	fake_add_rule(2, cluster_keyslot(asked, strlen(asked)), FAKE_NEED_ASKING, 1, -1);
	fake_add_rule(0, cluster_keyslot(busy, strlen(busy)), FAKE_TRYAGAIN, 0, 2);
	s = sync_open();
	ck_assert_msg(strncmp(cluster_sync_name(s), "cluster 127.0.0.1:", 18) == 0, "%s",
	    cluster_sync_name(s));
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k0 }, NULL), "DONE-0");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k1 }, NULL), "DONE-1");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", moved }, NULL),
	    "DONE-2");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", asked }, NULL),
	    "DONE-2");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", busy }, NULL),
	    "DONE-0");
	/* A pipeline with a redirection in its middle keeps its order. */
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", k0 }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", moved }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", asked }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", k1 }, NULL), 0);
	ck_assert_int_eq(cluster_sync_queued(s), 4);
	ck_assert_ptr_null(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k0 }, NULL));
	ck_assert_int_eq(cluster_sync_scan(s, "*", NULL, NULL), -EBUSY);
	for (int i = 0; i < 4; i++) {
		static const char *const want[4] = { "DONE-0", "DONE-2", "DONE-2", "DONE-1" };

		ck_assert_int_eq(cluster_sync_get_reply(s, &r), 0);
		expect_reply(r, want[i]);
	}
	ck_assert_int_eq(cluster_sync_get_reply(s, &r), -ENOENT);
	cluster_sync_free(s);
	fakes_back();
	ck_assert_int_eq(fakes[0].tryagain, 2);
	ck_assert_int_ge(fakes[2].askings, 2);
}
END_TEST

START_TEST(test_sync_redirect_loop_fails)
{
	char key[INVENTORY_KEY_MAX];
	struct cluster_sync *s;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	fake_add_rule(0, slot, FAKE_MOVED, 1, -1);
	fake_add_rule(1, slot, FAKE_MOVED, 0, -1);
	s = sync_open();
	ck_assert_ptr_null(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", key }, NULL));
	ck_assert_msg(strstr(cluster_sync_errstr(s), "redirections") != NULL, "%s",
	    cluster_sync_errstr(s));
	cluster_sync_free(s);
	fakes_back();
}
END_TEST

static int
collect_key(const char *key, void *arg)
{
	char *all = arg;

	strcat(all, key);
	strcat(all, " ");
	return 0;
}

START_TEST(test_sync_scan_and_scripts)
{
	char key[INVENTORY_KEY_MAX], sha[41], all[256] = "";
	struct cluster_sync *s;
	redisReply *r;

	key_in(key, sizeof(key), 8192, 16383);
	fake_add_rule(1, cluster_keyslot(key, strlen(key)), FAKE_NOSCRIPT, 0, 0);
	s = sync_open();
	/* Every master (the seed first), every page; fake 2 owns nothing. */
	ck_assert_int_eq(cluster_sync_scan(s, "*", collect_key, all), 0);
	ck_assert_str_eq(all, "k1-one k1-two k0-one k0-two ");
	ck_assert_int_eq(cluster_sync_script_load(s, "return 1", sha), 0);
	ck_assert_int_eq(strlen(sha), 40);
	/* A NOSCRIPT (the node lost its scripts) loads it again, once.  The
	 * fakes' loop is idle between two calls: no race on the rule. */
	fakes[1].rules[0].times = -1;
	r = cluster_sync_command(s, 3, 4, (const char *[]){ "EVALSHA", sha, "1", key }, NULL);
	expect_reply(r, "DONE-1");
	cluster_sync_free(s);
	fakes_back();
	ck_assert_int_eq(fakes[0].loads, 1);
	ck_assert_int_eq(fakes[1].loads, 2);
	ck_assert_int_eq(fakes[2].loads, 0);
}
END_TEST

START_TEST(test_sync_no_node_answers)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 500 };
	struct cluster_sync *s = NULL;
	char *cause = NULL;

	ck_assert_int_eq(cluster_sync_open(&s, &o, &cause), -EIO);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(cause, "Connection refused") != NULL &&
	    strstr(cause, nodes) != NULL, "%s", cause);
	free(cause);
	o.nodes = "127.0.0.1:1,x";
	ck_assert_int_eq(cluster_sync_open(&s, &o, &cause), -EINVAL);
	ck_assert_msg(strstr(cause, "'x'") != NULL, "%s", cause);
	free(cause);
	free(nodes);
}
END_TEST

static Suite *
cluster_sync_suite(void)
{
	Suite *s = suite_create("cluster-sync");
	TCase *fake = tcase_create("sync");

	tcase_add_checked_fixture(fake, setup, teardown);
	tcase_set_timeout(fake, 30);
	tcase_add_test(fake, test_sync_follows_redirections);
	tcase_add_test(fake, test_sync_redirect_loop_fails);
	tcase_add_test(fake, test_sync_scan_and_scripts);
	tcase_add_test(fake, test_sync_no_node_answers);
	suite_add_tcase(s, fake);
	return s;
}

int
main(void)
{
	return tu_run(cluster_sync_suite());
}
