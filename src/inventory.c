/* inventory.c: key names of the {sku}-tagged Redis inventory, the Lua sources that change it, and each script call's KEYS and ARGV. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "util.h"

static const char *const inventory_names[INVENTORY_SCRIPT_COUNT] = {
	[INVENTORY_STOCK_ADD] = "stock_add",
	[INVENTORY_RESERVE] = "reserve",
	[INVENTORY_COMMIT] = "commit",
	[INVENTORY_RELEASE] = "release",
	[INVENTORY_RESTORE] = "restore",
};

const char *
inventory_script_name(enum inventory_script s)
{
	return (unsigned)s < INVENTORY_SCRIPT_COUNT ? inventory_names[s] : "?";
}

int
inventory_read_scripts(char *src[INVENTORY_SCRIPT_COUNT], char **cause)
{
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		src[i] = NULL;
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		char rel[64];
		int err;

		snprintf(rel, sizeof(rel), "lua/%s.lua", inventory_names[i]);
		err = util_read_data_file(rel, &src[i], NULL);
		if (err < 0) {
			*cause = xasprintf("%s/%s: %s", util_datadir(), rel, strerror(-err));
			for (int k = 0; k < i; k++) {
				free(src[k]);
				src[k] = NULL;
			}
			return err;
		}
	}
	return 0;
}

/* Every key of one sku shares the hash tag {sku}, so on Redis Cluster all
 * keys a script touches live in one slot. */
static int
inventory_key(char *buf, size_t len, const char *prefix, const char *sku,
    const char *suffix, const char *order_id)
{
	int n = snprintf(buf, len, "%s{%s}:%s%s", prefix ? prefix : "", sku, suffix,
	    order_id ? order_id : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
inventory_key_stock(char *buf, size_t len, const char *prefix, const char *sku)
{
	return inventory_key(buf, len, prefix, sku, "stock", NULL);
}

int
inventory_key_reservation(char *buf, size_t len, const char *prefix,
    const char *sku, const char *order_id)
{
	return inventory_key(buf, len, prefix, sku, "r:", order_id);
}

int
inventory_key_adds(char *buf, size_t len, const char *prefix, const char *sku)
{
	return inventory_key(buf, len, prefix, sku, "adds", NULL);
}

/*
 * The constructors below are the one place a script's KEYS and ARGV are
 * put in order; that order is the script's header in lua/ (read it
 * before changing one), and tests/check_inventory compares the counts.
 */

static void
inventory_call_begin(struct inventory_call *c, enum inventory_script s)
{
	/* Not a memset: the key buffers are written before they are read. */
	c->script = s;
	c->nkeys = 0;
	c->nargs = 0;
}

/* KEYS[c->nkeys + 1]: the key of kind ("stock", "r:" with the order id, "adds"). */
static int
inventory_call_key(struct inventory_call *c, const char *prefix, const char *sku,
    const char *suffix, const char *order_id)
{
	char *buf = c->keybuf[c->nkeys];
	int err = inventory_key(buf, INVENTORY_KEY_MAX, prefix, sku, suffix, order_id);

	if (err < 0)
		return err;
	c->keys[c->nkeys++] = buf;
	return 0;
}

/* ARGV[c->nargs + 1]: a string of the caller's. */
static void
inventory_call_arg(struct inventory_call *c, const char *s)
{
	c->args[c->nargs++] = s;
}

/* ARGV[c->nargs + 1]: a number, as text in the call's own buffer. */
static void
inventory_call_num(struct inventory_call *c, int i, int64_t v)
{
	snprintf(c->numbuf[i], sizeof(c->numbuf[i]), "%lld", (long long)v);
	inventory_call_arg(c, c->numbuf[i]);
}

/*
 * KEYS[1] the sku's stock hash, KEYS[2] the key of kind ("r:" with the
 * order id, or "adds"), ARGV[1] first and, when qty is not NULL, ARGV[2]
 * the quantity: how every two-key call begins.
 */
static int
inventory_call_stock_and(struct inventory_call *c, enum inventory_script s,
    const char *prefix, const char *sku, const char *kind, const char *order_id,
    const char *first, const int64_t *qty)
{
	int err;

	inventory_call_begin(c, s);
	if (sku == NULL || first == NULL)
		return -EINVAL;
	if ((err = inventory_call_key(c, prefix, sku, "stock", NULL)) < 0 ||
	    (err = inventory_call_key(c, prefix, sku, kind, order_id)) < 0)
		return err;
	inventory_call_arg(c, first);
	if (qty != NULL)
		inventory_call_num(c, 0, *qty);
	return 0;
}

/* lua/reserve.lua's header: KEYS stock, reservation; ARGV order id, quantity,
 * keep_ms. */
int
inventory_call_reserve(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t qty, int64_t keep_ms)
{
	int err = inventory_call_stock_and(c, INVENTORY_RESERVE, prefix, sku, "r:", order_id,
	    order_id, &qty);

	if (err == 0)
		inventory_call_num(c, 1, keep_ms);
	return err;
}

/* lua/commit.lua's header: KEYS stock, reservation; ARGV order id, keep_ms. */
int
inventory_call_commit(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t keep_ms)
{
	int err = inventory_call_stock_and(c, INVENTORY_COMMIT, prefix, sku, "r:", order_id,
	    order_id, NULL);

	if (err == 0)
		inventory_call_num(c, 0, keep_ms);
	return err;
}

/* lua/release.lua's header: KEYS stock, reservation; ARGV order id, keep_ms. */
int
inventory_call_release(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t keep_ms)
{
	int err = inventory_call_stock_and(c, INVENTORY_RELEASE, prefix, sku, "r:", order_id,
	    order_id, NULL);

	if (err == 0)
		inventory_call_num(c, 0, keep_ms);
	return err;
}

/* lua/stock_add.lua's header: KEYS stock, adds; ARGV adjustment id, quantity. */
int
inventory_call_stock_add(struct inventory_call *c, const char *prefix, const char *sku,
    const char *adjustment_id, int64_t qty)
{
	return inventory_call_stock_and(c, INVENTORY_STOCK_ADD, prefix, sku, "adds", NULL,
	    adjustment_id, &qty);
}

/* lua/restore.lua's header, 'stock': KEYS stock, adds; ARGV 'stock', added,
 * reserved, sold (then the ids, the caller's). */
int
inventory_call_restore_stock(struct inventory_call *c, const char *prefix,
    const char *sku, int64_t added, int64_t reserved, int64_t sold)
{
	int err = inventory_call_stock_and(c, INVENTORY_RESTORE, prefix, sku, "adds", NULL,
	    "stock", NULL);

	if (err < 0)
		return err;
	inventory_call_num(c, 0, added);
	inventory_call_num(c, 1, reserved);
	inventory_call_num(c, 2, sold);
	return 0;
}

/* lua/restore.lua's header, 'reservation': KEYS reservation; ARGV
 * 'reservation', state, qty, order id. */
int
inventory_call_restore_reservation(struct inventory_call *c, const char *prefix,
    const char *sku, const char *order_id, const char *state, int64_t qty, int64_t keep_ms)
{
	int err;

	inventory_call_begin(c, INVENTORY_RESTORE);
	if (sku == NULL || order_id == NULL || state == NULL)
		return -EINVAL;
	if ((err = inventory_call_key(c, prefix, sku, "r:", order_id)) < 0)
		return err;
	inventory_call_arg(c, "reservation");
	inventory_call_arg(c, state);
	inventory_call_num(c, 0, qty);
	inventory_call_arg(c, order_id);
	inventory_call_num(c, 1, keep_ms);
	return 0;
}

/* lua/restore.lua's header, 'drop': KEYS the keys (here one); ARGV 'drop'. */
int
inventory_call_restore_drop(struct inventory_call *c, const char *key)
{
	inventory_call_begin(c, INVENTORY_RESTORE);
	if (key == NULL)
		return -EINVAL;
	c->keys[c->nkeys++] = key;
	inventory_call_arg(c, "drop");
	return 0;
}

int
inventory_call_command(struct inventory_call *c, const char *cmd, const char *script,
    const char **out)
{
	int n = 0;

	snprintf(c->nkeys_text, sizeof(c->nkeys_text), "%d", c->nkeys);
	out[n++] = cmd;
	out[n++] = script;
	out[n++] = c->nkeys_text;
	for (int i = 0; i < c->nkeys; i++)
		out[n++] = c->keys[i];
	for (int i = 0; i < c->nargs; i++)
		out[n++] = c->args[i];
	return n;
}

int64_t
inventory_keep_ms(int orders_max_age_hours)
{
	if (orders_max_age_hours <= 0)
		return 0;
	return ((int64_t)orders_max_age_hours + 24) * 3600 * 1000;
}
