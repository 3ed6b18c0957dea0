/* ctl_outbox.c: orderctl outbox, outbox list, retry and drop, and dlq list: the journal's outbox counters, its rows not published (dead ones retried or dropped) and the messages parked in its DLQ table. */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "escape.h"
#include "journal.h"
#include "util.h"

static int
ctl_outbox(struct ctl *c, int argc, char **argv)
{
	int64_t pending, published, oldest, dead, age;

	if (journal_outbox_stats(c->j, &pending, &published, &oldest, &dead) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	age = pending > 0 && oldest > 0 ? util_now_ms() - oldest : 0;
	if (age < 0)
		age = 0;
	/* The lines and keys of before first, "dead" after them: scripts
	 * that read the old ones read them still. */
	if (c->json)
		ctl_print_json(json_pack("{s:I, s:I, s:I, s:I}", "pending", (json_int_t)pending,
		    "published", (json_int_t)published, "oldest_pending_age_ms",
		    (json_int_t)age, "dead", (json_int_t)dead));
	else
		printf("pending    %lld\npublished  %lld\noldest pending age  %lld ms\n"
		    "dead       %lld%s\n", (long long)pending, (long long)published,
		    (long long)age, (long long)dead,
		    dead > 0 ? "  (orderctl outbox list --dead)" : "");
	return 0;
}

/* A text column or JSON null. */
static json_t *
ctl_text_or_null(const struct journal_row *r, const char *col)
{
	const char *v = journal_row_text(r, col);

	return v != NULL ? json_string(v) : json_null();
}

static int
ctl_outbox_row(const struct journal_row *r, void *arg)
{
	json_t *arr = arg;
	int64_t now = util_now_ms(), created = journal_row_int(r, "created_at");
	json_t *row = json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:I, s:o, s:I, s:I}",
	    "id", (json_int_t)journal_row_int(r, "id"),
	    "state", journal_row_text(r, "state"),
	    "order_id", ctl_text_or_null(r, "order_id"),
	    "type", journal_row_text(r, "type"),
	    "topic", journal_row_text(r, "topic"),
	    "event_id", journal_row_text(r, "event_id"),
	    "attempts", (json_int_t)journal_row_int(r, "attempts"),
	    "last_error", ctl_text_or_null(r, "last_error"),
	    "created_at", (json_int_t)created,
	    "age_ms", (json_int_t)(now > created ? now - created : 0));

	json_object_set_new(row, "dead_at", journal_row_text(r, "dead_at") != NULL ?
	    json_integer(journal_row_int(r, "dead_at")) : json_null());
	json_array_append_new(arr, row);
	return 0;
}

/* orderctl outbox list [--dead]: the rows not published yet, in the relay's
 * order, each pending, held (behind a dead row of its order) or dead. */
static int
ctl_outbox_list(struct ctl *c, int argc, char **argv)
{
	const char *which = "all";
	json_t *arr;
	int n;

	if (argc == 1 && strcmp(argv[0], "--dead") == 0)
		which = "dead";
	else if (argc > 0)
		return ctl_usage(c);
	arr = json_array();
	n = journal_report(c->j, "outbox_list", &which, 1, ctl_outbox_row, arr);
	if (n < 0) {
		json_decref(arr);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (c->json) {
		ctl_print_json(json_pack("{s:o}", "rows", arr));
		return 0;
	}
	ctl_json_clean(arr);
	printf("%-8s %-7s %-24s %-18s %-20s %8s %8s  %s\n", "ID", "STATE", "ORDER", "TYPE",
	    "TOPIC", "ATTEMPTS", "AGE_S", "LAST_ERROR");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *m = json_array_get(arr, i);
		json_t *o = json_object_get(m, "order_id"), *e = json_object_get(m, "last_error");

		printf("%-8lld %-7s %-24s %-18s %-20s %8lld %8lld  %s\n",
		    (long long)json_integer_value(json_object_get(m, "id")),
		    json_string_value(json_object_get(m, "state")),
		    json_is_string(o) ? json_string_value(o) : "-",
		    json_string_value(json_object_get(m, "type")),
		    json_string_value(json_object_get(m, "topic")),
		    (long long)json_integer_value(json_object_get(m, "attempts")),
		    (long long)json_integer_value(json_object_get(m, "age_ms")) / 1000,
		    json_is_string(e) ? json_string_value(e) : "-");
	}
	json_decref(arr);
	return 0;
}

/* An outbox row's id: 1..INT64_MAX; 0 when arg is none. */
static int64_t
ctl_outbox_id(const char *arg)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	return errno != 0 || *end != '\0' || end == arg || v <= 0 ? 0 : (int64_t)v;
}

/* What one row is (report outbox_row). */
struct ctl_outbox_state {
	bool found;
	char state[16], type[64], topic[256], order_id[128];
};

static int
ctl_outbox_state_row(const struct journal_row *r, void *arg)
{
	struct ctl_outbox_state *s = arg;
	const char *o = journal_row_text(r, "order_id");

	s->found = true;
	snprintf(s->state, sizeof(s->state), "%s", journal_row_text(r, "state"));
	snprintf(s->type, sizeof(s->type), "%s", journal_row_text(r, "type"));
	snprintf(s->topic, sizeof(s->topic), "%s", journal_row_text(r, "topic"));
	snprintf(s->order_id, sizeof(s->order_id), "%s", o ? o : "");
	return 0;
}

/*
 * outbox retry and drop, one row: in one write transaction, the row's
 * state is read, then changed when it is dead.  orderd notices the
 * commit (the journal's data_version, within about a second) and its
 * relay reads the outbox again from the first row to publish.
 */
static int
ctl_outbox_change(struct ctl *c, const char *arg, bool drop)
{
	int64_t id = ctl_outbox_id(arg);
	struct ctl_outbox_state s = { 0 };
	char idtext[24];
	const char *p = idtext;
	char *what, *order;
	int err, n;

	if (id == 0)
		return ctl_usage(c);
	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	if ((err = journal_begin(c->j, "orderctl")) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	if ((n = journal_report(c->j, "outbox_row", &p, 1, ctl_outbox_state_row, &s)) < 0) {
		journal_rollback(c->j);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (!s.found) {
		journal_rollback(c->j);
		return ctl_fail("outbox row %" PRId64 ": no such row", id);
	}
	if (strcmp(s.state, "dead") != 0) {
		bool done = drop ? strcmp(s.state, "dropped") == 0 : true;

		journal_rollback(c->j);
		/* Retrying what is not dead changes nothing, so it succeeds;
		 * dropping what may still be published is refused. */
		if (c->json && done)
			ctl_print_json(json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id,
			    "state", s.state, "changed", 0));
		else if (done)
			printf("outbox row %" PRId64 " is %s, not dead: nothing to %s\n", id,
			    s.state, drop ? "drop" : "retry");
		else
			return ctl_fail("outbox row %" PRId64 " is %s, not dead: only a dead row "
			    "can be dropped", id, s.state);
		return 0;
	}
	n = drop ? journal_outbox_drop(c->j, id, util_now_ms()) :
	    journal_outbox_retry(c->j, id, util_now_ms());
	if (n < 0 || (err = journal_commit(c->j)) < 0) {
		journal_rollback(c->j);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (c->json) {
		ctl_print_json(json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id,
		    "state", drop ? "dropped" : "pending", "changed", n > 0));
		return 0;
	}
	order = escape_tty(s.order_id, strlen(s.order_id), ESCAPE_TTY_MAX);
	what = xasprintf("%s%s%s to %s", s.type, s.order_id[0] ? " of order " : "", order,
	    s.topic);
	if (drop)
		printf("outbox row %" PRId64 " (%s) dropped: it is never published; the "
		    "order's later rows go on\n", id, what);
	else
		printf("outbox row %" PRId64 " (%s) is pending again: orderd publishes it, then "
		    "the order's rows behind it\n", id, what);
	free(what);
	free(order);
	return 0;
}

static int
ctl_outbox_retry(struct ctl *c, int argc, char **argv)
{
	int err, n;

	if (strcmp(argv[0], "--all-dead") != 0)
		return ctl_outbox_change(c, argv[0], false);
	if ((err = journal_begin(c->j, "orderctl")) < 0 ||
	    (n = journal_outbox_retry(c->j, 0, util_now_ms())) < 0 ||
	    (err = journal_commit(c->j)) < 0) {
		journal_rollback(c->j);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (c->json)
		ctl_print_json(json_pack("{s:i}", "retried", n));
	else if (n == 0)
		printf("no dead outbox row: nothing to retry\n");
	else
		printf("%d dead outbox row%s pending again: orderd publishes them, then their "
		    "orders' rows behind them\n", n, n == 1 ? "" : "s");
	return 0;
}

static int
ctl_outbox_drop(struct ctl *c, int argc, char **argv)
{
	return ctl_outbox_change(c, argv[0], true);
}

static int
ctl_dlq_row(const struct journal_row *r, void *arg)
{
	json_t *arr = arg;
	const char *key = journal_row_text(r, "msg_key");
	json_t *jkey = key ? json_string(key) : NULL;	/* NULL: not UTF-8 */

	json_array_append_new(arr, json_pack("{s:I, s:s, s:i, s:I, s:s, s:I, s:I, s:o}",
	    "id", (json_int_t)journal_row_int(r, "id"),
	    "topic", journal_row_text(r, "topic"),
	    "partition", (int)journal_row_int(r, "kafka_partition"),
	    "offset", (json_int_t)journal_row_int(r, "kafka_offset"),
	    "error", journal_row_text(r, "error"),
	    "received_at", (json_int_t)journal_row_int(r, "received_at"),
	    "bytes", (json_int_t)journal_row_int(r, "bytes"),
	    "key", jkey ? jkey : json_null()));
	return 0;
}

static int
ctl_dlq_list(struct ctl *c, int argc, char **argv)
{
	json_t *arr = json_array();
	int n;

	n = journal_report(c->j, "dlq", NULL, 0, ctl_dlq_row, arr);
	if (n < 0) {
		json_decref(arr);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (c->json) {
		ctl_print_json(json_pack("{s:o}", "messages", arr));
		return 0;
	}
	ctl_json_clean(arr);
	printf("%-6s %-20s %4s %10s  %s\n", "ID", "TOPIC", "PART", "OFFSET", "ERROR");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *m = json_array_get(arr, i);

		printf("%-6lld %-20s %4d %10lld  %s\n",
		    (long long)json_integer_value(json_object_get(m, "id")),
		    json_string_value(json_object_get(m, "topic")),
		    (int)json_integer_value(json_object_get(m, "partition")),
		    (long long)json_integer_value(json_object_get(m, "offset")),
		    json_string_value(json_object_get(m, "error")));
	}
	json_decref(arr);
	return 0;
}

const struct ctl_entry ctl_outbox_entry = {
	.name = "outbox",
	.usage = "outbox [--json]",
	.help = "pending, published, oldest pending age",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 0, .max_args = 0,
	.exec = ctl_outbox,
};

const struct ctl_entry ctl_outbox_list_entry = {
	.name = "outbox list",
	.usage = "outbox list [--dead] [--json]",
	.help = "rows not published yet (pending, held behind a dead\nrow of their order, dead) with attempts and last error",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 0, .max_args = 1,
	.exec = ctl_outbox_list,
};

const struct ctl_entry ctl_outbox_retry_entry = {
	.name = "outbox retry",
	.usage = "outbox retry ID|--all-dead [--json]",
	.help = "a dead row (every one) pending again: orderd publishes it",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 1, .max_args = 1,
	.exec = ctl_outbox_retry,
};

const struct ctl_entry ctl_outbox_drop_entry = {
	.name = "outbox drop",
	.usage = "outbox drop ID [--json]",
	.help = "a dead row is never published (kept, marked dropped);\nits order's later rows go",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 1, .max_args = 1,
	.exec = ctl_outbox_drop,
};

const struct ctl_entry ctl_dlq_list_entry = {
	.name = "dlq list",
	.usage = "dlq list [--json]",
	.help = "messages parked as undecodable or invalid",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 0, .max_args = 0,
	.group_usage = true,
	.exec = ctl_dlq_list,
};
