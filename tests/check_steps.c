/* check_steps.c: unit tests of src/steps.c's Redis-ready path on the engine fixture and a real redis-server: stock adjustments that fail to go out say so and go out later, and a journal that cannot be read there is said and read again. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cluster.h"
#include "config.h"
#include "engine_fixture.h"
#include "inventory.h"
#include "journal.h"
#include "testutil.h"
#include "util.h"

/*
 * Each test is an engine of the fixture whose e->redis is a real
 * connection (one server, tests/servers.sh's) with steps.c's state
 * callback, as engine.c makes it; the loop runs until what the test waits
 * for happens.  What steps.c logs goes to a file (log.c writes stderr),
 * which the test reads.
 */

static struct engine *e;
static char *log_dir, *log_path;
static int saved_stderr = -1;

static void
setup(void)
{
	char *prefix = tu_unique("steps");
	int fd;

	log_dir = tu_tmpdir();
	log_path = xasprintf("%s/stderr.log", log_dir);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
	e = ef_new();
	free(e->cf->redis_prefix);
	e->cf->redis_prefix = xasprintf("%s:", prefix);
	free(prefix);
}

static void
closed(void *arg)
{
	(void)arg;
}

static void
teardown(void)
{
	if (e->redis != NULL) {
		cluster_close(e->redis, closed, NULL);
		uv_run(e->loop, UV_RUN_NOWAIT);
		e->redis = NULL;
	}
	ef_free(e);
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	unlink(log_path);
	rmdir(log_dir);
	free(log_path);
	free(log_dir);
}

/* What was logged so far (the caller frees). */
static char *
logged(void)
{
	char *text;

	fflush(stderr);
	ck_assert_int_eq(util_read_file(log_path, &text, NULL), 0);
	return text;
}

/* Whether one line logged holds every one of the NULL-ended words. */
static bool
logged_line(const char *first, ...)
{
	char *text = logged(), *line, *save = NULL;
	bool found = false;

	for (line = strtok_r(text, "\n", &save); line != NULL && !found;
	    line = strtok_r(NULL, "\n", &save)) {
		va_list ap;
		const char *w;

		found = true;
		va_start(ap, first);
		for (w = first; w != NULL && found; w = va_arg(ap, const char *))
			found = strstr(line, w) != NULL;
		va_end(ap);
	}
	free(text);
	return found;
}

/* e->redis: tests/servers.sh's Redis, connecting (not up before the loop runs). */
static void
connect_redis(void)
{
	struct cluster_options o = {
		.host = "127.0.0.1",
		.port = atoi(tu_env("ORDERD_TEST_REDIS_PORT")),
		.timeout_ms = 2000,
		.backoff_min_ms = 20,
		.backoff_max_ms = 200,
	};
	char *scripts[INVENTORY_SCRIPT_COUNT], *cause = NULL;

	ck_assert_msg(inventory_read_scripts(scripts, &cause) == 0, "%s", cause);
	ck_assert_int_eq(cluster_new(&e->redis, e->loop, &o, scripts, steps_redis_state, e), 0);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(scripts[i]);
}

/* A blocking command on the same Redis, for the test's own keys. */
static void
redis_sync(const char *fmt, const char *key)
{
	redisContext *c = redisConnect("127.0.0.1", atoi(tu_env("ORDERD_TEST_REDIS_PORT")));
	redisReply *r;

	ck_assert(c != NULL && c->err == 0);
	r = redisCommand(c, fmt, key);
	ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "%s %s: %s", fmt, key,
	    r != NULL ? r->str : c->errstr);
	freeReplyObject(r);
	redisFree(c);
}

static void
add_adjustment(const char *id, const char *sku, int64_t qty)
{
	engine_begin(e);
	ck_assert_int_eq(journal_stock_adjustment_add(e->j, id, sku, qty, e->now), 0);
	engine_commit(e);
}

static int64_t
applied(const char *id)
{
	return ef_sqlf(e, "SELECT count(*) FROM stock_adjustments WHERE adjustment_id = '%s' "
	    "AND applied_at IS NOT NULL", id);
}

static void
tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until done() or ms pass; returns done(). */
static bool
run_until(bool (*done)(const void *arg), const void *arg, int ms)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;
	uv_timer_t t;
	bool ok;

	/* A timer keeps the loop turning while nothing else is due. */
	uv_timer_init(e->loop, &t);
	uv_timer_start(&t, tick, 10, 10);
	while (!(ok = done(arg)) && util_mono_us() < until)
		uv_run(e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(e->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool
is_applied(const void *id)
{
	return applied(id) == 1;
}

static bool
is_ready(const void *arg)
{
	(void)arg;
	return e->redis_ready;
}

/* The words of a line that must have been logged, for a failure message. */
#define expect_line(...) ck_assert_msg(logged_line(__VA_ARGS__, NULL), \
	"no line with all of: %s\n--- logged:\n%s", #__VA_ARGS__, logged())

/*
 * Redis says it is up, and is gone when the adjustment is sent (here: the
 * ready path runs before the connection is up).  The send fails: one
 * warning names the adjustment, its sku and the error; it stays
 * unapplied in the journal and goes out when Redis is ready again.
 */
START_TEST(test_failed_send_is_said_and_sent_when_ready)
{
	add_adjustment("adj-send", "sku-s", 4);
	connect_redis();
	ck_assert(!cluster_is_up(e->redis));
	steps_redis_state(true, e);
	expect_line("stock adjustment adj-send", "sku-s", strerror(ENOTCONN));
	ck_assert_int_eq(applied("adj-send"), 0);
	ck_assert_msg(run_until(is_applied, "adj-send", 10000), "never applied:\n%s", logged());
	expect_line("stock adjustment adj-send applied");
}
END_TEST

/*
 * Redis is up but answers the adjustment with an error (here WRONGTYPE: its
 * set of applied ids is a string).  That is said, and the adjustment is
 * sent again while Redis stays up, until it is applied: Redis never goes
 * down, so waiting for the next "ready" would wait for ever.
 */
START_TEST(test_adjustment_answered_with_an_error_is_sent_again)
{
	char key[INVENTORY_KEY_MAX];

	add_adjustment("adj-err", "sku-e", 3);
	ck_assert_int_eq(inventory_key_adds(key, sizeof(key), e->cf->redis_prefix, "sku-e"), 0);
	redis_sync("SET %s not-a-set", key);
	connect_redis();
	ck_assert(run_until(is_ready, NULL, 10000));
	/* The answer comes; the retry waits STEPS_RETRY_MS (1 s). */
	ck_assert(!run_until(is_applied, "adj-err", 300));
	expect_line("stock adjustment adj-err", "sku-e", "WRONGTYPE");
	redis_sync("DEL %s", key);
	ck_assert_msg(run_until(is_applied, "adj-err", 5000), "never sent again:\n%s", logged());
	ck_assert(cluster_is_up(e->redis));
	redis_sync("DEL %s", key);
}
END_TEST

/*
 * The ready path reads the unapplied adjustments from the journal; when
 * that read fails (here its statement cannot be prepared: a column is
 * gone), the failure is said and the read is tried again, so the
 * adjustment still goes out once the journal can be read.
 */
START_TEST(test_unreadable_adjustments_are_said_and_read_again)
{
	add_adjustment("adj-read", "sku-r", 2);
	ef_sql(e, "ALTER TABLE stock_adjustments RENAME COLUMN qty TO qty_away");
	connect_redis();
	ck_assert(run_until(is_ready, NULL, 10000));
	expect_line("stock adjustments not applied", "qty");
	ck_assert(!run_until(is_applied, "adj-read", 200));
	ef_sql(e, "ALTER TABLE stock_adjustments RENAME COLUMN qty_away TO qty");
	ck_assert_msg(run_until(is_applied, "adj-read", 5000), "never read again:\n%s", logged());
}
END_TEST

/*
 * Before it is ready, the path asks the journal which sku was applied
 * last, to see whether Redis lost the inventory.  A failed read is not
 * "none": it is said, the steps wait, and the check runs again.
 */
START_TEST(test_unreadable_inventory_check_is_said_and_run_again)
{
	add_adjustment("adj-chk", "sku-c", 1);
	ef_sql(e, "ALTER TABLE stock_adjustments RENAME COLUMN applied_at TO applied_away");
	connect_redis();
	ck_assert(!run_until(is_ready, NULL, 1000));
	expect_line("latest stock adjustment applied", "applied_at");
	ef_sql(e, "ALTER TABLE stock_adjustments RENAME COLUMN applied_away TO applied_at");
	ck_assert_msg(run_until(is_applied, "adj-chk", 10000), "never checked again:\n%s",
	    logged());
	ck_assert(e->redis_ready);
}
END_TEST

static Suite *
steps_suite(void)
{
	Suite *s = suite_create("steps");
	TCase *tc = tcase_create("ready");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_failed_send_is_said_and_sent_when_ready);
	tcase_add_test(tc, test_adjustment_answered_with_an_error_is_sent_again);
	tcase_add_test(tc, test_unreadable_adjustments_are_said_and_read_again);
	tcase_add_test(tc, test_unreadable_inventory_check_is_said_and_run_again);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(steps_suite());
}
