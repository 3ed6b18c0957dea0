/* kafka.h: librdkafka clients inside the libuv loop: an io-event pipe watched by uv_poll, drained until empty. */
#ifndef ORDERD_KAFKA_H
#define ORDERD_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

struct config;
struct kafka;

/*
 * A batch of consumed messages; the callee owns them (rd_kafka_message_destroy).
 * Error events (partition EOF, transport errors) are logged by the module
 * and never reach the callback.
 */
typedef void (*kafka_batch_fn)(rd_kafka_message_t **msgs, size_t n, void *arg);

/*
 * A librdkafka configuration from [kafka] of cf, with logs routed to log.c.
 * pairs is a NULL-terminated list of key, value defaults that [kafka]
 * overrides ("enable.idempotence", "true", ..., NULL); forced is applied
 * last and wins.  Returns NULL with *cause (caller frees) naming the key.
 */
rd_kafka_conf_t *kafka_conf_new(const struct config *cf, const char *const *pairs,
    const char *const *forced, char **cause);

/*
 * A rebalance of the consumer group (eager: everything is revoked, then the
 * new assignment comes).  The callee answers with kafka_assign(k, parts)
 * for an assignment, kafka_assign(k, NULL) for a revocation: at once, or
 * later from the loop (within the group's rebalance timeout).  parts lives
 * only during the call.  A closing consumer answers on its own.
 */
typedef void (*kafka_rebalance_fn)(struct kafka *k, bool assign,
    const rd_kafka_topic_partition_list_t *parts, void *arg);

/*
 * A consumer subscribed to topics, in the group of conf ("group.id" must
 * be set).  batch_max caps one callback's batch; when more is queued the
 * module drains again on the next loop iteration.  rebalance may be NULL
 * (librdkafka assigns).  Takes conf.
 */
int kafka_consumer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const char *const *topics, int ntopics, size_t batch_max, kafka_batch_fn fn,
    kafka_rebalance_fn rebalance, void *arg, char **cause);
/* The answer to a rebalance (see kafka_rebalance_fn). */
void kafka_assign(struct kafka *k, const rd_kafka_topic_partition_list_t *parts);
/* Commits the stored offsets now (blocking: revocation and shutdown only). */
int kafka_commit_sync(struct kafka *k);

/*
 * The metadata of one topic (rkt, of rk), asked now within timeout_ms.
 * Blocking.  Returns RD_KAFKA_RESP_ERR_NO_ERROR with *md set (the caller
 * frees it with rd_kafka_metadata_destroy), or the request's error or the
 * topic's own (unknown, not authorized) with *md NULL.
 */
rd_kafka_resp_err_t kafka_topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
    int timeout_ms, const struct rd_kafka_metadata **md);
/*
 * The high watermark of a partition of topic (and its low one, when low is
 * not NULL), asked of the broker through rk, any client.  While the
 * partition has no leader (a topic just created, a broker just restarted)
 * or the broker does not answer, asks again every 100 ms until deadline_us
 * (util_mono_us()).  Blocking.  Returns RD_KAFKA_RESP_ERR_NO_ERROR, or the
 * last error.
 */
rd_kafka_resp_err_t kafka_high_watermark(rd_kafka_t *rk, const char *topic, int32_t partition,
    int64_t deadline_us, int64_t *high, int64_t *low);


/* One record read by kafka_read_records(); it lives during the callback. */
struct kafka_record {
	int32_t partition;
	int64_t offset;
	const void *key;	/* NULL: none */
	size_t key_len;
	const void *value;	/* NULL: a tombstone */
	size_t len;
};

/* Limits of kafka_read_records(); at least one of the two times is set. */
struct kafka_read_options {
	/* group.id of the consumer (assigned, never joined nor committed to,
	 * but looked up: ACLs must grant DESCRIBE on it); NULL: orderd-restore. */
	const char *group;
	int timeout_ms;		/* the whole read; 0: no limit */
	int stall_ms;		/* nothing read for this long ends it; 0: no limit */
	/* A consume error other than a transient one (transport, no leader)
	 * ends the read (-EIO); else it is logged and the read goes on. */
	bool strict;
};

/* A negative errno stops the read. */
typedef int (*kafka_read_fn)(const struct kafka_record *r, void *arg);
/*
 * Reads partitions of topic from their beginning to their high watermark
 * at the call (what is published later belongs to a later read), with a
 * consumer of its own: blocking, for restoring and checking state.
 * Tombstones are records too.  Returns the number of records, or a
 * negative errno with *cause (caller frees): -EINVAL for a [kafka]
 * configuration librdkafka refuses, -ETIMEDOUT, -EIO, or fn's own.
 */
int kafka_read_records(const struct config *cf, const char *topic, const int32_t *parts,
    int nparts, const struct kafka_read_options *opt, kafka_read_fn fn, void *arg,
    char **cause);

/* One record of kafka_read_partitions(); value NULL for a tombstone; a
 * negative errno stops the read. */
typedef int (*kafka_record_fn)(int32_t partition, const void *key, size_t key_len,
    const void *value, size_t len, void *arg);
/* kafka_read_records() as group orderd-restore, within timeout_ms, consume
 * errors logged. */
int kafka_read_partitions(const struct config *cf, const char *topic, const int32_t *parts,
    int nparts, int timeout_ms, kafka_record_fn fn, void *arg, char **cause);
/* kafka_message.partition: the partitioner picks one by the key. */
#define KAFKA_PARTITION_ANY RD_KAFKA_PARTITION_UA

/* One header of a message to produce. */
struct kafka_header {
	const char *name;
	const void *value;
	size_t len;
};

/* One message for kafka_produce(); everything is copied by the call. */
struct kafka_message {
	const char *topic;
	int32_t partition;		/* or KAFKA_PARTITION_ANY */
	const void *key;		/* NULL: none */
	size_t key_len;
	const void *value;
	size_t len;
	const struct kafka_header *headers;	/* in this order */
	int nheaders;
	int64_t timestamp_ms;		/* the Kafka timestamp; 0: the time of the call */
	void *opaque;			/* handed back by its delivery report */
};

/* The broker's answer for one message produced; it lives during the call. */
struct kafka_delivery {
	void *opaque;			/* the message's */
	rd_kafka_resp_err_t err;	/* RD_KAFKA_RESP_ERR_NO_ERROR: acknowledged */
	const char *errstr;		/* librdkafka's words for err */
	const char *topic;
	int64_t timestamp_ms;		/* the message's Kafka timestamp, or -1 */
};

/* What a producer tells its owner, on the loop (from kafka_poll, kafka_flush
 * or the producer's own wake-ups). */
struct kafka_producer_events {
	/* One per message produced, failed or not. */
	void (*delivered)(const struct kafka_delivery *d, void *arg);
	/* librdkafka reported every broker of this producer down (NULL: not
	 * wanted); it is logged anyway. */
	void (*brokers_down)(void *arg);
	void *arg;
};

/* A producer whose delivery reports and broker state go to ev (copied).
 * Takes conf: kafka.c sets its opaque and callbacks. */
int kafka_producer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const struct kafka_producer_events *ev, char **cause);
/*
 * Hands one message to the producer k.  Returns 0 (its delivery report
 * follows), or a negative errno with *why (librdkafka's words, static):
 * -ENOBUFS when the producer's queue is full (try again after a poll),
 * -EACCES for a refusal of this principal (kafka_err_is_access), -EMSGSIZE,
 * -ENOENT for an unknown topic or partition, -EIO for anything else.
 */
int kafka_produce(struct kafka *k, const struct kafka_message *m, const char **why);
/* Serves what the producer has queued now (delivery reports, errors). */
void kafka_poll(struct kafka *k);
/* Waits up to timeout_ms for every message produced to have its delivery
 * report (served meanwhile).  Blocks (shutdown only).  Returns 0 or
 * -ETIMEDOUT. */
int kafka_flush(struct kafka *k, int timeout_ms);
/* Pauses (true) or resumes (false) fetching of the assigned partitions;
 * the consumer is still polled, and a message fetched before the pause is
 * still handed to the batch callback. */
void kafka_pause(struct kafka *k, bool paused);
void kafka_set_batch_max(struct kafka *k, size_t batch_max);
/* Marks everything up to and including m's offset as processed (the next
 * commit carries offset + 1). */
int kafka_store_offset(struct kafka *k, const char *topic, int32_t partition,
    int64_t offset);

/*
 * The start-up check of every program: reaches the broker with the [kafka]
 * settings of cf (a client of its own, no group) and asks for the metadata
 * of each topic.  partitions[i] gets topic i's partition count, or
 * -ENOENT when it does not exist.  Fails within a second, with a cause
 * naming it, when the broker refuses the credentials or the TLS handshake
 * (-EACCES: "kafka: authentication failed: ...", "kafka: TLS certificate:
 * ..."; a SCRAM failure with a librdkafka older than 2.6.1 says what to
 * use instead) or the principal may not describe a topic (-EACCES, naming
 * it); -ETIMEDOUT when no broker answers within timeout_ms.  Blocking:
 * start-up only.  Returns 0 or a negative errno with *cause (caller frees).
 */
int kafka_check_access(const struct config *cf, const char *const *topics, int ntopics,
    int *partitions, int timeout_ms, char **cause);

/*
 * Faults that retrying cannot mend (the broker refused the credentials or
 * a right, a TLS failure, librdkafka's fatal errors): fn(why, arg) runs on
 * the loop, once, and should stop the program with the journal intact.
 * Without a handler the process logs why and exits 1.  cf is for
 * kafka_explain's hints (may be NULL).
 */
void kafka_set_fault_handler(const struct config *cf,
    void (*fn)(const char *why, void *arg), void *arg);
void kafka_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether kafka_fault() was called: what would only repeat the refusal
 * (the relay's producing) stops. */
bool kafka_faulted(void);
/* The configuration kafka_set_fault_handler() was given (NULL: none). */
const struct config *kafka_fault_config(void);
/* Whether a broker's error is a refusal of this principal (authorization,
 * authentication, TLS). */
bool kafka_err_is_access(rd_kafka_resp_err_t e);
/* One line for an error that retrying cannot mend, naming its cause and
 * what to check; err is an rd_kafka_resp_err_t.  The caller frees it. */
char *kafka_explain(const struct config *cf, int err, const char *reason);

/*
 * Closes the client: a consumer commits its stored offsets and leaves the
 * group, a producer waits up to flush_ms for its queue.  Blocks (shutdown
 * only).  The uv handles are closed; k is freed in their close callback.
 */
void kafka_close(struct kafka *k, int flush_ms);

/*
 * Calls fn for each partition assigned to the consumer k with its lag: the
 * high watermark librdkafka last heard from the broker minus the position
 * (the offset after the last message handed to the application).  Reads
 * only what librdkafka has cached, no broker request, so /metrics can ask
 * on every scrape.  A partition whose position or watermark is not known
 * yet (nothing fetched since the assignment) is left out.  Returns the
 * number of partitions reported or a negative errno.
 */
int kafka_consumer_lag(struct kafka *k,
    void (*fn)(const char *topic, int32_t partition, int64_t lag, void *arg), void *arg);

#endif
