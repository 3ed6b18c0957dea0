/* check_redis.c: the Lua inventory scripts on a real redis-server, called through hiredis. */
#include "autoconfig.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "inventory.h"
#include "testutil.h"
#include "util.h"

static redisContext *rc;
static char sha[INVENTORY_SCRIPT_COUNT][41];
static char prefix[96];
/* keep_ms of every reserve, commit and release call (0: records kept). */
static long long keep_ms;

static void
setup(void)
{
	int port = atoi(tu_env("ORDERD_TEST_REDIS_PORT"));
	char *src[INVENTORY_SCRIPT_COUNT], *cause = NULL, *p;

	rc = redisConnect("127.0.0.1", port);
	ck_assert_msg(rc != NULL && rc->err == 0, "connect to redis on %d: %s", port,
	    rc ? rc->errstr : "out of memory");
	ck_assert_msg(inventory_read_scripts(src, &cause) == 0, "%s", cause);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", src[i]);

		ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STRING,
		    "SCRIPT LOAD %s: %s", inventory_script_name(i),
		    r ? r->str : rc->errstr);
		snprintf(sha[i], sizeof(sha[i]), "%s", r->str);
		freeReplyObject(r);
		free(src[i]);
	}
	/* Each test works under its own key prefix: no test sees another's stock. */
	keep_ms = 0;
	p = tu_unique("t");
	snprintf(prefix, sizeof(prefix), "%s:", p);
	free(p);
}

static void
teardown(void)
{
	redisFree(rc);
	rc = NULL;
}

/* Calls one script for (sku, order or adjustment, qty), its KEYS and ARGV
 * as orderd builds them (inventory_call_*); returns the reply. */
static redisReply *
call(enum inventory_script s, const char *sku, const char *id, long long qty)
{
	const char *argv[INVENTORY_CALL_WORDS];
	struct inventory_call c;
	redisReply *r;
	int err, argc;

	switch (s) {
	case INVENTORY_STOCK_ADD:
		err = inventory_call_stock_add(&c, prefix, sku, id, qty);
		break;
	case INVENTORY_RESERVE:
		err = inventory_call_reserve(&c, prefix, sku, id, qty, keep_ms);
		break;
	case INVENTORY_COMMIT:
		err = inventory_call_commit(&c, prefix, sku, id, keep_ms);
		break;
	default:
		ck_assert_int_eq(s, INVENTORY_RELEASE);
		err = inventory_call_release(&c, prefix, sku, id, keep_ms);
		break;
	}
	ck_assert_int_eq(err, 0);
	argc = inventory_call_command(&c, "EVALSHA", sha[s], argv);
	r = redisCommandArgv(rc, argc, argv, NULL);
	ck_assert_msg(r != NULL, "EVALSHA: %s", rc->errstr);
	return r;
}

/* Calls a script that answers with a status and checks the status. */
static void
expect_status(enum inventory_script s, const char *sku, const char *order, long long qty,
    const char *want)
{
	redisReply *r = call(s, sku, order, qty);

	ck_assert_msg(r->type == REDIS_REPLY_STATUS, "%s(%s,%s): reply type %d %s",
	    inventory_script_name(s), sku, order, r->type, r->str ? r->str : "");
	ck_assert_msg(strcmp(r->str, want) == 0, "%s(%s,%s,%lld) = %s, want %s",
	    inventory_script_name(s), sku, order, qty, r->str, want);
	freeReplyObject(r);
}

static void
add_stock(const char *sku, const char *adj, long long qty, long long applied,
    long long available)
{
	redisReply *r = call(INVENTORY_STOCK_ADD, sku, adj, qty);

	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_int_eq(r->elements, 2);
	ck_assert_int_eq(r->element[0]->integer, applied);
	ck_assert_int_eq(r->element[1]->integer, available);
	freeReplyObject(r);
}

/* Reads one counter of a sku's stock hash. */
static long long
counter(const char *sku, const char *field)
{
	char k[INVENTORY_KEY_MAX];
	redisReply *r;
	long long v;

	inventory_key_stock(k, sizeof(k), prefix, sku);
	r = redisCommand(rc, "HGET %s %s", k, field);
	ck_assert_ptr_nonnull(r);
	v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
	freeReplyObject(r);
	return v;
}

static void
expect_stock(const char *sku, long long available, long long reserved, long long sold)
{
	ck_assert_int_eq(counter(sku, "available"), available);
	ck_assert_int_eq(counter(sku, "reserved"), reserved);
	ck_assert_int_eq(counter(sku, "sold"), sold);
	/* The contract's invariant, at every step. */
	ck_assert_int_eq(available + reserved + sold, counter(sku, "added"));
}

/* The ms the reservation record of (sku, order) has left: -1 none set,
 * -2 no record; *expires its expires field. */
static long long
record_ttl(const char *sku, const char *order, bool *expires)
{
	char k[INVENTORY_KEY_MAX];
	redisReply *r;
	long long ttl;

	inventory_key_reservation(k, sizeof(k), prefix, sku, order);
	r = redisCommand(rc, "PTTL %s", k);
	ck_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
	ttl = r->integer;
	freeReplyObject(r);
	r = redisCommand(rc, "HGET %s expires", k);
	ck_assert_ptr_nonnull(r);
	*expires = r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0;
	freeReplyObject(r);
	return ttl;
}

/* Retention: a record that reaches its last state (COMMITTED, RELEASED,
 * REJECTED, a release's tombstone) expires after keep_ms and says so; a
 * held one never does; with keep_ms 0 none does. */
START_TEST(test_records_over_expire)
{
	bool ex;

	add_stock("K", "adj", 10, 1, 10);
	keep_ms = 600000;
	expect_status(INVENTORY_RESERVE, "K", "o1", 2, "RESERVED");
	ck_assert_int_eq(record_ttl("K", "o1", &ex), -1);
	ck_assert(!ex);
	expect_status(INVENTORY_COMMIT, "K", "o1", 0, "COMMITTED");
	ck_assert_int_gt(record_ttl("K", "o1", &ex), 590000);
	ck_assert(ex);
	expect_status(INVENTORY_RESERVE, "K", "o2", 3, "RESERVED");
	expect_status(INVENTORY_RELEASE, "K", "o2", 0, "RELEASED");
	ck_assert_int_gt(record_ttl("K", "o2", &ex), 590000);
	ck_assert(ex);
	expect_status(INVENTORY_RESERVE, "K", "o3", 99, "REJECTED");
	ck_assert_int_gt(record_ttl("K", "o3", &ex), 590000);
	ck_assert(ex);
	expect_status(INVENTORY_RELEASE, "K", "o4", 0, "RELEASED");	/* tombstone */
	ck_assert_int_gt(record_ttl("K", "o4", &ex), 590000);
	ck_assert(ex);
	expect_stock("K", 8, 0, 2);
	keep_ms = 0;
	expect_status(INVENTORY_RESERVE, "K", "o5", 1, "RESERVED");
	expect_status(INVENTORY_COMMIT, "K", "o5", 0, "COMMITTED");
	ck_assert_int_eq(record_ttl("K", "o5", &ex), -1);
	ck_assert(!ex);
	/* An expired record is gone, stock untouched. */
	keep_ms = 50;
	expect_status(INVENTORY_RESERVE, "K", "o6", 1, "RESERVED");
	expect_status(INVENTORY_COMMIT, "K", "o6", 0, "COMMITTED");
	usleep(200000);
	ck_assert_int_eq(record_ttl("K", "o6", &ex), -2);
	expect_stock("K", 6, 0, 4);
}
END_TEST

START_TEST(test_stock_add_is_idempotent)
{
	add_stock("A", "adj-1", 10, 1, 10);
	add_stock("A", "adj-1", 10, 0, 10);
	add_stock("A", "adj-2", 5, 1, 15);
	expect_stock("A", 15, 0, 0);
}
END_TEST

START_TEST(test_reserve_commit_is_idempotent)
{
	add_stock("A", "adj", 10, 1, 10);
	expect_status(INVENTORY_RESERVE, "A", "o1", 3, "RESERVED");
	expect_status(INVENTORY_RESERVE, "A", "o1", 3, "RESERVED");
	expect_stock("A", 7, 3, 0);
	expect_status(INVENTORY_COMMIT, "A", "o1", 0, "COMMITTED");
	expect_status(INVENTORY_COMMIT, "A", "o1", 0, "COMMITTED");
	expect_stock("A", 7, 0, 3);
	/* Sold units are never given back, and a replayed reserve holds nothing. */
	expect_status(INVENTORY_RELEASE, "A", "o1", 0, "COMMITTED");
	expect_status(INVENTORY_RESERVE, "A", "o1", 3, "COMMITTED");
	expect_stock("A", 7, 0, 3);
}
END_TEST

START_TEST(test_reserve_release_is_idempotent)
{
	add_stock("B", "adj", 4, 1, 4);
	expect_status(INVENTORY_RESERVE, "B", "o2", 4, "RESERVED");
	expect_stock("B", 0, 4, 0);
	expect_status(INVENTORY_RELEASE, "B", "o2", 0, "RELEASED");
	expect_status(INVENTORY_RELEASE, "B", "o2", 0, "RELEASED");
	expect_stock("B", 4, 0, 0);
	/* A released reservation cannot be committed or reserved again. */
	expect_status(INVENTORY_COMMIT, "B", "o2", 0, "RELEASED");
	expect_status(INVENTORY_RESERVE, "B", "o2", 4, "RELEASED");
	expect_stock("B", 4, 0, 0);
}
END_TEST

START_TEST(test_short_line_is_rejected_and_remembered)
{
	add_stock("C", "adj", 2, 1, 2);
	expect_status(INVENTORY_RESERVE, "C", "o3", 3, "REJECTED");
	expect_stock("C", 2, 0, 0);
	/* More stock arrives; the replay of the same reserve still answers the same. */
	add_stock("C", "adj-more", 5, 1, 7);
	expect_status(INVENTORY_RESERVE, "C", "o3", 3, "REJECTED");
	expect_stock("C", 7, 0, 0);
	expect_status(INVENTORY_RELEASE, "C", "o3", 0, "REJECTED");
	expect_status(INVENTORY_COMMIT, "C", "o3", 0, "REJECTED");
	expect_stock("C", 7, 0, 0);
	/* An unknown sku has nothing available. */
	expect_status(INVENTORY_RESERVE, "never-added", "o3", 1, "REJECTED");
}
END_TEST

START_TEST(test_release_before_reserve_leaves_tombstone)
{
	add_stock("D", "adj", 5, 1, 5);
	expect_status(INVENTORY_RELEASE, "D", "o4", 0, "RELEASED");
	expect_status(INVENTORY_RESERVE, "D", "o4", 2, "RELEASED");
	expect_stock("D", 5, 0, 0);
	expect_status(INVENTORY_COMMIT, "D", "o9", 0, "MISSING");
	expect_stock("D", 5, 0, 0);
}
END_TEST

START_TEST(test_bad_quantity_is_an_error)
{
	static const char *const bad[] = { "0", "-1", "1.5", "abc", "" };

	add_stock("E", "adj", 5, 1, 5);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		char k1[INVENTORY_KEY_MAX], k2[INVENTORY_KEY_MAX];
		redisReply *r;

		inventory_key_stock(k1, sizeof(k1), prefix, "E");
		inventory_key_reservation(k2, sizeof(k2), prefix, "E", "o5");
		r = redisCommand(rc, "EVALSHA %s 2 %s %s o5 %s", sha[INVENTORY_RESERVE],
		    k1, k2, bad[i]);
		ck_assert_ptr_nonnull(r);
		ck_assert_msg(r->type == REDIS_REPLY_ERROR && strstr(r->str, "bad quantity"),
		    "qty '%s' answered type %d", bad[i], r->type);
		freeReplyObject(r);
		inventory_key_adds(k2, sizeof(k2), prefix, "E");
		r = redisCommand(rc, "EVALSHA %s 2 %s %s adj-bad %s", sha[INVENTORY_STOCK_ADD],
		    k1, k2, bad[i]);
		ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
		freeReplyObject(r);
	}
	expect_stock("E", 5, 0, 0);
}
END_TEST

START_TEST(test_many_orders_keep_invariant)
{
	char order[32];
	int reserved = 0;

	add_stock("F", "adj", 100, 1, 100);
	for (int i = 0; i < 60; i++) {
		redisReply *r;

		snprintf(order, sizeof(order), "m%d", i);
		r = call(INVENTORY_RESERVE, "F", order, 3);
		ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
		if (strcmp(r->str, "RESERVED") == 0)
			reserved++;
		freeReplyObject(r);
		if (i % 3 == 0)
			freeReplyObject(call(INVENTORY_COMMIT, "F", order, 0));
	}
	ck_assert_int_eq(reserved, 33);	/* 33 * 3 = 99 <= 100 < 34 * 3 */
	ck_assert_int_eq(counter("F", "available"), 1);
	ck_assert_int_eq(counter("F", "available") + counter("F", "reserved") +
	    counter("F", "sold"), 100);
}
END_TEST

START_TEST(test_noscript_after_flush)
{
	redisReply *r = redisCommand(rc, "SCRIPT FLUSH");

	freeReplyObject(r);
	r = call(INVENTORY_RESERVE, "G", "o7", 1);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	ck_assert_msg(strncmp(r->str, "NOSCRIPT", 8) == 0, "got %s", r->str);
	freeReplyObject(r);
}
END_TEST

static Suite *
redis_suite(void)
{
	Suite *s = suite_create("redis-lua");
	TCase *tc = tcase_create("scripts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stock_add_is_idempotent);
	tcase_add_test(tc, test_records_over_expire);
	tcase_add_test(tc, test_reserve_commit_is_idempotent);
	tcase_add_test(tc, test_reserve_release_is_idempotent);
	tcase_add_test(tc, test_short_line_is_rejected_and_remembered);
	tcase_add_test(tc, test_release_before_reserve_leaves_tombstone);
	tcase_add_test(tc, test_bad_quantity_is_an_error);
	tcase_add_test(tc, test_many_orders_keep_invariant);
	tcase_add_test(tc, test_noscript_after_flush);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(redis_suite());
}
