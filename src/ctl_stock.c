/* ctl_stock.c: orderctl stock add and stock show: stock additions journaled then applied by Lua, and Redis's counters per sku. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uuid/uuid.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "config.h"
#include "ctl.h"
#include "escape.h"
#include "event.h"
#include "inventory.h"
#include "journal.h"
#include "util.h"

static int
ctl_stock_add(struct ctl *c, int argc, char **argv)
{
	char id[37], *src[INVENTORY_SCRIPT_COUNT], *cause = NULL, *end;
	const char *cmd[INVENTORY_CALL_WORDS];
	struct inventory_call call;
	long long qty;
	redisReply *r;
	uuid_t u;
	int err, ncmd;

	if (!event_valid_name(argv[0], strlen(argv[0]), SAGA_SKU_MAX)) {
		fprintf(stderr, "orderctl: SKU '%s': must be 1..%d of [A-Za-z0-9._:-]\n",
		    argv[0], SAGA_SKU_MAX);
		return 2;
	}
	errno = 0;
	qty = strtoll(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[1] || qty <= 0 ||
	    qty > 1000000000000LL) {
		fprintf(stderr, "orderctl: QTY '%s': must be an integer in 1..10^12\n", argv[1]);
		return 2;
	}
	/* Opened once the arguments are good: opening creates a missing journal. */
	if (ctl_journal(c))
		return 1;
	/* Journaled first: what Redis gets is never more than the journal knows. */
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	if ((err = journal_begin(c->j, "orderctl")) < 0 ||
	    (err = journal_stock_adjustment_add(c->j, id, argv[0], qty, util_now_ms())) < 0 ||
	    (err = journal_commit(c->j)) < 0) {
		journal_rollback(c->j);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (ctl_redis(c))
		return ctl_fail("stock addition %s is journaled; orderd applies it when "
		    "it reaches Redis", id);
	if (inventory_read_scripts(src, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	if (inventory_call_stock_add(&call, c->cf->redis_prefix, argv[0], id, qty) < 0) {
		for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
			free(src[i]);
		return ctl_fail("%s: its Redis keys do not fit in %d bytes", argv[0],
		    INVENTORY_KEY_MAX);
	}
	ncmd = inventory_call_command(&call, "EVAL", src[INVENTORY_STOCK_ADD], cmd);
	r = cluster_sync_command(c->rc, 3, ncmd, cmd, NULL);	/* routed by word 3, KEYS[1] */
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(src[i]);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		ctl_fail("redis: %s; stock addition %s is journaled and applied later",
		    r == NULL ? cluster_sync_errstr(c->rc) : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply", id);
		freeReplyObject(r);
		return 1;
	}
	if ((err = journal_stock_adjustment_applied(c->j, id, util_now_ms())) < 0)
		ctl_fail("journal: %s (the stock was added)", journal_errmsg(c->j));
	if (c->json) {
		ctl_print_json(json_pack("{s:s, s:s, s:I, s:I}", "adjustment_id", id,
		    "sku", argv[0], "added", (json_int_t)qty,
		    "available", (json_int_t)r->element[1]->integer));
	} else {
		printf("%s: added %lld, available %lld\n", argv[0], qty,
		    r->element[1]->integer);
	}
	freeReplyObject(r);
	return err < 0 ? 1 : 0;
}

struct stock_row {
	long long available, reserved, sold, added;
	bool exists;
};

static int
ctl_stock_get(struct ctl *c, const char *sku, struct stock_row *row)
{
	char key[INVENTORY_KEY_MAX];
	const char *argv[6] = { "HMGET", key, "available", "reserved", "sold", "added" };
	redisReply *r;

	memset(row, 0, sizeof(*row));
	/* A sku from the command line may be of any length. */
	if (inventory_key_stock(key, sizeof(key), c->cf->redis_prefix, sku) < 0) {
		ctl_fail("%s: its Redis key does not fit in %d bytes", sku, INVENTORY_KEY_MAX);
		return -ENAMETOOLONG;
	}
	r = cluster_sync_command(c->rc, 1, 6, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		ctl_fail("redis: %s", r == NULL ? cluster_sync_errstr(c->rc) :
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		freeReplyObject(r);
		return -EIO;
	}
	for (int i = 0; i < 4; i++) {
		long long v = r->element[i]->type == REDIS_REPLY_STRING ?
		    atoll(r->element[i]->str) : 0;

		row->exists |= r->element[i]->type == REDIS_REPLY_STRING;
		if (i == 0) row->available = v;
		if (i == 1) row->reserved = v;
		if (i == 2) row->sold = v;
		if (i == 3) row->added = v;
	}
	freeReplyObject(r);
	return 0;
}

/* The skus of the command line, or every one with a stock hash in Redis. */
static int
ctl_stock_show(struct ctl *c, int argc, char **argv)
{
	static const char *const kinds[] = { ":stock", NULL };
	struct ctl_keys ks = { .kinds = kinds, .skus = true };
	char **skus = argv;
	int n = argc, status = 0;
	json_t *doc = NULL, *arr = NULL;

	if (argc == 0) {
		/* What a failed SCAN found is still shown, with exit 1. */
		if (ctl_keys_scan(c, "{*}:stock", &ks) < 0)
			status = 1;
		skus = ks.v;
		n = ks.n;
	}
	if (c->json) {
		doc = json_object();
		arr = json_array();
		json_object_set_new(doc, "skus", arr);
	} else {
		printf("%-24s %12s %12s %12s\n", "SKU", "AVAILABLE", "RESERVED", "SOLD");
	}
	for (int i = 0; i < n; i++) {
		struct stock_row row;

		if (ctl_stock_get(c, skus[i], &row) < 0) {
			status = 1;
			break;
		}
		if (!row.exists && argc > 0)
			fprintf(stderr, "orderctl: %s: no stock recorded\n", skus[i]);
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I}",
			    "sku", skus[i], "available", (json_int_t)row.available,
			    "reserved", (json_int_t)row.reserved, "sold", (json_int_t)row.sold,
			    "added", (json_int_t)row.added));
		else {
			/* A sku read from a Redis key may hold any byte. */
			char *k = escape_tty(skus[i], strlen(skus[i]), ESCAPE_TTY_MAX);

			printf("%-24s %12lld %12lld %12lld\n", k, row.available,
			    row.reserved, row.sold);
			free(k);
		}
	}
	ctl_keys_free(&ks);
	if (doc != NULL) {
		if (status == 0)
			ctl_print_json(doc);
		else
			json_decref(doc);
	}
	return status;
}

const struct ctl_entry ctl_stock_add_entry = {
	.name = "stock add",
	.usage = "stock add SKU QTY",
	.help = "add QTY (> 0) units; journaled, applied by Lua",
	/* Both opened by stock add itself: the journal once the arguments
	 * are good, Redis once the addition is journaled. */
	.needs = CTL_JOURNAL | CTL_REDIS,
	.min_args = 2, .max_args = 2,
	.exec = ctl_stock_add,
};

const struct ctl_entry ctl_stock_show_entry = {
	.name = "stock show",
	.usage = "stock show [SKU...] [--json]",
	.help = "available, reserved, sold per sku",
	.needs = CTL_REDIS, .opens = CTL_REDIS,
	.min_args = 0, .max_args = -1,
	.exec = ctl_stock_show,
};
