/* ctl_reconcile.c: orderctl reconcile: Redis's stock and reservation records copied into TEMP tables and compared with the journal by SQL. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "config.h"
#include "ctl.h"
#include "journal.h"
#include "util.h"

void
ctl_problem(struct reconcile *rc, const char *kind, const char *sku, const char *order_id,
    const char *detail)
{
	json_t *p = json_pack("{s:s, s:s}", "kind", kind, "detail", detail);

	if (sku != NULL)
		json_object_set_new(p, "sku", json_string(sku));
	if (order_id != NULL)
		json_object_set_new(p, "order_id", json_string(order_id));
	json_array_append_new(rc->problems, p);
}

static int
ctl_reconcile_stock_row(const struct journal_row *r, void *arg)
{
	struct reconcile *rc = arg;
	/* The types first: SQLite leaves a column's type undefined once it
	 * has converted its value. */
	bool in_redis = journal_row_type(r, "redis_available") != JOURNAL_NULL;
	/* The changelog knows no stock additions (NULL): Redis's own
	 * invariant is all that checks added then. */
	bool knows_added = journal_row_type(r, "added") != JOURNAL_NULL;
	const char *sku = journal_row_text(r, "sku");
	long long added = journal_row_int(r, "added"), reserved = journal_row_int(r, "reserved"),
	    sold = journal_row_int(r, "sold");
	bool unsettled = journal_row_int(r, "unsettled") != 0;
	long long r_av = journal_row_int(r, "redis_available"),
	    r_res = journal_row_int(r, "redis_reserved"), r_sold = journal_row_int(r, "redis_sold"),
	    r_add = journal_row_int(r, "redis_added");
	char detail[512];

	rc->skus++;
	if (in_redis && r_av + r_res + r_sold != r_add) {
		snprintf(detail, sizeof(detail), "Redis: available %lld + reserved %lld + "
		    "sold %lld != added %lld", r_av, r_res, r_sold, r_add);
		ctl_problem(rc, "invariant", sku, NULL, detail);
	}
	if (in_redis && (r_av < 0 || r_res < 0 || r_sold < 0)) {
		snprintf(detail, sizeof(detail), "Redis: a negative counter (available %lld, "
		    "reserved %lld, sold %lld)", r_av, r_res, r_sold);
		ctl_problem(rc, "negative_counter", sku, NULL, detail);
	}
	if (unsettled) {
		rc->unsettled++;
		return 0;
	}
	if (!knows_added)
		added = r_add;
	if (!in_redis && (added != 0 || reserved != 0 || sold != 0)) {
		if (knows_added)
			snprintf(detail, sizeof(detail), "%s: added %lld, reserved %lld, sold "
			    "%lld; Redis has no stock for it", rc->source, added, reserved, sold);
		else
			snprintf(detail, sizeof(detail), "%s: reserved %lld, sold %lld; Redis "
			    "has no stock for it", rc->source, reserved, sold);
		ctl_problem(rc, "missing_in_redis", sku, NULL, detail);
	} else if (in_redis && (added != r_add || reserved != r_res || sold != r_sold)) {
		if (knows_added)
			snprintf(detail, sizeof(detail), "%s: added %lld, reserved %lld, sold "
			    "%lld; Redis: added %lld, reserved %lld, sold %lld", rc->source, added,
			    reserved, sold, r_add, r_res, r_sold);
		else
			snprintf(detail, sizeof(detail), "%s: reserved %lld, sold %lld; Redis: "
			    "reserved %lld, sold %lld", rc->source, reserved, sold, r_res, r_sold);
		ctl_problem(rc, "counter_drift", sku, NULL, detail);
	}
	return 0;
}

static int
ctl_reconcile_line_row(const struct journal_row *r, void *arg)
{
	ctl_problem(arg, journal_row_text(r, "kind"), journal_row_text(r, "sku"),
	    journal_row_text(r, "order_id"), journal_row_text(r, "detail"));
	return 0;
}

/* Pipelined, so SQL of orderctl's own connection can compare them. */
int
ctl_reconcile_load(struct ctl *c)
{
	/* Only stock hashes and reservation records. */
	static const char *const kinds[] = { ":stock", ":r:", NULL };
	struct ctl_keys ks = { .kinds = kinds };
	size_t plen;
	char **keys;
	int nkeys, err = 0;

	if (journal_report(c->j, "redis_tables", NULL, 0, NULL, NULL) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	if (ctl_keys_scan(c, "{*}:*", &ks) < 0) {
		err = 1;
		goto out;
	}
	plen = ks.plen;
	keys = ks.v;
	nkeys = ks.n;
	/* One transaction for the inserts, but a deferred one: they go to
	 * TEMP tables only, so orderd's writer never waits for this copy
	 * (it would stop after 5 s: README, "The journal"). */
	if (journal_begin_read(c->j, "orderctl") < 0) {
		err = ctl_fail("journal: %s", journal_errmsg(c->j));
		goto out;
	}
	for (int base = 0; base < nkeys && err == 0; base += 1000) {
		int end = base + 1000 < nkeys ? base + 1000 : nkeys;

		for (int i = base; i < end; i++) {
			const char *stock[6] = { "HMGET", keys[i], "available", "reserved", "sold",
			    "added" };
			const char *resv[6] = { "HMGET", keys[i], "state", "qty", "order",
			    "expires" };
			bool is_stock = strstr(keys[i] + plen, "}:stock") != NULL;

			if (cluster_sync_append(c->rc, 1, 6, is_stock ? stock : resv,
			    NULL) < 0) {
				err = ctl_fail("redis: %s", cluster_sync_errstr(c->rc));
				break;
			}
		}
		for (int i = base; i < end; i++) {
			redisReply *r = NULL;
			const char *sku0 = keys[i] + plen + 1;
			const char *close = strchr(sku0, '}');
			char *sku;
			const char *p[5];
			char buf[4][24];

			if (cluster_sync_queued(c->rc) == 0)
				break;
			if (cluster_sync_get_reply(c->rc, &r) < 0 || r->type != REDIS_REPLY_ARRAY) {
				if (err == 0)
					err = ctl_fail("redis: %s", r == NULL ? cluster_sync_errstr(c->rc) :
					    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
				freeReplyObject(r);
				continue;	/* the rest of the replies still come */
			}
			sku = xstrndup(sku0, (size_t)(close - sku0));
			if (strcmp(close, "}:stock") == 0) {
				p[0] = sku;
				for (int f = 0; f < 4; f++) {
					snprintf(buf[f], sizeof(buf[f]), "%s",
					    r->element[f]->type == REDIS_REPLY_STRING ?
					    r->element[f]->str : "0");
					p[f + 1] = buf[f];
				}
				journal_report(c->j, "redis_stock_insert", p, 5, NULL, NULL);
			} else if (r->element[0]->type == REDIS_REPLY_STRING) {
				p[0] = r->element[2]->type == REDIS_REPLY_STRING ?
				    r->element[2]->str : close + 4;
				p[1] = sku;
				p[2] = r->element[0]->str;
				p[3] = r->element[1]->type == REDIS_REPLY_STRING ?
				    r->element[1]->str : "0";
				p[4] = r->element[3]->type == REDIS_REPLY_STRING ?
				    r->element[3]->str : "0";
				journal_report(c->j, "redis_resv_insert", p, 5, NULL, NULL);
			}
			free(sku);
			freeReplyObject(r);
		}
	}
	/* TEMP tables only: nothing of the journal's own changes. */
	if (journal_commit(c->j) < 0 && err == 0)
		err = ctl_fail("journal: %s", journal_errmsg(c->j));
out:
	ctl_keys_free(&ks);
	return err;
}

int
ctl_reconcile_compare(struct ctl *c, struct reconcile *rc, const char *stock,
    const char *lines)
{
	if (journal_report(c->j, stock, NULL, 0, ctl_reconcile_stock_row, rc) < 0 ||
	    journal_report(c->j, lines, NULL, 0, ctl_reconcile_line_row, rc) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	return 0;
}

int
ctl_reconcile_print(struct ctl *c, struct reconcile *rc, json_t *more, const char *tail)
{
	size_t n = json_array_size(rc->problems);

	if (c->json) {
		json_t *doc = json_pack("{s:b, s:o, s:i, s:i}", "ok", n == 0, "problems",
		    rc->problems, "skus", rc->skus, "unsettled_skus", rc->unsettled);

		if (more != NULL)
			json_object_set_new(doc, rc->source, more);
		ctl_print_json(doc);
		return n == 0 ? 0 : 1;
	}
	json_decref(more);
	ctl_json_clean(rc->problems);
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(rc->problems, i);

		printf("%-28s %-20s %-24s %s\n", json_string_value(json_object_get(p, "kind")),
		    json_is_string(json_object_get(p, "sku")) ?
		    json_string_value(json_object_get(p, "sku")) : "-",
		    json_is_string(json_object_get(p, "order_id")) ?
		    json_string_value(json_object_get(p, "order_id")) : "-",
		    json_string_value(json_object_get(p, "detail")));
	}
	printf("reconcile: %s: %d skus, %d unsettled (%s), %zu problems%s\n",
	    n == 0 ? "ok" : "DRIFT", rc->skus, rc->unsettled, rc->unsettled_why, n,
	    tail != NULL ? tail : "");
	json_decref(rc->problems);
	return n == 0 ? 0 : 1;
}

/* Redis against this journal: what its steps and stock additions imply. */
static int
ctl_reconcile(struct ctl *c, int argc, char **argv)
{
	struct reconcile rc = {
		.problems = json_array(), .source = "journal", .unsettled_why = "steps in flight",
	};

	if (ctl_reconcile_load(c) ||
	    ctl_reconcile_compare(c, &rc, "reconcile_stock", "reconcile_lines")) {
		json_decref(rc.problems);
		return 1;
	}
	return ctl_reconcile_print(c, &rc, NULL, NULL);
}

const struct ctl_entry ctl_reconcile_entry = {
	.name = "reconcile",
	.usage = "reconcile [--changelog] [--json]",
	.synopsis = "reconcile [--json]",
	.help = "journal vs Redis; exit 1 on any drift",
	.needs = CTL_JOURNAL | CTL_REDIS, .opens = CTL_JOURNAL | CTL_REDIS,
	.min_args = 0, .max_args = 0,
	.exec = ctl_reconcile,
};
