/* inventory.h: the Redis side of stock: key names, the Lua scripts that change them, and the KEYS and ARGV of their calls. */
#ifndef ORDERD_INVENTORY_H
#define ORDERD_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

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

/* ---- one script call's KEYS and ARGV ---- */

#define INVENTORY_CALL_KEYS 2	/* the most KEYS a constructor below builds */
#define INVENTORY_CALL_ARGS 5	/* the most ARGV (restore 'reservation') */
/* EVAL or EVALSHA, the script, the number of keys, the keys, the arguments. */
#define INVENTORY_CALL_WORDS (3 + INVENTORY_CALL_KEYS + INVENTORY_CALL_ARGS)

/*
 * One call of a script of lua/: its KEYS and ARGV in the order that the
 * script's header states, which is where they are documented; each
 * constructor below names its header, and tests/check_inventory reads the
 * headers to hold the two together.  Keys are built into the call;
 * strings passed as arguments (order id, adjustment id, state, a drop's
 * key) are pointed at, so they must outlive its use.  Nothing is
 * allocated: a call lives on its caller's stack, and redis_eval() and
 * cluster_eval() copy what they send (keys, nkeys, args, nargs).
 *
 * Every constructor returns 0, -ENAMETOOLONG when a key does not fit in
 * INVENTORY_KEY_MAX (a key cut short would be another order's or sku's),
 * or -EINVAL for a NULL string.
 */
struct inventory_call {
	enum inventory_script script;
	int nkeys;
	int nargs;
	const char *keys[INVENTORY_CALL_KEYS];
	const char *args[INVENTORY_CALL_ARGS];
	char keybuf[INVENTORY_CALL_KEYS][INVENTORY_KEY_MAX];
	char numbuf[3][24];		/* the numbers among args, as text */
	char nkeys_text[12];		/* for inventory_call_command() */
};

/* lua/reserve.lua: hold qty units of sku for the order.  keep_ms, here and
 * below: how long the record lives once the line is over (REJECTED,
 * COMMITTED, RELEASED), for retention; 0 for good (inventory_keep_ms). */
int inventory_call_reserve(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t qty, int64_t keep_ms);
/* lua/commit.lua: the order's held units of sku become sold. */
int inventory_call_commit(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t keep_ms);
/* lua/release.lua: the order's held units of sku go back to available. */
int inventory_call_release(struct inventory_call *c, const char *prefix, const char *sku,
    const char *order_id, int64_t keep_ms);
/*
 * How long a reservation record outlives its line for an orders window of
 * hours (0: for good): a day longer than the journal keeps the order, so
 * that the journal never knows a line Redis has forgotten (orderctl
 * reconcile); within it a replayed step still finds the record.
 */
int64_t inventory_keep_ms(int orders_max_age_hours);
/* lua/stock_add.lua: qty units of sku added by the adjustment. */
int inventory_call_stock_add(struct inventory_call *c, const char *prefix, const char *sku,
    const char *adjustment_id, int64_t qty);
/* lua/restore.lua 'stock': one sku's counters.  The ids of the adjustments
 * that make up added follow these arguments: the caller appends them to
 * inventory_call_command()'s words. */
int inventory_call_restore_stock(struct inventory_call *c, const char *prefix,
    const char *sku, int64_t added, int64_t reserved, int64_t sold);
/* lua/restore.lua 'reservation': one order's reservation record of sku
 * (keep_ms as for inventory_call_commit). */
int inventory_call_restore_reservation(struct inventory_call *c, const char *prefix,
    const char *sku, const char *order_id, const char *state, int64_t qty, int64_t keep_ms);
/* lua/restore.lua 'drop': deletes one key, as SCAN found it (not rebuilt:
 * it may be one no constructor would make). */
int inventory_call_restore_drop(struct inventory_call *c, const char *key);

/*
 * The whole command as a client that sends words takes it: cmd ("EVALSHA"
 * or "EVAL"), script (the sha or the source), the number of keys, the
 * keys, the arguments, into out (INVENTORY_CALL_WORDS at least); the first
 * key is word 3, which a cluster routes by.  Returns the number of words.
 */
int inventory_call_command(struct inventory_call *c, const char *cmd, const char *script,
    const char **out);

#endif
