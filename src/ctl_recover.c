/* ctl_recover.c: orderctl recover --rebuild-redis: every sku and reservation record written back to Redis, through restore.lua, from the journal alone (one instance only: with [topics] state set, --only-instance says so). */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "config.h"
#include "ctl.h"
#include "inventory.h"
#include "journal.h"
#include "util.h"

#define CTL_PIPELINE 1000	/* calls sent before their replies are read */

struct restore {
	struct ctl *c;
	char sha[41];
	int pending;		/* calls sent whose reply is not read yet */
	bool failed;		/* a call failed: stop sending */
	long long skus, stock_keys, reservations, adjustments, dropped;
	long long unapplied, in_flight;
};

/* Reads replies until at most keep are outstanding.  An error reply or a
 * lost connection is reported once and stops the rebuild. */
static int
ctl_restore_drain(struct restore *rs, int keep)
{
	while (rs->pending > keep) {
		redisReply *r = NULL;

		rs->pending--;
		if (cluster_sync_get_reply(rs->c->rc, &r) < 0) {
			/* The replies after it are read all the same. */
			if (!rs->failed)
				ctl_fail("redis: %s", cluster_sync_errstr(rs->c->rc));
			rs->failed = true;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			if (!rs->failed)
				ctl_fail("redis: restore.lua: %s", r->str);
			rs->failed = true;
		} else if (r->type == REDIS_REPLY_INTEGER) {
			rs->dropped += r->integer;
		}
		freeReplyObject(r);
	}
	return rs->failed ? -EIO : 0;
}

/* Sends one restore.lua call (pipelined). */
static int
ctl_restore_call(struct restore *rs, int argc, const char **argv)
{
	if (rs->failed)
		return -EIO;
	/* Every call is EVALSHA SHA NKEYS KEY...: routed by its first key. */
	if (cluster_sync_append(rs->c->rc, 3, argc, argv, NULL) < 0) {
		ctl_fail("redis: %s", cluster_sync_errstr(rs->c->rc));
		rs->failed = true;
		return -EIO;
	}
	rs->pending++;
	return rs->pending >= CTL_PIPELINE ? ctl_restore_drain(rs, 0) : 0;
}

/* --force: every inventory key under the prefix goes first, so keys the
 * journal does not know (a reservation of an unknown order, a stray
 * adjustment id) do not survive the rebuild.  Other keys are left alone. */
static int
ctl_restore_drop(struct restore *rs)
{
	static const char *const kinds[] = { ":stock", ":adds", ":r:", NULL };
	struct ctl_keys ks = { .kinds = kinds };
	int err = 0;

	/* Collected first: a SCAN cannot share the connections with calls
	 * whose replies are still to be read. */
	if (ctl_keys_scan(rs->c, "{*}:*", &ks) < 0) {
		ctl_keys_free(&ks);
		return -EIO;
	}
	for (int i = 0; i < ks.n && err == 0; i++) {
		const char *argv[INVENTORY_CALL_WORDS];
		struct inventory_call call;

		err = inventory_call_restore_drop(&call, ks.v[i]);	/* -EINVAL: no key */
		if (err == 0)
			err = ctl_restore_call(rs,
			    inventory_call_command(&call, "EVALSHA", rs->sha, argv), argv);
	}
	ctl_keys_free(&ks);
	if (ctl_restore_drain(rs, 0) < 0 || err < 0)
		return -EIO;
	return 0;
}

static int
ctl_restore_stock_row(const struct journal_row *r, void *arg)
{
	struct restore *rs = arg;
	const char *sku = journal_row_text(r, "sku");
	long long added = journal_row_int(r, "added"), reserved = journal_row_int(r, "reserved"),
	    sold = journal_row_int(r, "sold");
	long long unapplied = journal_row_int(r, "unapplied");
	json_t *ids = json_loads(journal_row_text(r, "ids"), 0, NULL);
	struct inventory_call call;
	size_t nids = json_array_size(ids);
	const char **argv = xcalloc(INVENTORY_CALL_WORDS + nids, sizeof(*argv));
	int argc, err;

	if (ids == NULL || !json_is_array(ids) ||
	    inventory_call_restore_stock(&call, rs->c->cf->redis_prefix, sku, added, reserved,
	    sold) < 0) {
		ctl_fail("sku %s: cannot restore it (a key too long or unreadable ids)", sku);
		json_decref(ids);
		free(argv);
		rs->failed = true;
		return 1;
	}
	/* ARGV[5..] of restore.lua's 'stock': the ids, after the call's words. */
	argc = inventory_call_command(&call, "EVALSHA", rs->sha, argv);
	for (size_t i = 0; i < nids; i++)
		argv[argc++] = json_string_value(json_array_get(ids, i));
	rs->skus++;
	rs->adjustments += (long long)nids;
	rs->unapplied += unapplied;
	rs->in_flight += journal_row_int(r, "in_flight");
	if (added != 0 || reserved != 0 || sold != 0 || nids != 0)
		rs->stock_keys++;
	if (added - reserved - sold < 0)
		fprintf(stderr, "orderctl: %s: warning: available is %lld until orderd applies "
		    "the %lld stock additions not marked applied in the journal\n", sku,
		    added - reserved - sold, unapplied);
	err = ctl_restore_call(rs, argc, argv);
	json_decref(ids);
	free(argv);
	return err < 0;
}

static int
ctl_restore_line_row(const struct journal_row *r, void *arg)
{
	struct restore *rs = arg;
	const char *order_id = journal_row_text(r, "order_id");
	const char *sku = journal_row_text(r, "sku");
	const char *state = journal_row_text(r, "result");
	const char *argv[INVENTORY_CALL_WORDS];
	struct inventory_call call;

	if (inventory_call_restore_reservation(&call, rs->c->cf->redis_prefix, sku, order_id,
	    state, journal_row_int(r, "qty"),
	    inventory_keep_ms(rs->c->cf->retention_orders_max_age_hours)) < 0) {
		ctl_fail("order %s, sku %s: the key is too long", order_id, sku);
		rs->failed = true;
		return 1;
	}
	rs->reservations++;
	return ctl_restore_call(rs, inventory_call_command(&call, "EVALSHA", rs->sha, argv),
	    argv) < 0;
}

/*
 * recover --rebuild-redis: writes back, through restore.lua, what the
 * journal says Redis held.  It reads the journal in one read transaction,
 * so it sees one consistent moment of it; orderd must be stopped, else its
 * steps would race the rebuild.
 */
static int
ctl_recover(struct ctl *c, int argc, char **argv)
{
	struct restore rs = { .c = c };
	char *src[INVENTORY_SCRIPT_COUNT], *cause = NULL, *key;
	bool rebuild = false, force = false, only = false, bad = false;
	int err;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--rebuild-redis") == 0)
			rebuild = true;
		else if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (strcmp(argv[i], "--only-instance") == 0)
			only = true;
		else
			bad = true;
	}
	if (!rebuild || bad)
		return ctl_usage(c);
	/* With a state topic several instances share the stock, and this
	 * journal has only the orders this instance owned: their sum is not
	 * what Redis must hold, and a rebuild from it would put back stock
	 * that other instances' orders hold or sold.  The default configuration
	 * has a state topic too: --only-instance says this journal's orderd is
	 * the only one on this Redis prefix. */
	if (c->cf->topic_state[0] != '\0' && !only)
		return ctl_fail("topics.state is set (%s): several instances may share "
		    "this stock, and journal %s holds only this instance's orders, so it "
		    "cannot rebuild Redis alone; with several, stop every instance and "
		    "restore Redis from its own backup (RDB/AOF), then check it with "
		    "'orderctl reconcile --changelog'; if this is the only instance on "
		    "prefix '%s', add --only-instance", c->cf->topic_state,
		    c->cf->journal_path, c->cf->redis_prefix);
	/* Opening creates a missing journal, and an empty one would make
	 * --force an eraser: a wrong journal.path must stop here. */
	if (access(c->cf->journal_path, F_OK) != 0)
		return ctl_fail("journal %s: %s: nothing to rebuild from", c->cf->journal_path,
		    strerror(errno));
	if (ctl_journal(c))
		return 1;
	if ((err = journal_report(c->j, "skus", NULL, 0, NULL, NULL)) <= 0)
		return err < 0 ? ctl_fail("journal: %s", journal_errmsg(c->j)) :
		    ctl_fail("journal %s knows no sku: nothing to rebuild from",
		    c->cf->journal_path);
	if (ctl_redis(c))
		return 1;
	key = ctl_keys_any(c, &err);
	if (err < 0)
		return 1;
	if (key != NULL && !force) {
		ctl_fail("Redis %s already holds keys under the prefix '%s' (%s, ...): "
		    "refusing to rebuild over them; stop orderd and use --force to replace "
		    "its inventory keys", cluster_sync_name(c->rc), c->cf->redis_prefix, key);
		free(key);
		return 1;
	}
	free(key);
	if (inventory_read_scripts(src, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	/* On every master of a cluster. */
	err = cluster_sync_script_load(c->rc, src[INVENTORY_RESTORE], rs.sha);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(src[i]);
	if (err < 0)
		return ctl_fail("redis: SCRIPT LOAD restore: %s", cluster_sync_errstr(c->rc));
	if (force && ctl_restore_drop(&rs) < 0)
		return 1;

	/* One read transaction: the counters and the records of one moment. */
	if (journal_begin_read(c->j, "orderctl") < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	if (journal_report(c->j, "restore_stock", NULL, 0, ctl_restore_stock_row, &rs) < 0 ||
	    (!rs.failed &&
	    journal_report(c->j, "restore_lines", NULL, 0, ctl_restore_line_row, &rs) < 0)) {
		if (!rs.failed)
			ctl_fail("journal: %s", journal_errmsg(c->j));
		rs.failed = true;
	}
	/* Ends the read: nothing was written. */
	(void)journal_commit(c->j);
	ctl_restore_drain(&rs, 0);
	if (rs.failed)
		return ctl_fail("the rebuild is incomplete: run it again with --force");
	if (c->json) {
		ctl_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1,
		    "skus", (json_int_t)rs.skus, "skus_with_stock", (json_int_t)rs.stock_keys,
		    "reservations", (json_int_t)rs.reservations,
		    "adjustments", (json_int_t)rs.adjustments,
		    "unapplied_adjustments", (json_int_t)rs.unapplied,
		    "steps_in_flight", (json_int_t)rs.in_flight,
		    "dropped_keys", (json_int_t)rs.dropped));
		return 0;
	}
	printf("recover: rebuilt %lld skus (%lld with stock), %lld reservation records and "
	    "%lld applied stock additions from the journal", rs.skus, rs.stock_keys,
	    rs.reservations, rs.adjustments);
	if (force)
		printf("; %lld old keys dropped first", rs.dropped);
	printf("\n");
	if (rs.unapplied > 0 || rs.in_flight > 0)
		printf("recover: orderd applies %lld more stock additions and runs %lld steps "
		    "in flight again when it starts\n", rs.unapplied, rs.in_flight);
	return 0;
}

const struct ctl_entry ctl_recover_entry = {
	.name = "recover",
	.usage = "recover --rebuild-redis [--force] [--only-instance] [--json]",
	.help = "rebuild every sku and reservation in an empty\nRedis from the journal alone "
	    "(orderd stopped);\n--force replaces the inventory keys there;\n"
	    "--only-instance: needed when [topics] state is set",
	/* Opened by recover itself: the journal only when its file exists
	 * (opening would create it), Redis once the journal has a sku. */
	.needs = CTL_JOURNAL | CTL_REDIS,
	.min_args = 1, .max_args = -1,
	.exec = ctl_recover,
};
