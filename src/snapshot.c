/* snapshot.c: the engine's published snapshot for /metrics and /healthz: the journal's gauges and the consumer's lag, gathered by the engine on a timer of its own. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine_int.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "relay.h"
#include "util.h"

/* About once a second: a scrape (every 15 s or so) or a probe sees
 * figures at most that old, and the queries cost next to nothing. */
#define SNAPSHOT_MS 1000
/* Counting pending outbox rows stops here, so a gathering stays bounded
 * during a long broker outage; the age still tells how bad it is. */
#define SNAPSHOT_OUTBOX_COUNT_MAX 1000000
/* The next gathering waits at least this many times as long as one took:
 * counting a backlog of a million rows must not take the loop's time. */
#define SNAPSHOT_SHARE 50

static void
snapshot_lag_cb(const char *topic, int32_t partition, int64_t lag, void *arg)
{
	struct engine *e = arg;
	struct engine_lag *l;

	if (e->snap.nlag == e->caplag) {
		e->caplag = e->caplag ? e->caplag * 2 : 16;
		e->lag = xrealloc(e->lag, (size_t)e->caplag * sizeof(*e->lag));
		e->snap.lag = e->lag;
	}
	l = &e->lag[e->snap.nlag++];
	snprintf(l->topic, sizeof(l->topic), "%s", topic);
	l->partition = partition;
	l->lag = lag;
}

/* Two indexed journal queries and librdkafka's cached offsets (no broker
 * request), outside any transaction: the loop runs one at a time. */
static void
snapshot_gather(struct engine *e)
{
	struct engine_snapshot *s = &e->snap;
	int64_t oldest = 0;

	if (journal_orders_live(e->j, &s->orders_new, &s->orders_reserved) < 0 ||
	    journal_outbox_backlog(e->j, SNAPSHOT_OUTBOX_COUNT_MAX, &s->outbox_pending,
	    &oldest, &s->outbox_dead) < 0) {
		/* Once per failure, not once a second. */
		if (s->journal_ok)
			log_warn("engine", "journal gauges: %s", journal_errmsg(e->j));
		s->journal_ok = false;
		snprintf(s->journal_error, sizeof(s->journal_error), "%s", journal_errmsg(e->j));
	} else {
		if (!s->journal_ok && s->gathered_at > 0)
			log_info("engine", "journal gauges: the journal answers again");
		s->journal_ok = true;
		s->journal_error[0] = '\0';
		s->outbox_oldest_created = oldest;
	}
	s->nlag = 0;
	if (e->consumer != NULL)
		(void)kafka_consumer_lag(e->consumer, snapshot_lag_cb, e);
	s->gathered_at = util_now_ms();
}

static void
snapshot_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	int64_t t0 = util_mono_us(), next;

	snapshot_gather(e);
	next = (util_mono_us() - t0) / 1000 * SNAPSHOT_SHARE;
	uv_timer_start(t, snapshot_cb, (uint64_t)(next > SNAPSHOT_MS ? next : SNAPSHOT_MS), 0);
}

void
snapshot_start(struct engine *e)
{
	e->snap.stats = &e->stats;
	e->snap.relay = e->relay != NULL ? relay_snapshot(e->relay) : NULL;
	/* As if the last gathering had worked: a first failure is logged. */
	e->snap.journal_ok = true;
	snapshot_gather(e);
	uv_timer_start(&e->snapshot_timer, snapshot_cb, SNAPSHOT_MS, 0);
}

void
snapshot_stop(struct engine *e)
{
	uv_timer_stop(&e->snapshot_timer);
	e->snap.relay = NULL;
}

void
snapshot_free(struct engine *e)
{
	free(e->lag);
	e->lag = NULL;
	e->snap.lag = NULL;
	e->snap.nlag = e->caplag = 0;
}
