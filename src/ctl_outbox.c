/* ctl_outbox.c: orderctl outbox and dlq list: the journal's outbox counters and the messages parked in its DLQ table. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "ctl.h"
#include "journal.h"
#include "util.h"

static int
ctl_outbox(struct ctl *c, int argc, char **argv)
{
	int64_t pending, published, oldest, age;

	if (journal_outbox_stats(c->j, &pending, &published, &oldest) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	age = pending > 0 && oldest > 0 ? util_now_ms() - oldest : 0;
	if (age < 0)
		age = 0;
	if (c->json)
		ctl_print_json(json_pack("{s:I, s:I, s:I}", "pending", (json_int_t)pending,
		    "published", (json_int_t)published, "oldest_pending_age_ms",
		    (json_int_t)age));
	else
		printf("pending    %lld\npublished  %lld\noldest pending age  %lld ms\n",
		    (long long)pending, (long long)published, (long long)age);
	return 0;
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

const struct ctl_entry ctl_dlq_list_entry = {
	.name = "dlq list",
	.usage = "dlq list [--json]",
	.help = "messages parked as undecodable or invalid",
	.needs = CTL_JOURNAL, .opens = CTL_JOURNAL,
	.min_args = 0, .max_args = 0,
	.group_usage = true,
	.exec = ctl_dlq_list,
};
