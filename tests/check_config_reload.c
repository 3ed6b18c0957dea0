/* check_config_reload.c: config_reload, as SIGHUP runs it: what it applies, what it reports, what waits for a restart ([redis] cluster and nodes among them). */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "config_fixture.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_reload)
{
	char *p1 = write_file("a.conf", "[kafka]\nacks = all\nlinger.ms = 5\n"
	    "[redis]\nhost = h1\n[log]\nlevel = info\n");
	char *p2 = write_file("b.conf", "[kafka]\nacks = 1\nbatch.size = 100\n"
	    "[redis]\nhost = h2\ntimeout_ms = 50\n[journal]\nsynchronous = normal\n"
	    "[consumer]\nbatch_max = 64\n[saga]\npayment_timeout_ms = 60000\n"
	    "parked_max_age_ms = 2000\n"
	    "[http]\nlisten =\n[log]\nlevel = debug\n");
	struct config *cur = load_ok(p1, NULL, 0), *next = load_ok(p2, NULL, 0);
	struct lines l = { .n = 0 };
	static const char *const want[] = {
		"redis.host changed (h1 -> h2); restart to apply",
		"redis.timeout_ms: 2000 -> 50",
		"journal.synchronous changed (full -> normal); restart to apply",
		"consumer.batch_max: 512 -> 64",
		"saga.payment_timeout_ms: 900000 -> 60000",
		"saga.parked_max_age_ms: 86400000 -> 2000",
		"http.listen changed (127.0.0.1:9464 -> ''); restart to apply",
		"log.level: info -> debug",
		"kafka.acks changed (all -> 1); restart to apply",
		"kafka.batch.size changed ((unset) -> 100); restart to apply",
		"kafka.linger.ms changed (5 -> (unset)); restart to apply",
	};

	ck_assert_int_eq(config_reload(cur, next, collect_line, &l), 5);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(want); i++)
		ck_assert_msg(has_line(&l, want[i]), "missing report: %s", want[i]);
	ck_assert_int_eq(l.n, (int)UTIL_ARRAY_SIZE(want));
	lines_free(&l);
	/* The reloadable keys took their new values... */
	ck_assert_int_eq(cur->redis_timeout_ms, 50);
	ck_assert_int_eq(cur->consumer_batch_max, 64);
	ck_assert_int_eq(cur->saga_payment_timeout_ms, 60000);
	ck_assert_int_eq(cur->saga_parked_max_age_ms, 2000);
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

static Suite *
config_reload_suite(void)
{
	Suite *s = suite_create("config-reload");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_redis_cluster_keys);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(config_reload_suite());
}
