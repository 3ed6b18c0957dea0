/* harness.h: end-to-end tests: a real orderd process on its own topics, journal and Redis prefix. */
#ifndef ORDERD_HARNESS_H
#define ORDERD_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

enum { H_ORDERS = 0, H_PAYMENTS, H_PAYMENT_REQUESTS, H_ORDER_EVENTS, H_DLQ, H_STATE, H_NTOPICS };

/* One output message seen on an output topic. */
struct h_msg {
	char *topic;
	char *key;
	char *event_id;		/* the header */
	char *traceparent;	/* the header, or NULL */
	char *error;		/* the header (DLQ), or NULL */
	json_t *body;		/* NULL when the value is not JSON (DLQ) */
	char *raw;
	size_t raw_len;
};

struct h {
	char *name;		/* unique: topics, group and Redis prefix derive from it */
	char *dir;		/* journal, logs */
	char *journal;
	char *prefix;
	char *topic[H_NTOPICS];	/* orders, payments, payment-requests, order-events, dlq, state */
	char **extra;		/* more -s overrides for orderd */
	int nextra;
	pid_t pid;
	void *out;		/* the output consumer (rd_kafka_t) */
	void *prod;		/* the input producer (rd_kafka_t) */
	struct h_msg *msgs;
	int nmsgs, capmsgs;
	int redis_port;		/* a private Redis (h_use_redis), or 0: the shared one */
};


/* Creates topics (partitions each; the DLQ gets 1) and the scratch dir. */
struct h *h_new(const char *name, int partitions);
/* Adds an "-s" override for the next h_start. */
void h_set(struct h *h, const char *override);
/* Starts orderd and waits until it says it is consuming. */
void h_start(struct h *h);
/* Runs orderd to its end (for refusals); returns the exit status and its
 * output (caller frees). */
int h_run_orderd(struct h *h, char **out);
/* Creates one more topic. */
void h_create_topic(struct h *h, const char *name, int partitions);
/* SIGTERM and wait; returns the exit status (or 128+signal). */
int h_stop(struct h *h);
/* SIGKILL and wait. */
void h_kill(struct h *h);
void h_free(struct h *h);

/* Produces one value (key may be NULL) with an optional traceparent. */
void h_produce(struct h *h, int topic, const char *key, const char *value,
    const char *traceparent);
/* Produces an event from a JSON format (json_pack). */
void h_send(struct h *h, int topic, const char *order_id, const char *fmt, ...);

/* Waits up to timeout_ms for a message of type on topic for order_id;
 * NULL when none came. */
const struct h_msg *h_wait(struct h *h, int topic, const char *order_id,
    const char *type, int timeout_ms);
/* The number of messages seen so far on topic for order_id (and type, or
 * any type when NULL), after consuming for settle_ms more. */
int h_count(struct h *h, int topic, const char *order_id, const char *type, int settle_ms);

/* orderctl with this instance's configuration; returns the exit status and,
 * when out is not NULL, stdout (caller frees). */
int h_ctl(struct h *h, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* orderctl stock add. */
void h_stock(struct h *h, const char *sku, long long qty);
/* Redis counters of a sku; the invariant is asserted on the way. */
void h_counters(struct h *h, const char *sku, long long *available, long long *reserved,
    long long *sold);
/* The state field of a reservation record, or "" when there is none. */
void h_reservation(struct h *h, const char *sku, const char *order_id, char *state,
    size_t len);
/* Asserts orderctl reconcile --json says ok (after waiting for quiescence). */
void h_reconcile_ok(struct h *h);
/* One integer from an SQL query on the journal. */
long long h_sql(struct h *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Points orderd, orderctl and the Redis helpers here at a private Redis on
 * port (started by the test, e.g. with contrib/redis.sh). */
void h_use_redis(struct h *h, int port);
/* Runs one Redis command (hiredis format) on this instance's Redis; an
 * error reply fails the test.  Returns an integer reply, else 0. */
long long h_redis_cmd(struct h *h, const char *fmt, ...);
/* Every key under this instance's prefix with its contents, one line per
 * key in key order (hash fields and set members sorted): equal strings
 * mean equal inventories.  The caller frees it. */
char *h_redis_snapshot(struct h *h);
/* The sum over topic's partitions of the offsets orderd's consumer group
 * committed (a partition without a commit counts 0). */
long long h_committed(struct h *h, int topic);

/* Paths of the programs under test (the build tree). */
const char *h_bin(const char *prog);

#endif
