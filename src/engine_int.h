/* engine_int.h: the state the engine's files share (struct engine and the types of its jobs), private to them and their unit tests (tests/engine_fixture.h): nothing else includes it. */
#ifndef ORDERD_ENGINE_INT_H
#define ORDERD_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <uthash.h>
#include <uv.h>

#include "engine.h"
#include "event.h"
#include "journal.h"
#include "kafka.h"
#include "saga.h"

#define OFFSETS_HOLD_OPEN INT64_MAX	/* a hold whose work goes on */

/*
 * One consumed message.  Its offset is committed only when everything it
 * caused (outbox rows, the order's changelog record) is acknowledged by the
 * broker: then a new owner of its partition needs nothing but Kafka.
 */
struct hold {
	struct hold *next;		/* in its partition's queue, by offset */
	struct hold *order_next;	/* on its order's list, or resolved in the transaction */
	int64_t offset;
	int64_t need;			/* the outbox id to be acknowledged, or OFFSETS_HOLD_OPEN */
};

struct tp_queue {
	UT_hash_handle hh;
	char key[EVENT_ORDER_ID_MAX + 32];	/* "partition/topic" */
	const char *topic;		/* in key */
	int32_t partition;
	struct hold *head, **tail;
};

/* An order touched in the open transaction, or with work going on: the
 * holds of the messages for it wait until it comes to rest. */
struct order_mark {
	UT_hash_handle hh;
	char order_id[EVENT_ORDER_ID_MAX + 1];
	struct hold *holds;
	struct order_mark *dirty_next;
	bool dirty;			/* on the transaction's list */
	bool bumped;			/* this transaction raised the row's version */
	bool lingering;			/* at rest, its record deferred: */
	struct order_mark *lprev, *lnext;	/* on linger_head, oldest first */
	int32_t partition;		/* of what touched it (an order not created yet) */
	enum saga_state state;		/* after the last transition */
	int64_t rest_at;		/* when it came to rest (0: not at rest) */
};

struct flight;

/* One Lua call of a transition. */
struct flight_step {
	struct flight *f;
	int64_t step_id;
	int line;
	char sku[SAGA_SKU_MAX + 1];
	int64_t qty;
	enum saga_step_result result;
	bool done;
	bool sent;
	int64_t sent_us;		/* when the Lua call went out */
};

/* The steps of one transition of one order: the order's next event waits
 * until all of them have their result.  While they are in flight nothing
 * else changes the order, so the flight keeps a copy of its row (snap) and
 * settling needs no journal read. */
struct flight {
	UT_hash_handle hh;		/* in engine.flights, by order_id */
	struct flight *next;		/* on the engine's settle or send list */
	struct journal_order snap;	/* the order row as the intents left it */
	struct engine *e;
	char order_id[EVENT_ORDER_ID_MAX + 1];
	enum saga_step_kind kind;
	char *traceparent;		/* of the causing event, copied to outputs */
	bool listed;			/* on the send list */
	bool recovered;			/* rebuilt from the journal at start */
	bool warned;			/* an error of its steps was logged */
	int64_t created_us;		/* when its intents were written */
	int nsteps;
	int ndone;
	struct flight_step steps[];
};

struct waiter;
struct adjustment;

/*
 * The engine.  Each group of fields belongs to the file named on it: that
 * file writes them, the others read them (or call its functions);
 * engine.c initialises and closes every handle.
 */
struct engine {
	/* engine.c: the handles, the transaction, the lifecycle. */
	uv_loop_t *loop;
	struct config *cf;
	struct journal *j;
	struct cluster *redis;		/* one server, or the cluster's masters */
	struct kafka *consumer;
	struct relay *relay;
	int64_t now;			/* of the transaction being written */
	bool outbox_added;		/* in this transaction (outputs.c, offsets.c too) */
	bool paused;			/* consuming paused: too many steps wait */
	struct waiter *waiters;		/* orders with waiting or parked events */
	struct engine_stats stats;	/* every file counts its own */
	void (*fatal_cb)(const char *why, void *arg);	/* see engine_set_fatal */
	void *fatal_arg;
	uv_timer_t stop_timer;
	int open_handles;
	bool stopping;
	int64_t stop_deadline;
	void (*done)(void *arg);
	void *done_arg;

	/* steps.c: the flights and the Redis connection's state. */
	struct flight *flights;		/* every flight, by order id: "in flight?" */
	struct flight *send_head, **send_tail;
	struct flight *retry_head;	/* answered with an error: sent again later */
	struct adjustment *adjust_retry;	/* stock adjustments not sent or not applied */
	bool adjust_reread;		/* the journal could not list them: ask again */
	struct flight *settle_head, **settle_tail;	/* all answered: for settle.c */
	int64_t steps_in_memory;
	bool redis_ready;		/* up, scripts loaded, and still holding the inventory */
	bool redis_was_up;		/* Redis took our credentials once since start */
	uv_timer_t retry_timer;
	uv_timer_t check_timer;		/* re-checks a Redis that lost its data */

	/* settle.c: settles after the loop's I/O. */
	uv_check_t settle_check;

	/* deadlines.c */
	uv_timer_t deadline_timer;

	/* parked.c: the events parked for orders not created, oldest first. */
	struct parked_event *parked_head;
	struct parked_order *parked_orders;	/* by order id */
	uv_timer_t parked_timer;

	/* offsets.c: holds, marks, lingering records (see README, "Running
	 * more than one instance"). */
	struct tp_queue *tps;
	struct order_mark *marks;
	struct order_mark *dirty_head;
	struct hold *resolved;		/* resolved in the open transaction */
	int nlingering;			/* marks at rest whose record waits */
	struct order_mark *linger_head;
	uv_timer_t linger_timer;	/* writes the records of orders at rest long enough */
	bool flush_marks;		/* no record may linger (set by a revocation, a stop) */

	/* snapshot.c: what the engine publishes (engine_snapshot), the journal's
	 * gauges and the consumer's lag gathered on its timer. */
	struct engine_snapshot snap;
	struct engine_lag *lag;		/* snap.lag */
	int caplag;
	uv_timer_t snapshot_timer;

	/* ownership.c: the partitions owned. */
	int32_t *owned;			/* orders partitions assigned now */
	int64_t *epochs;		/* and the epoch of each */
	int nowned;
	bool assigned;			/* the group assigned partitions once */
	bool revoking;
	int64_t revoke_started;
	uv_timer_t revoke_timer;	/* a revocation waits for its work to finish */
};

/* An order as the saga and the outputs need it. */
struct order_ctx {
	char order_id[EVENT_ORDER_ID_MAX + 1];
	bool exists;
	struct journal_order row;
	struct saga_order so;
};

/* engine.c: the batch pipeline and the lifecycle. */

/* Something orderd cannot go on with: the engine's owner stops it (exit 1). */
void engine_fatal(struct engine *e, const char *why);
/* A write to the journal failed: orderd stops (the journal has the rest). */
void engine_journal_fatal(struct engine *e, const char *what, int err)
    __attribute__((noreturn));
/* One journal transaction: begin sets e->now; commit first closes the
 * marks (changelog records, holds resolved), then releases what the
 * relay has acknowledged. */
void engine_begin(struct engine *e);
void engine_commit(struct engine *e);
/* Loads an order (a missing one is SAGA_NONE with no lines); its row is
 * released with engine_order_done. */
void engine_order_load(struct engine *e, const char *order_id, struct order_ctx *oc);
void engine_order_done(struct order_ctx *oc);
/* Fills the saga's view of an order (oc->so) from its row. */
void engine_order_parse(struct order_ctx *oc);
/* Writes what a transition did: the order row, its steps' intents (a new
 * flight on the send list), its output and its deadline; oc takes the new
 * state.  ev and cause_event_id may be NULL (settling, deadlines). */
void engine_effects(struct engine *e, struct order_ctx *oc, const struct saga_effects *fx,
    const struct event *ev, const char *cause_event_id, const char *traceparent);
/* Applies the events that waited for this order, in arrival order, until
 * one of them starts steps again. */
void engine_drain_waiting(struct engine *e, const char *order_id);
/* Pauses consuming while too many steps wait for Redis, resumes below half. */
void engine_flow_control(struct engine *e);
/* journal_orders_with_unapplied_events' callback: the order has waiting
 * or parked events (arg is the engine). */
int engine_waiter_load(const char *order_id, void *arg);
/* The order has no waiting or parked event left (parked.c's expiry). */
void engine_waiter_forget(struct engine *e, const char *order_id);
/* Whether the order is among the waiters (for the unit tests). */
bool engine_waiter_has(struct engine *e, const char *order_id);
/* Forgets every waiter (the engine's end, a unit test's). */
void engine_waiters_free(struct engine *e);
/* One consumed message, inside the open transaction: engine_on_batch's,
 * or a unit test's (no librdkafka message). */
struct engine_input {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key;
	size_t key_len;
	const void *payload;
	size_t len;
	const char *traceparent;	/* or NULL */
};
void engine_consume(struct engine *e, const struct engine_input *in);

/* A journal call that must succeed: any error, -EEXIST included (an order
 * or a step already there means memory and journal disagree), stops
 * orderd. */
#define JCHECK(e, what, call) do { \
	int jc_err_ = (call); \
	if (jc_err_ < 0) \
		engine_journal_fatal((e), (what), jc_err_); \
} while (0)
/* The same for an idempotent insert, whose -EEXIST is a duplicate that
 * changes nothing (an output whose deterministic event id is there
 * already: a re-derived transition). */
#define JCHECK_DUP(e, what, call) do { \
	int jc_err_ = (call); \
	if (jc_err_ < 0 && jc_err_ != -EEXIST) \
		engine_journal_fatal((e), (what), jc_err_); \
} while (0)

/* deadlines.c: payment deadlines. */

/* Starts polling the journal for deadlines that passed (deadline_timer). */
void deadlines_start(struct engine *e);

/* parked.c: parked-event expiry ([saga] parked_max_age_ms). */

/* Starts expiring, every second (parked_timer). */
void parked_start(struct engine *e);
/* An event was parked for an order not created (received_at: its inbox's). */
void parked_note(struct engine *e, const char *order_id, const char *event_id,
    int32_t partition, int64_t received_at);
/* The order was created: its parked events wait for its steps, not the clock. */
void parked_forget(struct engine *e, const char *order_id);
/* After an assignment: every parked event of the partitions owned, from the
 * journal with its received_at.  Returns the count or a negative errno. */
int parked_load(struct engine *e);
/* One pass, a transaction of its own when anything is due: at most limit
 * events received at or before cutoff go to the DLQ ("order never
 * arrived"), their inbox rows 'ignored'.  Returns how many expired. */
int parked_expire(struct engine *e, int64_t cutoff, int limit);
void parked_free(struct engine *e);

/* offsets.c: when an input offset may be stored. */

/* A consumed message, last on its partition's queue: its offset waits. */
struct hold *offsets_hold_new(struct engine *e, const char *topic, int32_t partition,
    int64_t offset);
/* After the message was applied: h waits for its order when the order is
 * marked or in flight, else it is resolved with this transaction. */
void offsets_hold_attach(struct engine *e, struct hold *h, const char *order_id);
/* The order changed in the open transaction (partition: of what touched
 * it, or -1); the caller sets the mark's state and bumped. */
struct order_mark *offsets_mark(struct engine *e, const char *order_id, int32_t partition);
/* Before a commit: records written, holds of orders at rest resolved;
 * true when any was.  After it: those holds wait for outbox row need. */
bool offsets_close_marks(struct engine *e);
void offsets_resolve(struct engine *e, int64_t need);
/* Stores every partition's offset up to its first hold not acknowledged
 * (after each commit; offsets_acked on each acknowledgement). */
void offsets_release(struct engine *e);
/* offsets_release's decision for one partition: takes off q the holds at
 * its head whose need is at most acked (every row up to it acknowledged)
 * and returns the last one's offset, to be stored, or -1. */
int64_t offsets_take(struct tp_queue *q, int64_t acked);
void offsets_acked(void *arg);
/* Writes the records of lingering orders whose time is up (all with force)
 * in a transaction of its own; returns whether there was any. */
bool offsets_linger_flush(struct engine *e, bool force);
/* True when no consumed message waits and no order is marked. */
bool offsets_idle(const struct engine *e);
/* After a revocation: the (empty) queues of the partitions go. */
void offsets_drop_queues(struct engine *e);
void offsets_free(struct engine *e);

/* outputs.c: the outbox rows of outputs and dead letters. */

/* Writes one output event of oc to the outbox (a repeat of its id is a no-op). */
void outputs_event(struct engine *e, const struct order_ctx *oc, enum saga_output type,
    const char *payment_id, const char *traceparent);
/* A dead letter: where it was read and its bytes (a consumed message, or
 * a journaled event that no longer decodes). */
struct dead_letter {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key;
	size_t key_len;
	const void *payload;
	size_t len;
};
/* A message that cannot be processed (error): journaled in dlq, its bytes
 * to the DLQ topic; an OrderCreated whose envelope was good (rejectable,
 * ev) is answered with OrderRejected(invalid). */
void outputs_dead_letter(struct engine *e, const struct dead_letter *m,
    const char *error, const struct event *ev, bool rejectable, const char *traceparent);

/* ownership.c: the partitions owned, their epochs, restore, revocation. */

/* The consumer's rebalance callback (kafka_rebalance_fn; arg is the engine). */
void ownership_rebalance(struct kafka *k, bool assign,
    const rd_kafka_topic_partition_list_t *parts, void *arg);
void ownership_free(struct engine *e);
/* Sends again the steps the journal has in flight (of owned partitions),
 * and loads the orders with waiting events.  Returns 0, or a negative
 * errno with *cause (caller frees): -EBADMSG for a step that belongs to no
 * line of its order. */
int ownership_recover(struct engine *e, char **cause);

/* What taking partitions did (the assignment's log line). */
struct ownership_taken {
	int64_t records;		/* changelog records read */
	int64_t restored;		/* orders taken from them */
	int64_t rows, steps;		/* superseded: of partitions owned elsewhere */
};

/* Reads partitions of the changelog: kafka_read_partitions, or a test's. */
typedef int (*ownership_read_fn)(const struct config *cf, const char *topic,
    const int32_t *parts, int nparts, int timeout_ms, kafka_record_fn fn, void *arg,
    char **cause);

/*
 * An assignment's decisions, without the consumer: takes the n partitions
 * parts (a malloc'd array the engine keeps), restores their orders from
 * the changelog (read), sets their epochs, supersedes what belongs to
 * partitions owned elsewhere, in one transaction.  Returns 0, or read's
 * negative errno with *cause, the transaction left open: the caller stops.
 */
int ownership_take(struct engine *e, int32_t *parts, int n, ownership_read_fn read,
    struct ownership_taken *out, char **cause);

/* The partitions owned, looked at for every event: inline. */

/* The epoch of an owned partition (0 when not owned). */
static inline int64_t
ownership_epoch(const struct engine *e, int32_t partition)
{
	for (int i = 0; i < e->nowned; i++)
		if (e->owned[i] == partition)
			return e->epochs[i];
	return 0;
}

static inline bool
ownership_owns(const struct engine *e, int32_t partition)
{
	for (int i = 0; i < e->nowned; i++)
		if (e->owned[i] == partition)
			return true;
	return false;
}

/* snapshot.c: the engine's published snapshot. */

/* Points the snapshot at the engine's and the relay's figures, gathers the
 * journal's gauges and the consumer's lag now, and again on snapshot_timer. */
void snapshot_start(struct engine *e);
/* Before the relay and the consumer close: no more gathering, and the
 * snapshot no longer points at the relay's. */
void snapshot_stop(struct engine *e);
void snapshot_free(struct engine *e);

/* settle.c: the transitions whose steps all answered. */

/* Settles every flight on the settle list inside the open transaction. */
void settle_flights(struct engine *e);
/* The loop's check callback: settles, in a transaction of its own, what
 * Redis answered in this turn (unless a batch did already). */
void settle_cb(uv_check_t *c);

/* steps.c: the Redis side of the steps. */

/* A new flight of nsteps steps of kind for the order oc, in engine.flights
 * (its steps' fields are the caller's to fill); copies oc's row. */
struct flight *steps_flight_new(struct engine *e, const struct order_ctx *oc,
    enum saga_step_kind kind, int nsteps, const char *traceparent);
/* Frees a flight already taken out of engine.flights. */
void steps_flight_free(struct engine *e, struct flight *f);
/* Puts f on the send list (once). */
void steps_list_send(struct engine *e, struct flight *f);
/* Sends the calls of every flight on the send list (when Redis is up). */
void steps_send(struct engine *e);
/* cluster_new's state callback and refused_cb (arg is the engine). */
void steps_redis_state(bool up, void *arg);
void steps_redis_refused(const char *why, void *arg);
/* Every flight and stock adjustment, sent or not: their intents are in the
 * journal for the next start. */
void steps_free(struct engine *e);

/* Whether the order has steps in flight: on every event, so inline. */
static inline bool
steps_in_flight(struct engine *e, const char *order_id)
{
	struct flight *f;

	HASH_FIND_STR(e->flights, order_id, f);
	return f != NULL;
}

#endif
