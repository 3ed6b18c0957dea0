/* engine.h: orderd's core: consumed batches through the journal, the saga and Redis, out through the outbox. */
#ifndef ORDERD_ENGINE_H
#define ORDERD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "metrics.h"
#include "saga.h"

struct config;
struct engine;
struct journal;
struct relay_snapshot;

struct engine_stats {
	uint64_t consumed[SAGA_EV_COUNT];	/* decoded input events by type */
	uint64_t duplicates;			/* dropped: event id seen before */
	uint64_t dead_letters;			/* undecodable or invalid messages */
	uint64_t parked;			/* events that arrived before their order */
	uint64_t parked_expired;		/* of those, sent to the DLQ: the order never came */
	int64_t parked_pending;			/* parked now for orders not created (owned partitions) */
	uint64_t deadlines_fired;
	uint64_t steps_done;
	uint64_t redis_retries;			/* step calls sent again */
	uint64_t batches;
	int64_t steps_in_flight;
	bool redis_up;				/* connected, scripts loaded, inventory there */
	bool redis_lost;			/* connected, but the inventory is gone */
	uint64_t sagas_by_state[SAGA_CANCELLED + 1];	/* transitions into each state */
	struct metrics_hist step_latency;	/* step intent commit -> Redis answer */
	struct metrics_hist redis_latency;	/* one Lua call's round trip */
	struct metrics_hist commit_latency;	/* one journal commit (fsync) */
	struct metrics_hist batch_size;		/* events per consumed batch (not us) */
};

/* One assigned partition's consumer lag. */
struct engine_lag {
	char topic[256];		/* Kafka topic names are at most 249 bytes */
	int32_t partition;
	int64_t lag;
};

/*
 * What the engine publishes of itself for /metrics and /healthz (status.c
 * reads this and nothing else of it).  The counters are the engine's own
 * and the relay's, live; the journal's gauges and the consumer's lag are
 * gathered by the engine at its start and then about every second
 * (snapshot.c), so a scrape never queries the journal or librdkafka.
 */
struct engine_snapshot {
	const struct engine_stats *stats;	/* live: every file of the engine counts into it */
	const struct relay_snapshot *relay;	/* live, the relay's own; NULL: none */
	int64_t gathered_at;			/* util_now_ms() of the figures below */
	bool journal_ok;			/* the journal answered the queries below */
	char journal_error[256];		/* why not, when !journal_ok */
	int64_t orders_new, orders_reserved;	/* live sagas */
	int64_t outbox_pending;			/* unpublished rows, counted up to 1e6 */
	int64_t outbox_oldest_created;		/* created_at (ms) of the first unpublished row; 0: none */
	int64_t outbox_dead;			/* dead rows (orderctl outbox list --dead) */
	const struct engine_lag *lag;		/* per partition assigned and fetched from */
	int nlag;
};


/*
 * The broker's side of a start, before anything is opened: every topic
 * orderd reads or writes described (waiting for a broker still starting),
 * the rights it needs there, the inputs co-partitioned.  Returns 0 or a
 * negative errno with *cause (caller frees): -EACCES refused, -ETIMEDOUT
 * no broker, -EINVAL topics.
 */
int engine_check_topics(const struct config *cf, char **cause);
/* The options orderd opens its journal with (main() opens it). */
struct journal_options;
void engine_journal_options(const struct config *cf, struct journal_options *jo);
/*
 * Connects Redis and the relay, recovers what the journal j says was under
 * way, then starts consuming.  j is main()'s, opened with
 * engine_journal_options, and outlives the engine; the engine, the relay
 * and retention write to it in turn on the loop (journal_begin names who).
 * cf must outlive the engine (SIGHUP updates it in place through
 * engine_reload).  Returns 0 or a negative errno with *cause (caller
 * frees); -EINVAL means bad configuration or topics.
 */
int engine_new(struct engine **out, uv_loop_t *loop, struct config *cf, struct journal *j,
    char **cause);
/* Applies the reloadable keys of next (SIGHUP). */
void engine_reload(struct engine *e, const struct config *next);
/*
 * Graceful stop: no more consuming; in-flight steps finish, the outbox is
 * flushed, offsets are committed, handles are closed.  done(arg) runs
 * when everything is released (e is freed by then).  Gives up waiting
 * after grace_ms: whatever was left is in the journal for the next start.
 */
void engine_stop(struct engine *e, int grace_ms, void (*done)(void *arg), void *arg);
/* e's snapshot: lives as long as e, updated in place by the engine alone. */
const struct engine_snapshot *engine_snapshot(const struct engine *e);
/*
 * Who hears of a fault the engine cannot go on with (Redis refusing its
 * credentials before it ever took them, Kafka refusing a right orderd
 * needs): fn(why, arg) runs on the loop and should stop the engine (exit
 * status 1); the journal is intact.  Without fn the engine exits at once.
 */
void engine_set_fatal(struct engine *e, void (*fn)(const char *why, void *arg), void *arg);

#endif
