/* settle.c: settling: a transition whose steps all answered gets its results, its next state and its output, then the events that waited for its order. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <uthash.h>

#include "engine_int.h"
#include "fault.h"
#include "journal.h"
#include "log.h"
#include "saga.h"

/* One result for the whole transition, its steps' ids consecutive: one
 * journal write for all of them. */
static bool
settle_uniform(const struct flight *f)
{
	for (int i = 1; i < f->nsteps; i++)
		if (f->steps[i].result != f->steps[0].result ||
		    f->steps[i].step_id != f->steps[0].step_id + i)
			return false;
	return f->nsteps > 0;
}

/*
 * Settles every flight whose steps all answered, inside the open
 * transaction: results, the next state, more steps or the output, then
 * the events that waited for the order.
 */
void
settle_flights(struct engine *e)
{
	struct flight *f, *next;

	if (e->settle_head == NULL)
		return;
	f = e->settle_head;
	e->settle_head = NULL;
	e->settle_tail = &e->settle_head;
	fault_at(FAULT_AFTER_REDIS);
	for (struct flight *r = f; r != NULL; r = r->next)
		if (r->recovered)
			fault_at(FAULT_DURING_RECOVERY);
	for (; f != NULL; f = next) {
		bool has[SAGA_MAX_LINES] = { false };
		enum saga_step_result res[SAGA_MAX_LINES];
		struct saga_effects fx;
		struct order_ctx oc;

		next = f->next;
		if (settle_uniform(f))
			JCHECK(e, "recording step results", journal_step_results(e->j,
			    f->steps[0].step_id, f->steps[f->nsteps - 1].step_id,
			    saga_result_name(f->steps[0].result), e->now));
		for (int i = 0; i < f->nsteps; i++) {
			struct flight_step *s = &f->steps[i];

			if (!settle_uniform(f))
				JCHECK(e, "recording a step result", journal_step_result(e->j,
				    s->step_id, saga_result_name(s->result), e->now));
			if (s->line >= 0 && s->line < SAGA_MAX_LINES) {
				has[s->line] = true;
				res[s->line] = s->result;
			}
			if ((f->kind == SAGA_STEP_COMMIT && s->result != SAGA_RES_COMMITTED) ||
			    (f->kind == SAGA_STEP_RELEASE && s->result != SAGA_RES_RELEASED &&
			    s->result != SAGA_RES_REJECTED))
				log_msg(LOG_LEVEL_ERROR, "saga", f->order_id,
				    "%s of %s answered %s: Redis lost this reservation "
				    "(see orderctl reconcile)", saga_step_name(f->kind), s->sku,
				    saga_result_name(s->result));
		}
		/* The flight's copy of the order is the order: nothing else
		 * changed it while the steps were out. */
		memset(&oc, 0, sizeof(oc));
		snprintf(oc.order_id, sizeof(oc.order_id), "%s", f->order_id);
		oc.exists = true;
		oc.row = f->snap;
		f->snap.items = f->snap.lines = NULL;
		engine_order_parse(&oc);
		/* Out of the map first: the effects may start the order's next flight. */
		HASH_DEL(e->flights, f);
		saga_settle(&oc.so, f->kind, has, res, &fx);
		engine_effects(e, &oc, &fx, NULL, NULL, f->traceparent ? f->traceparent :
		    oc.row.traceparent);
		if (fx.nsteps == 0)
			engine_drain_waiting(e, f->order_id);
		engine_order_done(&oc);
		steps_flight_free(e, f);
	}
}

/* After the loop's I/O: settles what Redis answered, unless a consumed
 * batch already did it in its own transaction this turn. */
void
settle_cb(uv_check_t *c)
{
	struct engine *e = c->data;

	if (e->settle_head == NULL)
		return;
	engine_begin(e);
	settle_flights(e);
	engine_commit(e);
	steps_send(e);
	engine_flow_control(e);
}
