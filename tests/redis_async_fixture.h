/* redis_async_fixture.h: one redis.c connection on a uv loop of the test, the calls' callbacks and the waits of the tests of the async Redis module. */
#ifndef ORDERD_REDIS_ASYNC_FIXTURE_H
#define ORDERD_REDIS_ASYNC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "redis.h"

extern uv_loop_t loop;
/* The Lua scripts, read by setup. */
extern char *scripts[INVENTORY_SCRIPT_COUNT];
/* Unique to the test: its keys do not meet another's on a shared server. */
extern char prefix[96];
/* The connection under test, and its state_cb's and closed_cb's calls. */
extern struct redis *rd;
extern int ups, downs, closed;
extern bool close_on_down;	/* on_state closes rd when the connection is lost */

/* What one call's callback saw. */
struct res {
	int calls;
	int status;
	int type;
	char str[128];
	long long integer;
	size_t elements;
	long long el[2];
};

/* The callbacks: on_reply records into its struct res, on_state counts
 * ups and downs (and checks redis_is_up agrees), on_closed counts closes. */
void on_reply(redisReply *reply, int status, void *arg);
void on_state(bool up, void *arg);
void on_closed(void *arg);
/* Runs the loop until *counter reaches target or ms pass; true when reached. */
bool run_until(const int *counter, int target, int ms);
void run_for(int ms);
/* The Check fixture: a new loop, the scripts, a new prefix, the counters
 * at zero; close_redis closes the loop, teardown frees the scripts. */
void setup(void);
void teardown(void);
/* Creates rd against port and waits until it is up. */
void open_redis(int port, int timeout_ms);
/* Closes rd and checks that the loop has nothing left. */
void close_redis(void);
/* Calls script s (stock_add or reserve) for (sku, id, qty) through rd, as
 * orderd builds the call; the call lives on our stack, so the module must
 * copy it.  eval is eval_cb into on_reply and x, which must be accepted. */
int eval_cb(enum inventory_script s, const char *sku, const char *id, const char *qty,
    redis_reply_fn cb, void *arg);
void eval(enum inventory_script s, const char *sku, const char *id, const char *qty,
    struct res *x);
/* x had one reply, the status want. */
void expect_status(const struct res *x, const char *want);
/* A synchronous side connection, as an operator's redis-cli would be:
 * cmd's reply is no error, and want (unless NULL). */
void sync_command(int port, const char *cmd, const char *want);

#endif
