/* check_relay_window.c: unit tests of the relay's bookkeeping on plain data (src/relay_window.c): acknowledgements in any order, the rewind after a failed delivery, records held back for outputs, every order of five reports. */
#include "autoconfig.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "relay_int.h"
#include "testutil.h"
#include "util.h"

/* ---- relay_window.c: the bookkeeping alone ---- */

/* Every row up to the returned id is acknowledged: with nothing held back,
 * the lowest row not acknowledged minus one, or the cursor. */
static int64_t
through(const struct relay_window *w)
{
	return relay_window_acked_through(w, INT64_MAX);
}

/* Rows first..last read and produced as outputs. */
static void
send_outputs(struct relay_window *w, int64_t first, int64_t last)
{
	for (int64_t id = first; id <= last; id++) {
		relay_window_read(w, id);
		relay_window_sent(w, id, false);
	}
}

START_TEST(test_acks_in_any_order)
{
	struct relay_window w = { 0 };

	send_outputs(&w, 1, 3);
	ck_assert_int_eq(through(&w), 0);
	ck_assert(relay_window_acked(&w, 2));
	ck_assert_int_eq(through(&w), 0);	/* 1 is still out */
	ck_assert(relay_window_acked(&w, 1));
	ck_assert_int_eq(through(&w), 2);
	ck_assert(relay_window_acked(&w, 3));
	ck_assert_int_eq(through(&w), 3);
	ck_assert(!relay_window_acked(&w, 3));	/* not in flight any more */
	ck_assert(!relay_window_acked(&w, 99));
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_NONE);
	ck_assert_int_eq(w.cursor, 3);
	relay_window_free(&w);
}
END_TEST

START_TEST(test_failure_holds_back_and_rewinds)
{
	struct relay_window w = { 0 };

	send_outputs(&w, 1, 5);
	ck_assert(relay_window_acked(&w, 1));
	relay_window_failed(&w, 2);
	ck_assert(relay_window_acked(&w, 3));
	ck_assert(relay_window_acked(&w, 4));
	/* Nothing is acknowledged through the failed row, whatever came after. */
	ck_assert_int_eq(through(&w), 1);
	ck_assert(relay_window_acked(&w, 5));
	ck_assert_int_eq(through(&w), 1);
	ck_assert_int_eq(w.rewind_to, 2);
	/* A row still in flight: no rewind yet, the cursor stays. */
	ck_assert_int_eq(relay_window_rewind(&w, 1), RELAY_REWIND_WAIT);
	ck_assert_int_eq(w.cursor, 5);
	ck_assert_int_eq(w.rewind_to, 2);
	ck_assert_int_eq(through(&w), 1);
	/* Nothing in flight: back to just before the first failed row, the
	 * fifos empty (their rows are read again), once. */
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_DONE);
	ck_assert_int_eq(w.cursor, 1);
	ck_assert_int_eq(w.rewind_to, 0);
	ck_assert_uint_eq(w.outputs.len, 0);
	ck_assert_int_eq(through(&w), 1);
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_NONE);
	/* Row 2 read and produced again, then acknowledged. */
	send_outputs(&w, 2, 2);
	ck_assert_int_eq(through(&w), 1);
	ck_assert(relay_window_acked(&w, 2));
	ck_assert_int_eq(through(&w), 2);
	/* The page came back short: rows 3..5, acknowledged before the rewind
	 * and not read again, are in too. */
	relay_window_caught_up(&w);
	ck_assert_int_eq(w.cursor, 5);
	ck_assert_int_eq(through(&w), 5);
	relay_window_free(&w);
}
END_TEST

START_TEST(test_lowest_failure_wins)
{
	struct relay_window w = { 0 };

	send_outputs(&w, 1, 6);
	relay_window_failed(&w, 4);
	ck_assert_int_eq(through(&w), 0);
	relay_window_failed(&w, 2);
	relay_window_failed(&w, 5);
	ck_assert_int_eq(w.rewind_to, 2);
	ck_assert(relay_window_acked(&w, 1));
	ck_assert(relay_window_acked(&w, 3));
	ck_assert(relay_window_acked(&w, 6));
	ck_assert_int_eq(through(&w), 1);
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_DONE);
	ck_assert_int_eq(w.cursor, 1);
	relay_window_free(&w);
}
END_TEST

START_TEST(test_records_wait_for_outputs)
{
	struct relay_window w = { 0 };

	/* Outputs 1 and 2 out, record 3 read and held back, output 4 out. */
	send_outputs(&w, 1, 2);
	relay_window_read(&w, 3);
	send_outputs(&w, 4, 4);
	ck_assert(!relay_window_releasable(&w, 3));
	ck_assert_int_eq(relay_window_acked_through(&w, 3), 0);
	ck_assert(relay_window_acked(&w, 1));
	ck_assert(!relay_window_releasable(&w, 3));
	relay_window_failed(&w, 2);
	ck_assert(!relay_window_releasable(&w, 3));
	ck_assert(relay_window_acked(&w, 4));
	/* The record held back bounds what is acknowledged, as output 2 does. */
	ck_assert_int_eq(relay_window_acked_through(&w, 3), 1);
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_DONE);
	ck_assert_int_eq(w.cursor, 1);
	/* Read again: output 2, record 3 (held back until 2 is acknowledged). */
	send_outputs(&w, 2, 2);
	relay_window_read(&w, 3);
	ck_assert(!relay_window_releasable(&w, 3));
	ck_assert(relay_window_acked(&w, 2));
	ck_assert(relay_window_releasable(&w, 3));
	relay_window_sent(&w, 3, true);
	ck_assert_int_eq(through(&w), 2);
	/* A record in flight does not hold back the next one; an output does. */
	relay_window_read(&w, 5);
	ck_assert(relay_window_releasable(&w, 5));
	send_outputs(&w, 6, 6);
	ck_assert(!relay_window_releasable(&w, 7));
	/* A failed record rewinds like an output. */
	relay_window_failed(&w, 3);
	ck_assert(relay_window_acked(&w, 6));
	ck_assert_int_eq(through(&w), 2);
	ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_DONE);
	ck_assert_int_eq(w.cursor, 2);
	relay_window_free(&w);
}
END_TEST

/* The next permutation of a (ascending order first); false after the last. */
static bool
next_perm(int *a, int n)
{
	int i = n - 2, j = n - 1, t;

	while (i >= 0 && a[i] >= a[i + 1])
		i--;
	if (i < 0)
		return false;
	while (a[j] <= a[i])
		j--;
	t = a[i], a[i] = a[j], a[j] = t;
	for (i++, j = n - 1; i < j; i++, j--)
		t = a[i], a[i] = a[j], a[j] = t;
	return true;
}

/*
 * Five rows produced; every set of failed deliveries, in every order of
 * the reports: after each report, every row below the lowest one not
 * acknowledged (failed or not heard of) is acknowledged through, and not
 * one more; after the last, the rewind goes back to just before the lowest
 * failed row, or does nothing when none failed.
 */
START_TEST(test_every_order_of_reports)
{
	enum { N = 5 };
	int cases = 0;

	for (int failed = 0; failed < 1 << N; failed++) {
		int order[N] = { 1, 2, 3, 4, 5 };

		do {
			struct relay_window w = { 0 };
			bool ok[N + 1] = { false };
			int64_t low_failed = 0;

			send_outputs(&w, 1, N);
			for (int i = 0; i < N; i++) {
				int id = order[i];
				int64_t want = N;

				if (failed & 1 << (id - 1)) {
					relay_window_failed(&w, id);
					if (low_failed == 0 || id < low_failed)
						low_failed = id;
				} else {
					ck_assert(relay_window_acked(&w, id));
					ok[id] = true;
				}
				for (int k = 1; k <= N; k++)
					if (!ok[k]) {
						want = k - 1;
						break;
					}
				ck_assert_msg(through(&w) == want, "failed %#x, order %d%d%d%d%d, "
				    "after %d: through %lld, want %lld", failed, order[0], order[1],
				    order[2], order[3], order[4], id, (long long)through(&w),
				    (long long)want);
				if (i < N - 1 && low_failed > 0)
					ck_assert_int_eq(relay_window_rewind(&w, N - 1 - i),
					    RELAY_REWIND_WAIT);
			}
			if (low_failed == 0) {
				ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_NONE);
				ck_assert_int_eq(w.cursor, N);
			} else {
				ck_assert_int_eq(relay_window_rewind(&w, 0), RELAY_REWIND_DONE);
				ck_assert_int_eq(w.cursor, low_failed - 1);
				ck_assert_int_eq(through(&w), low_failed - 1);
			}
			relay_window_free(&w);
			cases++;
		} while (next_perm(order, N));
	}
	ck_assert_int_eq(cases, 32 * 120);
}
END_TEST

static Suite *
relay_window_suite(void)
{
	Suite *s = suite_create("relay-window");
	TCase *win = tcase_create("window");

	tcase_add_test(win, test_acks_in_any_order);
	tcase_add_test(win, test_failure_holds_back_and_rewinds);
	tcase_add_test(win, test_lowest_failure_wins);
	tcase_add_test(win, test_records_wait_for_outputs);
	tcase_add_test(win, test_every_order_of_reports);
	suite_add_tcase(s, win);
	return s;
}

int
main(void)
{
	return tu_run(relay_window_suite());
}
