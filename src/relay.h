/* relay.h: publishes the journal's outbox to Kafka in id order; a row is published only when the broker acknowledged it. */
#ifndef ORDERD_RELAY_H
#define ORDERD_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "metrics.h"

struct config;
struct journal;
struct relay;

/*
 * What the relay publishes of itself (/metrics, /healthz): its own
 * figures, updated in place as it goes; nobody else writes them.
 */
struct relay_snapshot {
	uint64_t produced;		/* messages handed to the producer */
	uint64_t published;		/* rows marked published (acknowledged) */
	uint64_t errors;		/* failed deliveries (retried, unless the row died) */
	uint64_t dead;			/* rows that died (refused for good, or
					 * [relay] max_attempts failed deliveries) */
	int64_t in_flight;		/* produced, not acknowledged yet */
	struct metrics_hist ack_latency;	/* outbox commit -> broker ack */
	/* librdkafka reported every broker of the relay's producer down; until
	 * a row is acknowledged again. */
	bool broker_down;
};

/*
 * A relay over the journal j (shared with the engine: one thread, one
 * connection).  The idempotent producer (acks=all) is configured from [kafka].
 * Starts with every unpublished row: after a crash those are published again
 * under the same event ids.  A row the broker refuses for good, or whose
 * delivery failed [relay] max_attempts times, is dead (journal v4): not
 * produced again, the rows of other orders go on, the later rows of its
 * order wait until orderctl outbox retry or drop (which the relay notices
 * within RELAY_CHECK_MS).  Returns 0 or a negative errno with *cause.
 */
int relay_new(struct relay **out, uv_loop_t *loop, struct journal *j,
    const struct config *cf, char **cause);
/* New rows were committed: publish them soon (coalesced within a loop turn). */
void relay_kick(struct relay *r);
/* Held, the relay reads no rows (orderd until its partitions are known:
 * rows of partitions it lost are superseded, never published). */
void relay_hold(struct relay *r, bool held);
/* Every outbox row with an id up to this one is acknowledged by the broker
 * (or was published, or superseded, before). */
int64_t relay_acked_through(const struct relay *r);
/* fn(arg) whenever relay_acked_through() moved on a delivery report. */
void relay_set_ack_cb(struct relay *r, void (*fn)(void *arg), void *arg);
/* True when every row known to the relay is acknowledged and nothing waits. */
bool relay_idle(const struct relay *r);
/* The relay's snapshot: lives as long as r (until relay_close). */
const struct relay_snapshot *relay_snapshot(const struct relay *r);
/* Stops: waits up to flush_ms for acknowledgements, marks them, frees r. */
void relay_close(struct relay *r, int flush_ms);

#endif
