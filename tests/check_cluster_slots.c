/* check_cluster_slots.c: Redis Cluster without a node: CRC16 key slots and hash tags, the parsing of MOVED and ASK, node lists. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "inventory.h"
#include "testutil.h"
#include "util.h"

/* ---- slots ---- */

static int
slot_of(const char *key)
{
	return cluster_keyslot(key, strlen(key));
}

START_TEST(test_crc16_vector)
{
	/* The check value of CRC16-XMODEM, as the specification gives it. */
	ck_assert_uint_eq(cluster_crc16("123456789", 9), 0x31C3);
	ck_assert_uint_eq(cluster_crc16("", 0), 0);
	ck_assert_int_eq(slot_of("123456789"), 0x31C3 & (CLUSTER_SLOTS - 1));
}
END_TEST

START_TEST(test_known_slots)
{
	/* What CLUSTER KEYSLOT answers for these. */
	ck_assert_int_eq(slot_of("foo"), 12182);
	ck_assert_int_eq(slot_of("bar"), 5061);
	ck_assert_int_eq(slot_of("hello"), 866);
	ck_assert_int_eq(slot_of("somekey"), 11058);
	for (int i = 0; i < 1000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "key:%d", i);
		ck_assert_int_ge(slot_of(key), 0);
		ck_assert_int_lt(slot_of(key), CLUSTER_SLOTS);
	}
}
END_TEST

START_TEST(test_hash_tags)
{
	char a[INVENTORY_KEY_MAX], b[INVENTORY_KEY_MAX], d[INVENTORY_KEY_MAX];

	/* As CLUSTER KEYSLOT answers, and the rule of the specification. */
	ck_assert_int_eq(slot_of("{user1000}.following"), 3443);
	ck_assert_int_eq(slot_of("foo{}{bar}"), 8363);
	ck_assert_int_eq(slot_of("foo{{bar}}zap"), 4015);
	ck_assert_int_eq(slot_of("foo{bar}{zap}"), 5061);
	ck_assert_int_eq(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
	ck_assert_int_eq(slot_of("{user1000}.following"), slot_of("user1000"));
	/* An empty tag is no tag: the whole key. */
	ck_assert_int_eq(slot_of("foo{}{bar}"),
	    cluster_crc16("foo{}{bar}", 10) & (CLUSTER_SLOTS - 1));
	/* The first '{' and the first '}' after it. */
	ck_assert_int_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
	ck_assert_int_eq(slot_of("foo{bar}{zap}"), slot_of("bar"));
	/* No closing brace: the whole key. */
	ck_assert_int_eq(slot_of("foo{bar"), cluster_crc16("foo{bar", 7) & (CLUSTER_SLOTS - 1));
	/* The length counts, not a NUL. */
	ck_assert_int_eq(cluster_keyslot("{bar}xyz", 5), slot_of("bar"));
	ck_assert_int_eq(cluster_keyslot("foo{bar}", 4), slot_of("foo{"));
	/* Every key of a sku shares its slot, whatever the prefix. */
	inventory_key_stock(a, sizeof(a), "orderd:", "sku-7");
	inventory_key_reservation(b, sizeof(b), "orderd:", "sku-7", "order-1");
	inventory_key_adds(d, sizeof(d), "x{y}:", "sku-7");
	ck_assert_int_eq(slot_of(a), slot_of("sku-7"));
	ck_assert_int_eq(slot_of(b), slot_of("sku-7"));
	ck_assert_int_eq(slot_of(d), slot_of("y"));	/* a prefix with braces wins */
}
END_TEST

/* ---- redirections and node lists ---- */

static int
parse(const char *s, struct cluster_redirect *rd)
{
	return cluster_parse_redirect(s, strlen(s), rd);
}

START_TEST(test_parse_redirect)
{
	static const char *const malformed[] = {
		"MOVED", "MOVED ", "ASK", "MOVED 3999", "MOVED 3999 ", "MOVED  3999 127.0.0.1:6381",
		"MOVED 3999  127.0.0.1:6381", "MOVED 16384 127.0.0.1:6381", "MOVED -1 127.0.0.1:6381",
		"MOVED x 127.0.0.1:6381", "MOVED 39x9 127.0.0.1:6381", "MOVED 3999 127.0.0.1",
		"MOVED 3999 127.0.0.1:", "MOVED 3999 127.0.0.1:0", "MOVED 3999 127.0.0.1:65536",
		"MOVED 3999 127.0.0.1:63a", "MOVED 3999 127.0.0.1:6381 extra", "ASK 1 h:1 ",
		"ASK 99999999999999999999 h:1", "MOVED 3999 h,x:1",
	};
	static const char *const others[] = {
		"ERR unknown command", "MOVEDX 1 h:1", "NOSCRIPT No matching script",
		"TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN", "",
		"moved 1 h:1", "ASKING",
	};
	struct cluster_redirect rd;

	ck_assert_int_eq(parse("MOVED 3999 127.0.0.1:6381", &rd), 0);
	ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_MOVED);
	ck_assert_int_eq(rd.slot, 3999);
	ck_assert_str_eq(rd.host, "127.0.0.1");
	ck_assert_int_eq(rd.port, 6381);
	ck_assert_int_eq(parse("ASK 0 10.0.0.2:7000", &rd), 0);
	ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_ASK);
	ck_assert_int_eq(rd.slot, 0);
	ck_assert_str_eq(rd.host, "10.0.0.2");
	ck_assert_int_eq(rd.port, 7000);
	ck_assert_int_eq(parse("MOVED 16383 ::1:7001", &rd), 0);
	ck_assert_int_eq(rd.slot, 16383);
	ck_assert_str_eq(rd.host, "::1");
	ck_assert_int_eq(rd.port, 7001);
	/* Redis 7 writes no host when it does not know the endpoint. */
	ck_assert_int_eq(parse("MOVED 12 :7002", &rd), 0);
	ck_assert_str_eq(rd.host, "");
	ck_assert_int_eq(rd.port, 7002);
	ck_assert_int_eq(parse("ASK 5 redis-3.example:65535", &rd), 0);
	ck_assert_str_eq(rd.host, "redis-3.example");
	/* Only len bytes count. */
	ck_assert_int_eq(cluster_parse_redirect("MOVED 12 h:1 garbage", 12, &rd), 0);
	ck_assert_int_eq(rd.port, 1);
	ck_assert_int_eq(cluster_parse_redirect("MOVED 12 h:1", 10, &rd), -EINVAL);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(malformed); i++)
		ck_assert_msg(parse(malformed[i], &rd) == -EINVAL, "'%s' parsed", malformed[i]);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(others); i++)
		ck_assert_msg(parse(others[i], &rd) == -ENOENT, "'%s' is no redirection",
		    others[i]);
}
END_TEST

START_TEST(test_parse_nodes)
{
	static const char *const bad[][2] = {
		{ "", NULL }, { "   ", NULL }, { "127.0.0.1", "'127.0.0.1'" },
		{ "127.0.0.1:0", "'127.0.0.1:0'" }, { "127.0.0.1:70000", "'127.0.0.1:70000'" },
		{ "127.0.0.1:7000,", "''" }, { ",127.0.0.1:7000", "''" },
		{ "127.0.0.1:7000,nonsense", "'nonsense'" }, { ":7000", "':7000'" },
		{ "127.0.0.1:7000 127.0.0.1:7001", "'127.0.0.1:7000 127.0.0.1:7001'" },
		{ "127.0.0.1:7x", "'127.0.0.1:7x'" },
	};
	struct cluster_addr *v;
	char *cause;
	int n;

	ck_assert_int_eq(cluster_parse_nodes("127.0.0.1:7000,127.0.0.1:7001", &v, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(v[0].host, "127.0.0.1");
	ck_assert_int_eq(v[0].port, 7000);
	ck_assert_int_eq(v[1].port, 7001);
	free(v);
	ck_assert_int_eq(cluster_parse_nodes(" 10.0.0.1:1 ,\t::1:65535 ", &v, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(v[0].host, "10.0.0.1");
	ck_assert_str_eq(v[1].host, "::1");
	ck_assert_int_eq(v[1].port, 65535);
	free(v);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		cause = NULL;
		ck_assert_msg(cluster_parse_nodes(bad[i][0], &v, &n, &cause) == -EINVAL,
		    "'%s' accepted", bad[i][0]);
		ck_assert_ptr_null(v);
		ck_assert_ptr_nonnull(cause);
		if (bad[i][1] != NULL)
			ck_assert_msg(strstr(cause, bad[i][1]) != NULL, "'%s': %s", bad[i][0], cause);
		free(cause);
	}
}
END_TEST

static Suite *
cluster_slots_suite(void)
{
	Suite *s = suite_create("cluster-slots");
	TCase *pure = tcase_create("slots");

	tcase_add_test(pure, test_crc16_vector);
	tcase_add_test(pure, test_known_slots);
	tcase_add_test(pure, test_hash_tags);
	tcase_add_test(pure, test_parse_redirect);
	tcase_add_test(pure, test_parse_nodes);
	suite_add_tcase(s, pure);
	return s;
}

int
main(void)
{
	return tu_run(cluster_slots_suite());
}
