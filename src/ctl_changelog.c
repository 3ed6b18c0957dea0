/* ctl_changelog.c: orderctl reconcile --changelog: the current record of every order in the state topic, compared with Redis. */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "event.h"
#include "journal.h"
#include "kafka.h"
#include "saga.h"
#include "util.h"

/* Nothing read for this long while partitions are still short of their
 * end: the broker or a leader is gone, and waiting longer shows nothing. */
#define CTL_CHANGELOG_STALL_MS 30000

struct changelog {
	struct ctl *c;
	struct reconcile *rc;
	const char *topic;
	int32_t *parts;		/* every partition of the topic */
	int nparts;
	long long records, tombstones;
	int orders, new_orders;
	bool failed;		/* a journal call failed inside a callback (said) */
};

/* The states a changelog record may carry; NONE: only parked events. */
static const char *const ctl_changelog_states[] = {
	"NONE", "NEW", "RESERVED", "CONFIRMED", "REJECTED", "CANCELLED", NULL,
};

static void
ctl_changelog_bad(struct changelog *cl, const struct kafka_record *m, const char *order_id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A record that cannot be read is drift of its own: the order it was
 * about is compared on its other records only. */
static void
ctl_changelog_bad(struct changelog *cl, const struct kafka_record *m, const char *order_id,
    const char *fmt, ...)
{
	char why[256], detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(detail, sizeof(detail), "%s [%" PRId32 "] offset %" PRId64 ": %s", cl->topic,
	    m->partition, m->offset, why);
	ctl_problem(cl->rc, "changelog_bad_record", NULL, order_id, detail);
}

/* Checks one record and keeps it in temp.changelog_orders when its
 * (epoch, version) is the order's highest so far. */
static int
ctl_changelog_record(const struct kafka_record *m, void *arg)
{
	struct changelog *cl = arg;
	struct saga_line lines[SAGA_MAX_LINES];
	char num[4][24], key[EVENT_ORDER_ID_MAX + 1] = "";
	const char *order_id, *state, *text, *p[7];
	json_error_t jerr;
	json_t *doc, *v;
	int nlines, i, err = 0;

	cl->records++;
	/* Names the order of a record whose own order_id is unreadable. */
	if (m->key != NULL && event_valid_name(m->key, m->key_len, EVENT_ORDER_ID_MAX)) {
		memcpy(key, m->key, m->key_len);
		key[m->key_len] = '\0';
	}
	/* A tombstone (the order was dropped) carries no (epoch, version), so
	 * it outranks none of the order's records: it is skipped. */
	if (m->value == NULL) {
		cl->tombstones++;
		return 0;
	}
	doc = json_loadb(m->value, m->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		ctl_changelog_bad(cl, m, key[0] ? key : NULL, "%s",
		    doc == NULL ? jerr.text : "not a JSON object");
		goto out;
	}
	order_id = json_string_value(json_object_get(doc, "order_id"));
	if (order_id == NULL || !event_valid_name(order_id, strlen(order_id), EVENT_ORDER_ID_MAX)) {
		ctl_changelog_bad(cl, m, key[0] ? key : NULL, "order_id: missing or not an "
		    "order id");
		goto out;
	}
	if (m->key != NULL && (m->key_len != strlen(order_id) ||
	    memcmp(m->key, order_id, m->key_len) != 0)) {
		ctl_changelog_bad(cl, m, order_id, "the key is not the order_id");
		goto out;
	}
	for (i = 0; i < 2; i++) {
		v = json_object_get(doc, i == 0 ? "epoch" : "version");
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			ctl_changelog_bad(cl, m, order_id, "%s: not an integer >= 0",
			    i == 0 ? "epoch" : "version");
			goto out;
		}
		snprintf(num[i], sizeof(num[i]), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	}
	state = json_string_value(json_object_get(doc, "state"));
	for (i = 0; state != NULL && ctl_changelog_states[i] != NULL; i++)
		if (strcmp(state, ctl_changelog_states[i]) == 0)
			break;
	if (state == NULL || ctl_changelog_states[i] == NULL) {
		ctl_changelog_bad(cl, m, order_id, "state: not one of NONE, NEW, RESERVED, "
		    "CONFIRMED, REJECTED, CANCELLED");
		goto out;
	}
	/* An order not created yet (NONE) may have no lines at all. */
	v = json_object_get(doc, "lines");
	text = v == NULL || json_is_null(v) ? "" : json_string_value(v);
	if (text == NULL || event_lines_parse(text, lines, &nlines) < 0) {
		ctl_changelog_bad(cl, m, order_id, "lines: not \"sku qty;sku qty\"");
		goto out;
	}
	/* Summed per sku by the writer: a sku twice is a broken record. */
	for (i = 0; i < nlines; i++)
		for (int k = 0; k < i; k++)
			if (strcmp(lines[i].sku, lines[k].sku) == 0) {
				ctl_changelog_bad(cl, m, order_id, "lines: sku %s twice",
				    lines[i].sku);
				goto out;
			}
	snprintf(num[2], sizeof(num[2]), "%" PRId32, m->partition);
	snprintf(num[3], sizeof(num[3]), "%" PRId64, m->offset);
	p[0] = order_id;
	p[1] = num[0];
	p[2] = num[1];
	p[3] = state;
	p[4] = text;
	p[5] = num[2];
	p[6] = num[3];
	if (journal_report(cl->c->j, "changelog_record", p, 7, NULL, NULL) < 0) {
		ctl_fail("journal: %s", journal_errmsg(cl->c->j));
		cl->failed = true;
		err = -EIO;
	}
out:
	json_decref(doc);
	return err;
}

/* Splits the lines of one current record into temp.changelog_lines. */
static int
ctl_changelog_lines_row(const struct journal_row *r, void *arg)
{
	struct changelog *cl = arg;
	const char *order_id = journal_row_text(r, "order_id");
	struct saga_line lines[SAGA_MAX_LINES];
	int nlines;

	/* Checked when the record was read. */
	if (event_lines_parse(journal_row_text(r, "lines"), lines, &nlines) < 0)
		nlines = 0;
	for (int i = 0; i < nlines; i++) {
		char qty[24];
		const char *p[3] = { order_id, lines[i].sku, qty };

		snprintf(qty, sizeof(qty), "%" PRId64, lines[i].qty);
		if (journal_report(cl->c->j, "changelog_line_insert", p, 3, NULL, NULL) < 0) {
			cl->failed = true;
			return 1;
		}
	}
	return 0;
}

static int
ctl_changelog_counts_row(const struct journal_row *r, void *arg)
{
	struct changelog *cl = arg;

	cl->orders = (int)journal_row_int(r, "orders");
	cl->new_orders = (int)journal_row_int(r, "new_orders");
	return 0;
}

/*
 * The partitions of the state topic, through the start-up check (a refused
 * password or certificate: one line, at once).  Returns 0, -ENOENT when
 * the topic does not exist, or -EIO; each said on stderr.
 */
static int
ctl_changelog_topic(struct changelog *cl)
{
	const char *topics[1] = { cl->topic };
	int nparts;

	if (ctl_kafka_check(cl->c, topics, 1, &nparts))
		return -EIO;
	if (nparts == -ENOENT) {
		ctl_fail("changelog topic %s ([topics] state): no such topic", cl->topic);
		return -ENOENT;
	}
	/* Kafka numbers the partitions of a topic 0..N-1. */
	cl->nparts = nparts;
	cl->parts = xcalloc((size_t)nparts + 1, sizeof(*cl->parts));
	for (int i = 0; i < nparts; i++)
		cl->parts[i] = i;
	return 0;
}

/*
 * Reads every partition from its start up to its high watermark at the
 * start of the read: records published later belong to a later run.
 * Returns 0, -EINVAL (a [kafka] configuration librdkafka refuses) or
 * another negative errno, each said on stderr.
 */
static int
ctl_changelog_read(struct changelog *cl)
{
	/* A group of its own each run, never joined nor committed to: the
	 * ACLs grant DESCRIBE on the prefix orderctl-reconcile-. */
	char *group = xasprintf("orderctl-reconcile-%ld", (long)getpid());
	struct kafka_read_options opt = {
		.group = group, .stall_ms = CTL_CHANGELOG_STALL_MS, .strict = true,
	};
	char *cause = NULL;
	int err;

	err = kafka_read_records(cl->c->cf, cl->topic, cl->parts, cl->nparts, &opt,
	    ctl_changelog_record, cl, &cause);
	if (err < 0 && !cl->failed)
		ctl_fail(err == -EINVAL ? "%s" : "kafka: %s", cause);
	free(cause);
	free(group);
	return err < 0 ? err : 0;
}

/*
 * Fills the TEMP tables of an in-memory database with Redis and the
 * current record of every order in the state topic.  Returns 0, or
 * -EINVAL / -ENOENT (configuration: exit 2) or another negative errno,
 * each said on stderr.
 */
static int
ctl_changelog(struct changelog *cl)
{
	struct journal_options jo = { .busy_timeout_ms = 10000 };
	struct ctl *c = cl->c;
	char *cause = NULL;
	bool open_tx = false;
	int err;

	if (cl->topic[0] == '\0') {
		ctl_fail("topics.state is empty: there is no changelog topic to read");
		return -EINVAL;
	}
	/* A database of its own: a journal knows only its own instance's
	 * orders, and this host may have none. */
	if (journal_open(&c->j, ":memory:", &jo, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return -EIO;
	}
	/* The topic first, so a wrong name fails before any Redis work. */
	if ((err = ctl_changelog_topic(cl)) < 0)
		goto fail;
	/* Redis before the end offsets: a state orderd publishes while Redis
	 * is read is then still in this run's part of the topic. */
	if (ctl_redis(c) || ctl_reconcile_load(c)) {
		err = -EIO;
		goto fail;
	}
	if (journal_report(c->j, "changelog_tables", NULL, 0, NULL, NULL) < 0 ||
	    journal_begin(c->j, "orderctl") < 0) {
		err = -EIO;
		ctl_fail("journal: %s", journal_errmsg(c->j));
		goto fail;
	}
	open_tx = true;
	if ((err = ctl_changelog_read(cl)) < 0)
		goto fail;
	if (journal_report(c->j, "changelog_current", NULL, 0, ctl_changelog_lines_row,
	    cl) < 0 || cl->failed ||
	    journal_report(c->j, "changelog_counts", NULL, 0, ctl_changelog_counts_row,
	    cl) < 0 || journal_commit(c->j) < 0) {
		err = -EIO;
		ctl_fail("journal: %s", journal_errmsg(c->j));
		goto fail;
	}
	return 0;
fail:
	if (open_tx)
		journal_rollback(c->j);
	return err;
}

/* Redis against the state topic: every instance's orders, this journal's or not. */
static int
ctl_reconcile_changelog(struct ctl *c, int argc, char **argv)
{
	struct reconcile rc = {
		.problems = json_array(), .source = "changelog", .unsettled_why = "orders in NEW",
	};
	struct changelog cl = { .c = c, .rc = &rc, .topic = c->cf->topic_state };
	json_t *more;
	char *tail;
	int err, status;

	err = ctl_changelog(&cl);
	free(cl.parts);
	if (err < 0) {
		json_decref(rc.problems);
		/* A [kafka] key librdkafka refuses or a topic that is not
		 * there is configuration. */
		return err == -EINVAL || err == -ENOENT ? 2 : 1;
	}
	if (ctl_reconcile_compare(c, &rc, "changelog_reconcile_stock",
	    "changelog_reconcile_lines")) {
		json_decref(rc.problems);
		return 1;
	}
	more = json_pack("{s:s, s:I, s:I, s:i, s:i}", "topic", cl.topic,
	    "records", (json_int_t)cl.records, "tombstones", (json_int_t)cl.tombstones,
	    "orders", cl.orders, "new_orders", cl.new_orders);
	tail = xasprintf("; changelog %s: %lld records (%lld tombstones), %d orders, %d in "
	    "NEW not compared", cl.topic, cl.records, cl.tombstones, cl.orders, cl.new_orders);
	status = ctl_reconcile_print(c, &rc, more, tail);
	free(tail);
	return status;
}

const struct ctl_entry ctl_reconcile_changelog_entry = {
	.name = "reconcile --changelog",
	.usage = "reconcile [--changelog] [--json]",
	.synopsis = "reconcile --changelog [--json]",
	.help = "the state topic (every instance's orders) vs\nRedis; exit 1 on any drift",
	/* Its own in-memory database, not the journal: opened by itself, as
	 * is Redis once the topic is known to exist. */
	.needs = CTL_REDIS | CTL_KAFKA,
	.min_args = 0, .max_args = 0,
	.exec = ctl_reconcile_changelog,
};
