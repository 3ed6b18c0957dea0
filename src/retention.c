/* retention.c: keeps the journal from growing for ever: deletes old applied inbox rows and published outbox rows, a little at a time. */
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
 * A pass goes through the inbox, then the outbox, one transaction of at
 * most [retention] batch rows at a time, RETENTION_TXNS_PER_TICK per tick,
 * until neither has anything old enough left.  Rows are deleted in small
 * transactions because the journal has one connection, the engine's: a
 * long delete would hold up every consumed batch behind it.
 */
struct retention {
	uv_timer_t timer;
	struct journal *j;
	const struct config *cf;
	bool in_pass;
	bool inbox_done, outbox_done;
	int64_t outbox_after;		/* the outbox window's position in this pass */
	int64_t pass_inbox, pass_outbox;	/* rows deleted in this pass */
	int pass_ticks;
	struct retention_stats stats;
};

static void
retention_closed(uv_handle_t *h)
{
	free(h->data);
}

/* One transaction: a batch of the inbox until it is done, then of the
 * outbox.  Returns the rows deleted, or a negative errno (rolled back). */
static int
retention_txn(struct retention *r, int64_t now)
{
	const struct config *cf = r->cf;
	int batch = cf->retention_batch, n, err;
	bool done = false;

	if ((err = journal_begin(r->j, "retention")) < 0)
		return err;
	if (!r->inbox_done) {
		n = journal_inbox_prune(r->j, now -
		    cf->retention_inbox_max_age_hours * HOUR_MS, batch);
		if (n >= 0) {
			r->inbox_done = n < batch;
			r->pass_inbox += n;
			r->stats.inbox_deleted += (uint64_t)n;
		}
	} else {
		n = journal_outbox_prune(r->j, now -
		    cf->retention_outbox_max_age_hours * HOUR_MS, batch,
		    &r->outbox_after, &done);
		if (n >= 0) {
			r->outbox_done = done;
			r->pass_outbox += n;
			r->stats.outbox_deleted += (uint64_t)n;
		}
	}
	if (n < 0) {
		journal_rollback(r->j);
		return n;
	}
	if ((err = journal_commit(r->j)) < 0) {
		journal_rollback(r->j);
		return err;
	}
	r->stats.transactions++;
	return n;
}

static void
retention_tick(uv_timer_t *t)
{
	struct retention *r = t->data;
	const struct config *cf = r->cf;
	int64_t t0 = util_mono_us(), now = util_now_ms(), rows = 0;
	int txns = 0;

	if (!r->in_pass) {
		/* A new pass: ages 0 mean "keep", so such a table is done. */
		r->in_pass = true;
		r->inbox_done = cf->retention_inbox_max_age_hours == 0;
		r->outbox_done = cf->retention_outbox_max_age_hours == 0;
		r->outbox_after = 0;
		r->pass_inbox = r->pass_outbox = 0;
		r->pass_ticks = 0;
	}
	r->pass_ticks++;
	while (txns < RETENTION_TXNS_PER_TICK && !(r->inbox_done && r->outbox_done)) {
		int n = retention_txn(r, now);

		if (n == -EBUSY)
			/* One policy for a busy journal, whoever writes. */
			journal_fatal(r->j, "retention", "deleting old rows", n);
		if (n < 0) {
			/* Not worth stopping orderd for: the rows stay until the
			 * next pass, and nothing depends on their being gone. */
			r->stats.errors++;
			log_warn("retention", "deleting old journal rows failed, trying again in "
			    "%d s: %s (%s)", RETENTION_IDLE_MS / 1000, strerror(-n),
			    journal_errmsg(r->j));
			r->inbox_done = r->outbox_done = true;
			break;
		}
		rows += n;
		txns++;
	}
	r->stats.ticks++;
	r->stats.last_tick_transactions = txns;
	r->stats.last_tick_rows = rows;
	r->stats.last_tick_us = util_mono_us() - t0;
	log_debug("retention", "tick: %lld rows in %d transactions, %lld us",
	    (long long)rows, txns, (long long)r->stats.last_tick_us);
	if (!(r->inbox_done && r->outbox_done)) {
		uv_timer_start(&r->timer, retention_tick, RETENTION_BUSY_MS, 0);
		return;
	}
	if (r->pass_inbox + r->pass_outbox > 0) {
		/* One line per pass, not per tick; quiet when a pass of one tick
		 * kept up with the traffic, as it does once the backlog is gone. */
		if (r->pass_ticks > 1)
			log_info("retention", "deleted %lld inbox rows (inbox_max_age_hours "
			    "%d) and %lld published outbox rows (outbox_max_age_hours %d) in "
			    "%d ticks", (long long)r->pass_inbox,
			    cf->retention_inbox_max_age_hours, (long long)r->pass_outbox,
			    cf->retention_outbox_max_age_hours, r->pass_ticks);
		else
			log_debug("retention", "deleted %lld inbox and %lld outbox rows",
			    (long long)r->pass_inbox, (long long)r->pass_outbox);
	}
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
