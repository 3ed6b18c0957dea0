/* check_ownership.c: unit tests of src/ownership.c: which changelog record wins a restore, the epochs taken, and what is superseded. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine_fixture.h"
#include "journal.h"
#include "kafka.h"
#include "testutil.h"
#include "util.h"

/*
 * ownership_take is an assignment without the consumer: the changelog is
 * read through the function it is given, here one that hands out the
 * records of feed[] in their order (their offsets), as
 * kafka_read_partitions would, for the partitions asked for only.
 */

#define FEED_MAX 128

struct feed_record {
	int32_t partition;
	char *value;
};

static struct feed_record feed[FEED_MAX];
static int nfeed;

static void
feed_add(int32_t partition, const char *order_id, int64_t epoch, int64_t version,
    const char *state)
{
	ck_assert(nfeed < FEED_MAX);
	/* As sql/queries.sql changelog_insert writes it; the amount tells
	 * which record the journal took. */
	feed[nfeed].partition = partition;
	feed[nfeed].value = xasprintf("{\"order_id\":\"%s\",\"epoch\":%lld,\"version\":%lld,"
	    "\"partition\":%d,\"state\":\"%s\",\"reason\":null,\"reason_sku\":null,"
	    "\"customer_id\":\"c-1\",\"amount_cents\":%lld,\"currency\":\"EUR\","
	    "\"items\":[{\"sku\":\"sku-1\",\"qty\":1}],\"lines\":\"sku-1 1\","
	    "\"payment_id\":null,\"created_event_id\":\"created-%s\",\"traceparent\":null,"
	    "\"created_at\":1,\"updated_at\":2,\"deadline_at\":null,"
	    "\"events\":[\"created-%s\"],\"parked\":[]}", order_id, (long long)epoch,
	    (long long)version, (int)partition, state, (long long)(epoch * 1000 + version),
	    order_id, order_id);
	nfeed++;
}

static void
feed_clear(void)
{
	for (int i = 0; i < nfeed; i++)
		free(feed[i].value);
	nfeed = 0;
}

static int
feed_read(const struct config *cf, const char *topic, const int32_t *parts, int nparts,
    int timeout_ms, kafka_record_fn fn, void *arg, char **cause)
{
	int n = 0, err;

	(void)cf;
	(void)timeout_ms;
	(void)cause;
	ck_assert_str_eq(topic, "orderd.state");
	for (int i = 0; i < nfeed; i++) {
		bool asked = false;

		for (int p = 0; p < nparts; p++)
			asked |= parts[p] == feed[i].partition;
		if (!asked)
			continue;
		err = fn(feed[i].partition, NULL, 0, feed[i].value, strlen(feed[i].value), arg);
		if (err < 0)
			return err;
		n++;
	}
	return n;
}

/* Takes the partitions of list (a copy: the engine keeps it). */
static void
take(struct engine *e, const int32_t *list, int n, struct ownership_taken *taken)
{
	int32_t *parts = xcalloc((size_t)n + 1, sizeof(*parts));
	char *cause = NULL;

	memcpy(parts, list, (size_t)n * sizeof(*parts));
	ck_assert_int_eq(ownership_take(e, parts, n, feed_read, taken, &cause), 0);
	ck_assert_int_eq(e->nowned, n);
}

static int64_t
order_sql(struct engine *e, const char *what, const char *order_id)
{
	return ef_sqlf(e, "SELECT %s FROM orders WHERE order_id = '%s'", what, order_id);
}

static bool
order_state_is(struct engine *e, const char *order_id, const char *state)
{
	return ef_sqlf(e, "SELECT count(*) FROM orders WHERE order_id = '%s' AND state = '%s'",
	    order_id, state) == 1;
}

static bool
next_permutation(int *v, int n)
{
	int i = n - 2, j = n - 1, t;

	while (i >= 0 && v[i] >= v[i + 1])
		i--;
	if (i < 0)
		return false;
	while (v[j] <= v[i])
		j--;
	t = v[i]; v[i] = v[j]; v[j] = t;
	for (int a = i + 1, b = n - 1; a < b; a++, b--) {
		t = v[a]; v[a] = v[b]; v[b] = t;
	}
	return true;
}

/*
 * Four records of one order, (1,1) NEW, (1,2) RESERVED, (2,1) CONFIRMED and
 * (1,3) CANCELLED, in every one of their 24 orders in the changelog (one
 * order id per permutation, all interleaved on partition 0): the journal
 * ends with (2,1), the highest (epoch, version), wherever its offset; and
 * the partition is taken with the epoch after the highest seen.
 */
START_TEST(test_highest_epoch_version_wins_whatever_its_offset)
{
	static const struct { int64_t epoch, version; const char *state; } recs[4] = {
		{ 1, 1, "NEW" }, { 1, 2, "RESERVED" }, { 2, 1, "CONFIRMED" }, { 1, 3, "CANCELLED" },
	};
	struct engine *e = ef_new();
	struct ownership_taken taken;
	int perm[24][4], idx[4] = { 0, 1, 2, 3 }, np = 0;
	const int32_t part = 0;

	do
		memcpy(perm[np++], idx, sizeof(idx));
	while (next_permutation(idx, 4));
	ck_assert_int_eq(np, 24);
	for (int pos = 0; pos < 4; pos++)
		for (int p = 0; p < np; p++) {
			char id[32];

			snprintf(id, sizeof(id), "o-%d", p);
			feed_add(0, id, recs[perm[p][pos]].epoch, recs[perm[p][pos]].version,
			    recs[perm[p][pos]].state);
		}
	take(e, &part, 1, &taken);
	ck_assert_int_eq(taken.records, 4 * np);
	ck_assert_int_eq(taken.restored, np);
	for (int p = 0; p < np; p++) {
		char id[32];

		snprintf(id, sizeof(id), "o-%d", p);
		ck_assert_msg(order_state_is(e, id, "CONFIRMED"), "%s (records in order %d%d%d%d)",
		    id, perm[p][0], perm[p][1], perm[p][2], perm[p][3]);
		ck_assert_int_eq(order_sql(e, "epoch", id), 2);
		ck_assert_int_eq(order_sql(e, "version", id), 1);
		ck_assert_int_eq(order_sql(e, "amount_cents", id), 2001);
	}
	ck_assert_int_eq(e->epochs[0], 3);
	ck_assert_int_eq(ef_sql(e, "SELECT epoch FROM owned WHERE kafka_partition = 0"), 3);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM inbox WHERE event_id = 'created-o-5' "
	    "AND status = 'applied'"), 1);
	feed_clear();
	ef_free(e);
}
END_TEST

/*
 * The journal knows order a at (6,1) and b at (5,1): records of a of a
 * lower epoch, however high their version, change nothing, nor does one
 * of b's own (epoch, version); b's (5,2) replaces it.  The epoch taken is
 * the one after the journal's (6), higher than the changelog's (5), and
 * later after the changelog's (9), higher than the journal's.
 */
START_TEST(test_journal_newer_than_the_changelog_stays)
{
	struct engine *e = ef_new();
	struct ownership_taken taken;
	const int32_t part = 0;
	const int64_t six = 6, five = 5;

	ef_own(e, &part, &six, 1);
	engine_begin(e);
	ef_order(e, "a", 0);
	ck_assert_int_eq(journal_order_update(e->j, "a", "RESERVED", NULL, NULL, NULL, e->now,
	    &six), 0);
	engine_commit(e);
	ef_own(e, &part, &five, 1);
	engine_begin(e);
	ef_order(e, "b", 0);
	ck_assert_int_eq(journal_order_update(e->j, "b", "RESERVED", NULL, NULL, NULL, e->now,
	    &five), 0);
	engine_commit(e);
	ck_assert_int_eq(order_sql(e, "epoch", "a") * 10 + order_sql(e, "version", "a"), 61);
	ck_assert_int_eq(order_sql(e, "epoch", "b") * 10 + order_sql(e, "version", "b"), 51);

	feed_add(0, "a", 4, 9, "CANCELLED");
	feed_add(0, "a", 5, 9, "CANCELLED");
	feed_add(0, "b", 5, 1, "NEW");
	feed_add(0, "b", 5, 2, "CONFIRMED");
	feed_add(0, "b", 3, 7, "CANCELLED");
	take(e, &part, 1, &taken);
	ck_assert_int_eq(taken.records, 5);
	ck_assert_int_eq(taken.restored, 1);
	ck_assert(order_state_is(e, "a", "RESERVED"));
	ck_assert(order_state_is(e, "b", "CONFIRMED"));
	ck_assert_int_eq(order_sql(e, "amount_cents", "b"), 5002);
	ck_assert_int_eq(e->epochs[0], 7);
	feed_clear();

	feed_add(0, "c", 9, 1, "NEW");
	take(e, &part, 1, &taken);
	ck_assert_int_eq(e->epochs[0], 10);
	feed_clear();
	ef_free(e);
}
END_TEST

static int64_t
superseded_rows(struct engine *e, const char *order_id)
{
	return ef_sqlf(e, "SELECT count(*) FROM outbox WHERE order_id = '%s' AND "
	    "superseded_at IS NOT NULL", order_id);
}

static int64_t
open_steps(struct engine *e, const char *order_id)
{
	return ef_sqlf(e, "SELECT count(*) FROM saga_steps WHERE order_id = '%s' AND "
	    "result IS NULL", order_id);
}

static int
count_step(const struct journal_step *st, void *arg)
{
	(void)st;
	++*(int *)arg;
	return 0;
}

/*
 * This journal owned partitions 0 and 1 and has unpublished rows and
 * unanswered steps of orders a, b, d (partition 0) and c (partition 1), and
 * a dead letter (no partition).  Now it gets partition 0 alone; the
 * changelog has a newer record of b (another instance went on with it),
 * an older one of a, and a newer one of d, whose steps are still in
 * flight in this process (so its record is not taken, but its epoch,
 * higher than any this journal has, is passed).  Then c's and b's rows and steps are superseded
 * (c's counted as of a partition owned elsewhere), a's, d's and the dead
 * letter stay, and only a's and d's steps are left to recover.
 */
START_TEST(test_what_belongs_elsewhere_is_superseded)
{
	static const char *const orders[] = { "a", "b", "c", "d" };
	struct engine *e = ef_new();
	struct ownership_taken taken;
	const int32_t parts[2] = { 0, 1 }, now_part = 0;
	const int64_t epochs[2] = { 1, 1 };
	struct journal_outbox_row dlq = {
		.topic = "orders.dlq", .key = "k", .key_len = 1, .event_id = "dlq:orders:0:7",
		.type = "DeadLetter", .headers = "{}", .payload = "x", .payload_len = 1,
	};
	int64_t id;
	int in_flight = 0;

	ef_own(e, parts, epochs, 2);
	engine_begin(e);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(orders); i++) {
		ef_order(e, orders[i], strcmp(orders[i], "c") == 0 ? 1 : 0);
		ef_output(e, orders[i], "PaymentRequested");
		ck_assert_int_eq(journal_step_add(e->j, orders[i], "reserve", "sku-1", 1, NULL,
		    e->now, &id), 0);
	}
	ck_assert_int_eq(journal_outbox_add(e->j, &dlq), 0);
	engine_commit(e);
	ef_fly(e, "d");

	feed_add(0, "b", 2, 1, "CONFIRMED");
	feed_add(0, "a", 1, 0, "CANCELLED");
	feed_add(0, "d", 3, 1, "CONFIRMED");	/* not taken, but its epoch counts */
	take(e, &now_part, 1, &taken);

	ck_assert_int_eq(taken.records, 3);
	ck_assert_int_eq(taken.restored, 1);
	ck_assert_int_eq(taken.rows, 1);
	ck_assert_int_eq(taken.steps, 1);
	ck_assert_int_eq(superseded_rows(e, "c"), 1);
	ck_assert_int_eq(open_steps(e, "c"), 0);
	ck_assert_int_eq(superseded_rows(e, "b"), 1);
	ck_assert_int_eq(open_steps(e, "b"), 0);
	ck_assert(order_state_is(e, "b", "CONFIRMED"));
	ck_assert_int_eq(superseded_rows(e, "a"), 0);
	ck_assert_int_eq(open_steps(e, "a"), 1);
	ck_assert(order_state_is(e, "a", "NEW"));
	ck_assert_int_eq(superseded_rows(e, "d"), 0);
	ck_assert_int_eq(open_steps(e, "d"), 1);
	ck_assert(order_state_is(e, "d", "NEW"));
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'DeadLetter' AND "
	    "superseded_at IS NULL"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM saga_steps WHERE result = 'SUPERSEDED'"),
	    2);
	/* What recovery resumes: the steps of a and d, nothing of b or c. */
	ck_assert_int_eq(journal_steps_in_flight(e->j, count_step, &in_flight), 2);
	ck_assert_int_eq(in_flight, 2);
	ck_assert_int_eq(e->epochs[0], 4);
	ck_assert(ownership_owns(e, 0) && !ownership_owns(e, 1));
	ck_assert_int_eq(ownership_epoch(e, 0), 4);
	ck_assert_int_eq(ownership_epoch(e, 1), 0);
	feed_clear();
	ef_free(e);
}
END_TEST

/* Without a changelog ([topics] state empty) nothing is read, and the
 * partitions are still taken with a new epoch, superseding the others'. */
START_TEST(test_no_changelog_takes_and_supersedes)
{
	struct engine *e = ef_new();
	struct ownership_taken taken;
	const int32_t parts[2] = { 0, 1 }, now_part = 1;
	const int64_t epochs[2] = { 4, 4 };

	ef_own(e, parts, epochs, 2);
	engine_begin(e);
	ef_order(e, "a", 0);
	ef_output(e, "a", "PaymentRequested");
	engine_commit(e);
	e->cf->topic_state[0] = '\0';
	feed_add(1, "z", 9, 9, "NEW");		/* never read */
	take(e, &now_part, 1, &taken);
	ck_assert_int_eq(taken.records, 0);
	ck_assert_int_eq(taken.rows, 1);
	ck_assert_int_eq(order_sql(e, "count(*)", "z"), 0);
	ck_assert_int_eq(e->epochs[0], 1);	/* no order of partition 1 here */
	feed_clear();
	ef_free(e);
}
END_TEST

static Suite *
ownership_suite(void)
{
	Suite *s = suite_create("ownership");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_highest_epoch_version_wins_whatever_its_offset);
	tcase_add_test(tc, test_journal_newer_than_the_changelog_stays);
	tcase_add_test(tc, test_what_belongs_elsewhere_is_superseded);
	tcase_add_test(tc, test_no_changelog_takes_and_supersedes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(ownership_suite());
}
