/* saga.c: the order saga's transitions, as the contract's table says, with no I/O at all. */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include "saga.h"

static void
saga_effects_init(const struct saga_order *o, struct saga_effects *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->disposition = SAGA_IGNORED;
	fx->state = o->state;
	fx->reason = o->reason;
	fx->reason_line = o->reason_line;
	fx->output = SAGA_OUT_NONE;
	fx->deadline = SAGA_DEADLINE_KEEP;
}

/* One step of the same kind for every line of the order. */
static void
saga_all_lines(const struct saga_order *o, enum saga_step_kind kind,
    struct saga_effects *fx)
{
	for (int i = 0; i < o->nlines; i++) {
		fx->steps[fx->nsteps].kind = kind;
		fx->steps[fx->nsteps].line = i;
		fx->nsteps++;
	}
}

/* RESERVED -> CANCELLED: the held stock goes back, then the announcement. */
static void
saga_cancel(const struct saga_order *o, enum saga_reason reason,
    struct saga_effects *fx)
{
	fx->disposition = SAGA_APPLIED;
	fx->state = SAGA_CANCELLED;
	fx->reason = reason;
	fx->reason_line = -1;
	fx->deadline = SAGA_DEADLINE_CLEAR;
	saga_all_lines(o, SAGA_STEP_RELEASE, fx);
}

void
saga_apply(const struct saga_order *o, bool in_flight, enum saga_event ev,
    struct saga_effects *fx)
{
	saga_effects_init(o, fx);

	/* A second OrderCreated (another event id, same order) is a repeat,
	 * whatever the order's state. */
	if (ev == SAGA_EV_ORDER_CREATED || ev == SAGA_EV_ORDER_INVALID) {
		if (o->state != SAGA_NONE)
			return;
		fx->disposition = SAGA_APPLIED;
		if (ev == SAGA_EV_ORDER_INVALID || o->nlines == 0) {
			/* Nothing was reserved: the rejection goes out at once. */
			fx->state = SAGA_REJECTED;
			fx->reason = SAGA_REASON_INVALID;
			fx->reason_line = -1;
			fx->output = SAGA_OUT_ORDER_REJECTED;
			return;
		}
		fx->state = SAGA_NEW;
		fx->reason = SAGA_REASON_NONE;
		fx->reason_line = -1;
		saga_all_lines(o, SAGA_STEP_RESERVE, fx);
		return;
	}
	if (o->state == SAGA_NONE) {
		/* A deadline never exists without its order; anything else waits
		 * for the OrderCreated that has not arrived yet. */
		fx->disposition = ev == SAGA_EV_DEADLINE ? SAGA_IGNORED : SAGA_PARK;
		return;
	}
	if (in_flight || o->state == SAGA_NEW) {
		fx->disposition = SAGA_WAIT;
		return;
	}
	switch (o->state) {
	case SAGA_RESERVED:
		switch (ev) {
		case SAGA_EV_PAYMENT_SUCCEEDED:
			fx->disposition = SAGA_APPLIED;
			fx->state = SAGA_CONFIRMED;
			fx->deadline = SAGA_DEADLINE_CLEAR;
			fx->record_payment = true;
			saga_all_lines(o, SAGA_STEP_COMMIT, fx);
			return;
		case SAGA_EV_PAYMENT_FAILED:
			saga_cancel(o, SAGA_REASON_PAYMENT_FAILED, fx);
			return;
		case SAGA_EV_CANCEL_REQUESTED:
			saga_cancel(o, SAGA_REASON_CUSTOMER_REQUEST, fx);
			return;
		case SAGA_EV_DEADLINE:
			saga_cancel(o, SAGA_REASON_PAYMENT_TIMEOUT, fx);
			return;
		default:
			return;
		}
	case SAGA_CANCELLED:
	case SAGA_REJECTED:
		/* The money came for stock that is gone: give it back, and
		 * leave the stock alone. */
		if (ev == SAGA_EV_PAYMENT_SUCCEEDED) {
			fx->disposition = SAGA_APPLIED;
			fx->record_payment = true;
			fx->output = SAGA_OUT_REFUND_REQUESTED;
		}
		return;
	case SAGA_CONFIRMED:
	default:
		return;
	}
}

void
saga_settle(const struct saga_order *o, enum saga_step_kind kind,
    const bool *has_step, const enum saga_step_result *results,
    struct saga_effects *fx)
{
	saga_effects_init(o, fx);
	fx->disposition = SAGA_APPLIED;

	if (kind == SAGA_STEP_RESERVE && o->state == SAGA_NEW) {
		int shortline = -1;

		/* COMMITTED or RELEASED answer a reserve that ran before: the
		 * order is being replayed (a new owner of its partition, from an
		 * older state) and was reserved then; the events that follow
		 * replay the rest of its story. */
		for (int i = 0; i < o->nlines; i++) {
			if (has_step[i] && results[i] != SAGA_RES_RESERVED &&
			    results[i] != SAGA_RES_COMMITTED && results[i] != SAGA_RES_RELEASED) {
				shortline = i;
				break;
			}
		}
		if (shortline < 0) {
			fx->state = SAGA_RESERVED;
			fx->output = SAGA_OUT_PAYMENT_REQUESTED;
			fx->deadline = SAGA_DEADLINE_SET;
			return;
		}
		fx->state = SAGA_REJECTED;
		fx->reason = SAGA_REASON_OUT_OF_STOCK;
		fx->reason_line = shortline;
		for (int i = 0; i < o->nlines; i++) {
			if (has_step[i] && results[i] == SAGA_RES_RESERVED) {
				fx->steps[fx->nsteps].kind = SAGA_STEP_RELEASE;
				fx->steps[fx->nsteps].line = i;
				fx->nsteps++;
			}
		}
		/* Nothing held: the rejection goes out now, else after the
		 * releases settle. */
		if (fx->nsteps == 0)
			fx->output = SAGA_OUT_ORDER_REJECTED;
		return;
	}
	switch (o->state) {
	case SAGA_CONFIRMED:
		fx->output = SAGA_OUT_ORDER_CONFIRMED;
		break;
	case SAGA_CANCELLED:
		fx->output = SAGA_OUT_ORDER_CANCELLED;
		break;
	case SAGA_REJECTED:
		fx->output = SAGA_OUT_ORDER_REJECTED;
		break;
	default:
		fx->disposition = SAGA_IGNORED;
		break;
	}
}

bool
saga_state_terminal(enum saga_state s)
{
	return s == SAGA_CONFIRMED || s == SAGA_REJECTED || s == SAGA_CANCELLED;
}

static const char *const saga_state_names[] = {
	[SAGA_NONE] = "NONE", [SAGA_NEW] = "NEW", [SAGA_RESERVED] = "RESERVED",
	[SAGA_CONFIRMED] = "CONFIRMED", [SAGA_REJECTED] = "REJECTED",
	[SAGA_CANCELLED] = "CANCELLED",
};
static const char *const saga_event_names[] = {
	[SAGA_EV_ORDER_CREATED] = "OrderCreated",
	[SAGA_EV_ORDER_INVALID] = "OrderCreated",
	[SAGA_EV_CANCEL_REQUESTED] = "OrderCancellationRequested",
	[SAGA_EV_PAYMENT_SUCCEEDED] = "PaymentSucceeded",
	[SAGA_EV_PAYMENT_FAILED] = "PaymentFailed",
	[SAGA_EV_DEADLINE] = "PaymentDeadline",
};
static const char *const saga_reason_names[] = {
	[SAGA_REASON_NONE] = "", [SAGA_REASON_OUT_OF_STOCK] = "out_of_stock",
	[SAGA_REASON_INVALID] = "invalid",
	[SAGA_REASON_PAYMENT_FAILED] = "payment_failed",
	[SAGA_REASON_CUSTOMER_REQUEST] = "customer_request",
	[SAGA_REASON_PAYMENT_TIMEOUT] = "payment_timeout",
};
static const char *const saga_output_names[] = {
	[SAGA_OUT_NONE] = "", [SAGA_OUT_PAYMENT_REQUESTED] = "PaymentRequested",
	[SAGA_OUT_REFUND_REQUESTED] = "RefundRequested",
	[SAGA_OUT_ORDER_CONFIRMED] = "OrderConfirmed",
	[SAGA_OUT_ORDER_REJECTED] = "OrderRejected",
	[SAGA_OUT_ORDER_CANCELLED] = "OrderCancelled",
};
static const char *const saga_step_names[] = {
	[SAGA_STEP_RESERVE] = "reserve", [SAGA_STEP_COMMIT] = "commit",
	[SAGA_STEP_RELEASE] = "release",
};
static const char *const saga_result_names[] = {
	[SAGA_RES_RESERVED] = "RESERVED", [SAGA_RES_REJECTED] = "REJECTED",
	[SAGA_RES_COMMITTED] = "COMMITTED", [SAGA_RES_RELEASED] = "RELEASED",
	[SAGA_RES_MISSING] = "MISSING",
};

#define SAGA_NAME(tab, v) \
	((unsigned)(v) < sizeof(tab) / sizeof((tab)[0]) && (tab)[v] ? (tab)[v] : "?")

static int
saga_parse(const char *const *tab, int n, const char *s, int *out)
{
	for (int i = 0; i < n; i++) {
		if (tab[i] != NULL && tab[i][0] != '\0' && strcmp(tab[i], s) == 0) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

#define SAGA_PARSE(tab, s, out) __extension__ ({ \
	int v_, e_ = saga_parse(tab, (int)(sizeof(tab) / sizeof((tab)[0])), s, &v_); \
	if (e_ == 0) \
		*(out) = v_; \
	e_; })

const char *saga_state_name(enum saga_state s) { return SAGA_NAME(saga_state_names, s); }
const char *saga_event_name(enum saga_event ev) { return SAGA_NAME(saga_event_names, ev); }
const char *saga_reason_name(enum saga_reason r) { return SAGA_NAME(saga_reason_names, r); }
const char *saga_output_name(enum saga_output o) { return SAGA_NAME(saga_output_names, o); }
const char *saga_step_name(enum saga_step_kind k) { return SAGA_NAME(saga_step_names, k); }
const char *saga_result_name(enum saga_step_result r) { return SAGA_NAME(saga_result_names, r); }

int
saga_state_parse(const char *s, enum saga_state *out)
{
	return SAGA_PARSE(saga_state_names, s, out);
}

int
saga_reason_parse(const char *s, enum saga_reason *out)
{
	return SAGA_PARSE(saga_reason_names, s, out);
}

int
saga_step_parse(const char *s, enum saga_step_kind *out)
{
	return SAGA_PARSE(saga_step_names, s, out);
}

int
saga_result_parse(const char *s, enum saga_step_result *out)
{
	return SAGA_PARSE(saga_result_names, s, out);
}
