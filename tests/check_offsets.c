/* check_offsets.c: unit tests of src/offsets.c: an input offset is stored only after everything its message caused is acknowledged, in any order of acknowledgements. */
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

/*
 * The tests drive offsets.c as engine.c does: a hold per consumed message
 * (offsets_hold_new), the order's mark for each transition written in the
 * transaction (offsets_mark, with the state the transition left), the
 * hold attached after the message was applied (offsets_hold_attach), and
 * engine_begin/engine_commit around it all.  The flights and the outbox
 * rows a real transition would make are made by the fixture.
 */

/* A transition of an existing order, as engine_effects tells offsets.c:
 * the row updated (its version raised), the mark takes the new state. */
static void
transition(struct engine *e, const char *order_id, int32_t partition, enum saga_state state)
{
	struct order_mark *m = offsets_mark(e, order_id, partition);
	int64_t epoch = ownership_epoch(e, partition);

	ck_assert_int_eq(journal_order_update(e->j, order_id, saga_state_name(state), NULL,
	    NULL, NULL, e->now, ownership_owns(e, partition) ? &epoch : NULL), 0);
	m->state = state;
	m->bumped = true;
}

/* An OrderCreated applied: the row inserted, its reservation in flight. */
static void
created(struct engine *e, const char *order_id, int32_t partition)
{
	ef_order(e, order_id, partition);
	offsets_mark(e, order_id, partition)->state = SAGA_NEW;
	ef_fly(e, order_id);
}

static struct engine *
engine_owning_partition_0(void)
{
	static const int32_t part = 0;
	static const int64_t epoch = 1;
	struct engine *e = ef_new();

	ef_own(e, &part, &epoch, 1);
	return e;
}

/* The id of the order's outbox row of type, or -1 when there is none. */
static int64_t
row_id(struct engine *e, const char *order_id, const char *type)
{
	return ef_sqlf(e, "SELECT id FROM outbox WHERE order_id = '%s' AND type = '%s'",
	    order_id, type);
}

static int64_t
records_of(struct engine *e, const char *order_id)
{
	return ef_sqlf(e, "SELECT count(*) FROM outbox WHERE order_id = '%s' AND "
	    "type = 'OrderState'", order_id);
}

/* ---- Every order of acknowledgements ---- */

#define MSGS 5
#define NEEDS_MAX 4

/* One consumed message of the scenario, and the rows it caused: its offset
 * may be stored only once every one of them is acknowledged. */
struct msg {
	const char *topic;
	int64_t offset;
	const char *order_id;
	struct hold *h;
	int64_t need;			/* the hold's, copied at a snapshot */
	const char *caused[NEEDS_MAX];	/* output types, "OrderState": the record */
	int64_t ids[NEEDS_MAX];		/* their rows' ids, -1 while not written */
};

/*
 * Orders o1, o2 and o3 created on orders/0 (offsets 0, 1, 2), interleaved
 * with o1's payment on payments/0 (offset 3) and a duplicate of o2's
 * OrderCreated (orders/0, offset 4), in four transactions like the
 * engine's:
 *   1. the three OrderCreated: their reservations in flight;
 *   2. o1 reserved (PaymentRequested), o2 rejected (OrderRejected, then
 *      at rest: its record), then o1's payment: its commit in flight;
 *   3. o3 reserved (PaymentRequested): at rest in RESERVED, its record
 *      lingers; the duplicate (nothing to wait for but what is before it);
 *   4. o1 confirmed (OrderConfirmed): at rest, its record.
 * The linger of o3's record is flushed later (lingering()).
 */
static void
scenario(struct engine *e, struct msg *m)
{
	static const struct msg plan[MSGS] = {
		{ "orders", 0, "o1", NULL, 0,
		    { "PaymentRequested", "OrderConfirmed", "OrderState" }, { 0 } },
		{ "orders", 1, "o2", NULL, 0, { "OrderRejected", "OrderState" }, { 0 } },
		{ "orders", 2, "o3", NULL, 0, { "PaymentRequested", "OrderState" }, { 0 } },
		{ "payments", 3, "o1", NULL, 0, { "OrderConfirmed", "OrderState" }, { 0 } },
		{ "orders", 4, "o2", NULL, 0, { NULL }, { 0 } },
	};

	memcpy(m, plan, sizeof(plan));
	for (int i = 0; i < MSGS; i++)
		m[i].h = offsets_hold_new(e, m[i].topic, 0, m[i].offset);

	engine_begin(e);
	for (int i = 0; i < 3; i++) {
		created(e, m[i].order_id, 0);
		offsets_hold_attach(e, m[i].h, m[i].order_id);
	}
	engine_commit(e);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(m[i].h->need == OFFSETS_HOLD_OPEN, "%s: steps in flight",
		    m[i].order_id);
	ck_assert_int_eq(records_of(e, "o1") + records_of(e, "o2") + records_of(e, "o3"), 0);

	engine_begin(e);
	ef_land(e, "o1");
	transition(e, "o1", 0, SAGA_RESERVED);
	ef_output(e, "o1", "PaymentRequested");
	ef_land(e, "o2");
	transition(e, "o2", 0, SAGA_REJECTED);
	ef_output(e, "o2", "OrderRejected");
	transition(e, "o1", 0, SAGA_RESERVED);	/* the payment: commit in flight */
	ef_fly(e, "o1");
	offsets_hold_attach(e, m[3].h, "o1");
	engine_commit(e);
	ck_assert(m[0].h->need == OFFSETS_HOLD_OPEN && m[3].h->need == OFFSETS_HOLD_OPEN);
	ck_assert_int_eq(records_of(e, "o1"), 0);
	ck_assert_int_eq(records_of(e, "o2"), 1);
	ck_assert(m[1].h->need != OFFSETS_HOLD_OPEN);

	engine_begin(e);
	ef_land(e, "o3");
	transition(e, "o3", 0, SAGA_RESERVED);
	ef_output(e, "o3", "PaymentRequested");
	offsets_hold_attach(e, m[4].h, "o2");	/* o2 is at rest: resolved */
	engine_commit(e);
	ck_assert_int_eq(records_of(e, "o3"), 0);
	ck_assert_int_eq(e->nlingering, 1);
	ck_assert(m[2].h->need == OFFSETS_HOLD_OPEN);
	ck_assert(m[4].h->need != OFFSETS_HOLD_OPEN);

	engine_begin(e);
	ef_land(e, "o1");
	transition(e, "o1", 0, SAGA_CONFIRMED);
	ef_output(e, "o1", "OrderConfirmed");
	engine_commit(e);
	ck_assert_int_eq(records_of(e, "o1"), 1);
	ck_assert(m[0].h->need != OFFSETS_HOLD_OPEN && m[3].h->need != OFFSETS_HOLD_OPEN);
}

/* Copies what the engine's holds wait for now, and the ids of the rows
 * each message caused. */
static void
snapshot(struct engine *e, struct msg *m)
{
	for (int i = 0; i < MSGS; i++) {
		m[i].need = m[i].h->need;
		for (int k = 0; k < NEEDS_MAX && m[i].caused[k] != NULL; k++)
			m[i].ids[k] = row_id(e, m[i].order_id, m[i].caused[k]);
	}
}

static bool
next_permutation(int64_t *v, int n)
{
	int i = n - 2, j = n - 1;

	while (i >= 0 && v[i] >= v[i + 1])
		i--;
	if (i < 0)
		return false;
	while (v[j] <= v[i])
		j--;
	int64_t t = v[i]; v[i] = v[j]; v[j] = t;
	for (int a = i + 1, b = n - 1; a < b; a++, b--) {
		t = v[a]; v[a] = v[b]; v[b] = t;
	}
	return true;
}

/* Every row up to this id is acknowledged (relay_acked_through's promise). */
static int64_t
acked_through(const bool *acked, int64_t nrows)
{
	int64_t k = 0;

	while (k < nrows && acked[k + 1])
		k++;
	return k;
}

/*
 * For every order of acknowledgement of the outbox's rows 1..nrows: holds
 * with the snapshot's needs, offsets_take on each partition after every
 * acknowledgement, and then no stored offset may cover a message with a
 * row it caused not acknowledged (or not written yet).  At the end, the
 * offset stored on each topic is want_orders and want_payments.
 */
static void
every_order_of_acks(const struct msg *m, int64_t nrows, int64_t want_orders,
    int64_t want_payments)
{
	int64_t order[16], perms = 0;
	bool acked[17];

	ck_assert(nrows > 0 && nrows < 16);
	for (int64_t i = 0; i < nrows; i++)
		order[i] = i + 1;
	do {
		struct engine s;	/* only its queues */
		int64_t stored_orders = -1, stored_payments = -1;

		memset(&s, 0, sizeof(s));
		memset(acked, 0, sizeof(acked));
		for (int i = 0; i < MSGS; i++)
			offsets_hold_new(&s, m[i].topic, 0, m[i].offset)->need = m[i].need;
		for (int64_t a = 0; a < nrows; a++) {
			struct tp_queue *q, *tmp;
			int64_t through;

			acked[order[a]] = true;
			through = acked_through(acked, nrows);
			HASH_ITER(hh, s.tps, q, tmp) {
				int64_t last = offsets_take(q, through);

				if (last < 0)
					continue;
				if (strcmp(q->topic, "orders") == 0) {
					ck_assert(last > stored_orders);
					stored_orders = last;
				} else {
					ck_assert(last > stored_payments);
					stored_payments = last;
				}
			}
			for (int i = 0; i < MSGS; i++) {
				int64_t stored = strcmp(m[i].topic, "orders") == 0 ? stored_orders :
				    stored_payments;

				if (m[i].offset > stored)
					continue;
				for (int k = 0; k < NEEDS_MAX && m[i].caused[k] != NULL; k++)
					ck_assert_msg(m[i].ids[k] > 0 && acked[m[i].ids[k]],
					    "permutation %lld, after %lld acks: %s@%lld (%s) stored "
					    "before its %s (row %lld) was acknowledged", (long long)perms,
					    (long long)a + 1, m[i].topic, (long long)m[i].offset,
					    m[i].order_id, m[i].caused[k], (long long)m[i].ids[k]);
			}
		}
		ck_assert_msg(stored_orders == want_orders && stored_payments == want_payments,
		    "permutation %lld: stored orders@%lld payments@%lld, want %lld and %lld",
		    (long long)perms, (long long)stored_orders, (long long)stored_payments,
		    (long long)want_orders, (long long)want_payments);
		offsets_free(&s);
		perms++;
	} while (next_permutation(order, (int)nrows));
}

/* Before o3's record is written, o3's OrderCreated (orders@2) holds back
 * the offsets after it, whatever is acknowledged; o1's payment
 * (payments@3) is stored once o1's confirmation and record are. */
START_TEST(test_offsets_wait_for_outputs_and_record_in_any_order)
{
	struct engine *e = engine_owning_partition_0();
	struct msg m[MSGS];
	int64_t nrows;

	scenario(e, m);
	snapshot(e, m);
	nrows = ef_sql(e, "SELECT max(id) FROM outbox");
	ck_assert_int_eq(nrows, 6);
	ck_assert_int_eq(m[2].ids[1], -1);
	every_order_of_acks(m, nrows, 1, 3);
	ef_free(e);
}
END_TEST

/* A flush (revocation, stop) writes o3's lingering record: then every
 * offset goes, each only after its rows, in any of the 7! orders. */
START_TEST(test_lingering_record_flushed_then_every_offset_in_any_order)
{
	struct engine *e = engine_owning_partition_0();
	struct msg m[MSGS];
	int64_t nrows;

	scenario(e, m);
	e->flush_marks = true;			/* as a revocation or a stop sets it */
	ck_assert(offsets_linger_flush(e, true));
	ck_assert_int_eq(e->nlingering, 0);
	ck_assert_int_eq(records_of(e, "o3"), 1);
	ck_assert(m[2].h->need != OFFSETS_HOLD_OPEN);
	snapshot(e, m);
	nrows = ef_sql(e, "SELECT max(id) FROM outbox");
	ck_assert_int_eq(nrows, 7);
	every_order_of_acks(m, nrows, 4, 3);
	ef_free(e);
}
END_TEST

/* The engine's own queues: a commit releases nothing the relay has not
 * acknowledged (no relay here: nothing is), and no hold is lost. */
START_TEST(test_commit_releases_nothing_unacknowledged)
{
	struct engine *e = engine_owning_partition_0();
	struct msg m[MSGS];
	int64_t n = 0;
	struct tp_queue *q, *tmp;

	scenario(e, m);
	e->flush_marks = true;
	ck_assert(offsets_linger_flush(e, true));
	offsets_release(e);
	HASH_ITER(hh, e->tps, q, tmp)
		for (struct hold *h = q->head; h != NULL; h = h->next)
			n++;
	ck_assert_int_eq(n, MSGS);
	ck_assert(!offsets_idle(e));
	ef_free(e);
}
END_TEST

/* ---- Lingering records ---- */

/* An order at rest in RESERVED whose payment comes within the linger: its
 * RESERVED record is never written, only the CONFIRMED one, and both
 * messages' offsets wait for it. */
START_TEST(test_record_of_an_order_moving_on_within_the_linger_is_written_once)
{
	struct engine *e = engine_owning_partition_0();
	struct hold *created_h = offsets_hold_new(e, "orders", 0, 0);
	struct hold *paid_h = offsets_hold_new(e, "payments", 0, 0);
	int64_t confirmed_id, record_id;

	e->cf->saga_state_record_linger_ms = 60000;
	engine_begin(e);
	created(e, "o1", 0);
	offsets_hold_attach(e, created_h, "o1");
	engine_commit(e);
	engine_begin(e);
	ef_land(e, "o1");
	transition(e, "o1", 0, SAGA_RESERVED);
	ef_output(e, "o1", "PaymentRequested");
	engine_commit(e);
	ck_assert_int_eq(e->nlingering, 1);
	ck_assert(!offsets_linger_flush(e, false));	/* not due yet */
	ck_assert_int_eq(records_of(e, "o1"), 0);
	ck_assert(created_h->need == OFFSETS_HOLD_OPEN);

	engine_begin(e);
	transition(e, "o1", 0, SAGA_RESERVED);		/* the payment: commit in flight */
	ef_fly(e, "o1");
	offsets_hold_attach(e, paid_h, "o1");
	engine_commit(e);
	ck_assert_int_eq(e->nlingering, 0);
	ck_assert(created_h->need == OFFSETS_HOLD_OPEN && paid_h->need == OFFSETS_HOLD_OPEN);

	engine_begin(e);
	ef_land(e, "o1");
	transition(e, "o1", 0, SAGA_CONFIRMED);
	confirmed_id = ef_output(e, "o1", "OrderConfirmed");
	engine_commit(e);
	ck_assert_int_eq(records_of(e, "o1"), 1);
	record_id = row_id(e, "o1", "OrderState");
	ck_assert(record_id > confirmed_id);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'OrderState' AND "
	    "json_extract(payload, '$.state') = 'CONFIRMED'"), 1);
	ck_assert(created_h->need >= record_id && paid_h->need >= record_id);
	ck_assert(created_h->need != OFFSETS_HOLD_OPEN && paid_h->need != OFFSETS_HOLD_OPEN);
	ef_free(e);
}
END_TEST

/* Brings a new order of partition 0 to rest in RESERVED, its hold attached. */
static struct hold *
reserved_at_rest(struct engine *e, const char *order_id, int64_t offset)
{
	struct hold *h = offsets_hold_new(e, "orders", 0, offset);

	engine_begin(e);
	created(e, order_id, 0);
	offsets_hold_attach(e, h, order_id);
	engine_commit(e);
	engine_begin(e);
	ef_land(e, order_id);
	transition(e, order_id, 0, SAGA_RESERVED);
	ef_output(e, order_id, "PaymentRequested");
	engine_commit(e);
	return h;
}

/* A record lingers saga.state_record_linger_ms: the timer's flush writes
 * it once its time is up, not before, and resolves the hold with it; a
 * record that came to rest later waits its own time. */
START_TEST(test_record_lingers_until_its_time_is_up)
{
	struct engine *e = engine_owning_partition_0();
	const int64_t linger = 1000;
	struct order_mark *m2;
	struct hold *h1, *h2;
	int64_t rec, rest2;

	e->cf->saga_state_record_linger_ms = linger;
	h1 = reserved_at_rest(e, "o1", 7);
	ck_assert(uv_is_active((uv_handle_t *)&e->linger_timer));
	ck_assert(!offsets_linger_flush(e, false));
	ck_assert(h1->need == OFFSETS_HOLD_OPEN);
	usleep(600 * 1000);
	h2 = reserved_at_rest(e, "o2", 8);
	ck_assert_int_eq(e->nlingering, 2);
	HASH_FIND_STR(e->marks, "o2", m2);
	ck_assert_ptr_nonnull(m2);
	rest2 = m2->rest_at;
	usleep(500 * 1000);
	ck_assert(offsets_linger_flush(e, false));
	rec = row_id(e, "o1", "OrderState");
	ck_assert(rec > 0);
	ck_assert(h1->need >= rec && h1->need != OFFSETS_HOLD_OPEN);
	/* Unless this machine stalled for half a second, o2's time is not up. */
	if (e->now - rest2 < linger) {
		ck_assert_int_eq(e->nlingering, 1);
		ck_assert_int_eq(records_of(e, "o2"), 0);
		ck_assert(h2->need == OFFSETS_HOLD_OPEN);
	}
	usleep(600 * 1000);
	offsets_linger_flush(e, false);
	ck_assert_int_eq(e->nlingering, 0);
	ck_assert_int_eq(records_of(e, "o2"), 1);
	ck_assert(h2->need >= row_id(e, "o2", "OrderState"));
	ef_free(e);
}
END_TEST

/* Nothing lingers during a revocation or a stop, nor with linger 0, nor
 * without a changelog (then there is no record at all, and the hold goes
 * with the outputs). */
START_TEST(test_nothing_lingers_when_it_must_not)
{
	for (int c = 0; c < 3; c++) {
		struct engine *e = engine_owning_partition_0();
		struct hold *h = offsets_hold_new(e, "orders", 0, 0);
		int64_t pr;

		if (c == 0)
			e->flush_marks = true;
		else if (c == 1)
			e->cf->saga_state_record_linger_ms = 0;
		else
			e->cf->topic_state[0] = '\0';
		engine_begin(e);
		created(e, "o1", 0);
		offsets_hold_attach(e, h, "o1");
		engine_commit(e);
		engine_begin(e);
		ef_land(e, "o1");
		transition(e, "o1", 0, SAGA_RESERVED);
		pr = ef_output(e, "o1", "PaymentRequested");
		engine_commit(e);
		ck_assert_int_eq(e->nlingering, 0);
		ck_assert_int_eq(records_of(e, "o1"), c < 2 ? 1 : 0);
		ck_assert_msg(h->need != OFFSETS_HOLD_OPEN && h->need >= pr &&
		    h->need >= (c < 2 ? row_id(e, "o1", "OrderState") : pr), "case %d", c);
		ef_free(e);
	}
}
END_TEST

/* ---- Attaching holds ---- */

/* A message for an order with steps in flight but no mark (a flight
 * recovered from the journal) waits for them; one for an order at rest, or
 * without an order (a dead letter), goes with its transaction. */
START_TEST(test_hold_of_an_order_in_flight_waits_others_go_at_once)
{
	struct engine *e = engine_owning_partition_0();
	struct hold *h_flying = offsets_hold_new(e, "orders", 0, 0);
	struct hold *h_rest = offsets_hold_new(e, "orders", 0, 1);
	struct hold *h_none = offsets_hold_new(e, "orders", 0, 2);
	int64_t rec;

	engine_begin(e);
	ef_order(e, "o1", 0);
	ef_order(e, "o2", 0);
	engine_commit(e);
	ef_fly(e, "o1");			/* recovered: no mark */
	engine_begin(e);
	offsets_hold_attach(e, h_flying, "o1");
	offsets_hold_attach(e, h_rest, "o2");
	offsets_hold_attach(e, h_none, NULL);
	engine_commit(e);
	ck_assert(h_flying->need == OFFSETS_HOLD_OPEN);
	ck_assert(h_rest->need != OFFSETS_HOLD_OPEN && h_none->need != OFFSETS_HOLD_OPEN);

	engine_begin(e);
	ef_land(e, "o1");
	transition(e, "o1", 0, SAGA_REJECTED);
	ef_output(e, "o1", "OrderRejected");
	engine_commit(e);
	rec = row_id(e, "o1", "OrderState");
	ck_assert(rec > 0 && h_flying->need >= rec);
	ef_free(e);
}
END_TEST

/* offsets_take stores the head's run only: an open hold, or one not
 * acknowledged, stops it even when later ones are. */
START_TEST(test_take_stops_at_the_first_waiting_hold)
{
	struct engine s;
	struct tp_queue *q;

	memset(&s, 0, sizeof(s));
	offsets_hold_new(&s, "orders", 3, 10)->need = 1;
	offsets_hold_new(&s, "orders", 3, 11)->need = 4;
	offsets_hold_new(&s, "orders", 3, 12)->need = OFFSETS_HOLD_OPEN;
	offsets_hold_new(&s, "orders", 3, 13)->need = 2;
	HASH_FIND_STR(s.tps, "3/orders", q);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(offsets_take(q, 0), -1);
	ck_assert_int_eq(offsets_take(q, 3), 10);
	ck_assert_int_eq(offsets_take(q, 3), -1);
	ck_assert_int_eq(offsets_take(q, INT64_MAX - 1), 11);
	q->head->need = 5;
	ck_assert_int_eq(offsets_take(q, 5), 13);
	ck_assert_ptr_null(q->head);
	offsets_hold_new(&s, "orders", 3, 14)->need = 6;
	ck_assert_int_eq(offsets_take(q, 6), 14);
	offsets_free(&s);
}
END_TEST

static Suite *
offsets_suite(void)
{
	Suite *s = suite_create("offsets");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_offsets_wait_for_outputs_and_record_in_any_order);
	tcase_add_test(tc, test_lingering_record_flushed_then_every_offset_in_any_order);
	tcase_add_test(tc, test_commit_releases_nothing_unacknowledged);
	tcase_add_test(tc, test_record_of_an_order_moving_on_within_the_linger_is_written_once);
	tcase_add_test(tc, test_record_lingers_until_its_time_is_up);
	tcase_add_test(tc, test_nothing_lingers_when_it_must_not);
	tcase_add_test(tc, test_hold_of_an_order_in_flight_waits_others_go_at_once);
	tcase_add_test(tc, test_take_stops_at_the_first_waiting_hold);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(offsets_suite());
}
