/* saga.h: the order saga as a pure state machine: (state, event) -> (state, steps, output); no I/O. */
#ifndef ORDERD_SAGA_H
#define ORDERD_SAGA_H

#include <stdbool.h>
#include <stdint.h>

#define SAGA_MAX_LINES 100	/* items per OrderCreated, from the contract */
#define SAGA_SKU_MAX 64

enum saga_state {
	SAGA_NONE = 0,		/* no OrderCreated seen yet */
	SAGA_NEW,		/* received, reservation under way */
	SAGA_RESERVED,
	SAGA_CONFIRMED,
	SAGA_REJECTED,
	SAGA_CANCELLED,
};

enum saga_event {
	SAGA_EV_ORDER_CREATED = 0,
	SAGA_EV_ORDER_INVALID,		/* an OrderCreated whose order id is good but body is not */
	SAGA_EV_CANCEL_REQUESTED,
	SAGA_EV_PAYMENT_SUCCEEDED,
	SAGA_EV_PAYMENT_FAILED,
	SAGA_EV_DEADLINE,		/* the payment deadline passed */
	SAGA_EV_COUNT
};

enum saga_reason {
	SAGA_REASON_NONE = 0,
	SAGA_REASON_OUT_OF_STOCK,
	SAGA_REASON_INVALID,
	SAGA_REASON_PAYMENT_FAILED,
	SAGA_REASON_CUSTOMER_REQUEST,
	SAGA_REASON_PAYMENT_TIMEOUT,
};

enum saga_output {
	SAGA_OUT_NONE = 0,
	SAGA_OUT_PAYMENT_REQUESTED,
	SAGA_OUT_REFUND_REQUESTED,
	SAGA_OUT_ORDER_CONFIRMED,
	SAGA_OUT_ORDER_REJECTED,
	SAGA_OUT_ORDER_CANCELLED,
};

enum saga_step_kind {
	SAGA_STEP_RESERVE = 0,
	SAGA_STEP_COMMIT,
	SAGA_STEP_RELEASE,
};

/* What became of an event. */
enum saga_disposition {
	SAGA_APPLIED = 0,	/* changed the order (or produced an output) */
	SAGA_IGNORED,		/* a repeat, or too late: no effect */
	SAGA_WAIT,		/* a step of the order is in flight: apply it later */
	SAGA_PARK,		/* the order is unknown: keep it until OrderCreated */
};

/* The result of one step, as the Lua scripts answer. */
enum saga_step_result {
	SAGA_RES_RESERVED = 0,
	SAGA_RES_REJECTED,
	SAGA_RES_COMMITTED,
	SAGA_RES_RELEASED,
	SAGA_RES_MISSING,
};

enum saga_deadline {
	SAGA_DEADLINE_KEEP = 0,
	SAGA_DEADLINE_SET,
	SAGA_DEADLINE_CLEAR,
};

/* One line per sku: the contract allows a sku on several lines; the
 * decoder sums them, so each (order, sku) has one reservation. */
struct saga_line {
	char sku[SAGA_SKU_MAX + 1];
	int64_t qty;
};

struct saga_order {
	enum saga_state state;
	int nlines;
	struct saga_line lines[SAGA_MAX_LINES];
	enum saga_reason reason;	/* why REJECTED or CANCELLED */
	int reason_line;		/* the short line of an out_of_stock rejection, or -1 */
};

struct saga_step {
	enum saga_step_kind kind;
	int line;			/* index into saga_order.lines */
};

struct saga_effects {
	enum saga_disposition disposition;
	enum saga_state state;		/* the order's state after the event */
	enum saga_reason reason;
	int reason_line;
	int nsteps;			/* Redis calls to make, all of one kind */
	struct saga_step steps[SAGA_MAX_LINES];
	/* The output to publish now: when steps are made, the output comes
	 * from saga_settle once they all completed, never before. */
	enum saga_output output;
	enum saga_deadline deadline;
	bool record_payment;		/* keep the event's payment id on the order */
};

/*
 * Applies an input event to an order.  o->state is SAGA_NONE for an order
 * not seen yet (o->lines then come from the OrderCreated being applied).
 * in_flight says whether a step of the order still waits for its result:
 * events of an order are applied one at a time, in arrival order.
 */
void saga_apply(const struct saga_order *o, bool in_flight, enum saga_event ev,
    struct saga_effects *fx);

/*
 * Called once every step of the order's last transition has a result
 * (results[i] for line i of o->lines; lines without a step are ignored).
 * After reserves: RESERVED and PaymentRequested when every line is held,
 * else REJECTED with releases of the held lines.  After commits or
 * releases: the output that the state announces.
 */
void saga_settle(const struct saga_order *o, enum saga_step_kind kind,
    const bool *has_step, const enum saga_step_result *results,
    struct saga_effects *fx);

bool saga_state_terminal(enum saga_state s);
const char *saga_state_name(enum saga_state s);
int saga_state_parse(const char *s, enum saga_state *out);
const char *saga_event_name(enum saga_event ev);
const char *saga_reason_name(enum saga_reason r);
int saga_reason_parse(const char *s, enum saga_reason *out);
const char *saga_output_name(enum saga_output out);
const char *saga_step_name(enum saga_step_kind k);
int saga_step_parse(const char *s, enum saga_step_kind *out);
const char *saga_result_name(enum saga_step_result r);
int saga_result_parse(const char *s, enum saga_step_result *out);

#endif
