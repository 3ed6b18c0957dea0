/* check_saga.c: every row of the contract's saga table, repeats and out-of-order arrivals, on the pure state machine. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "saga.h"
#include "testutil.h"

static struct saga_order
order(enum saga_state state, int nlines)
{
	struct saga_order o;

	memset(&o, 0, sizeof(o));
	o.state = state;
	o.nlines = nlines;
	o.reason_line = -1;
	for (int i = 0; i < nlines; i++) {
		snprintf(o.lines[i].sku, sizeof(o.lines[i].sku), "SKU-%d", i);
		o.lines[i].qty = i + 1;
	}
	return o;
}

static void
expect_steps(const struct saga_effects *fx, enum saga_step_kind kind, int n)
{
	ck_assert_int_eq(fx->nsteps, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(fx->steps[i].kind, kind);
}

/* Applies fx to o, as the engine does. */
static void
adopt(struct saga_order *o, const struct saga_effects *fx)
{
	o->state = fx->state;
	o->reason = fx->reason;
	o->reason_line = fx->reason_line;
}

START_TEST(test_created_reserves_every_line)
{
	struct saga_order o = order(SAGA_NONE, 3);
	struct saga_effects fx;

	saga_apply(&o, false, SAGA_EV_ORDER_CREATED, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_APPLIED);
	ck_assert_int_eq(fx.state, SAGA_NEW);
	expect_steps(&fx, SAGA_STEP_RESERVE, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fx.steps[i].line, i);
	ck_assert_int_eq(fx.output, SAGA_OUT_NONE);	/* nothing before Redis answered */
}
END_TEST

START_TEST(test_all_reserved_requests_payment)
{
	struct saga_order o = order(SAGA_NEW, 2);
	bool has[2] = { true, true };
	enum saga_step_result res[2] = { SAGA_RES_RESERVED, SAGA_RES_RESERVED };
	struct saga_effects fx;

	saga_settle(&o, SAGA_STEP_RESERVE, has, res, &fx);
	ck_assert_int_eq(fx.state, SAGA_RESERVED);
	ck_assert_int_eq(fx.output, SAGA_OUT_PAYMENT_REQUESTED);
	ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_SET);
	ck_assert_int_eq(fx.nsteps, 0);
}
END_TEST

START_TEST(test_short_line_releases_held_lines_then_rejects)
{
	struct saga_order o = order(SAGA_NEW, 4);
	bool has[4] = { true, true, true, true };
	enum saga_step_result res[4] = { SAGA_RES_RESERVED, SAGA_RES_REJECTED,
	    SAGA_RES_RESERVED, SAGA_RES_REJECTED };
	struct saga_effects fx;

	saga_settle(&o, SAGA_STEP_RESERVE, has, res, &fx);
	ck_assert_int_eq(fx.state, SAGA_REJECTED);
	ck_assert_int_eq(fx.reason, SAGA_REASON_OUT_OF_STOCK);
	ck_assert_int_eq(fx.reason_line, 1);		/* the first short line */
	expect_steps(&fx, SAGA_STEP_RELEASE, 2);
	ck_assert_int_eq(fx.steps[0].line, 0);
	ck_assert_int_eq(fx.steps[1].line, 2);
	ck_assert_int_eq(fx.output, SAGA_OUT_NONE);	/* only after the releases */
	ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_KEEP);

	adopt(&o, &fx);
	bool rel_has[4] = { true, false, true, false };
	enum saga_step_result rel[4] = { SAGA_RES_RELEASED, 0, SAGA_RES_RELEASED, 0 };
	saga_settle(&o, SAGA_STEP_RELEASE, rel_has, rel, &fx);
	ck_assert_int_eq(fx.state, SAGA_REJECTED);
	ck_assert_int_eq(fx.output, SAGA_OUT_ORDER_REJECTED);
	ck_assert_int_eq(fx.reason, SAGA_REASON_OUT_OF_STOCK);
	ck_assert_int_eq(fx.reason_line, 1);
	ck_assert_int_eq(fx.nsteps, 0);
}
END_TEST

START_TEST(test_nothing_held_rejects_at_once)
{
	struct saga_order o = order(SAGA_NEW, 1);
	bool has[1] = { true };
	enum saga_step_result res[1] = { SAGA_RES_REJECTED };
	struct saga_effects fx;

	saga_settle(&o, SAGA_STEP_RESERVE, has, res, &fx);
	ck_assert_int_eq(fx.state, SAGA_REJECTED);
	ck_assert_int_eq(fx.nsteps, 0);
	ck_assert_int_eq(fx.output, SAGA_OUT_ORDER_REJECTED);
	ck_assert_int_eq(fx.reason_line, 0);
}
END_TEST

/* A replay (a new owner of the partition, from an older state): a reserve
 * that finds its reservation committed or released ran before, so the
 * order was reserved; a REJECTED line still rejects, and only lines held
 * now are released. */
START_TEST(test_replayed_reserve_counts_committed_and_released_as_held)
{
	struct saga_order o = order(SAGA_NEW, 2);
	bool has[2] = { true, true };
	enum saga_step_result done[2] = { SAGA_RES_COMMITTED, SAGA_RES_COMMITTED };
	enum saga_step_result gone[2] = { SAGA_RES_RELEASED, SAGA_RES_RESERVED };
	enum saga_step_result mixed[3] = { SAGA_RES_RELEASED, SAGA_RES_RESERVED,
	    SAGA_RES_REJECTED };
	bool has3[3] = { true, true, true };
	struct saga_effects fx;

	saga_settle(&o, SAGA_STEP_RESERVE, has, done, &fx);
	ck_assert_int_eq(fx.state, SAGA_RESERVED);
	ck_assert_int_eq(fx.output, SAGA_OUT_PAYMENT_REQUESTED);
	ck_assert_int_eq(fx.nsteps, 0);
	saga_settle(&o, SAGA_STEP_RESERVE, has, gone, &fx);
	ck_assert_int_eq(fx.state, SAGA_RESERVED);
	ck_assert_int_eq(fx.output, SAGA_OUT_PAYMENT_REQUESTED);

	o = order(SAGA_NEW, 3);
	saga_settle(&o, SAGA_STEP_RESERVE, has3, mixed, &fx);
	ck_assert_int_eq(fx.state, SAGA_REJECTED);
	ck_assert_int_eq(fx.reason_line, 2);
	expect_steps(&fx, SAGA_STEP_RELEASE, 1);
	ck_assert_int_eq(fx.steps[0].line, 1);
}
END_TEST

START_TEST(test_payment_succeeded_commits_then_confirms)
{
	struct saga_order o = order(SAGA_RESERVED, 2);
	struct saga_effects fx;

	saga_apply(&o, false, SAGA_EV_PAYMENT_SUCCEEDED, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_APPLIED);
	ck_assert_int_eq(fx.state, SAGA_CONFIRMED);
	expect_steps(&fx, SAGA_STEP_COMMIT, 2);
	ck_assert_int_eq(fx.output, SAGA_OUT_NONE);
	ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_CLEAR);
	ck_assert(fx.record_payment);

	adopt(&o, &fx);
	bool has[2] = { true, true };
	enum saga_step_result res[2] = { SAGA_RES_COMMITTED, SAGA_RES_COMMITTED };
	saga_settle(&o, SAGA_STEP_COMMIT, has, res, &fx);
	ck_assert_int_eq(fx.output, SAGA_OUT_ORDER_CONFIRMED);
	ck_assert_int_eq(fx.state, SAGA_CONFIRMED);
}
END_TEST

static void
expect_cancel(enum saga_event ev, enum saga_reason reason)
{
	struct saga_order o = order(SAGA_RESERVED, 3);
	struct saga_effects fx;

	saga_apply(&o, false, ev, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_APPLIED);
	ck_assert_int_eq(fx.state, SAGA_CANCELLED);
	ck_assert_int_eq(fx.reason, reason);
	expect_steps(&fx, SAGA_STEP_RELEASE, 3);
	ck_assert_int_eq(fx.output, SAGA_OUT_NONE);
	ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_CLEAR);
	ck_assert(!fx.record_payment);

	adopt(&o, &fx);
	bool has[3] = { true, true, true };
	enum saga_step_result res[3] = { SAGA_RES_RELEASED, SAGA_RES_RELEASED, SAGA_RES_RELEASED };
	saga_settle(&o, SAGA_STEP_RELEASE, has, res, &fx);
	ck_assert_int_eq(fx.output, SAGA_OUT_ORDER_CANCELLED);
	ck_assert_int_eq(fx.reason, reason);
}

START_TEST(test_payment_failed_cancels)
{
	expect_cancel(SAGA_EV_PAYMENT_FAILED, SAGA_REASON_PAYMENT_FAILED);
}
END_TEST

START_TEST(test_customer_cancellation_cancels)
{
	expect_cancel(SAGA_EV_CANCEL_REQUESTED, SAGA_REASON_CUSTOMER_REQUEST);
}
END_TEST

START_TEST(test_deadline_cancels)
{
	expect_cancel(SAGA_EV_DEADLINE, SAGA_REASON_PAYMENT_TIMEOUT);
}
END_TEST

START_TEST(test_late_payment_is_refunded_without_touching_stock)
{
	static const enum saga_state states[] = { SAGA_CANCELLED, SAGA_REJECTED };

	for (size_t i = 0; i < 2; i++) {
		struct saga_order o = order(states[i], 2);
		struct saga_effects fx;

		o.reason = SAGA_REASON_PAYMENT_TIMEOUT;
		saga_apply(&o, false, SAGA_EV_PAYMENT_SUCCEEDED, &fx);
		ck_assert_int_eq(fx.disposition, SAGA_APPLIED);
		ck_assert_int_eq(fx.state, states[i]);
		ck_assert_int_eq(fx.nsteps, 0);
		ck_assert_int_eq(fx.output, SAGA_OUT_REFUND_REQUESTED);
		ck_assert_int_eq(fx.reason, SAGA_REASON_PAYMENT_TIMEOUT);
		ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_KEEP);
	}
}
END_TEST

START_TEST(test_terminal_repeats_have_no_effect)
{
	static const enum saga_state terminal[] = { SAGA_CONFIRMED, SAGA_REJECTED, SAGA_CANCELLED };

	for (size_t s = 0; s < 3; s++) {
		for (int ev = 0; ev < SAGA_EV_COUNT; ev++) {
			struct saga_order o = order(terminal[s], 2);
			struct saga_effects fx;

			if (ev == SAGA_EV_PAYMENT_SUCCEEDED && terminal[s] != SAGA_CONFIRMED)
				continue;	/* the refund row above */
			saga_apply(&o, false, (enum saga_event)ev, &fx);
			ck_assert_msg(fx.disposition == SAGA_IGNORED, "%s + %s",
			    saga_state_name(terminal[s]), saga_event_name(ev));
			ck_assert_int_eq(fx.state, terminal[s]);
			ck_assert_int_eq(fx.nsteps, 0);
			ck_assert_int_eq(fx.output, SAGA_OUT_NONE);
			ck_assert_int_eq(fx.deadline, SAGA_DEADLINE_KEEP);
		}
	}
}
END_TEST

START_TEST(test_duplicate_order_created_is_ignored)
{
	static const enum saga_state states[] = { SAGA_NEW, SAGA_RESERVED,
	    SAGA_CONFIRMED, SAGA_REJECTED, SAGA_CANCELLED };

	for (size_t s = 0; s < 5; s++) {
		struct saga_order o = order(states[s], 2);
		struct saga_effects fx;

		saga_apply(&o, states[s] == SAGA_NEW, SAGA_EV_ORDER_CREATED, &fx);
		ck_assert_int_eq(fx.disposition, SAGA_IGNORED);
		ck_assert_int_eq(fx.nsteps, 0);
		ck_assert_int_eq(fx.state, states[s]);
		saga_apply(&o, false, SAGA_EV_ORDER_INVALID, &fx);
		ck_assert_int_eq(fx.disposition, SAGA_IGNORED);
	}
}
END_TEST

START_TEST(test_duplicate_payment_after_confirm_is_ignored)
{
	struct saga_order o = order(SAGA_CONFIRMED, 1);
	struct saga_effects fx;

	saga_apply(&o, false, SAGA_EV_PAYMENT_SUCCEEDED, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_IGNORED);
	ck_assert_int_eq(fx.nsteps, 0);
	ck_assert(!fx.record_payment);
}
END_TEST

START_TEST(test_events_before_order_are_parked)
{
	static const enum saga_event evs[] = { SAGA_EV_PAYMENT_SUCCEEDED,
	    SAGA_EV_PAYMENT_FAILED, SAGA_EV_CANCEL_REQUESTED };
	struct saga_order o = order(SAGA_NONE, 0);
	struct saga_effects fx;

	for (size_t i = 0; i < 3; i++) {
		saga_apply(&o, false, evs[i], &fx);
		ck_assert_int_eq(fx.disposition, SAGA_PARK);
		ck_assert_int_eq(fx.state, SAGA_NONE);
		ck_assert_int_eq(fx.nsteps, 0);
	}
	/* A deadline of an unknown order is nothing to keep. */
	saga_apply(&o, false, SAGA_EV_DEADLINE, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_IGNORED);
}
END_TEST

START_TEST(test_events_wait_while_a_step_is_in_flight)
{
	static const enum saga_event evs[] = { SAGA_EV_PAYMENT_SUCCEEDED,
	    SAGA_EV_PAYMENT_FAILED, SAGA_EV_CANCEL_REQUESTED, SAGA_EV_DEADLINE };
	struct saga_order n = order(SAGA_NEW, 2), c = order(SAGA_CANCELLED, 2);
	struct saga_effects fx;

	for (size_t i = 0; i < 4; i++) {
		saga_apply(&n, true, evs[i], &fx);
		ck_assert_int_eq(fx.disposition, SAGA_WAIT);
		ck_assert_int_eq(fx.nsteps, 0);
		/* NEW means a reserve is under way even if the caller lost track. */
		saga_apply(&n, false, evs[i], &fx);
		ck_assert_int_eq(fx.disposition, SAGA_WAIT);
		/* Releases of a cancel in flight: a late payment waits for them. */
		saga_apply(&c, true, evs[i], &fx);
		ck_assert_int_eq(fx.disposition, SAGA_WAIT);
	}
}
END_TEST

START_TEST(test_payment_before_order_plays_out)
{
	/* PaymentSucceeded parked, OrderCreated arrives, lines reserved, then
	 * the parked payment is applied: confirmed. */
	struct saga_order o = order(SAGA_NONE, 2);
	struct saga_effects fx;
	bool has[2] = { true, true };
	enum saga_step_result ok[2] = { SAGA_RES_RESERVED, SAGA_RES_RESERVED };

	saga_apply(&o, false, SAGA_EV_PAYMENT_SUCCEEDED, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_PARK);
	saga_apply(&o, false, SAGA_EV_ORDER_CREATED, &fx);
	adopt(&o, &fx);
	saga_settle(&o, SAGA_STEP_RESERVE, has, ok, &fx);
	adopt(&o, &fx);
	ck_assert_int_eq(o.state, SAGA_RESERVED);
	saga_apply(&o, false, SAGA_EV_PAYMENT_SUCCEEDED, &fx);
	ck_assert_int_eq(fx.state, SAGA_CONFIRMED);
	expect_steps(&fx, SAGA_STEP_COMMIT, 2);
}
END_TEST

START_TEST(test_invalid_order_is_rejected_at_once)
{
	struct saga_order o = order(SAGA_NONE, 0);
	struct saga_effects fx;

	saga_apply(&o, false, SAGA_EV_ORDER_INVALID, &fx);
	ck_assert_int_eq(fx.disposition, SAGA_APPLIED);
	ck_assert_int_eq(fx.state, SAGA_REJECTED);
	ck_assert_int_eq(fx.reason, SAGA_REASON_INVALID);
	ck_assert_int_eq(fx.output, SAGA_OUT_ORDER_REJECTED);
	ck_assert_int_eq(fx.nsteps, 0);
}
END_TEST

START_TEST(test_names_round_trip)
{
	for (int s = SAGA_NEW; s <= SAGA_CANCELLED; s++) {
		enum saga_state back;

		ck_assert_int_eq(saga_state_parse(saga_state_name(s), &back), 0);
		ck_assert_int_eq(back, s);
	}
	for (int r = SAGA_REASON_OUT_OF_STOCK; r <= SAGA_REASON_PAYMENT_TIMEOUT; r++) {
		enum saga_reason back;

		ck_assert_int_eq(saga_reason_parse(saga_reason_name(r), &back), 0);
		ck_assert_int_eq(back, r);
	}
	for (int r = SAGA_RES_RESERVED; r <= SAGA_RES_MISSING; r++) {
		enum saga_step_result back;

		ck_assert_int_eq(saga_result_parse(saga_result_name(r), &back), 0);
		ck_assert_int_eq(back, r);
	}
	enum saga_state st;
	enum saga_step_kind k;
	ck_assert_int_ne(saga_state_parse("confirmed", &st), 0);
	ck_assert_int_ne(saga_state_parse("", &st), 0);
	ck_assert_int_ne(saga_step_parse("refund", &k), 0);
	ck_assert_int_eq(saga_step_parse("release", &k), 0);
	ck_assert_int_eq(k, SAGA_STEP_RELEASE);
	ck_assert_str_eq(saga_state_name(99), "?");
}
END_TEST

static Suite *
saga_suite(void)
{
	Suite *s = suite_create("saga");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_created_reserves_every_line);
	tcase_add_test(tc, test_all_reserved_requests_payment);
	tcase_add_test(tc, test_short_line_releases_held_lines_then_rejects);
	tcase_add_test(tc, test_nothing_held_rejects_at_once);
	tcase_add_test(tc, test_replayed_reserve_counts_committed_and_released_as_held);
	tcase_add_test(tc, test_payment_succeeded_commits_then_confirms);
	tcase_add_test(tc, test_payment_failed_cancels);
	tcase_add_test(tc, test_customer_cancellation_cancels);
	tcase_add_test(tc, test_deadline_cancels);
	tcase_add_test(tc, test_late_payment_is_refunded_without_touching_stock);
	tcase_add_test(tc, test_terminal_repeats_have_no_effect);
	tcase_add_test(tc, test_duplicate_order_created_is_ignored);
	tcase_add_test(tc, test_duplicate_payment_after_confirm_is_ignored);
	tcase_add_test(tc, test_events_before_order_are_parked);
	tcase_add_test(tc, test_events_wait_while_a_step_is_in_flight);
	tcase_add_test(tc, test_payment_before_order_plays_out);
	tcase_add_test(tc, test_invalid_order_is_rejected_at_once);
	tcase_add_test(tc, test_names_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(saga_suite());
}
