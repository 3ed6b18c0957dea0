/* check_config.c: unit tests of the configuration: defaults, file, overrides, errors, reload, dump. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

/* By its path: a build directory configured before autoconf's header was
 * renamed autoconfig.h still holds a stale config.h that -I. finds first. */
#include "../src/config.h"
#include "kafka.h"
#include "testutil.h"
#include "util.h"

/* Writes text to a new file DIR/name and returns its path (caller frees). */
static char *
write_file(const char *name, const char *text)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	free(dir);
	return path;
}

static struct config *
load_ok(const char *path, char *const *ov, int nov)
{
	struct config *cf = NULL;
	char *cause = NULL;
	int err = config_load(&cf, path, ov, nov, &cause);

	ck_assert_msg(err == 0, "config_load(%s): %d %s", path ? path : "(default)", err,
	    cause ? cause : "");
	ck_assert_ptr_nonnull(cf);
	ck_assert_ptr_null(cause);
	return cf;
}

/* Points config_default_path at a file that does not exist; returns it. */
static char *
no_default_file(void)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/orderd.conf", dir);

	free(dir);
	config_default_path = path;
	return path;
}

static struct config sentinel;

/* Loads text as a file; expects failure with err and exactly the cause
 * "PATH:" + where (or where alone when it starts with '-'). */
static void
expect_file_error(const char *text, int err, const char *where)
{
	char *path = write_file("orders.conf", text), *cause = NULL, *want;
	struct config *cf = &sentinel;	/* config_load must reset it to NULL */

	ck_assert_int_eq(config_load(&cf, path, NULL, 0, &cause), err);
	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(cause);
	want = xasprintf("%s:%s", path, where);
	ck_assert_str_eq(cause, want);
	ck_assert_ptr_null(strchr(cause, '\n'));
	free(want);
	free(cause);
	unlink(path);
	free(path);
}

static void
expect_override_error(const char *override, const char *want)
{
	char *ov[] = { "redis.port=6380", (char *)override, "log.level=debug" };
	char *cause = NULL, *missing;
	struct config *cf = &sentinel;
	const char *saved = config_default_path;

	/* No file, so that only the override can be wrong; the good overrides
	 * around it must not hide it. */
	missing = no_default_file();
	ck_assert_int_eq(config_load(&cf, NULL, ov, 3, &cause), -EINVAL);
	config_default_path = saved;
	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(cause);
	ck_assert_str_eq(cause, want);
	ck_assert_ptr_null(strchr(cause, '\n'));
	free(cause);
	free(missing);
}

static void
assert_defaults(const struct config *cf)
{
	ck_assert_int_eq(cf->nkafka, 1);
	ck_assert_str_eq(cf->kafka[0].key, "bootstrap.servers");
	ck_assert_str_eq(cf->kafka[0].value, "127.0.0.1:9092");
	ck_assert_str_eq(cf->redis_host, "127.0.0.1");
	ck_assert_int_eq(cf->redis_port, 6379);
	ck_assert_str_eq(cf->redis_prefix, "orderd:");
	ck_assert_int_eq(cf->redis_timeout_ms, 2000);
	ck_assert_str_eq(cf->journal_path, "/var/lib/orderd/journal.db");
	ck_assert(cf->journal_synchronous_full);
	ck_assert_str_eq(cf->topic_orders, "orders");
	ck_assert_str_eq(cf->topic_payments, "payments");
	ck_assert_str_eq(cf->topic_payment_requests, "payment-requests");
	ck_assert_str_eq(cf->topic_order_events, "order-events");
	ck_assert_str_eq(cf->topic_dlq, "orders.dlq");
	ck_assert_str_eq(cf->consumer_group, "orderd");
	ck_assert_int_eq(cf->consumer_batch_max, 512);
	ck_assert_int_eq(cf->saga_payment_timeout_ms, 900000);
	ck_assert_str_eq(cf->http_listen, "127.0.0.1:9464");
	ck_assert_str_eq(cf->log_level, "info");
}

START_TEST(test_defaults_when_default_file_missing)
{
	const char *saved = config_default_path;
	char *missing = no_default_file();
	struct config *cf = load_ok(NULL, NULL, 0), *def = config_new();

	config_default_path = saved;
	ck_assert_ptr_null(cf->path);
	assert_defaults(cf);
	assert_defaults(def);
	ck_assert(config_equal(cf, def));
	config_free(cf);
	config_free(def);
	free(missing);
}
END_TEST

START_TEST(test_default_file_read_when_present)
{
	const char *saved = config_default_path;
	char *path = write_file("orderd.conf", "[redis]\nport = 7000\n");
	struct config *cf;

	config_default_path = path;
	cf = load_ok(NULL, NULL, 0);
	config_default_path = saved;
	ck_assert_str_eq(cf->path, path);
	ck_assert_int_eq(cf->redis_port, 7000);
	ck_assert_str_eq(cf->redis_host, "127.0.0.1");	/* the rest stays default */
	config_free(cf);
	free(path);
}
END_TEST

/* Every key set to something other than its default. */
static const char every_key[] =
	"[kafka]\n"
	"bootstrap.servers = k1:9092,k2:9092\n"
	"[redis]\n"
	"host = redis.example\n"
	"port = 6390\n"
	"prefix = test:\n"
	"timeout_ms = 150\n"
	"[journal]\n"
	"path = /tmp/j.db\n"
	"synchronous = normal\n"
	"[topics]\n"
	"orders = t-orders\n"
	"payments = t-payments\n"
	"payment_requests = t-payment-requests\n"
	"order_events = t-order-events\n"
	"dlq = t-dlq\n"
	"[consumer]\n"
	"group = g1\n"
	"batch_max = 10000\n"
	"[saga]\n"
	"payment_timeout_ms = 9000000000\n"
	"[http]\n"
	"listen = [::1]:8080\n"
	"[log]\n"
	"level = DEBUG\n";

START_TEST(test_every_key_from_file)
{
	char *path = write_file("every.conf", every_key);
	struct config *cf = load_ok(path, NULL, 0);

	ck_assert_str_eq(cf->path, path);
	ck_assert_int_eq(cf->nkafka, 1);
	ck_assert_str_eq(cf->kafka[0].key, "bootstrap.servers");
	ck_assert_str_eq(cf->kafka[0].value, "k1:9092,k2:9092");
	ck_assert_str_eq(cf->redis_host, "redis.example");
	ck_assert_int_eq(cf->redis_port, 6390);
	ck_assert_str_eq(cf->redis_prefix, "test:");
	ck_assert_int_eq(cf->redis_timeout_ms, 150);
	ck_assert_str_eq(cf->journal_path, "/tmp/j.db");
	ck_assert(!cf->journal_synchronous_full);
	ck_assert_str_eq(cf->topic_orders, "t-orders");
	ck_assert_str_eq(cf->topic_payments, "t-payments");
	ck_assert_str_eq(cf->topic_payment_requests, "t-payment-requests");
	ck_assert_str_eq(cf->topic_order_events, "t-order-events");
	ck_assert_str_eq(cf->topic_dlq, "t-dlq");
	ck_assert_str_eq(cf->consumer_group, "g1");
	ck_assert_int_eq(cf->consumer_batch_max, 10000);
	ck_assert(cf->saga_payment_timeout_ms == INT64_C(9000000000));	/* > 2^32 */
	ck_assert_str_eq(cf->http_listen, "[::1]:8080");
	ck_assert_str_eq(cf->log_level, "debug");	/* stored as spelled in the table */
	config_free(cf);
	free(path);
}
END_TEST

START_TEST(test_empty_values_and_edges)
{
	char *path = write_file("edge.conf",
	    "[redis]\nprefix =\nport = 1\n[http]\nlisten =\n[consumer]\nbatch_max = 1\n"
	    "[redis]\nport = 65535\n");	/* a section may come back; the later key wins */
	struct config *cf = load_ok(path, NULL, 0);

	ck_assert_str_eq(cf->redis_prefix, "");
	ck_assert_str_eq(cf->http_listen, "");
	ck_assert_int_eq(cf->consumer_batch_max, 1);
	ck_assert_int_eq(cf->redis_port, 65535);
	config_free(cf);
	free(path);
}
END_TEST

/* cli.md's sample, as written there (aligned inline comments and all). */
static const char cli_md_sample[] =
	"[kafka]          ; every key is passed to librdkafka as it is\n"
	"bootstrap.servers = 127.0.0.1:9092\n"
	"\n"
	"[redis]\n"
	"host = 127.0.0.1\n"
	"port = 6379\n"
	"\n"
	"[journal]\n"
	"path = /var/lib/orderd/journal.db\n"
	"synchronous = full          ; full | normal\n"
	"\n"
	"[topics]\n"
	"orders = orders\n"
	"payments = payments\n"
	"payment_requests = payment-requests\n"
	"order_events = order-events\n"
	"dlq = orders.dlq\n"
	"\n"
	"[consumer]\n"
	"group = orderd\n"
	"\n"
	"[saga]\n"
	"payment_timeout_ms = 900000\n"
	"\n"
	"[http]\n"
	"listen = 127.0.0.1:9464     ; GET /metrics (Prometheus text), GET /healthz\n";

START_TEST(test_inline_comments)
{
	char *path = write_file("cli.conf", cli_md_sample);
	struct config *cf = load_ok(path, NULL, 0), *def = config_new();

	ck_assert(cf->journal_synchronous_full);
	ck_assert_str_eq(cf->http_listen, "127.0.0.1:9464");
	ck_assert(config_equal(cf, def));
	config_free(cf);
	config_free(def);
	free(path);

	/* ';' ends a value only after a blank; '#' comments only whole lines. */
	path = write_file("semi.conf",
	    "# a comment\n"
	    "; another\n"
	    "[kafka]\n"
	    "sasl.password = a;b#c\n"
	    "[journal]\n"
	    "synchronous = normal\t; tab before the comment\n"
	    "[redis]\n"
	    "prefix = p#1\n");
	cf = load_ok(path, NULL, 0);
	ck_assert_int_eq(cf->nkafka, 2);
	ck_assert_str_eq(cf->kafka[1].value, "a;b#c");
	ck_assert(!cf->journal_synchronous_full);
	ck_assert_str_eq(cf->redis_prefix, "p#1");
	config_free(cf);
	free(path);
}
END_TEST

/* inih would take an indented line for the continuation of the previous
 * value; the reader removes indentation so indented files read as written. */
START_TEST(test_indented_lines)
{
	char *path = write_file("indent.conf",
	    "  [redis]\n"
	    "    host = h1\n"
	    "    port = 6381\n"
	    "\t[kafka]\n"
	    "\tacks = all\n"
	    "\tlinger.ms = 3\n");
	struct config *cf = load_ok(path, NULL, 0);

	ck_assert_str_eq(cf->redis_host, "h1");
	ck_assert_int_eq(cf->redis_port, 6381);
	ck_assert_int_eq(cf->nkafka, 3);
	ck_assert_str_eq(cf->kafka[1].key, "acks");
	ck_assert_str_eq(cf->kafka[2].key, "linger.ms");
	ck_assert_str_eq(cf->kafka[2].value, "3");
	config_free(cf);
	free(path);
}
END_TEST

START_TEST(test_overrides_win_and_repeat)
{
	char *path = write_file("ov.conf", "[redis]\nport = 6380\nhost = file-host\n"
	    "[log]\nlevel = warn\n");
	char *ov[] = {
		"redis.port=6390",
		"log.level=error",
		"redis.port=6391",		/* the last one wins */
		" saga.payment_timeout_ms = 60000 ",	/* blanks go, as in the file */
		"http.listen=",			/* empty disables */
		"redis.prefix=a=b",		/* only the first '=' splits */
	};
	struct config *cf = load_ok(path, ov, (int)UTIL_ARRAY_SIZE(ov));

	ck_assert_int_eq(cf->redis_port, 6391);
	ck_assert_str_eq(cf->redis_host, "file-host");
	ck_assert_str_eq(cf->log_level, "error");
	ck_assert_int_eq(cf->saga_payment_timeout_ms, 60000);
	ck_assert_str_eq(cf->http_listen, "");
	ck_assert_str_eq(cf->redis_prefix, "a=b");
	config_free(cf);

	/* Overrides apply without any file too. */
	const char *saved = config_default_path;
	char *missing = no_default_file();

	cf = load_ok(NULL, ov, 1);
	config_default_path = saved;
	ck_assert_ptr_null(cf->path);
	ck_assert_int_eq(cf->redis_port, 6390);
	config_free(cf);
	free(missing);
	free(path);
}
END_TEST

START_TEST(test_kafka_pass_through)
{
	char *path = write_file("kafka.conf",
	    "[kafka]\n"
	    "linger.ms = 5\n"
	    "acks = all\n"
	    "bootstrap.servers = b1:9092\n"	/* replaces the default, in its place */
	    "linger.ms = 10\n"			/* replaces the earlier value in place */
	    "enable.idempotence = true\n");
	char *ov[] = {
		"kafka.acks=1",
		"kafka.compression.type=lz4",	/* everything after the first dot */
		"kafka.linger.ms=20",
	};
	static const char *const want[][2] = {
		{ "bootstrap.servers", "b1:9092" },
		{ "linger.ms", "20" },
		{ "acks", "1" },
		{ "enable.idempotence", "true" },
		{ "compression.type", "lz4" },
	};
	struct config *cf = load_ok(path, ov, (int)UTIL_ARRAY_SIZE(ov));

	ck_assert_int_eq(cf->nkafka, (int)UTIL_ARRAY_SIZE(want));
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(want); i++) {
		ck_assert_str_eq(cf->kafka[i].key, want[i][0]);
		ck_assert_str_eq(cf->kafka[i].value, want[i][1]);
	}
	config_free(cf);
	free(path);
}
END_TEST

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
	/* The cause stays on one line even when the argument does not. */
	expect_override_error("kafka.x=a\nb", "-s kafka.x=a?b: the value of kafka.x contains a line break");
}
END_TEST

struct lines {
	char *line[32];
	int n;
};

static void
collect_line(const char *line, void *arg)
{
	struct lines *l = arg;

	ck_assert_int_lt(l->n, 32);
	l->line[l->n++] = xstrdup(line);
}

static bool
has_line(const struct lines *l, const char *want)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->line[i], want) == 0)
			return true;
	return false;
}

static void
lines_free(struct lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->line[i]);
	l->n = 0;
}

START_TEST(test_reload)
{
	char *p1 = write_file("a.conf", "[kafka]\nacks = all\nlinger.ms = 5\n"
	    "[redis]\nhost = h1\n[log]\nlevel = info\n");
	char *p2 = write_file("b.conf", "[kafka]\nacks = 1\nbatch.size = 100\n"
	    "[redis]\nhost = h2\ntimeout_ms = 50\n[journal]\nsynchronous = normal\n"
	    "[consumer]\nbatch_max = 64\n[saga]\npayment_timeout_ms = 60000\n"
	    "[http]\nlisten =\n[log]\nlevel = debug\n");
	struct config *cur = load_ok(p1, NULL, 0), *next = load_ok(p2, NULL, 0);
	struct lines l = { .n = 0 };
	static const char *const want[] = {
		"redis.host changed (h1 -> h2); restart to apply",
		"redis.timeout_ms: 2000 -> 50",
		"journal.synchronous changed (full -> normal); restart to apply",
		"consumer.batch_max: 512 -> 64",
		"saga.payment_timeout_ms: 900000 -> 60000",
		"http.listen changed (127.0.0.1:9464 -> ''); restart to apply",
		"log.level: info -> debug",
		"kafka.acks changed (all -> 1); restart to apply",
		"kafka.batch.size changed ((unset) -> 100); restart to apply",
		"kafka.linger.ms changed (5 -> (unset)); restart to apply",
	};

	ck_assert_int_eq(config_reload(cur, next, collect_line, &l), 4);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(want); i++)
		ck_assert_msg(has_line(&l, want[i]), "missing report: %s", want[i]);
	ck_assert_int_eq(l.n, (int)UTIL_ARRAY_SIZE(want));
	lines_free(&l);
	/* The reloadable keys took their new values... */
	ck_assert_int_eq(cur->redis_timeout_ms, 50);
	ck_assert_int_eq(cur->consumer_batch_max, 64);
	ck_assert_int_eq(cur->saga_payment_timeout_ms, 60000);
	ck_assert_str_eq(cur->log_level, "debug");
	/* ...and the others kept theirs. */
	ck_assert_str_eq(cur->redis_host, "h1");
	ck_assert(cur->journal_synchronous_full);
	ck_assert_str_eq(cur->http_listen, "127.0.0.1:9464");
	ck_assert_int_eq(cur->nkafka, 3);
	ck_assert_str_eq(cur->kafka[1].value, "all");
	ck_assert_str_eq(cur->path, p1);

	/* Reloading the same file again changes and reports nothing new for
	 * the reloadable keys, only the pending restart-only ones. */
	ck_assert_int_eq(config_reload(cur, next, collect_line, &l), 0);
	ck_assert(!has_line(&l, "log.level: info -> debug"));
	ck_assert(has_line(&l, "redis.host changed (h1 -> h2); restart to apply"));
	lines_free(&l);
	/* Identical configurations: nothing at all; a NULL log_fn is fine. */
	ck_assert_int_eq(config_reload(next, next, collect_line, &l), 0);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(config_reload(cur, next, NULL, NULL), 0);
	config_free(cur);
	config_free(next);
	free(p1);
	free(p2);
}
END_TEST

/* [redis] cluster and nodes: parsed, checked entry by entry, required
 * together, and applied only by a restart. */
START_TEST(test_redis_cluster_keys)
{
	char *path = write_file("c.conf",
	    "[redis]\ncluster = yes\nnodes = 127.0.0.1:7000, 127.0.0.1:7001\n");
	struct config *cf = load_ok(path, NULL, 0), *def = config_new(), *bad = &sentinel;
	char *ov[] = { "redis.cluster=yes" }, *cause = NULL, *missing;
	const char *saved = config_default_path;
	struct lines l = { .n = 0 };

	ck_assert(cf->redis_cluster);
	ck_assert_str_eq(cf->redis_nodes, "127.0.0.1:7000, 127.0.0.1:7001");
	ck_assert(!def->redis_cluster);
	ck_assert_str_eq(def->redis_nodes, "");
	ck_assert_int_eq(config_reload(def, cf, collect_line, &l), 0);
	ck_assert(has_line(&l, "redis.cluster changed (no -> yes); restart to apply"));
	ck_assert(has_line(&l, "redis.nodes changed ('' -> 127.0.0.1:7000, 127.0.0.1:7001); "
	    "restart to apply"));
	lines_free(&l);
	expect_file_error("[redis]\ncluster = yes\nnodes = 127.0.0.1:7000,localhost\n", -EINVAL,
	    "3: redis.nodes: '127.0.0.1:7000,localhost' has a bad entry 'localhost': not "
	    "HOST:PORT with a port in 1..65535");
	expect_file_error("[redis]\nnodes = 127.0.0.1:0\n", -EINVAL,
	    "2: redis.nodes: '127.0.0.1:0' has a bad entry '127.0.0.1:0': not HOST:PORT with "
	    "a port in 1..65535");
	expect_file_error("[redis]\ncluster = maybe\n", -EINVAL,
	    "2: redis.cluster: 'maybe' is not one of no, yes");
	missing = no_default_file();
	ck_assert_int_eq(config_load(&bad, NULL, ov, 1, &cause), -EINVAL);
	config_default_path = saved;
	ck_assert_ptr_null(bad);
	ck_assert_str_eq(cause, "redis.nodes: may not be empty when redis.cluster = yes");
	free(cause);
	free(missing);
	config_free(cf);
	config_free(def);
	unlink(path);
	free(path);
}
END_TEST

/* A secret file of mode mode; returns its path (caller frees). */
static char *
write_secret(const char *name, const char *text, mode_t mode)
{
	char *path = write_file(name, text);

	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

/* Whether any of the secrets occurs in s. */
static bool
shows_secret(const char *s)
{
	static const char *const secrets[] = {
		"Redis-Pass-1", "Redis-File-Pass-2", "Kafka-Pass-3", "Kafka-File-Pass-4",
		"Key-Pass-5", "Redis-Rotated-6",
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(secrets); i++)
		if (strstr(s, secrets[i]) != NULL)
			return true;
	return false;
}

START_TEST(test_secrets)
{
	char *rfile = write_secret("redis.pw", "Redis-File-Pass-2\n", 0600);
	char *kfile = write_secret("kafka.pw", "Kafka-File-Pass-4\r\n", 0640);
	char *open_file = write_secret("open.pw", "Redis-File-Pass-2\n", 0644);
	char *empty = write_secret("empty.pw", "\n", 0600);
	char *rov = xasprintf("redis.password_file=%s", rfile);
	char *kov = xasprintf("kafka.sasl.password_file=%s", kfile);
	char *ov[] = { rov, kov, "redis.user=orderd", "kafka.ssl.key.password=Key-Pass-5" };
	char *inl[] = { "redis.password=Redis-Pass-1", "kafka.sasl.password=Kafka-Pass-3" };
	struct config *cf = load_ok(NULL, ov, 4), *in = load_ok(NULL, inl, 2), *bad = NULL;
	char *dump, *cause = NULL, *o;
	struct lines l = { .n = 0 };
	rd_kafka_conf_t *kc;
	char val[128];
	size_t vlen = sizeof(val);

	/* What the files hold is what is used, without the line break. */
	ck_assert_str_eq(cf->redis_secret, "Redis-File-Pass-2");
	ck_assert_str_eq(cf->redis_user, "orderd");
	ck_assert_str_eq(cf->kafka[1].key, "sasl.password_file");
	ck_assert_str_eq(cf->kafka[1].secret, "Kafka-File-Pass-4");
	ck_assert_str_eq(in->redis_secret, "Redis-Pass-1");
	/* librdkafka gets the secret under its own name. */
	kc = kafka_conf_new(cf, NULL, NULL, &cause);
	ck_assert_ptr_nonnull(kc);
	ck_assert_int_eq(rd_kafka_conf_get(kc, "sasl.password", val, &vlen), RD_KAFKA_CONF_OK);
	ck_assert_str_eq(val, "Kafka-File-Pass-4");
	rd_kafka_conf_destroy(kc);

	/* --check-config's dump shows none, but says one is set. */
	dump = config_dump(cf);
	ck_assert_msg(!shows_secret(dump), "%s", dump);
	ck_assert_ptr_nonnull(strstr(dump, "ssl.key.password = [redacted]"));
	ck_assert_ptr_nonnull(strstr(dump, "sasl.password_file = "));
	free(dump);
	dump = config_dump(in);
	ck_assert_msg(!shows_secret(dump), "%s", dump);
	ck_assert_ptr_nonnull(strstr(dump, "\npassword = [redacted]\n"));
	ck_assert_ptr_nonnull(strstr(dump, "sasl.password = [redacted]"));
	free(dump);

	/* A reload reports changes of secrets without their values, and
	 * applies the Redis ones. */
	ck_assert_int_ge(config_reload(in, cf, collect_line, &l), 2);
	for (int i = 0; i < l.n; i++)
		ck_assert_msg(!shows_secret(l.line[i]), "%s", l.line[i]);
	ck_assert(has_line(&l, "redis.password changed"));
	ck_assert(has_line(&l, "kafka.sasl.password changed; restart to apply"));
	ck_assert(has_line(&l, "kafka.ssl.key.password changed; restart to apply"));
	ck_assert_str_eq(in->redis_secret, "Redis-File-Pass-2");
	lines_free(&l);
	/* The same file with a new password in it (rotation). */
	config_free(in);
	in = load_ok(NULL, ov, 4);
	{
		FILE *f = fopen(rfile, "w");

		ck_assert_ptr_nonnull(f);
		fputs("Redis-Rotated-6\n", f);
		ck_assert_int_eq(fclose(f), 0);
	}
	config_free(bad);
	bad = load_ok(NULL, ov, 4);
	ck_assert_int_eq(config_reload(in, bad, collect_line, &l), 1);
	ck_assert_msg(l.n == 1 && strstr(l.line[0], "holds a new password") != NULL &&
	    !shows_secret(l.line[0]), "%s", l.n ? l.line[0] : "(no line)");
	ck_assert_str_eq(in->redis_secret, "Redis-Rotated-6");
	ck_assert(!config_equal(cf, bad));
	lines_free(&l);
	config_free(bad);
	bad = NULL;

	/* Files: readable by others, empty, missing; a secret given twice. */
	o = xasprintf("redis.password_file=%s", open_file);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ o }, 1, &cause), -EPERM);
	ck_assert_ptr_nonnull(strstr(cause, "can be read by every user"));
	ck_assert(!shows_secret(cause));
	free(cause);
	free(o);
	o = xasprintf("kafka.sasl.password_file=%s", empty);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ o }, 1, &cause), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cause, "is empty"));
	free(cause);
	free(o);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ "redis.password_file=/nonexistent/pw" },
	    1, &cause), -ENOENT);
	ck_assert_str_eq(cause, "redis.password_file: /nonexistent/pw: No such file or directory");
	free(cause);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ rov, "redis.password=Redis-Pass-1" },
	    2, &cause), -EINVAL);
	ck_assert_str_eq(cause, "redis.password and redis.password_file: set one, not both");
	free(cause);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ kov, "kafka.sasl.password=Kafka-Pass-3" },
	    2, &cause), -EINVAL);
	ck_assert(!shows_secret(cause));
	free(cause);
	/* An override that fails never quotes a secret's value. */
	expect_override_error("kafka.sasl.password=Kafka-Pass-3 ;x",
	    "-s kafka.sasl.password=[redacted]: the value of kafka.sasl.password contains "
	    "' ;', which would start a comment");
	expect_override_error("redis.password=Redis-Pass-1\nx",
	    "-s redis.password=[redacted]: the value of redis.password contains a line break");

	/* Which names are secrets. */
	ck_assert(config_is_secret("redis.password"));
	ck_assert(!config_is_secret("redis.password_file"));
	ck_assert(!config_is_secret("redis.user"));
	ck_assert(config_is_secret("kafka.sasl.password"));
	ck_assert(config_is_secret("kafka.ssl.keystore.password"));
	ck_assert(config_is_secret("kafka.ssl.key.pem"));
	ck_assert(config_is_secret("kafka.sasl.oauthbearer.client.secret"));
	ck_assert(config_is_secret("kafka.sasl.oauthbearer.config"));
	ck_assert(!config_is_secret("kafka.sasl.username"));
	ck_assert(!config_is_secret("kafka.ssl.key.location"));
	ck_assert(!config_is_secret("kafka.sasl.password_file"));

	config_free(cf);
	config_free(in);
	unlink(rfile);
	unlink(kfile);
	unlink(open_file);
	unlink(empty);
	free(rfile);
	free(kfile);
	free(open_file);
	free(empty);
	free(rov);
	free(kov);
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

START_TEST(test_dump_round_trip)
{
	char *path = write_file("every.conf", every_key);
	char *ov[] = { "kafka.linger.ms=5", "kafka.client.id=p;w#x", "http.listen=",
	    "redis.prefix=", "log.level=warn" };
	struct config *cf = load_ok(path, ov, (int)UTIL_ARRAY_SIZE(ov)), *back, *def;
	char *dump = config_dump(cf), *path2 = write_file("dump.conf", dump);

	back = load_ok(path2, NULL, 0);
	ck_assert_msg(config_equal(cf, back), "dump did not read back equal:\n%s", dump);
	ck_assert_int_eq(back->nkafka, 3);
	ck_assert_str_eq(back->kafka[2].value, "p;w#x");
	ck_assert_str_eq(back->http_listen, "");
	/* config_equal does see a difference (else the test above proves nothing). */
	back->redis_port++;
	ck_assert(!config_equal(cf, back));
	back->redis_port--;
	back->journal_synchronous_full = !back->journal_synchronous_full;
	ck_assert(!config_equal(cf, back));
	config_free(back);
	free(dump);
	free(path2);

	/* The defaults round-trip too, and the dump names every section. */
	def = config_new();
	dump = config_dump(def);
	path2 = write_file("def.conf", dump);
	back = load_ok(path2, NULL, 0);
	ck_assert(config_equal(def, back));
	static const char *const sections[] = { "[kafka]", "[redis]", "[journal]", "[topics]",
	    "[consumer]", "[saga]", "[http]", "[log]" };
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(sections); i++)
		ck_assert_msg(strstr(dump, sections[i]) != NULL, "%s missing", sections[i]);
	config_free(back);
	config_free(def);
	config_free(cf);
	free(dump);
	free(path2);
	free(path);
}
END_TEST

START_TEST(test_free_null)
{
	config_free(NULL);
}
END_TEST

/* "section.key" of every key an INI text sets, for comparing key sets. */
struct keyset {
	char *key[64];
	int n;
};

static int
keyset_add(void *arg, const char *section, const char *name, const char *value)
{
	struct keyset *ks = arg;

	(void)value;
	ck_assert_int_lt(ks->n, 64);
	ks->key[ks->n++] = xasprintf("%s.%s", section, name);
	return 1;
}

static bool
keyset_has(const struct keyset *ks, const char *key)
{
	for (int i = 0; i < ks->n; i++)
		if (strcmp(ks->key[i], key) == 0)
			return true;
	return false;
}

START_TEST(test_sample_file_matches_defaults)
{
	char *path = xasprintf("%s/contrib/orderd.conf", util_datadir());
	struct config *cf = load_ok(path, NULL, 0), *def = config_new();
	char *dump = config_dump(def), *text = NULL;
	struct keyset in_sample = { .n = 0 }, in_code = { .n = 0 };
	size_t len;

	ck_assert_msg(config_equal(cf, def), "%s differs from the built-in defaults", path);
	/* Equal could also mean "sets nothing": check it spells out every key. */
	ck_assert_int_eq(util_read_file(path, &text, &len), 0);
	ck_assert_int_eq(ini_parse_string(text, keyset_add, &in_sample), 0);
	ck_assert_int_eq(ini_parse_string(dump, keyset_add, &in_code), 0);
	for (int i = 0; i < in_code.n; i++)
		ck_assert_msg(keyset_has(&in_sample, in_code.key[i]), "%s does not set %s",
		    path, in_code.key[i]);
	ck_assert_int_eq(in_sample.n, in_code.n);
	for (int i = 0; i < in_sample.n; i++)
		free(in_sample.key[i]);
	for (int i = 0; i < in_code.n; i++)
		free(in_code.key[i]);
	free(text);
	free(dump);
	config_free(cf);
	config_free(def);
	free(path);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults_when_default_file_missing);
	tcase_add_test(tc, test_default_file_read_when_present);
	tcase_add_test(tc, test_every_key_from_file);
	tcase_add_test(tc, test_empty_values_and_edges);
	tcase_add_test(tc, test_inline_comments);
	tcase_add_test(tc, test_indented_lines);
	tcase_add_test(tc, test_overrides_win_and_repeat);
	tcase_add_test(tc, test_kafka_pass_through);
	tcase_add_test(tc, test_kafka_refused);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_bad_enum);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_missing_and_unreadable_files);
	tcase_add_test(tc, test_override_errors);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_redis_cluster_keys);
	tcase_add_test(tc, test_secrets);
	tcase_add_test(tc, test_prefix_limits);
	tcase_add_test(tc, test_dump_round_trip);
	tcase_add_test(tc, test_free_null);
	tcase_add_test(tc, test_sample_file_matches_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(config_suite());
}
