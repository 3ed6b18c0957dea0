/* deadlines.c: payment deadlines: polled from the journal every 250 ms, a passed one is the saga's SAGA_EV_DEADLINE for its order. */
#include "autoconfig.h"

#include <stdlib.h>

#include "engine_int.h"
#include "journal.h"
#include "log.h"
#include "saga.h"
#include "util.h"

#define DEADLINES_TICK_MS 250
#define DEADLINES_PER_TICK 256

/* Fires the deadlines that passed, in one transaction: an order with steps
 * in flight waits (SAGA_WAIT leaves its deadline due, for a later tick). */
static void
deadlines_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	char (*ids)[JOURNAL_ORDER_ID_MAX + 1];
	int n;

	if (e->stopping)
		return;
	ids = xmalloc(DEADLINES_PER_TICK * sizeof(*ids));
	n = journal_deadlines_due(e->j, util_now_ms(), DEADLINES_PER_TICK, ids);
	if (n < 0) {
		log_error("engine", "reading deadlines: %s", journal_errmsg(e->j));
		free(ids);
		return;
	}
	if (n == 0) {
		free(ids);
		return;
	}
	engine_begin(e);
	for (int i = 0; i < n; i++) {
		struct order_ctx oc;
		struct saga_effects fx;
		int in_flight;

		engine_order_load(e, ids[i], &oc);
		in_flight = steps_in_flight(e, ids[i]);
		saga_apply(&oc.so, in_flight > 0, SAGA_EV_DEADLINE, &fx);
		if (fx.disposition != SAGA_WAIT) {
			JCHECK(e, "firing a deadline", journal_deadline_fired(e->j, ids[i], e->now));
			if (fx.disposition == SAGA_APPLIED) {
				e->stats.deadlines_fired++;
				log_msg(LOG_LEVEL_INFO, "saga", ids[i], "payment deadline passed");
			}
			engine_effects(e, &oc, &fx, NULL, NULL, oc.row.traceparent);
		}
		engine_order_done(&oc);
	}
	engine_commit(e);
	free(ids);
	steps_send(e);
}

/* From now on, every DEADLINES_TICK_MS (the first look at once). */
void
deadlines_start(struct engine *e)
{
	uv_timer_start(&e->deadline_timer, deadlines_cb, 0, DEADLINES_TICK_MS);
}
