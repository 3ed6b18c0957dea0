/* ctl_order.c: orderctl order show: one order of the journal with its lines, events, steps and outputs. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "ctl.h"
#include "event.h"
#include "journal.h"

/* A column's value as JSON: the order reports' names become the keys. */
static json_t *
ctl_column_json(const struct journal_row *r, const char *col)
{
	switch (journal_row_type(r, col)) {
	case JOURNAL_NULL:
		return json_null();
	case JOURNAL_INTEGER:
		return json_integer(journal_row_int(r, col));
	default:
		return json_string(journal_row_text(r, col));
	}
}

/* Appends one row as an object whose keys are the column names. */
static int
ctl_row_json(const struct journal_row *r, void *arg)
{
	json_t *arr = arg, *obj = json_object();

	for (int i = 0; i < journal_row_columns(r); i++)
		json_object_set_new(obj, journal_row_column(r, i),
		    ctl_column_json(r, journal_row_column(r, i)));
	json_array_append_new(arr, obj);
	return 0;
}

static void
ctl_time(char *buf, size_t len, json_t *v)
{
	if (json_is_integer(v)) {
		char t[32];

		event_format_time(t, json_integer_value(v));
		snprintf(buf, len, "%s", t);
	} else {
		snprintf(buf, len, "-");
	}
}

static int
ctl_order_show(struct ctl *c, int argc, char **argv)
{
	const char *params[1];
	json_t *orders = json_array(), *steps = json_array(), *events = json_array(),
	    *outputs = json_array(), *deadline = json_array(), *o, *items;
	int n;

	params[0] = argv[0];
	n = journal_report(c->j, "order", params, 1, ctl_row_json, orders);
	if (n <= 0) {
		json_decref(orders);
		json_decref(steps);
		json_decref(events);
		json_decref(outputs);
		json_decref(deadline);
		return n < 0 ? ctl_fail("journal: %s", journal_errmsg(c->j)) :
		    ctl_fail("order %s: not in the journal", argv[0]);
	}
	journal_report(c->j, "order_steps", params, 1, ctl_row_json, steps);
	journal_report(c->j, "order_events", params, 1, ctl_row_json, events);
	journal_report(c->j, "order_outputs", params, 1, ctl_row_json, outputs);
	journal_report(c->j, "order_deadline", params, 1, ctl_row_json, deadline);
	o = json_incref(json_array_get(orders, 0));
	json_decref(orders);
	items = json_loads(json_string_value(json_object_get(o, "items")), 0, NULL);
	json_object_set_new(o, "items", items ? items : json_array());
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "events", events);
	json_object_set_new(o, "outputs", outputs);
	json_object_set_new(o, "deadline", json_array_size(deadline) ?
	    json_incref(json_array_get(deadline, 0)) : json_null());
	json_decref(deadline);
	if (c->json) {
		ctl_print_json(o);
		return 0;
	}
	ctl_json_clean(o);
	printf("order     %s\nstate     %s", json_string_value(json_object_get(o, "order_id")),
	    json_string_value(json_object_get(o, "state")));
	if (json_is_string(json_object_get(o, "reason")))
		printf(" (%s%s%s)", json_string_value(json_object_get(o, "reason")),
		    json_is_string(json_object_get(o, "reason_sku")) ? " " : "",
		    json_is_string(json_object_get(o, "reason_sku")) ?
		    json_string_value(json_object_get(o, "reason_sku")) : "");
	printf("\ncustomer  %s\namount    %lld %s\n",
	    json_string_value(json_object_get(o, "customer_id")),
	    (long long)json_integer_value(json_object_get(o, "amount_cents")),
	    json_string_value(json_object_get(o, "currency")));
	if (json_is_string(json_object_get(o, "payment_id")))
		printf("payment   %s\n", json_string_value(json_object_get(o, "payment_id")));
	printf("lines\n");
	for (size_t i = 0; i < json_array_size(json_object_get(o, "items")); i++) {
		json_t *it = json_array_get(json_object_get(o, "items"), i);

		printf("  %-24s %lld\n", json_string_value(json_object_get(it, "sku")),
		    (long long)json_integer_value(json_object_get(it, "qty")));
	}
	printf("events\n");
	for (size_t i = 0; i < json_array_size(events); i++) {
		json_t *ev = json_array_get(events, i);
		char t[32];

		ctl_time(t, sizeof(t), json_object_get(ev, "received_at"));
		printf("  %s  %-28s %-8s %s\n", t,
		    json_string_value(json_object_get(ev, "type")),
		    json_string_value(json_object_get(ev, "status")),
		    json_string_value(json_object_get(ev, "event_id")));
	}
	printf("steps\n");
	for (size_t i = 0; i < json_array_size(steps); i++) {
		json_t *s = json_array_get(steps, i);
		char t1[32], t2[32];

		ctl_time(t1, sizeof(t1), json_object_get(s, "intent_at"));
		ctl_time(t2, sizeof(t2), json_object_get(s, "done_at"));
		printf("  %s  %-8s %-20s %8lld  %-10s %s\n", t1,
		    json_string_value(json_object_get(s, "kind")),
		    json_string_value(json_object_get(s, "sku")),
		    (long long)json_integer_value(json_object_get(s, "qty")),
		    json_is_string(json_object_get(s, "result")) ?
		    json_string_value(json_object_get(s, "result")) : "in flight", t2);
	}
	printf("outputs\n");
	for (size_t i = 0; i < json_array_size(outputs); i++) {
		json_t *x = json_array_get(outputs, i);
		char t1[32], t2[32];

		ctl_time(t1, sizeof(t1), json_object_get(x, "created_at"));
		ctl_time(t2, sizeof(t2), json_object_get(x, "published_at"));
		printf("  %s  %-18s %s  published %s\n", t1,
		    json_string_value(json_object_get(x, "type")),
		    json_string_value(json_object_get(x, "event_id")), t2);
	}
	json_decref(o);
	return 0;
}

const struct ctl_entry ctl_order_show_entry = {
	.name = "order show",
	.usage = "order show ORDER_ID [--json]",
	.help = "state, lines, every step with its time",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 1, .max_args = 1,
	.exec = ctl_order_show,
};
