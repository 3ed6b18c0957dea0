/* check_recovery_e2e.c: orderd and orderctl recover --rebuild-redis against a lost, flushed or stopped private Redis. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "harness.h"
#include "inventory.h"
#include "testutil.h"
#include "util.h"

#define WAIT_MS 20000
/* After a Redis restart orderd reconnects within its backoff (<= 5 s). */
#define RECONNECT_WAIT_MS 30000
#define REDIS_SH ABS_TOP_SRCDIR "/contrib/redis.sh"

/*
 * Every test stops, flushes or restarts Redis, so each test case has a
 * Redis of its own, never the shared one (other tests use it meanwhile).
 * It is started and stopped by unchecked fixtures, in Check's parent
 * process, so a failed test does not leave it running.
 */
static char *priv_dir;
static int priv_port;

/* Runs contrib/redis.sh VERB DIR [OPT]; returns the port start and restart print. */
static int
redis_sh(const char *verb, const char *dir, const char *opt)
{
	char *cmd = xasprintf("'%s' %s '%s' %s", REDIS_SH, verb, dir, opt ? opt : "");
	char line[64] = "";
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

static void
priv_start_with(const char *opt)
{
	priv_dir = tu_tmpdir();
	priv_port = redis_sh("start", priv_dir, opt);
	ck_assert_int_gt(priv_port, 0);
}

static void
priv_start(void)
{
	priv_start_with(NULL);
}

/* Persistent: a stop and restart keeps the stock. */
static void
priv_start_aof(void)
{
	priv_start_with("--aof");
}

static void
priv_stop(void)
{
	char *cmd;

	redis_sh("stop", priv_dir, NULL);
	cmd = xasprintf("rm -rf '%s'", priv_dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(priv_dir);
	priv_dir = NULL;
}

/* ---- inputs and expectations -------------------------------------------- */

static json_t *
line(const char *sku, int qty)
{
	return json_pack("{s:s, s:i}", "sku", sku, "qty", qty);
}

static void
order_created(struct h *h, const char *order_id, json_t *items)
{
	char *eid = xasprintf("c-%s", order_id);

	h_send(h, H_ORDERS, order_id, "{s:s, s:s, s:i, s:s, s:s, s:o, s:i, s:s}",
	    "event_id", eid, "type", "OrderCreated", "version", 1, "order_id", order_id,
	    "customer_id", "cust-1", "items", items, "amount_cents", 100, "currency", "EUR");
	free(eid);
}

static void
pay(struct h *h, const char *order_id)
{
	char *eid = xasprintf("p-%s", order_id), *pid = xasprintf("pay-%s", order_id);

	h_send(h, H_PAYMENTS, order_id, "{s:s, s:s, s:s, s:s}", "event_id", eid,
	    "type", "PaymentSucceeded", "order_id", order_id, "payment_id", pid);
	free(eid);
	free(pid);
}

static void
cancel(struct h *h, const char *order_id)
{
	char *eid = xasprintf("x-%s", order_id);

	h_send(h, H_ORDERS, order_id, "{s:s, s:s, s:s}", "event_id", eid,
	    "type", "OrderCancellationRequested", "order_id", order_id);
	free(eid);
}

static void
expect(struct h *h, int topic, const char *order_id, const char *type, int ms)
{
	ck_assert_msg(h_wait(h, topic, order_id, type, ms) != NULL,
	    "no %s for %s within %d ms", type, order_id, ms);
}

static void
expect_stock(struct h *h, const char *sku, long long av, long long res, long long sold)
{
	long long a, r, s;

	h_counters(h, sku, &a, &r, &s);
	ck_assert_msg(a == av && r == res && s == sold,
	    "%s: available/reserved/sold %lld/%lld/%lld, want %lld/%lld/%lld", sku, a, r, s,
	    av, res, sold);
}

static void
expect_record(struct h *h, const char *sku, const char *order_id, const char *want)
{
	char st[32];

	h_reservation(h, sku, order_id, st, sizeof(st));
	ck_assert_msg(strcmp(st, want) == 0, "record %s/%s: '%s', want '%s'", sku, order_id,
	    st, want);
}

/* Exactly one output of type for order_id (none came twice). */
static void
expect_once(struct h *h, int topic, const char *order_id, const char *type)
{
	int n = h_count(h, topic, order_id, type, 0);

	ck_assert_msg(n == 1, "%d %s for %s, want 1", n, type, order_id);
}

/* Polls an SQL count on the journal until it reaches want. */
static void
wait_sql(struct h *h, long long want, const char *sql)
{
	long long n = -1;

	for (int i = 0; i < 400 && (n = h_sql(h, "%s", sql)) != want; i++)
		usleep(50000);
	ck_assert_msg(n == want, "%s: %lld, want %lld", sql, n, want);
}

/* Whether orderd's log has needle at or after byte from (h_start appends:
 * from = the log's size before a start looks at that start only). */
static bool
log_has_after(struct h *h, size_t from, const char *needle)
{
	char *path = xasprintf("%s/orderd.log", h->dir), *buf = NULL;
	size_t len = 0;
	bool found = util_read_file(path, &buf, &len) == 0 && len > from &&
	    strstr(buf + from, needle) != NULL;

	free(buf);
	free(path);
	return found;
}

static bool
log_has(struct h *h, const char *needle)
{
	return log_has_after(h, 0, needle);
}

static void
wait_log(struct h *h, const char *needle, int ms)
{
	for (int i = 0; i < ms / 50 && !log_has(h, needle); i++)
		usleep(50000);
	ck_assert_msg(log_has(h, needle), "orderd never logged '%s'", needle);
}

/* orderctl recover with args; its --json answer when it succeeds. */
static json_t *
recover_json(struct h *h, const char *args)
{
	char *out = NULL;
	int st = h_ctl(h, &out, "recover --rebuild-redis --only-instance %s --json", args);
	json_t *doc = json_loads(out, 0, NULL);

	ck_assert_msg(st == 0, "recover %s: exit %d: %s", args, st, out);
	ck_assert_msg(doc != NULL && json_is_true(json_object_get(doc, "ok")),
	    "recover %s printed: %s", args, out);
	free(out);
	return doc;
}

static long long
jint(json_t *doc, const char *key)
{
	ck_assert_msg(json_is_integer(json_object_get(doc, key)), "no '%s' in the answer", key);
	return json_integer_value(json_object_get(doc, key));
}

/*
 * Orders in every state, on A (10 units) and B (5):
 *   c1  A2      confirmed          r1  A3 B1   reserved, awaiting payment
 *   r2  B2      reserved           j1  B10     rejected (B short)
 *   x1  A1      cancelled
 * A: available 5, reserved 3, sold 2.  B: available 2, reserved 3, sold 0.
 */
static void
orders_in_every_state(struct h *h)
{
	h_stock(h, "A", 10);
	h_stock(h, "B", 5);
	order_created(h, "c1", json_pack("[o]", line("A", 2)));
	order_created(h, "r1", json_pack("[o,o]", line("A", 3), line("B", 1)));
	order_created(h, "r2", json_pack("[o]", line("B", 2)));
	order_created(h, "j1", json_pack("[o]", line("B", 10)));
	order_created(h, "x1", json_pack("[o]", line("A", 1)));
	expect(h, H_PAYMENT_REQUESTS, "c1", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "x1", "PaymentRequested", WAIT_MS);
	pay(h, "c1");
	cancel(h, "x1");
	expect(h, H_PAYMENT_REQUESTS, "r1", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "r2", "PaymentRequested", WAIT_MS);
	expect(h, H_ORDER_EVENTS, "j1", "OrderRejected", WAIT_MS);
	expect(h, H_ORDER_EVENTS, "c1", "OrderConfirmed", WAIT_MS);
	expect(h, H_ORDER_EVENTS, "x1", "OrderCancelled", WAIT_MS);
	expect_stock(h, "A", 5, 3, 2);
	expect_stock(h, "B", 2, 3, 0);
}

/* A snapshot has one line per key. */
static void
expect_snapshot_lines(const char *snap, int want)
{
	int n = 0;

	for (const char *p = snap; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	ck_assert_msg(n == want, "%d keys, want %d:\n%s", n, want, snap);
}

/* ---- a. FLUSHALL while orderd runs --------------------------------------- */

START_TEST(test_flushall_then_rebuild)
{
	struct h *h = h_new("flush", 3);
	char *before, *after, *empty;
	json_t *doc;

	h_use_redis(h, priv_port);
	h_start(h);
	orders_in_every_state(h);
	h_reconcile_ok(h);
	before = h_redis_snapshot(h);
	expect_snapshot_lines(before, 4 + 6);
	ck_assert_msg(strstr(before, "{A}:stock hash: added=10 available=5 reserved=3 sold=2\n") &&
	    strstr(before, "{B}:r:j1 hash: expires=1 order=j1 qty=10 state=REJECTED\n"), "%s", before);

	h_redis_cmd(h, "FLUSHALL");
	empty = h_redis_snapshot(h);
	ck_assert_str_eq(empty, "");
	ck_assert_int_eq(h_stop(h), 0);

	doc = recover_json(h, "");
	ck_assert_int_eq(jint(doc, "skus"), 2);
	ck_assert_int_eq(jint(doc, "skus_with_stock"), 2);
	/* c1:A r1:A r1:B r2:B j1:B x1:A */
	ck_assert_int_eq(jint(doc, "reservations"), 6);
	ck_assert_int_eq(jint(doc, "adjustments"), 2);
	ck_assert_int_eq(jint(doc, "unapplied_adjustments"), 0);
	ck_assert_int_eq(jint(doc, "steps_in_flight"), 0);
	json_decref(doc);
	after = h_redis_snapshot(h);
	/* Byte for byte what orderd had built: counters, records, adjustment ids. */
	ck_assert_str_eq(after, before);
	h_reconcile_ok(h);

	/* Redis is not empty any more: a second rebuild is refused, untouched. */
	ck_assert_int_eq(h_ctl(h, NULL, "recover --rebuild-redis --only-instance"), 1);
	free(after);
	after = h_redis_snapshot(h);
	ck_assert_str_eq(after, before);

	/* orderd goes on from the rebuilt stock. */
	h_start(h);
	pay(h, "r1");
	cancel(h, "r2");
	expect(h, H_ORDER_EVENTS, "r1", "OrderConfirmed", WAIT_MS);
	expect(h, H_ORDER_EVENTS, "r2", "OrderCancelled", WAIT_MS);
	expect_stock(h, "A", 5, 0, 5);
	expect_stock(h, "B", 4, 0, 1);
	expect_record(h, "A", "r1", "COMMITTED");
	expect_record(h, "B", "r1", "COMMITTED");
	expect_record(h, "B", "r2", "RELEASED");
	expect_record(h, "B", "j1", "REJECTED");
	expect_record(h, "A", "x1", "RELEASED");
	h_count(h, H_ORDER_EVENTS, NULL, NULL, 500);
	const char *ids[] = { "c1", "r1", "r2", "x1" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		expect_once(h, H_PAYMENT_REQUESTS, ids[i], "PaymentRequested");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		expect_once(h, H_ORDER_EVENTS, ids[i], NULL);
	expect_once(h, H_ORDER_EVENTS, "j1", "OrderRejected");
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	free(before);
	free(after);
	free(empty);
	h_free(h);
}
END_TEST

/* ---- b. Redis down while orderd runs ------------------------------------- */

START_TEST(test_redis_down_journals_then_resumes)
{
	struct h *h = h_new("down", 3);
	int64_t t0;

	h_use_redis(h, priv_port);
	/* o1's RESERVED record at once, not after the linger: its
	 * OrderCreated's offset is committed before Redis goes away. */
	h_set(h, "saga.state_record_linger_ms=0");
	h_start(h);
	h_stock(h, "A", 10);
	h_stock(h, "B", 10);
	order_created(h, "o1", json_pack("[o]", line("A", 2)));
	expect(h, H_PAYMENT_REQUESTS, "o1", "PaymentRequested", WAIT_MS);

	redis_sh("stop", priv_dir, NULL);
	wait_log(h, "Redis is down", 10000);
	order_created(h, "o2", json_pack("[o]", line("A", 3)));
	order_created(h, "o3", json_pack("[o]", line("B", 4)));
	pay(h, "o1");
	/* Journaled, not applied: orderd applies it once Redis is back. */
	ck_assert_int_eq(h_ctl(h, NULL, "stock add C 7"), 1);

	/* Consumed and journaled: inbox rows, and intents without results. */
	wait_sql(h, 3, "SELECT count(*) FROM inbox WHERE event_id IN ('c-o2', 'c-o3', 'p-o1') "
	    "AND status = 'applied'");
	wait_sql(h, 3, "SELECT count(*) FROM saga_steps WHERE result IS NULL AND "
	    "((order_id = 'o1' AND kind = 'commit') OR (order_id IN ('o2', 'o3') AND "
	    "kind = 'reserve'))");
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM saga_steps WHERE result IS NULL"), 3);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM orders WHERE order_id IN ('o2', 'o3') "
	    "AND state = 'NEW'"), 2);
	/* ... but their offsets wait for what they cause to reach the broker
	 * (a new owner of the partitions would need them again): only o1's
	 * OrderCreated, answered before Redis went away, is committed
	 * (auto-commit runs every 5 s). */
	t0 = util_mono_us();
	while (h_committed(h, H_ORDERS) < 1 && util_mono_us() - t0 < 20 * 1000000LL)
		usleep(200000);
	usleep(6 * 1000000);
	ck_assert_int_eq(h_committed(h, H_ORDERS), 1);
	ck_assert_int_le(h_committed(h, H_PAYMENTS), 0);
	/* No output that needs Redis went out. */
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o2", NULL, 1000), 0);
	ck_assert_int_eq(h_count(h, H_PAYMENT_REQUESTS, "o3", NULL, 0), 0);
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, NULL, NULL, 0), 0);

	/* Redis comes back with its data (AOF): every step resumes. */
	ck_assert_int_eq(redis_sh("restart", priv_dir, NULL), priv_port);
	expect(h, H_ORDER_EVENTS, "o1", "OrderConfirmed", RECONNECT_WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o2", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o3", "PaymentRequested", WAIT_MS);
	pay(h, "o2");
	cancel(h, "o3");
	expect(h, H_ORDER_EVENTS, "o2", "OrderConfirmed", WAIT_MS);
	expect(h, H_ORDER_EVENTS, "o3", "OrderCancelled", WAIT_MS);
	expect_stock(h, "A", 5, 0, 5);
	expect_stock(h, "B", 10, 0, 0);
	expect_stock(h, "C", 7, 0, 0);
	/* Everything answered and acknowledged: now every offset moves. */
	t0 = util_mono_us();
	while ((h_committed(h, H_ORDERS) < 4 || h_committed(h, H_PAYMENTS) < 2) &&
	    util_mono_us() - t0 < 20 * 1000000LL)
		usleep(200000);
	ck_assert_int_eq(h_committed(h, H_ORDERS), 4);
	ck_assert_int_eq(h_committed(h, H_PAYMENTS), 2);
	h_count(h, H_ORDER_EVENTS, NULL, NULL, 500);
	const char *ids[] = { "o1", "o2", "o3" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		expect_once(h, H_PAYMENT_REQUESTS, ids[i], "PaymentRequested");
		expect_once(h, H_ORDER_EVENTS, ids[i], NULL);
	}
	h_reconcile_ok(h);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM stock_adjustments WHERE "
	    "applied_at IS NULL"), 0);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

/* ---- c. refusals, and --force -------------------------------------------- */

static char *
key(struct h *h, const char *sku, const char *order_id, const char *which)
{
	char k[INVENTORY_KEY_MAX];

	if (strcmp(which, "stock") == 0)
		inventory_key_stock(k, sizeof(k), h->prefix, sku);
	else if (strcmp(which, "adds") == 0)
		inventory_key_adds(k, sizeof(k), h->prefix, sku);
	else
		inventory_key_reservation(k, sizeof(k), h->prefix, sku, order_id);
	return xstrdup(k);
}

/* orderctl with one more override, for this call only. */
static int
ctl_with(struct h *h, const char *override, const char *cmd)
{
	int st;

	h_set(h, override);
	st = h_ctl(h, NULL, "%s", cmd);
	free(h->extra[--h->nextra]);
	return st;
}

START_TEST(test_refusals_and_force)
{
	struct h *h = h_new("refuse", 3);
	char *before, *now, *k, *empty_journal;
	json_t *doc;

	h_use_redis(h, priv_port);
	h_start(h);
	orders_in_every_state(h);
	ck_assert_int_eq(h_stop(h), 0);
	before = h_redis_snapshot(h);
	expect_snapshot_lines(before, 4 + 6);
	h_redis_cmd(h, "SET foreign:key kept");

	/* No journal, or one that knows nothing: nothing to rebuild from, even forced. */
	ck_assert_int_eq(ctl_with(h, "journal.path=/nonexistent/journal.db",
	    "recover --rebuild-redis --only-instance --force"), 1);
	empty_journal = xasprintf("journal.path=%s/empty.db", h->dir);
	ck_assert_int_eq(ctl_with(h, empty_journal, "outbox"), 0);
	ck_assert_int_eq(ctl_with(h, empty_journal, "recover --rebuild-redis --only-instance --force"), 1);
	free(empty_journal);
	/* Bad usage. */
	ck_assert_int_eq(h_ctl(h, NULL, "recover"), 2);
	ck_assert_int_eq(h_ctl(h, NULL, "recover --rebuild-redis --only-instance --bogus"), 2);
	/* Not empty, no --force: refused, nothing written. */
	ck_assert_int_eq(h_ctl(h, NULL, "recover --rebuild-redis --only-instance"), 1);
	ck_assert_int_eq(h_ctl(h, NULL, "recover --rebuild-redis --only-instance --json"), 1);
	now = h_redis_snapshot(h);
	ck_assert_str_eq(now, before);
	free(now);

	/* Drift of every kind... */
	k = key(h, "A", NULL, "stock");
	h_redis_cmd(h, "HSET %s available 99", k);
	free(k);
	k = key(h, "A", "ghost", "r");
	h_redis_cmd(h, "HSET %s state RESERVED qty 4 order ghost", k);
	free(k);
	k = key(h, "B", NULL, "adds");
	h_redis_cmd(h, "SADD %s stray-adjustment", k);
	free(k);
	k = key(h, "B", "r2", "r");
	h_redis_cmd(h, "DEL %s", k);
	free(k);
	ck_assert_int_eq(h_ctl(h, NULL, "reconcile"), 1);

	/* ... is gone after a forced rebuild: Redis is what the journal says. */
	doc = recover_json(h, "--force");
	/* A, B: stock and adds; six records; the ghost. */
	ck_assert_int_eq(jint(doc, "dropped_keys"), 4 + 5 + 1);
	ck_assert_int_eq(jint(doc, "reservations"), 6);
	json_decref(doc);
	now = h_redis_snapshot(h);
	ck_assert_str_eq(now, before);
	free(now);
	/* Keys outside the prefix are not the rebuild's. */
	ck_assert_int_eq(h_redis_cmd(h, "EXISTS foreign:key"), 1);
	h_reconcile_ok(h);
	free(before);
	h_free(h);
}
END_TEST

/* ---- d. restoring twice is restoring once -------------------------------- */

/* Calls restore.lua once more on what it wrote for sku and order_id. */
static void
restore_again(struct h *h, const char *sku, const char *order_id)
{
	char *src[INVENTORY_SCRIPT_COUNT], *cause = NULL, *ks, *ka, *kr;
	redisContext *rc = redisConnect("127.0.0.1", h->redis_port);
	redisReply *r, *ids, *rec;
	struct inventory_call c;
	const char **argv;
	int argc;

	ck_assert_msg(rc != NULL && rc->err == 0, "redis");
	ck_assert_msg(inventory_read_scripts(src, &cause) == 0, "%s", cause);
	ks = key(h, sku, NULL, "stock");
	ka = key(h, sku, NULL, "adds");
	kr = key(h, sku, order_id, "r");
	r = redisCommand(rc, "HMGET %s added reserved sold", ks);
	ids = redisCommand(rc, "SMEMBERS %s", ka);
	ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && ids != NULL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_STRING);
	ck_assert_int_eq(inventory_call_restore_stock(&c, h->prefix, sku,
	    atoll(r->element[0]->str), atoll(r->element[1]->str), atoll(r->element[2]->str)), 0);
	ck_assert_str_eq(c.keys[0], ks);
	ck_assert_str_eq(c.keys[1], ka);
	argv = xcalloc(INVENTORY_CALL_WORDS + ids->elements, sizeof(*argv));
	argc = inventory_call_command(&c, "EVAL", src[INVENTORY_RESTORE], argv);
	for (size_t i = 0; i < ids->elements; i++)
		argv[argc++] = ids->element[i]->str;
	freeReplyObject(redisCommandArgv(rc, argc, argv, NULL));
	rec = redisCommand(rc, "HMGET %s state qty order", kr);
	ck_assert(rec != NULL && rec->type == REDIS_REPLY_ARRAY);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(rec->element[i]->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(rec->element[2]->str, order_id);
	/* orderd's default [retention] orders_max_age_hours: a record that is
	 * over expires as orderd's own did. */
	ck_assert_int_eq(inventory_call_restore_reservation(&c, h->prefix, sku, order_id,
	    rec->element[0]->str, atoll(rec->element[1]->str), inventory_keep_ms(336)), 0);
	ck_assert_str_eq(c.keys[0], kr);
	argc = inventory_call_command(&c, "EVAL", src[INVENTORY_RESTORE], argv);
	freeReplyObject(redisCommandArgv(rc, argc, argv, NULL));
	freeReplyObject(rec);
	freeReplyObject(ids);
	freeReplyObject(r);
	free(argv);
	free(ks);
	free(ka);
	free(kr);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(src[i]);
	redisFree(rc);
}

START_TEST(test_rebuild_is_idempotent)
{
	struct h *h = h_new("twice", 3);
	char *before, *s1, *s2, *s3;

	h_use_redis(h, priv_port);
	h_start(h);
	orders_in_every_state(h);
	/* Two additions to one sku: its set holds both ids. */
	h_stock(h, "A", 4);
	expect_stock(h, "A", 9, 3, 2);
	ck_assert_int_eq(h_stop(h), 0);
	before = h_redis_snapshot(h);
	expect_snapshot_lines(before, 4 + 6);
	ck_assert_msg(strstr(before, "{A}:adds set: ") != NULL, "%s", before);
	h_redis_cmd(h, "FLUSHALL");

	json_decref(recover_json(h, ""));
	s1 = h_redis_snapshot(h);
	ck_assert_str_eq(s1, before);
	json_decref(recover_json(h, "--force"));
	s2 = h_redis_snapshot(h);
	ck_assert_str_eq(s2, s1);
	json_decref(recover_json(h, "--force"));
	s3 = h_redis_snapshot(h);
	ck_assert_str_eq(s3, s1);
	expect_stock(h, "A", 9, 3, 2);
	expect_stock(h, "B", 2, 3, 0);
	free(s2);
	free(s3);

	/* The script itself, without --force's drop: same arguments, same state. */
	restore_again(h, "A", "r1");
	restore_again(h, "B", "j1");
	s2 = h_redis_snapshot(h);
	ck_assert_str_eq(s2, s1);
	h_reconcile_ok(h);
	free(before);
	free(s1);
	free(s2);
	h_free(h);
}
END_TEST

/* ---- e. steps in flight when Redis lost everything ----------------------- */

START_TEST(test_rebuild_with_steps_in_flight)
{
	struct h *h = h_new("inflight", 3);
	json_t *doc;

	h_use_redis(h, priv_port);
	h_start(h);
	h_stock(h, "A", 10);
	order_created(h, "o1", json_pack("[o]", line("A", 2)));
	order_created(h, "o2", json_pack("[o]", line("A", 1)));
	expect(h, H_PAYMENT_REQUESTS, "o1", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o2", "PaymentRequested", WAIT_MS);
	pay(h, "o2");
	expect(h, H_ORDER_EVENTS, "o2", "OrderConfirmed", WAIT_MS);

	/* Redis goes away; a commit and a reserve are journaled as intents. */
	redis_sh("stop", priv_dir, NULL);
	wait_log(h, "Redis is down", 10000);
	order_created(h, "o3", json_pack("[o]", line("A", 3)));
	pay(h, "o1");
	wait_sql(h, 2, "SELECT count(*) FROM saga_steps WHERE result IS NULL");
	/* orderd crashes; Redis comes back empty (no persistence). */
	h_kill(h);
	ck_assert_int_eq(redis_sh("restart", priv_dir, NULL), priv_port);
	ck_assert_int_eq(h_redis_cmd(h, "DBSIZE"), 0);

	doc = recover_json(h, "");
	ck_assert_int_eq(jint(doc, "steps_in_flight"), 2);
	ck_assert_int_eq(jint(doc, "reservations"), 2);
	json_decref(doc);
	/* The last known results: o1 still held, o3 nothing yet. */
	expect_stock(h, "A", 7, 2, 1);
	expect_record(h, "A", "o1", "RESERVED");
	expect_record(h, "A", "o3", "");

	/* orderd runs the two steps again on the rebuilt stock. */
	h_start(h);
	expect(h, H_ORDER_EVENTS, "o1", "OrderConfirmed", RECONNECT_WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o3", "PaymentRequested", WAIT_MS);
	expect_stock(h, "A", 4, 3, 3);
	expect_once(h, H_ORDER_EVENTS, "o1", "OrderConfirmed");
	expect_once(h, H_PAYMENT_REQUESTS, "o3", "PaymentRequested");
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	h_free(h);
}
END_TEST

/* One test per case: each case has its own private Redis. */
static TCase *
private_case(Suite *s, const char *name, void (*start)(void))
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 180);
	tcase_add_unchecked_fixture(tc, start, priv_stop);
	suite_add_tcase(s, tc);
	return tc;
}

/* ---- e. a new instance takes the partitions over from the changelog ------ */

START_TEST(test_takeover_from_the_changelog)
{
	struct h *h = h_new("takeover", 3);
	char *path = xasprintf("%s/orderd.log", h->dir), *buf = NULL, *first;
	size_t from = 0;

	h_use_redis(h, priv_port);
	h_set(h, "saga.payment_timeout_ms=8000");
	h_start(h);
	h_stock(h, "A", 10);
	order_created(h, "o1", json_pack("[o]", line("A", 2)));
	order_created(h, "o2", json_pack("[o]", line("A", 1)));
	expect(h, H_PAYMENT_REQUESTS, "o1", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o2", "PaymentRequested", WAIT_MS);
	pay(h, "o2");
	expect(h, H_ORDER_EVENTS, "o2", "OrderConfirmed", WAIT_MS);
	pay(h, "o4");	/* before its order: parked */
	/* Every order at rest is in the changelog, the parked payment too. */
	expect(h, H_STATE, "o1", "RESERVED", WAIT_MS);
	expect(h, H_STATE, "o2", "CONFIRMED", WAIT_MS);
	expect(h, H_STATE, "o4", "NONE", WAIT_MS);
	ck_assert_int_eq(h_stop(h), 0);
	/* Everything it caused is acknowledged: every offset is committed. */
	ck_assert_int_eq(h_committed(h, H_ORDERS), 2);
	ck_assert_int_eq(h_committed(h, H_PAYMENTS), 2);

	/* A new instance in the group, with an empty journal of its own. */
	first = h->journal;
	h->journal = xasprintf("%s/second.db", h->dir);
	ck_assert_int_eq(util_read_file(path, &buf, &from), 0);
	free(buf);
	h_start(h);
	for (int i = 0; i < 400 && !log_has_after(h, from, "restored 3 orders"); i++)
		usleep(50000);
	ck_assert_msg(log_has_after(h, from, "restored 3 orders"),
	    "the new instance did not restore the 3 orders");
	/* The deadline travelled: it fires here (o1 released). */
	expect(h, H_ORDER_EVENTS, "o1", "OrderCancelled", WAIT_MS);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM deadlines WHERE order_id = 'o1' "
	    "AND fired_at IS NOT NULL"), 1);
	/* The parked payment travelled: the order meets it here. */
	order_created(h, "o4", json_pack("[o]", line("A", 3)));
	expect(h, H_ORDER_EVENTS, "o4", "OrderConfirmed", WAIT_MS);
	/* o2's payment again: known from the changelog, a duplicate. */
	pay(h, "o2");
	ck_assert_int_eq(h_count(h, H_ORDER_EVENTS, "o2", NULL, 2000), 1);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM inbox WHERE order_id = 'o2' AND "
	    "event_id = 'p-o2' AND type = 'Restored'"), 1);
	expect_stock(h, "A", 6, 0, 4);
	expect_once(h, H_ORDER_EVENTS, "o1", "OrderCancelled");
	expect_once(h, H_ORDER_EVENTS, "o4", "OrderConfirmed");
	ck_assert_int_eq(h_stop(h), 0);
	free(first);
	free(path);
	h_free(h);
}
END_TEST

/* ---- f. a RESERVED order's record lingers for its payment --------------- */

START_TEST(test_reserved_record_lingers_for_the_payment)
{
	struct h *h = h_new("linger", 3);
	int64_t t0;

	h_use_redis(h, priv_port);
	h_set(h, "saga.state_record_linger_ms=4000");
	h_start(h);
	h_stock(h, "A", 10);
	order_created(h, "o1", json_pack("[o]", line("A", 2)));
	order_created(h, "o2", json_pack("[o]", line("A", 1)));
	expect(h, H_PAYMENT_REQUESTS, "o1", "PaymentRequested", WAIT_MS);
	expect(h, H_PAYMENT_REQUESTS, "o2", "PaymentRequested", WAIT_MS);
	t0 = util_mono_us();
	/* o1 is paid within the linger: one record, CONFIRMED, none RESERVED. */
	pay(h, "o1");
	expect(h, H_ORDER_EVENTS, "o1", "OrderConfirmed", WAIT_MS);
	expect(h, H_STATE, "o1", "CONFIRMED", WAIT_MS);
	/* o2 waits: no record yet, and its OrderCreated's offset waits too. */
	if (util_mono_us() - t0 < 2000000) {
		ck_assert_int_eq(h_count(h, H_STATE, "o2", NULL, 0), 0);
		ck_assert_int_lt(h_committed(h, H_ORDERS), 2);
	}
	/* ... then the linger is up: its RESERVED record and the offsets. */
	expect(h, H_STATE, "o2", "RESERVED", WAIT_MS);
	ck_assert_int_ge((util_mono_us() - t0) / 1000, 3000);
	ck_assert_int_eq(h_count(h, H_STATE, "o1", NULL, 1000), 1);
	ck_assert_int_eq(h_count(h, H_STATE, "o1", "RESERVED", 0), 0);
	ck_assert_int_eq(h_count(h, H_STATE, "o2", NULL, 0), 1);

	/* o3 at rest when orderd stops: the stop writes its record at once. */
	order_created(h, "o3", json_pack("[o]", line("A", 1)));
	expect(h, H_PAYMENT_REQUESTS, "o3", "PaymentRequested", WAIT_MS);
	ck_assert_int_eq(h_stop(h), 0);
	ck_assert_int_eq(h_count(h, H_STATE, "o3", "RESERVED", 2000), 1);
	ck_assert_int_eq(h_committed(h, H_ORDERS), 3);
	ck_assert_int_eq(h_committed(h, H_PAYMENTS), 1);
	h_free(h);
}
END_TEST

static Suite *
recovery_suite(void)
{
	Suite *s = suite_create("recovery-e2e");

	tcase_add_test(private_case(s, "flushall", priv_start), test_flushall_then_rebuild);
	tcase_add_test(private_case(s, "redis_down", priv_start_aof),
	    test_redis_down_journals_then_resumes);
	tcase_add_test(private_case(s, "refusals", priv_start), test_refusals_and_force);
	tcase_add_test(private_case(s, "idempotent", priv_start), test_rebuild_is_idempotent);
	tcase_add_test(private_case(s, "in_flight", priv_start),
	    test_rebuild_with_steps_in_flight);
	tcase_add_test(private_case(s, "takeover", priv_start),
	    test_takeover_from_the_changelog);
	tcase_add_test(private_case(s, "linger", priv_start),
	    test_reserved_record_lingers_for_the_payment);
	return s;
}

int
main(void)
{
	return tu_run(recovery_suite());
}
