/* check_engine.c: the engine's journal writes that must stop orderd, and waiting events the journal can no longer read, on a real journal without servers. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"
#include "journal.h"
#include "saga.h"
#include "testutil.h"
#include "util.h"

/* An order already in the journal that the engine takes for a new one:
 * memory and journal disagree, and the insert's -EEXIST must stop orderd
 * (exit 1), not pass for a duplicate. */
START_TEST(test_order_insert_that_exists_stops)
{
	struct engine *e = ef_new();
	struct saga_effects fx = { .disposition = SAGA_APPLIED, .state = SAGA_NEW,
	    .reason_line = -1 };
	struct order_ctx oc;

	ef_order(e, "o-1", 0);
	engine_begin(e);
	memset(&oc, 0, sizeof(oc));
	snprintf(oc.order_id, sizeof(oc.order_id), "o-1");
	oc.row.partition = 0;
	oc.so.nlines = 1;
	snprintf(oc.so.lines[0].sku, sizeof(oc.so.lines[0].sku), "sku-1");
	oc.so.lines[0].qty = 1;
	engine_effects(e, &oc, &fx, NULL, "created-again", NULL);
	/* Not reached: the exit test fails if this returns. */
	engine_commit(e);
	ef_free(e);
}
END_TEST

/* But an output whose deterministic event id is there already is a
 * duplicate that changes nothing (a transition derived again). */
START_TEST(test_output_again_is_a_duplicate)
{
	struct engine *e = ef_new();
	struct order_ctx oc;

	ef_order(e, "o-2", 0);
	engine_begin(e);
	engine_order_load(e, "o-2", &oc);
	outputs_event(e, &oc, SAGA_OUT_PAYMENT_REQUESTED, NULL, NULL);
	outputs_event(e, &oc, SAGA_OUT_PAYMENT_REQUESTED, NULL, NULL);
	engine_order_done(&oc);
	engine_commit(e);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = "
	    "'PaymentRequested'"), 1);
	ef_free(e);
}
END_TEST

static void
waiting(struct engine *e, const char *event_id, int64_t offset, const char *type,
    const char *payload)
{
	struct journal_event ev = {
		.event_id = event_id, .topic = "payments", .partition = 0, .offset = offset,
		.type = type, .order_id = "o-3", .status = "waiting", .received_at = 1,
		.payload = payload, .payload_len = strlen(payload),
	};

	ck_assert_int_eq(journal_inbox_add(e->j, &ev), 0);
}

/* A waiting event that no longer decodes (the journal was changed) goes
 * to the DLQ and out of the waiting; the event after it is applied. */
START_TEST(test_undecodable_waiting_event_goes_to_the_dlq)
{
	struct engine *e = ef_new();

	ef_order(e, "o-3", 0);
	/* Reserved: a cancellation releases its stock at once. */
	ef_sql(e, "UPDATE orders SET state = 'RESERVED' WHERE order_id = 'o-3'");
	engine_begin(e);
	waiting(e, "bad-1", 5, "PaymentSucceeded", "{\"event_id\":\"bad-1\",\"type\":");
	waiting(e, "c-1", 6, "OrderCancellationRequested",
	    "{\"event_id\":\"c-1\",\"type\":\"OrderCancellationRequested\","
	    "\"order_id\":\"o-3\"}");
	engine_commit(e);
	ck_assert_int_eq(engine_waiter_load("o-3", e), 0);

	engine_begin(e);
	engine_drain_waiting(e, "o-3");
	engine_commit(e);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM dlq WHERE topic = 'payments' AND "
	    "kafka_partition = 0 AND kafka_offset = 5 AND error LIKE 'journaled event no longer "
	    "decodes: %'"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM outbox WHERE type = 'DeadLetter' "
	    "AND event_id = 'dlq:payments:0:5' AND CAST(msg_key AS TEXT) = 'o-3'"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM inbox WHERE status = 'waiting'"), 0);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM inbox WHERE event_id = 'bad-1' "
	    "AND status = 'ignored'"), 1);
	/* The order went on: the cancellation was applied. */
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM inbox WHERE event_id = 'c-1' "
	    "AND status = 'applied'"), 1);
	ck_assert_int_eq(ef_sql(e, "SELECT count(*) FROM orders WHERE order_id = 'o-3' "
	    "AND state <> 'RESERVED'"), 1);
	ef_free(e);
}
END_TEST

/* An engine owning partition 0 with the order (line "sku-1 1") and one
 * reserve step in flight for sku, as a crash leaves them. */
static struct engine *
in_flight(const char *order_id, const char *sku)
{
	static const int32_t part0 = 0;
	static const int64_t epoch1 = 1;
	struct engine *e = ef_new();
	int64_t id = 0;

	ef_own(e, &part0, &epoch1, 1);
	ef_order(e, order_id, 0);
	engine_begin(e);
	ck_assert_int_eq(journal_step_add(e->j, order_id, "reserve", sku, 1, "created",
	    e->now, &id), 0);
	engine_commit(e);
	return e;
}

/* A step in flight for a sku that is none of its order's lines is refused
 * at recovery, loudly, before any step is sent. */
START_TEST(test_recovered_step_for_no_line_is_refused)
{
	struct engine *e = in_flight("o-4", "sku-9");
	char *cause = NULL;

	ck_assert_int_eq(ownership_recover(e, &cause), -EBADMSG);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "sku-9") != NULL && strstr(cause, "o-4") != NULL,
	    "cause: %s", cause);
	ck_assert_ptr_null(e->send_head);
	ck_assert(!steps_in_flight(e, "o-4"));
	free(cause);
	ef_free(e);
}
END_TEST

/* The steps of its own lines are recovered as before. */
START_TEST(test_recovered_step_of_a_line_is_sent)
{
	struct engine *e = in_flight("o-5", "sku-1");
	char *cause = NULL;

	ck_assert_int_eq(ownership_recover(e, &cause), 0);
	ck_assert(steps_in_flight(e, "o-5"));
	ck_assert_ptr_nonnull(e->send_head);
	ck_assert_int_eq(e->send_head->steps[0].line, 0);
	ef_free(e);
}
END_TEST

static Suite *
engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_exit_test(tc, test_order_insert_that_exists_stops, 1);
	tcase_add_test(tc, test_output_again_is_a_duplicate);
	tcase_add_test(tc, test_undecodable_waiting_event_goes_to_the_dlq);
	tcase_add_test(tc, test_recovered_step_for_no_line_is_refused);
	tcase_add_test(tc, test_recovered_step_of_a_line_is_sent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(engine_suite());
}
