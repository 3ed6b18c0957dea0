/* inventory.c: key names of the {sku}-tagged Redis inventory and the Lua sources that change it. */
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
