/* check_config_errors.c: the configurations config_load refuses, each with its exact cause: [kafka] keys orderd cannot honour, unknown names, bad values, syntax, files, overrides, prefixes. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_fixture.h"
#include "testutil.h"
#include "util.h"

/* [kafka] keys orderd cannot honour: its rebalance is eager, an order's
 * orders and payments partitions stay on one instance, it stores offsets
 * itself, names its group in [consumer], and its producers are not
 * transactional. */
#define STRATEGY_WHY "cannot be used: orderd's rebalance is eager, and an order's orders " \
	"and payments partitions must go to one instance: range only (the default)"
#define PROTOCOL_WHY "cannot be used: its assignments are incremental, and orderd's " \
	"rebalance is eager: classic only (the default)"
#define STORE_WHY "cannot be used: orderd stores an input's offset itself, once what the " \
	"input caused is journaled and published (it sets false)"
#define COMMIT_WHY "cannot be used: orderd has librdkafka commit the offsets it stored " \
	"(it sets true)"
START_TEST(test_kafka_refused)
{
	static const char *const ok[][2] = {
		{ "partition.assignment.strategy", "range" },
		{ "group.protocol", "classic" },
		{ "enable.auto.offset.store", "false" },
		{ "enable.auto.commit", "true" },
		{ "enable.auto.commit", "1" },
		{ "transactional.id", "" },
		{ "group.instance.id", "a" },
		{ "acks", "all" },
	};
	static const char *const refused[][3] = {
		{ "partition.assignment.strategy", "cooperative-sticky", STRATEGY_WHY },
		{ "partition.assignment.strategy", "roundrobin", STRATEGY_WHY },
		{ "partition.assignment.strategy", "range,cooperative-sticky", STRATEGY_WHY },
		{ "partition.assignment.strategy", "", STRATEGY_WHY },
		{ "group.protocol", "consumer", PROTOCOL_WHY },
		{ "enable.auto.offset.store", "true", STORE_WHY },
		{ "enable.auto.offset.store", "1", STORE_WHY },
		{ "enable.auto.offset.store", "T", STORE_WHY },
		{ "enable.auto.commit", "false", COMMIT_WHY },
		{ "enable.auto.commit", "0", COMMIT_WHY },
	};
	char *text, *want, *ov;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(ok); i++) {
		char *path;
		struct config *cf;

		text = xasprintf("[kafka]\n%s = %s\n", ok[i][0], ok[i][1]);
		path = write_file("kafka-ok.conf", text);
		cf = load_ok(path, NULL, 0);
		ck_assert_str_eq(cf->kafka[cf->nkafka - 1].key, ok[i][0]);
		ck_assert_str_eq(cf->kafka[cf->nkafka - 1].value, ok[i][1]);
		config_free(cf);
		free(path);
		free(text);
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(refused); i++) {
		/* In the file: its line; with -s: the argument. */
		text = xasprintf("[kafka]\nlinger.ms = 5\n%s = %s\n", refused[i][0], refused[i][1]);
		want = xasprintf("3: kafka.%s: '%s' %s", refused[i][0], refused[i][1], refused[i][2]);
		expect_file_error(text, -EINVAL, want);
		free(text);
		free(want);
		ov = xasprintf("kafka.%s=%s", refused[i][0], refused[i][1]);
		want = xasprintf("-s %s: kafka.%s: '%s' %s", ov, refused[i][0], refused[i][1],
		    refused[i][2]);
		expect_override_error(ov, want);
		free(ov);
		free(want);
	}
	expect_file_error("[kafka]\ngroup.id = mine\n", -EINVAL, "2: kafka.group.id: set "
	    "[consumer] group instead (orderd sets group.id itself, and would ignore this one)");
	expect_override_error("kafka.transactional.id=t1", "-s kafka.transactional.id=t1: "
	    "kafka.transactional.id: cannot be used: orderd's producers are idempotent, not "
	    "transactional, and a transactional producer refuses every record outside a "
	    "transaction");
}
END_TEST

START_TEST(test_unknown_section)
{
	expect_file_error("[redis]\nport = 6379\n\n[foo]\nbar = 1\n", -EINVAL,
	    "4: unknown section [foo]");
	/* Named at its header even when it holds no key. */
	expect_file_error("[foo]\n[redis]\nport = 6379\n", -EINVAL, "1: unknown section [foo]");
	/* Names are case-sensitive, and blanks inside the brackets count. */
	expect_file_error("[Redis]\nport = 1\n", -EINVAL, "1: unknown section [Redis]");
	expect_file_error("[ redis ]\nport = 1\n", -EINVAL, "1: unknown section [ redis ]");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_file_error("; c\n[redis]\nhost = a\nport = 1\n\n\nhots = x\n", -EINVAL,
	    "7: unknown key 'redis.hots'");
	expect_file_error("[topics]\norder = x\n", -EINVAL, "2: unknown key 'topics.order'");
	/* A key of one section is unknown in another. */
	expect_file_error("[saga]\nport = 1\n", -EINVAL, "2: unknown key 'saga.port'");
	expect_file_error("port = 1\n", -EINVAL, "1: key 'port' is outside any [section]");
	expect_file_error("[redis]\n= 1\n", -EINVAL, "2: no key before '='");
}
END_TEST

START_TEST(test_bad_values)
{
	expect_file_error("[redis]\nhost = a\nport = 70000\n", -EINVAL,
	    "3: redis.port: '70000' is not an integer in 1..65535");
	expect_file_error("[redis]\nport = 0\n", -EINVAL,
	    "2: redis.port: '0' is not an integer in 1..65535");
	expect_file_error("[redis]\nport = 63x\n", -EINVAL,
	    "2: redis.port: '63x' is not an integer in 1..65535");
	expect_file_error("[redis]\nport = 0x50\n", -EINVAL,
	    "2: redis.port: '0x50' is not an integer in 1..65535");
	expect_file_error("[redis]\nport =\n", -EINVAL,
	    "2: redis.port: '' is not an integer in 1..65535");
	expect_file_error("[redis]\ntimeout_ms = -1\n", -EINVAL,
	    "2: redis.timeout_ms: '-1' is not an integer >= 1");
	expect_file_error("[redis]\ntimeout_ms = 2147483648\n", -EINVAL,
	    "2: redis.timeout_ms: '2147483648' is not an integer >= 1");
	expect_file_error("[consumer]\nbatch_max = 10001\n", -EINVAL,
	    "2: consumer.batch_max: '10001' is not an integer in 1..10000");
	expect_file_error("[saga]\npayment_timeout_ms = 0\n", -EINVAL,
	    "2: saga.payment_timeout_ms: '0' is not an integer >= 1");
	expect_file_error("[saga]\npayment_timeout_ms = 99999999999999999999\n", -EINVAL,
	    "2: saga.payment_timeout_ms: '99999999999999999999' is not an integer >= 1");
	expect_file_error("[saga]\nparked_max_age_ms = 999\n", -EINVAL,
	    "2: saga.parked_max_age_ms: '999' is not an integer >= 1000");
	expect_file_error("[redis]\nhost =\n", -EINVAL, "2: redis.host: may not be empty");
	expect_file_error("[topics]\ndlq = ; nothing\n", -EINVAL, "2: topics.dlq: may not be empty");
	expect_file_error("[http]\nlisten = localhost\n", -EINVAL,
	    "2: http.listen: 'localhost' is not HOST:PORT (or empty to disable)");
	expect_file_error("[http]\nlisten = :9464\n", -EINVAL,
	    "2: http.listen: ':9464' is not HOST:PORT (or empty to disable)");
	expect_file_error("[http]\nlisten = h:99999\n", -EINVAL,
	    "2: http.listen: 'h:99999' is not HOST:PORT with a port in 1..65535 "
	    "(or empty to disable)");
	expect_file_error("[http]\nlisten = h:\n", -EINVAL,
	    "2: http.listen: 'h:' is not HOST:PORT with a port in 1..65535 (or empty to disable)");
}
END_TEST

START_TEST(test_bad_enum)
{
	expect_file_error("[journal]\nsynchronous = fast   ; oops\n", -EINVAL,
	    "2: journal.synchronous: 'fast' is not one of normal, full");
	expect_file_error("[journal]\nsynchronous = yes\n", -EINVAL,
	    "2: journal.synchronous: 'yes' is not one of normal, full");
	expect_file_error("[log]\nlevel = loud\n", -EINVAL,
	    "2: log.level: 'loud' is not one of error, warn, info, debug");
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_file_error("[redis]\nhost = a\nthis line has no equals sign\nport = 1\n", -EINVAL,
	    "3: syntax error (not [SECTION], KEY = VALUE or a ; comment)");
	expect_file_error("[redis\nport = 1\n", -EINVAL,
	    "1: syntax error (not [SECTION], KEY = VALUE or a ; comment)");
	/* The first error in the file is the one reported, whatever its kind. */
	expect_file_error("[redis]\nnoequals\nhots = 1\n", -EINVAL,
	    "2: syntax error (not [SECTION], KEY = VALUE or a ; comment)");
	expect_file_error("[redis]\nhots = 1\nnoequals\n", -EINVAL, "2: unknown key 'redis.hots'");
	expect_file_error("[redis]\nport = 1\n[foo]\nnoequals\n", -EINVAL,
	    "3: unknown section [foo]");

	/* A line inih would cut in two is refused, not half read. */
	char *text = xmalloc(400);
	snprintf(text, 400, "[kafka]\nsasl.password = %0*d\n", 300, 7);
	expect_file_error(text, -EINVAL, "2: line is longer than 199 characters");
	/* ... while the longest line that fits reads whole. */
	char *value = xmalloc(200);
	memset(value, 'v', 199 - strlen("k="));
	value[199 - strlen("k=")] = '\0';
	snprintf(text, 400, "[kafka]\nk=%s\n[redis]\nport = 2\n", value);
	char *path = write_file("long.conf", text);
	struct config *cf = load_ok(path, NULL, 0);
	ck_assert_str_eq(cf->kafka[1].value, value);
	ck_assert_int_eq(cf->redis_port, 2);
	/* config_dump keeps it within the line length too. */
	char *dump = config_dump(cf), *path2 = write_file("long2.conf", dump);
	struct config *back = load_ok(path2, NULL, 0);
	ck_assert(config_equal(cf, back));
	config_free(back);
	config_free(cf);
	free(dump);
	free(path2);
	free(path);
	free(value);
	free(text);
}
END_TEST

START_TEST(test_missing_and_unreadable_files)
{
	struct config *cf = &sentinel;
	char *cause = NULL, *dir = tu_tmpdir(), *path = xasprintf("%s/nope.conf", dir), *want;

	/* A file named with -c must exist. */
	ck_assert_int_eq(config_load(&cf, path, NULL, 0, &cause), -ENOENT);
	ck_assert_ptr_null(cf);
	want = xasprintf("-c %s: No such file or directory", path);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	/* A directory is not a configuration file. */
	cause = NULL;
	ck_assert_int_eq(config_load(&cf, dir, NULL, 0, &cause), -EISDIR);
	ck_assert_ptr_null(cf);
	want = xasprintf("-c %s: Is a directory", dir);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	/* Nor is it one as the default file: only a missing default is fine. */
	const char *saved = config_default_path;
	config_default_path = dir;
	cause = NULL;
	ck_assert_int_eq(config_load(&cf, NULL, NULL, 0, &cause), -EISDIR);
	config_default_path = saved;
	ck_assert_ptr_null(cf);
	want = xasprintf("%s: Is a directory", dir);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	/* Only ENOENT means "no default file": ENOTDIR is reported. */
	char *file = write_file("plain", "x"), *below = xasprintf("%s/orderd.conf", file);
	config_default_path = below;
	cause = NULL;
	ck_assert_int_eq(config_load(&cf, NULL, NULL, 0, &cause), -ENOTDIR);
	config_default_path = saved;
	ck_assert_ptr_null(cf);
	free(cause);
	free(below);
	free(file);
	free(path);
	free(dir);
}
END_TEST

START_TEST(test_override_errors)
{
	expect_override_error("redis.port", "-s redis.port: not of the form SECTION.KEY=VALUE");
	expect_override_error("port=1", "-s port=1: not of the form SECTION.KEY=VALUE");
	expect_override_error("=1", "-s =1: not of the form SECTION.KEY=VALUE");
	expect_override_error(".port=1", "-s .port=1: not of the form SECTION.KEY=VALUE");
	expect_override_error("redis.=1", "-s redis.=1: not of the form SECTION.KEY=VALUE");
	expect_override_error("kafka.=1", "-s kafka.=1: not of the form SECTION.KEY=VALUE");
	expect_override_error("a b.c=1", "-s a b.c=1: not of the form SECTION.KEY=VALUE");
	expect_override_error("x=a.b", "-s x=a.b: not of the form SECTION.KEY=VALUE");
	expect_override_error("redis.hots=x", "-s redis.hots=x: unknown key 'redis.hots'");
	expect_override_error("redis.port.x=1", "-s redis.port.x=1: unknown key 'redis.port.x'");
	expect_override_error("foo.bar=1", "-s foo.bar=1: unknown section [foo]");
	expect_override_error("redis.port=70000",
	    "-s redis.port=70000: redis.port: '70000' is not an integer in 1..65535");
	expect_override_error("journal.synchronous=off",
	    "-s journal.synchronous=off: journal.synchronous: 'off' is not one of normal, full");
	expect_override_error("log.level=", "-s log.level=: log.level: '' is not one of "
	    "error, warn, info, debug");
	expect_override_error("kafka.a:b=1", "-s kafka.a:b=1: 'a:b' is not a librdkafka property name");
	/* Values that config_dump could not write back. */
	expect_override_error("redis.prefix=a ;b",
	    "-s redis.prefix=a ;b: the value of redis.prefix contains ' ;', which would start a comment");
	expect_override_error("redis.prefix=;b",
	    "-s redis.prefix=;b: the value of redis.prefix starts with ';', which would start a comment");
	/* Orders (and their inbox rows) may not go before the inbox's window. */
	expect_override_error("retention.orders_max_age_hours=24",
	    "retention.orders_max_age_hours: 24 is shorter than retention.inbox_max_age_hours "
	    "(168 hours): an order's inbox rows go with it, so its events would stop being "
	    "recognised as repeats early; make it 0 (keep orders) or at least the inbox's");
	expect_override_error("retention.inbox_max_age_hours=0",
	    "retention.orders_max_age_hours: 336 is shorter than retention.inbox_max_age_hours "
	    "(0, kept for good): an order's inbox rows go with it, so its events would stop "
	    "being recognised as repeats early; make it 0 (keep orders) or at least the inbox's");
	/* The cause stays on one line even when the argument does not. */
	expect_override_error("kafka.x=a\nb", "-s kafka.x=a?b: the value of kafka.x contains a line break");
}
END_TEST

START_TEST(test_prefix_limits)
{
	char longp[CONFIG_PREFIX_MAX + 2];
	char *ov;

	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ov = xasprintf("redis.prefix=%s", longp);
	{
		char *want = xasprintf("-s %s: redis.prefix: '%s' is longer than %d bytes", ov,
		    longp, CONFIG_PREFIX_MAX);

		expect_override_error(ov, want);
		free(want);
	}
	free(ov);
	longp[CONFIG_PREFIX_MAX] = '\0';
	ov = xasprintf("redis.prefix=%s", longp);
	config_free(load_ok(NULL, (char *[]){ ov }, 1));
	free(ov);
	/* A glob character would widen orderctl's SCAN, a brace move the
	 * hash tag off the sku. */
	expect_override_error("redis.prefix=a*", "-s redis.prefix=a*: redis.prefix: 'a*' may "
	    "hold only letters, digits and . _ : / - @ # | = + (no glob characters, braces or "
	    "blanks)");
	expect_override_error("redis.prefix={x}:", "-s redis.prefix={x}:: redis.prefix: '{x}:' "
	    "may hold only letters, digits and . _ : / - @ # | = + (no glob characters, braces "
	    "or blanks)");
	config_free(load_ok(NULL, (char *[]){ "redis.prefix=shop-1/orderd:" }, 1));
}
END_TEST

static Suite *
config_errors_suite(void)
{
	Suite *s = suite_create("config-errors");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_kafka_refused);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_bad_enum);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_missing_and_unreadable_files);
	tcase_add_test(tc, test_override_errors);
	tcase_add_test(tc, test_prefix_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(config_errors_suite());
}
