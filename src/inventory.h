/* inventory.h: the Redis side of stock: key names and the Lua scripts that change them. */
#ifndef ORDERD_INVENTORY_H
#define ORDERD_INVENTORY_H

#include <stddef.h>

/* The scripts of lua/, loaded with SCRIPT LOAD and called with EVALSHA. */
enum inventory_script {
	INVENTORY_STOCK_ADD = 0,
	INVENTORY_RESERVE,
	INVENTORY_COMMIT,
	INVENTORY_RELEASE,
	INVENTORY_RESTORE,	/* orderctl recover --rebuild-redis only */
	INVENTORY_SCRIPT_COUNT
};

/* "stock_add", "reserve", ...: also the file name under lua/ without ".lua". */
const char *inventory_script_name(enum inventory_script s);
/* Reads every script's source from the data directory.  Returns 0 or a
 * negative errno; *cause (caller frees) names the file on failure.  The
 * caller frees each src[i]. */
int inventory_read_scripts(char *src[INVENTORY_SCRIPT_COUNT], char **cause);

/* Longest key any function below writes, with the terminating NUL. */
#define INVENTORY_KEY_MAX 256

/* PREFIX{sku}:stock, a hash: available, reserved, sold, added. */
int inventory_key_stock(char *buf, size_t len, const char *prefix, const char *sku);
/* PREFIX{sku}:r:ORDER, a hash: state, qty, order. */
int inventory_key_reservation(char *buf, size_t len, const char *prefix,
    const char *sku, const char *order_id);
/* PREFIX{sku}:adds, the set of applied stock adjustment ids. */
int inventory_key_adds(char *buf, size_t len, const char *prefix, const char *sku);

#endif
