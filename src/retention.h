/* retention.h: deletes what the journal no longer needs (ended orders, old inbox and outbox rows, stock additions, dead letters) on a timer, in small transactions, and gives the space back. */
#ifndef ORDERD_RETENTION_H
#define ORDERD_RETENTION_H

#include <stdint.h>

#include <uv.h>

struct config;
struct journal;
struct retention;

/* When ticks come: the first a while after start (recovery and the first
 * batches go first), then at once again while rows are left to delete, and
 * at the idle interval when a pass found nothing more. */
#define RETENTION_FIRST_MS	1000
#define RETENTION_BUSY_MS	100
#define RETENTION_IDLE_MS	60000
/* Transactions per tick, each of at most [retention] batch rows: what one
 * tick may keep the loop from its other work. */
#define RETENTION_TXNS_PER_TICK	4
/* Free pages given back per transaction (4 MiB of 4 KiB pages). */
#define RETENTION_PAGES_PER_TXN	1024

struct retention_stats {
	uint64_t ticks;
	uint64_t transactions;		/* committed */
	uint64_t inbox_deleted;
	uint64_t outbox_deleted;
	uint64_t orders_deleted;	/* with their steps, inbox rows and deadline */
	uint64_t adjustments_deleted;
	uint64_t dlq_deleted;
	uint64_t pages_given_back;
	uint64_t errors;		/* transactions that failed (rolled back) */
	int last_tick_transactions;
	int64_t last_tick_rows;		/* rows (pages) of the last tick */
	int64_t last_tick_us;		/* how long the last tick held the loop */
};

/*
 * Starts retention over j, which orderd's engine owns (one connection, one
 * thread: every tick runs between the engine's transactions).  Reads
 * cf's [retention] keys at every tick, so a SIGHUP that changes them
 * applies at the next one; cf must outlive r.  Returns 0.
 */
int retention_new(struct retention **out, uv_loop_t *loop, struct journal *j,
    const struct config *cf);
/* The [retention] keys may have changed: start a pass soon. */
void retention_reload(struct retention *r);
const struct retention_stats *retention_stats(const struct retention *r);
/* Stops the timer at once (no tick runs after this returns) and frees r
 * when the loop has closed its handle; j is not touched again.  NULL is fine. */
void retention_close(struct retention *r);

#endif
