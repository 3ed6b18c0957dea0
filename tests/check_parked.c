/* check_parked.c: parked-event expiry (parked.c) on the engine of tests/engine_fixture.c: to the DLQ when old enough, not before, a later OrderCreated a new order, the changelog records it leaves. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uthash.h>

#include "config.h"
#include "engine_fixture.h"
#include "journal.h"
#include "saga.h"
#include "testutil.h"
#include "util.h"

/* An engine owning partition 0 whose changelog records are written at once. */
static struct engine *
owner(void)
{
	static const int32_t part0 = 0;
	static const int64_t epoch1 = 1;
	struct engine *e = ef_new();

	ef_own(e, &part0, &epoch1, 1);
	e->cf->saga_state_record_linger_ms = 0;
	return e;
}

/* One consumed message in a transaction of its own, as a batch of one. */
static void
consume(struct engine *e, const char *topic, int64_t offset, const char *order_id,
    const char *payload)
{
	struct engine_input in = { .topic = topic, .partition = 0, .offset = offset,
	    .key = order_id, .key_len = strlen(order_id), .payload = payload,
	    .len = strlen(payload) };

	engine_begin(e);
	engine_consume(e, &in);
	engine_commit(e);
}

static void
payment(struct engine *e, int64_t offset, const char *order_id, const char *event_id)
{
	char *p = xasprintf("{\"event_id\":\"%s\",\"type\":\"PaymentSucceeded\","
	    "\"order_id\":\"%s\",\"payment_id\":\"pay-%s\"}", event_id, order_id, order_id);

	consume(e, "payments", offset, order_id, p);
	free(p);
}

static void
order_created(struct engine *e, int64_t offset, const char *order_id, const char *event_id)
{
	char *p = xasprintf("{\"event_id\":\"%s\",\"type\":\"OrderCreated\",\"version\":1,"
	    "\"order_id\":\"%s\",\"customer_id\":\"c-1\",\"items\":[{\"sku\":\"sku-1\","
	    "\"qty\":1}],\"amount_cents\":100,\"currency\":\"EUR\"}", event_id, order_id);

	consume(e, "orders", offset, order_id, p);
	free(p);
}

static int64_t
received_at(struct engine *e, const char *event_id)
{
	return ef_sqlf(e, "SELECT received_at FROM inbox WHERE event_id = '%s'", event_id);
}

static int64_t
status_is(struct engine *e, const char *event_id, const char *status)
{
	return ef_sqlf(e, "SELECT count(*) FROM inbox WHERE event_id = '%s' AND status = '%s'",
	    event_id, status);
}

/* Until the wall clock passes t: the next event is received later. */
static void
after(int64_t t)
{
	while (util_now_ms() <= t)
		usleep(1000);
}

/* The Redis side answers the order's flight (every step reserved) and it
 * is settled, as settle.c does after steps.c's replies. */
static void
reserved(struct engine *e, const char *order_id)
{
	struct flight *f;

	HASH_FIND_STR(e->flights, order_id, f);
	ck_assert_msg(f != NULL, "%s is not in flight", order_id);
	for (int i = 0; i < f->nsteps; i++) {
		f->steps[i].result = SAGA_RES_RESERVED;
		f->steps[i].done = true;
	}
	f->ndone = f->nsteps;
	f->next = NULL;
	*e->settle_tail = f;
	e->settle_tail = &f->next;
	engine_begin(e);
	settle_flights(e);
	engine_commit(e);
}

/* The older of two parked events goes to the DLQ (a dlq row, a DeadLetter
 * row with its deterministic id and the reason, the inbox row ignored, the
 * order out of the waiters, a changelog record that parks nothing); the
 * younger one stays; a redelivery of the expired one is a duplicate, and
 * its OrderCreated afterwards starts a new order that never sees it. */
START_TEST(test_old_parked_event_expires)
{
	struct engine *e = owner();
	int64_t t1;

	payment(e, 10, "o-1", "p-1");
	t1 = received_at(e, "p-1");
	after(t1);
	payment(e, 11, "o-2", "p-2");
	ck_assert_int_eq(status_is(e, "p-1", "parked"), 1);
	ck_assert_int_eq(status_is(e, "p-2", "parked"), 1);
	ck_assert(engine_waiter_has(e, "o-1"));
	ck_assert_int_eq(e->stats.parked_pending, 2);
	/* Nothing is old enough yet. */
	ck_assert_int_eq(parked_expire(e, t1 - 1, 1000), 0);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq"), 0);

	ck_assert_int_eq(parked_expire(e, t1, 1000), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq WHERE topic = 'payments' AND "
	    "kafka_partition = 0 AND kafka_offset = 10 AND error = 'order never arrived' AND "
	    "CAST(msg_key AS TEXT) = 'o-1'"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'DeadLetter' AND "
	    "event_id = 'dlq:payments:0:10' AND topic = 'orders.dlq' AND "
	    "CAST(msg_key AS TEXT) = 'o-1' AND json_extract(headers, '$.error') = "
	    "'order never arrived' AND CAST(payload AS TEXT) LIKE '%\"p-1\"%'"), 1);
	ck_assert_int_eq(status_is(e, "p-1", "ignored"), 1);
	ck_assert(!engine_waiter_has(e, "o-1"));
	ck_assert_int_eq(e->stats.parked_expired, 1);
	ck_assert_int_eq(e->stats.parked_pending, 1);
	/* The younger one stays parked, waiting. */
	ck_assert_int_eq(status_is(e, "p-2", "parked"), 1);
	ck_assert(engine_waiter_has(e, "o-2"));
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'DeadLetter' AND "
	    "event_id = 'dlq:payments:0:11'"), 0);
	/* o-1's records: the one that parked p-1 (version 1), then one that
	 * parks nothing and knows p-1 as seen (version 2: a new id). */
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "order_id = 'o-1'"), 2);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "order_id = 'o-1' AND json_extract(payload, '$.version') = 2 AND "
	    "json_extract(payload, '$.state') = 'NONE' AND "
	    "json_array_length(payload, '$.parked') = 0 AND "
	    "json_extract(payload, '$.events[0]') = 'p-1'"), 1);

	/* Kafka delivers p-1 again: the inbox still knows it. */
	payment(e, 10, "o-1", "p-1");
	ck_assert_int_eq(e->stats.duplicates, 1);
	ck_assert_int_eq(status_is(e, "p-1", "ignored"), 1);
	ck_assert(!engine_waiter_has(e, "o-1"));
	/* A second pass has nothing more to do. */
	ck_assert_int_eq(parked_expire(e, t1, 1000), 0);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq"), 1);

	/* The order arrives after all: a new order, reserved, asked to pay;
	 * the expired payment is not applied (it stays in the DLQ). */
	order_created(e, 12, "o-1", "c-1");
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM orders WHERE order_id = 'o-1' AND "
	    "state = 'NEW'"), 1);
	reserved(e, "o-1");
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM orders WHERE order_id = 'o-1' AND "
	    "state = 'RESERVED'"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE order_id = 'o-1' AND "
	    "type = 'PaymentRequested'"), 1);
	ck_assert_int_eq(status_is(e, "p-1", "ignored"), 1);
	/* Its own record follows the two of state NONE under a new id (a
	 * version counted from the same ones would repeat the first's id and
	 * be dropped as a duplicate). */
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "order_id = 'o-1'"), 3);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "order_id = 'o-1' AND json_extract(payload, '$.state') = 'RESERVED' AND "
	    "json_extract(payload, '$.version') > 2 AND "
	    "EXISTS (SELECT 1 FROM json_each(payload, '$.events') WHERE value = 'p-1')"), 1);
	ef_free(e);
}
END_TEST

/* A pass handles at most limit events; the rest wait for the next one. */
START_TEST(test_a_pass_is_bounded)
{
	struct engine *e = owner();
	char order_id[16], event_id[16];
	int64_t last;

	for (int i = 0; i < 5; i++) {
		snprintf(order_id, sizeof(order_id), "o-%d", i);
		snprintf(event_id, sizeof(event_id), "p-%d", i);
		payment(e, 20 + i, order_id, event_id);
	}
	last = received_at(e, "p-4");
	ck_assert_int_eq(parked_expire(e, last, 2), 2);
	ck_assert_int_eq(parked_expire(e, last, 2), 2);
	ck_assert_int_eq(parked_expire(e, last, 2), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq"), 5);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM inbox WHERE status = 'parked'"), 0);
	ck_assert_int_eq(e->stats.parked_pending, 0);
	ef_free(e);
}
END_TEST

/* Loaded again from the journal (a restart, an assignment), parked events
 * keep their received_at; those of an order created meanwhile or of a
 * partition not owned are not expired. */
START_TEST(test_reload_keeps_age)
{
	static const int32_t parts[] = { 0, 1 };
	static const int64_t epochs[] = { 1, 1 };
	struct engine *e = owner();
	struct journal_event other = { .event_id = "p-9", .topic = "payments", .partition = 1,
	    .offset = 3, .type = "PaymentSucceeded", .order_id = "o-9", .status = "parked",
	    .received_at = 1, .payload = "{}", .payload_len = 2 };
	int64_t t;

	payment(e, 30, "o-5", "p-5");
	payment(e, 31, "o-6", "p-6");
	t = received_at(e, "p-6");
	/* Another partition's event, parked long ago. */
	engine_begin(e);
	ck_assert_int_eq(journal_inbox_add(e->j, &other), 0);
	engine_commit(e);
	/* o-6 is created (its event waits for its steps now, not the clock). */
	order_created(e, 32, "o-6", "c-6");
	ck_assert_int_eq(e->stats.parked_pending, 1);
	/* As a restart does: everything again from the journal. */
	ck_assert_int_eq(parked_load(e), 1);
	ck_assert_int_eq(e->stats.parked_pending, 1);
	ck_assert_int_eq(parked_expire(e, t - 100000, 1000), 0);
	/* Partition 1 too: p-9 is as old as it was. */
	ef_own(e, parts, epochs, 2);
	ck_assert_int_eq(parked_load(e), 2);
	ck_assert_int_eq(parked_expire(e, 1, 1000), 1);
	ck_assert_int_eq(status_is(e, "p-9", "ignored"), 1);
	ck_assert_int_eq(parked_expire(e, t, 1000), 1);
	ck_assert_int_eq(status_is(e, "p-5", "ignored"), 1);
	ck_assert_int_eq(status_is(e, "p-6", "parked"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq"), 2);
	ef_free(e);
}
END_TEST

/* A new owner that restored the record parking p-1 takes the record of its
 * expiry: p-1 is seen (ignored), not parked to expire there again, and the
 * older record no longer outranks what the journal has. */
START_TEST(test_expiry_record_restores_as_seen)
{
	struct engine *e = owner();
	static const char rec1[] = "{\"order_id\":\"o-7\",\"epoch\":1,\"version\":1,"
	    "\"partition\":0,\"state\":\"NONE\",\"events\":[],\"parked\":[{\"event_id\":\"p-7\","
	    "\"topic\":\"payments\",\"partition\":0,\"offset\":40,\"type\":\"PaymentSucceeded\","
	    "\"received_at\":5,\"traceparent\":null,\"payload\":\"{}\"}]}";
	static const char rec2[] = "{\"order_id\":\"o-7\",\"epoch\":1,\"version\":2,"
	    "\"partition\":0,\"state\":\"NONE\",\"events\":[\"p-7\"],\"parked\":[]}";

	engine_begin(e);
	ck_assert_int_eq(journal_restore(e->j, rec1, "o-7", true, "orderd.state", e->now), 1);
	engine_commit(e);
	ck_assert_int_eq(status_is(e, "p-7", "parked"), 1);
	engine_begin(e);
	ck_assert_int_eq(journal_restore(e->j, rec2, "o-7", true, "orderd.state", e->now), 1);
	/* Read again (the next assignment): neither is newer now. */
	ck_assert_int_eq(journal_restore(e->j, rec1, "o-7", true, "orderd.state", e->now), 0);
	ck_assert_int_eq(journal_restore(e->j, rec2, "o-7", true, "orderd.state", e->now), 0);
	engine_commit(e);
	ck_assert_int_eq(status_is(e, "p-7", "ignored"), 1);
	ck_assert_int_eq(parked_load(e), 0);
	ef_free(e);
}
END_TEST

static Suite *
parked_suite(void)
{
	Suite *s = suite_create("parked");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_old_parked_event_expires);
	tcase_add_test(tc, test_a_pass_is_bounded);
	tcase_add_test(tc, test_reload_keeps_age);
	tcase_add_test(tc, test_expiry_record_restores_as_seen);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(parked_suite());
}
