/* check_config.c: reading the configuration: defaults, the default file, every key, comments, indentation, overrides, [kafka] pass-through, the dump read back, the sample file. */
#include "autoconfig.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config_fixture.h"
#include "testutil.h"
#include "util.h"

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
	ck_assert(cf->saga_parked_max_age_ms == INT64_C(86400000));
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
