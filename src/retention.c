/* retention.c: keeps the journal from growing for ever: deletes, a little at a time, ended orders with their rows, old inbox and published outbox rows, applied stock additions and dead letters, then gives the free pages back. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config.h"
#include "journal.h"
#include "log.h"
#include "retention.h"
#include "util.h"

#define HOUR_MS ((int64_t)3600 * 1000)

/*
 * A pass goes through the tables one after the other (enum retention_table),
 * one transaction of at most [retention] batch rows at a time,
 * RETENTION_TXNS_PER_TICK per tick, until none has anything old enough
 * left, and then gives free pages back to the file system.  Rows are
 * deleted in small transactions because the journal has one connection,
 * shared with the engine: a long delete would hold up every consumed batch
 * behind it.
 */
enum retention_table {
	RETENTION_ORDERS,	/* ended orders, with steps, inbox rows, deadline */
	RETENTION_INBOX,
	RETENTION_OUTBOX,
	RETENTION_ADJUSTMENTS,
	RETENTION_DLQ,
	RETENTION_PAGES,	/* free pages given back, at the end of a pass */
	RETENTION_DONE
};

struct retention {
	uv_timer_t timer;
	struct journal *j;
	const struct config *cf;
	bool in_pass;
	int table;			/* where the pass is: an enum retention_table */
	int64_t outbox_after;		/* the outbox window's position in this pass */
	int64_t pass_rows[RETENTION_PAGES];	/* rows deleted in this pass, per table */
	int pass_ticks;
	struct retention_stats stats;
};

static const char *const retention_names[RETENTION_PAGES] = {
	"orders", "inbox rows", "published outbox rows", "applied stock additions",
	"dead letters",
};

static void
retention_closed(uv_handle_t *h)
{
	free(h->data);
}

/* The window of a table in hours; 0 keeps its rows. */
static int
retention_hours(const struct config *cf, enum retention_table t)
{
	switch (t) {
	case RETENTION_ORDERS:
		return cf->retention_orders_max_age_hours;
	case RETENTION_INBOX:
		return cf->retention_inbox_max_age_hours;
	case RETENTION_OUTBOX:
		return cf->retention_outbox_max_age_hours;
	case RETENTION_ADJUSTMENTS:
		return cf->retention_adjustments_max_age_hours;
	case RETENTION_DLQ:
		return cf->retention_dlq_max_age_hours;
	default:
		return 0;
	}
}

/* Moves the pass to the next table that keeps its rows for a while only. */
static void
retention_next(struct retention *r)
{
	do
		r->table++;
	while (r->table < RETENTION_PAGES && retention_hours(r->cf, (enum retention_table)r->table) == 0);
}

/* One transaction of the current table.  Returns the rows deleted (0 for
 * pages given back), or a negative errno (rolled back); *ran is false when
 * there was nothing to do for it (no free page). */
static int
retention_txn(struct retention *r, int64_t now, bool *ran)
{
	const struct config *cf = r->cf;
	int64_t cutoff = now - retention_hours(cf, (enum retention_table)r->table) * HOUR_MS;
	int64_t free_pages = 0;
	int batch = cf->retention_batch, n = 0, err;
	bool done = false;

	*ran = false;
	if (r->table == RETENTION_PAGES) {
		/* A read: no transaction (nor write lock) when nothing is free. */
		if ((err = journal_free_pages(r->j, &free_pages)) < 0)
			return err;
		if (free_pages == 0) {
			retention_next(r);
			return 0;
		}
	}
	*ran = true;
	if ((err = journal_begin(r->j, "retention")) < 0)
		return err;
	switch (r->table) {
	case RETENTION_ORDERS:
		/* An order is many rows: a tenth of the batch in orders. */
		n = journal_orders_prune(r->j, cutoff, batch / 10 + 1, cf->topic_state, now);
		done = n >= 0 && n < batch / 10 + 1;
		if (n > 0)
			r->stats.orders_deleted += (uint64_t)n;
		break;
	case RETENTION_INBOX:
		n = journal_inbox_prune(r->j, cutoff, batch);
		done = n >= 0 && n < batch;
		if (n > 0)
			r->stats.inbox_deleted += (uint64_t)n;
		break;
	case RETENTION_OUTBOX:
		n = journal_outbox_prune(r->j, cutoff, batch, &r->outbox_after, &done);
		if (n > 0)
			r->stats.outbox_deleted += (uint64_t)n;
		break;
	case RETENTION_ADJUSTMENTS:
		n = journal_adjustments_prune(r->j, cutoff, batch, now);
		done = n >= 0 && n < batch;
		if (n > 0)
			r->stats.adjustments_deleted += (uint64_t)n;
		break;
	case RETENTION_DLQ:
		n = journal_dlq_prune(r->j, cutoff, batch);
		done = n >= 0 && n < batch;
		if (n > 0)
			r->stats.dlq_deleted += (uint64_t)n;
		break;
	case RETENTION_PAGES:
		/* What the pass freed goes back to the file system, a few MiB
		 * a transaction (a no-op for a journal without incremental
		 * auto_vacuum: see orderctl vacuum). */
		if ((n = journal_give_back(r->j, RETENTION_PAGES_PER_TXN)) < 0)
			break;
		r->stats.pages_given_back += (uint64_t)(free_pages < RETENTION_PAGES_PER_TXN ?
		    free_pages : RETENTION_PAGES_PER_TXN);
		done = free_pages <= RETENTION_PAGES_PER_TXN;
		break;
	default:
		done = true;
		break;
	}
	if (n < 0) {
		journal_rollback(r->j);
		return n;
	}
	if ((err = journal_commit(r->j)) < 0) {
		journal_rollback(r->j);
		return err;
	}
	if (r->table < RETENTION_PAGES)
		r->pass_rows[r->table] += n;
	if (done)
		retention_next(r);
	r->stats.transactions++;
	return n;
}

/* One line per pass that deleted anything, not per tick; quiet (debug)
 * when a pass of one tick kept up with the traffic, as it does once the
 * backlog is gone. */
static void
retention_report(struct retention *r)
{
	char line[512];
	size_t len = 0;
	int64_t total = 0;

	line[0] = '\0';
	for (int t = 0; t < RETENTION_PAGES; t++) {
		if (r->pass_rows[t] == 0)
			continue;
		total += r->pass_rows[t];
		len += (size_t)snprintf(line + len, len < sizeof(line) ? sizeof(line) - len : 0,
		    "%s%lld %s (max age %d h)", total == r->pass_rows[t] ? "" : ", ",
		    (long long)r->pass_rows[t], retention_names[t],
		    retention_hours(r->cf, (enum retention_table)t));
	}
	if (total == 0)
		return;
	if (r->pass_ticks > 1)
		log_info("retention", "deleted %s in %d ticks", line, r->pass_ticks);
	else
		log_debug("retention", "deleted %s", line);
}

static void
retention_tick(uv_timer_t *t)
{
	struct retention *r = t->data;
	int64_t t0 = util_mono_us(), now = util_now_ms(), rows = 0;
	int txns = 0;

	if (!r->in_pass) {
		/* A new pass: a table whose max age is 0 keeps its rows. */
		r->in_pass = true;
		r->table = -1;
		retention_next(r);
		r->outbox_after = 0;
		memset(r->pass_rows, 0, sizeof(r->pass_rows));
		r->pass_ticks = 0;
	}
	r->pass_ticks++;
	while (txns < RETENTION_TXNS_PER_TICK && r->table < RETENTION_DONE) {
		bool ran;
		int n = retention_txn(r, util_now_ms(), &ran);

		if (n == -EBUSY)
			/* One policy for a busy journal, whoever writes. */
			journal_fatal(r->j, "retention", "deleting old rows", n);
		if (n < 0) {
			/* Not worth stopping orderd for: the rows stay until the
			 * next pass, and nothing depends on their being gone. */
			r->stats.errors++;
			log_warn("retention", "deleting old journal rows (%s) failed, trying "
			    "again in %d s: %s (%s)", r->table < RETENTION_PAGES ?
			    retention_names[r->table] : "free pages", RETENTION_IDLE_MS / 1000,
			    strerror(-n), journal_errmsg(r->j));
			r->table = RETENTION_DONE;
			break;
		}
		rows += n;
		txns += ran;
	}
	(void)now;
	r->stats.ticks++;
	r->stats.last_tick_transactions = txns;
	r->stats.last_tick_rows = rows;
	r->stats.last_tick_us = util_mono_us() - t0;
	log_debug("retention", "tick: %lld rows in %d transactions, %lld us",
	    (long long)rows, txns, (long long)r->stats.last_tick_us);
	if (r->table < RETENTION_DONE) {
		uv_timer_start(&r->timer, retention_tick, RETENTION_BUSY_MS, 0);
		return;
	}
	retention_report(r);
	r->in_pass = false;
	uv_timer_start(&r->timer, retention_tick, RETENTION_IDLE_MS, 0);
}

int
retention_new(struct retention **out, uv_loop_t *loop, struct journal *j,
    const struct config *cf)
{
	struct retention *r = xcalloc(1, sizeof(*r));

	r->j = j;
	r->cf = cf;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, retention_tick, RETENTION_FIRST_MS, 0);
	*out = r;
	return 0;
}

void
retention_reload(struct retention *r)
{
	/* A pass under way goes on with the new values at its next tick. */
	if (!r->in_pass)
		uv_timer_start(&r->timer, retention_tick, RETENTION_BUSY_MS, 0);
}

const struct retention_stats *
retention_stats(const struct retention *r)
{
	return &r->stats;
}

void
retention_close(struct retention *r)
{
	if (r == NULL)
		return;
	uv_close((uv_handle_t *)&r->timer, retention_closed);
}
