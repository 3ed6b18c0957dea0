/* kafka.c: librdkafka clients on the libuv loop through rd_kafka_queue_io_event_enable and a non-blocking pipe. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

struct kafka {
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;	/* the queue whose io events wake us */
	bool consumer;
	bool paused;
	bool closing;
	int fds[2];
	uv_poll_t poll;
	uv_timer_t again;		/* drains again when a batch hit its cap */
	uv_timer_t keepalive;		/* polls an idle consumer: see kafka_start */
	int open_handles;
	size_t batch_max;
	rd_kafka_message_t **batch;
	kafka_batch_fn fn;
	kafka_rebalance_fn rebalance;	/* or NULL: librdkafka assigns */
	void *arg;
	char *group;			/* a consumer's group.id, for messages */
	struct kafka_producer_events events;	/* a producer's owner */
};

/* librdkafka logs from its own threads; log.c writes each line with one
 * fwrite, which stdio locks. */
static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_LEVEL_ERROR : level == 4 ?
	    LOG_LEVEL_WARN : level <= 6 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;

	log_msg(l, "kafka", NULL, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void
kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	/* Transport errors are retried by librdkafka; these are not mended
	 * by retrying: the owner stops, with the journal intact. */
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		char *msg;

		rd_kafka_fatal_error(rk, why, sizeof(why));
		msg = kafka_explain(NULL, err, why);
		kafka_fault("%s: %s", rd_kafka_name(rk), msg);
		free(msg);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
		char *msg = kafka_explain(kafka_fault_config(), err, reason);

		kafka_fault("%s", msg);
		free(msg);
		return;
	}
	log_msg(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? LOG_LEVEL_WARN :
	    LOG_LEVEL_INFO, "kafka", NULL, "%s: %s: %s", rd_kafka_name(rk),
	    rd_kafka_err2name(err), reason);
}

static int
kafka_conf_put(rd_kafka_conf_t *conf, const char *k, const char *v, char **cause)
{
	char err[512];

	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		*cause = xasprintf("kafka.%s: %s", k, err);
		return -EINVAL;
	}
	return 0;
}

rd_kafka_conf_t *
kafka_conf_new(const struct config *cf, const char *const *pairs,
    const char *const *forced, char **cause)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	for (int i = 0; pairs != NULL && pairs[i] != NULL; i += 2)
		if (kafka_conf_put(conf, pairs[i], pairs[i + 1], cause) < 0)
			goto fail;
	for (int i = 0; cf != NULL && i < cf->nkafka; i++) {
		const struct config_kv *kv = &cf->kafka[i];
		int err;

		if (kv->secret != NULL) {
			/* KEY_file = PATH: librdkafka gets KEY, the file's content. */
			char *base = xstrndup(kv->key, strlen(kv->key) - 5);

			err = kafka_conf_put(conf, base, kv->secret, cause);
			free(base);
		} else {
			err = kafka_conf_put(conf, kv->key, kv->value, cause);
		}
		if (err < 0)
			goto fail;
	}
	for (int i = 0; forced != NULL && forced[i] != NULL; i += 2)
		if (kafka_conf_put(conf, forced[i], forced[i + 1], cause) < 0)
			goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* The broker refused the consumer a right: say which, and stop. */
static void
kafka_consumer_refused(struct kafka *k, const rd_kafka_message_t *m)
{
	const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : NULL;
	char *why;

	if (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
		kafka_fault("kafka: not authorized to read topic '%s' (%s): this principal "
		    "needs READ on it (see the README's Security section)",
		    topic != NULL ? topic : "?", rd_kafka_message_errstr(m));
	} else if (m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
		kafka_fault("kafka: not authorized to use its consumer group (%s): this "
		    "principal needs READ on group '%s' (see the README's Security section)",
		    rd_kafka_message_errstr(m), k->group != NULL ? k->group : "?");
	} else {
		why = kafka_explain(kafka_fault_config(), m->err, rd_kafka_message_errstr(m));
		kafka_fault("kafka: %s", why);
		free(why);
	}
}

/* Hands up to batch_max queued messages to the callback; returns whether
 * the queue may hold more. */
static bool
kafka_drain_consumer(struct kafka *k)
{
	size_t n = 0;

	while (n < k->batch_max) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 0);

		if (m == NULL)
			break;
		if (m->err) {
			if (kafka_err_is_access(m->err))
				kafka_consumer_refused(k, m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_warn("kafka", "consumer: %s%s%s",
				    m->rkt ? rd_kafka_topic_name(m->rkt) : "",
				    m->rkt ? ": " : "", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		k->batch[n++] = m;
	}
	if (n > 0)
		k->fn(k->batch, n, k->arg);
	return n == k->batch_max;
}

static void kafka_again_cb(uv_timer_t *t);

/* librdkafka writes to the pipe once per empty -> non-empty change of the
 * queue, so every wake-up must drain until empty, or reschedule itself. */
static void
kafka_drain(struct kafka *k)
{
	if (k->closing)
		return;
	if (!k->consumer) {
		rd_kafka_poll(k->rk, 0);
		return;
	}
	/* Paused or not, the consumer is polled: a consumer not polled for
	 * max.poll.interval.ms leaves its group.  Paused partitions fetch
	 * nothing; what was fetched before the pause is still handed over. */
	if (kafka_drain_consumer(k) && !k->closing)
		uv_timer_start(&k->again, kafka_again_cb, 0, 0);
}

static void
kafka_again_cb(uv_timer_t *t)
{
	kafka_drain(t->data);
}

/* librdkafka counts a consumer that has not polled for max.poll.interval.ms
 * (5 minutes by default) as stuck and leaves the group, and the io-event pipe
 * wakes us only when something is queued: an idle consumer must poll on its
 * own, or it rebalances every 5 minutes and loses its offset commits. */
#define KAFKA_KEEPALIVE_MS 1000

static void
kafka_keepalive_cb(uv_timer_t *t)
{
	kafka_drain(t->data);
}

static void
kafka_poll_cb(uv_poll_t *p, int status, int events)
{
	struct kafka *k = p->data;
	char buf[256];

	while (read(k->fds[0], buf, sizeof(buf)) > 0)
		;
	kafka_drain(k);
}

static int
kafka_start(struct kafka *k, uv_loop_t *loop, char **cause)
{
	int err;

	if (pipe2(k->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		err = -errno;
		*cause = xasprintf("pipe: %s", strerror(errno));
		return err;
	}
	rd_kafka_queue_io_event_enable(k->queue, k->fds[1], "1", 1);
	if ((err = uv_poll_init(loop, &k->poll, k->fds[0])) < 0) {
		*cause = xasprintf("uv_poll_init: %s", uv_strerror(err));
		return err;
	}
	k->poll.data = k;
	k->open_handles++;
	uv_timer_init(loop, &k->again);
	k->again.data = k;
	k->open_handles++;
	if (k->consumer) {
		uv_timer_init(loop, &k->keepalive);
		k->keepalive.data = k;
		k->open_handles++;
		uv_timer_start(&k->keepalive, kafka_keepalive_cb, KAFKA_KEEPALIVE_MS,
		    KAFKA_KEEPALIVE_MS);
	}
	if ((err = uv_poll_start(&k->poll, UV_READABLE, kafka_poll_cb)) < 0) {
		*cause = xasprintf("uv_poll_start: %s", uv_strerror(err));
		return err;
	}
	/* Anything queued before the pipe was attached produced no wake-up. */
	uv_timer_start(&k->again, kafka_again_cb, 0, 0);
	return 0;
}

static void
kafka_handle_closed(uv_handle_t *h)
{
	struct kafka *k = h->data;

	if (--k->open_handles > 0)
		return;
	free(k->batch);
	free(k->group);
	free(k);
}

static void
kafka_free_now(struct kafka *k)
{
	if (k->queue != NULL) {
		rd_kafka_queue_io_event_enable(k->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(k->queue);
		k->queue = NULL;
	}
	if (k->rk != NULL) {
		rd_kafka_destroy(k->rk);
		k->rk = NULL;
	}
	if (k->fds[0] >= 0)
		close(k->fds[0]);
	if (k->fds[1] >= 0)
		close(k->fds[1]);
	k->fds[0] = k->fds[1] = -1;
	if (k->open_handles == 0) {
		free(k->batch);
		free(k->group);
		free(k);
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&k->poll))
		uv_close((uv_handle_t *)&k->poll, kafka_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&k->again))
		uv_close((uv_handle_t *)&k->again, kafka_handle_closed);
	if (k->keepalive.data != NULL && !uv_is_closing((uv_handle_t *)&k->keepalive))
		uv_close((uv_handle_t *)&k->keepalive, kafka_handle_closed);
}

/* Served by polls on the loop thread (the consumer queue), and by
 * rd_kafka_consumer_close() when closing. */
static void
kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka *k = opaque;
	bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;

	if (!assign && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		log_error("kafka", "rebalance: %s", rd_kafka_err2str(err));
		rd_kafka_assign(rk, NULL);
		return;
	}
	if (k->closing || k->rebalance == NULL) {
		rd_kafka_assign(rk, assign ? parts : NULL);
		return;
	}
	k->rebalance(k, assign, parts, k->arg);
}

void
kafka_assign(struct kafka *k, const rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t e = rd_kafka_assign(k->rk, parts);

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_error("kafka", "assign: %s", rd_kafka_err2str(e));
	/* librdkafka keeps a partition's pause across an unassign: one paused
	 * during its revocation would come back paused for good.  So every
	 * assigned partition gets the consumer's state now. */
	if (parts != NULL) {
		if (k->paused)
			rd_kafka_pause_partitions(k->rk, (rd_kafka_topic_partition_list_t *)parts);
		else
			rd_kafka_resume_partitions(k->rk, (rd_kafka_topic_partition_list_t *)parts);
	}
}

int
kafka_commit_sync(struct kafka *k)
{
	rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, NULL, 0);

	if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return 0;
	log_warn("kafka", "committing offsets: %s", rd_kafka_err2str(e));
	return -EIO;
}

static struct kafka *
kafka_alloc(void)
{
	struct kafka *k = xcalloc(1, sizeof(*k));

	k->fds[0] = k->fds[1] = -1;
	return k;
}

int
kafka_consumer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const char *const *topics, int ntopics, size_t batch_max, kafka_batch_fn fn,
    kafka_rebalance_fn rebalance, void *arg, char **cause)
{
	struct kafka *k = kafka_alloc();
	rd_kafka_topic_partition_list_t *sub = NULL;
	rd_kafka_resp_err_t rerr;
	char errstr[512];
	int err;

	*out = NULL;
	k->consumer = true;
	{
		char g[256];
		size_t gl = sizeof(g);

		if (rd_kafka_conf_get(conf, "group.id", g, &gl) == RD_KAFKA_CONF_OK)
			k->group = xstrdup(g);
	}
	k->fn = fn;
	k->rebalance = rebalance;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
	k->arg = arg;
	k->batch_max = batch_max ? batch_max : 1;
	k->batch = xcalloc(k->batch_max, sizeof(*k->batch));
	k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (k->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("consumer: %s", errstr);
		err = -EINVAL;
		goto fail;
	}
	/* One queue for messages, rebalances and errors: the consumer queue. */
	rd_kafka_poll_set_consumer(k->rk);
	k->queue = rd_kafka_queue_get_consumer(k->rk);
	if ((err = kafka_start(k, loop, cause)) < 0)
		goto fail;
	sub = rd_kafka_topic_partition_list_new(ntopics);
	for (int i = 0; i < ntopics; i++)
		rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
	rerr = rd_kafka_subscribe(k->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*cause = xasprintf("subscribe: %s", rd_kafka_err2str(rerr));
		err = -EINVAL;
		goto fail;
	}
	*out = k;
	return 0;
fail:
	kafka_free_now(k);
	return err;
}

/* Served by polls on the loop thread (the main queue). */
static void
kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka *k = opaque;
	rd_kafka_timestamp_type_t tt;
	struct kafka_delivery d = {
		.opaque = m->_private,
		.err = m->err,
		.errstr = rd_kafka_err2str(m->err),
		.topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "?",
		.timestamp_ms = rd_kafka_message_timestamp(m, &tt),
	};

	k->events.delivered(&d, k->events.arg);
}

static void
kafka_producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka *k = opaque;

	kafka_error_cb(rk, err, reason, opaque);
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && k->events.brokers_down != NULL)
		k->events.brokers_down(k->events.arg);
}

int
kafka_producer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    const struct kafka_producer_events *ev, char **cause)
{
	struct kafka *k = kafka_alloc();
	char errstr[512];
	int err;

	*out = NULL;
	k->events = *ev;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_producer_error_cb);
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (k->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("producer: %s", errstr);
		err = -EINVAL;
		goto fail;
	}
	/* Delivery reports and errors land on the main queue. */
	k->queue = rd_kafka_queue_get_main(k->rk);
	if ((err = kafka_start(k, loop, cause)) < 0)
		goto fail;
	*out = k;
	return 0;
fail:
	kafka_free_now(k);
	return err;
}

int
kafka_produce(struct kafka *k, const struct kafka_message *m, const char **why)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(m->nheaders > 0 ? (size_t)m->nheaders : 1);
	rd_kafka_resp_err_t e;

	for (int i = 0; i < m->nheaders; i++)
		rd_kafka_header_add(h, m->headers[i].name, -1, m->headers[i].value,
		    (ssize_t)m->headers[i].len);
	e = rd_kafka_producev(k->rk,
	    RD_KAFKA_V_TOPIC(m->topic),
	    RD_KAFKA_V_PARTITION(m->partition),
	    RD_KAFKA_V_KEY(m->key, m->key_len),
	    RD_KAFKA_V_VALUE((void *)m->value, m->len),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(h),
	    RD_KAFKA_V_OPAQUE(m->opaque),
	    RD_KAFKA_V_TIMESTAMP(m->timestamp_ms),
	    RD_KAFKA_V_END);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;	/* librdkafka owns the headers now */
	rd_kafka_headers_destroy(h);
	*why = rd_kafka_err2str(e);
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return -ENOBUFS;
	if (kafka_err_is_access(e))
		return -EACCES;
	if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
		return -EMSGSIZE;
	if (e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
		return -ENOENT;
	return -EIO;
}

void
kafka_poll(struct kafka *k)
{
	rd_kafka_poll(k->rk, 0);
}

int
kafka_flush(struct kafka *k, int timeout_ms)
{
	return rd_kafka_flush(k->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -ETIMEDOUT;
}

void
kafka_pause(struct kafka *k, bool paused)
{
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (k->paused == paused || !k->consumer)
		return;
	k->paused = paused;
	/* Pausing the assigned partitions stops fetching at the broker, so
	 * memory stays flat, while polling goes on (group membership). */
	if (rd_kafka_assignment(k->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
		if (paused)
			rd_kafka_pause_partitions(k->rk, parts);
		else
			rd_kafka_resume_partitions(k->rk, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	if (!paused && !k->closing)
		uv_timer_start(&k->again, kafka_again_cb, 0, 0);
}

void
kafka_set_batch_max(struct kafka *k, size_t batch_max)
{
	if (batch_max == 0 || batch_max == k->batch_max)
		return;
	k->batch = xrealloc(k->batch, batch_max * sizeof(*k->batch));
	k->batch_max = batch_max;
}

int
kafka_store_offset(struct kafka *k, const char *topic, int32_t partition,
    int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t e;

	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset + 1;
	e = rd_kafka_offsets_store(k->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	/* A partition revoked meanwhile cannot store: its new owner re-reads
	 * the event and the journal's inbox recognises it. */
	return e == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -ESRCH;
}

void
kafka_close(struct kafka *k, int flush_ms)
{
	if (k == NULL)
		return;
	k->closing = true;
	if (k->queue != NULL) {
		/* No more writes to the pipe we are about to close. */
		rd_kafka_queue_io_event_enable(k->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(k->queue);
		k->queue = NULL;
	}
	if (k->consumer) {
		rd_kafka_resp_err_t e = rd_kafka_consumer_close(k->rk);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warn("kafka", "consumer close: %s", rd_kafka_err2str(e));
	} else if (flush_ms > 0) {
		rd_kafka_resp_err_t e = rd_kafka_flush(k->rk, flush_ms);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warn("kafka", "producer flush: %d messages not delivered",
			    rd_kafka_outq_len(k->rk));
	}
	kafka_free_now(k);
}

int
kafka_consumer_lag(struct kafka *k,
    void (*fn)(const char *topic, int32_t partition, int64_t lag, void *arg), void *arg)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	int n = 0;

	if (k == NULL || !k->consumer || k->closing)
		return -EINVAL;
	/* The assignment is one hop to librdkafka's main thread; positions
	 * and watermarks are read under partition locks: no network. */
	if (rd_kafka_assignment(k->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -EIO;
	if (rd_kafka_position(k->rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_topic_partition_list_destroy(l);
		return -EIO;
	}
	for (int i = 0; i < l->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &l->elems[i];
		int64_t lo, hi;

		if (p->offset < 0 || rd_kafka_get_watermark_offsets(k->rk, p->topic,
		    p->partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
			continue;
		fn(p->topic, p->partition, hi > p->offset ? hi - p->offset : 0, arg);
		n++;
	}
	rd_kafka_topic_partition_list_destroy(l);
	return n;
}
