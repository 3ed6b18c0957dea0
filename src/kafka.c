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
};

/* Set by an "all brokers down" error, cleared by the next message consumed
 * or delivered.  Error callbacks are served by polls on the loop thread. */
static bool kafka_all_brokers_down;

bool
kafka_brokers_down(void)
{
	return kafka_all_brokers_down;
}

void
kafka_note_broker_up(void)
{
	kafka_all_brokers_down = false;
}

/* librdkafka logs from its own threads; log.c writes each line with one
 * fwrite, which stdio locks. */
static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_LEVEL_ERROR : level == 4 ?
	    LOG_LEVEL_WARN : level <= 6 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;

	log_msg(l, "kafka", NULL, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

/* ---- faults that retrying cannot mend ---- */

static void (*kafka_fault_fn)(const char *why, void *arg);
static void *kafka_fault_arg;
static const struct config *kafka_fault_cf;	/* for kafka_explain's hints */
static bool kafka_faulted_flag;

void
kafka_set_fault_handler(const struct config *cf, void (*fn)(const char *why, void *arg),
    void *arg)
{
	kafka_fault_cf = cf;
	kafka_fault_fn = fn;
	kafka_fault_arg = arg;
}

void
kafka_fault(const char *fmt, ...)
{
	va_list ap;
	char *why;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	va_end(ap);
	if (kafka_fault_fn == NULL)
		log_fatal("kafka", "%s", why != NULL ? why : "out of memory");
	/* One report: librdkafka repeats its errors while the owner stops. */
	if (!kafka_faulted_flag) {
		kafka_faulted_flag = true;
		kafka_fault_fn(why != NULL ? why : "out of memory", kafka_fault_arg);
	}
	free(why);
}

bool
kafka_faulted(void)
{
	return kafka_faulted_flag;
}

bool
kafka_err_is_access(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR__SSL;
}

/* The [kafka] value of key (librdkafka's names, and their aliases), or NULL. */
static const char *
kafka_conf_value(const struct config *cf, const char *key, const char *alias)
{
	const char *v = NULL;

	for (int i = 0; cf != NULL && i < cf->nkafka; i++)
		if (strcasecmp(cf->kafka[i].key, key) == 0 ||
		    (alias != NULL && strcasecmp(cf->kafka[i].key, alias) == 0))
			v = cf->kafka[i].value;
	return v;
}

char *
kafka_explain(const struct config *cf, int err, const char *reason)
{
	const char *mech = kafka_conf_value(cf, "sasl.mechanism", "sasl.mechanisms");

	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
	    err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) {
		/* librdkafka before 2.6.1 sends a SCRAM client-final message
		 * that Kafka 4 brokers take for a wrong password. */
		if (mech != NULL && strncasecmp(mech, "SCRAM", 5) == 0 &&
		    rd_kafka_version() < 0x02060100)
			return xasprintf("authentication failed: the broker refused the "
			    "credentials (%s); if the password is right: librdkafka %s has a "
			    "SCRAM bug that Kafka 4 brokers refuse (fixed in 2.6.1, "
			    "confluentinc/librdkafka#4895): use sasl.mechanism = PLAIN over "
			    "SASL_SSL, or mutual TLS, or librdkafka >= 2.6.1 (Debian 13)", reason,
			    rd_kafka_version_str());
		return xasprintf("authentication failed: the broker refused the credentials "
		    "(%s): check kafka.sasl.mechanism, sasl.username and the password", reason);
	}
	if (err == RD_KAFKA_RESP_ERR__SSL) {
		if (strstr(reason, "certificate verify failed") != NULL ||
		    strstr(reason, "could not be verified") != NULL)
			return xasprintf("TLS certificate: the broker's certificate is not "
			    "trusted (%s): check kafka.ssl.ca.location", reason);
		if (strstr(reason, " alert ") != NULL)
			return xasprintf("TLS certificate: the broker refused our client "
			    "certificate (%s): check kafka.ssl.certificate.location, "
			    "ssl.key.location and that the broker trusts their CA", reason);
		return xasprintf("TLS: %s: check the kafka.ssl.* keys", reason);
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		return xasprintf("fatal error: %s", reason);
	return xasprintf("%s: %s", rd_kafka_err2name(err), reason);
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
		char *msg = kafka_explain(kafka_fault_cf, err, reason);

		kafka_fault("%s", msg);
		free(msg);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		kafka_all_brokers_down = true;
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
		why = kafka_explain(kafka_fault_cf, m->err, rd_kafka_message_errstr(m));
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
	if (n > 0) {
		kafka_all_brokers_down = false;
		k->fn(k->batch, n, k->arg);
	}
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

/* What the start-up probe heard from librdkafka. */
struct kafka_probe {
	int err;			/* the first error that retrying cannot mend */
	char why[512];
	char transport[512];		/* the last transport error, for a timeout */
};

static void
kafka_probe_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka_probe *p = opaque;

	/* A broker that refuses our client certificate sends a TLS alert,
	 * which librdkafka reports as a transport error ("Receive failed:
	 * ...: sslv3 alert certificate unknown"): as final as a refused
	 * password. */
	if (err == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "SSL routines") != NULL &&
	    strstr(reason, " alert ") != NULL)
		err = RD_KAFKA_RESP_ERR__SSL;
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL ||
	    err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
	    err == RD_KAFKA_RESP_ERR__FATAL) {
		if (p->err == 0) {
			p->err = err;
			snprintf(p->why, sizeof(p->why), "%s", reason);
		}
	} else {
		snprintf(p->transport, sizeof(p->transport), "%s", reason);
	}
}

/* librdkafka's own lines would say the same as the probe's one line. */
static void
kafka_probe_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	log_debug("kafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int
kafka_check_access(const struct config *cf, const char *const *topics, int ntopics,
    int *partitions, int timeout_ms, char **cause)
{
	static const char *const forced[] = { "client.id", "orderd-check", NULL };
	struct kafka_probe probe = { 0 };
	rd_kafka_conf_t *conf = kafka_conf_new(cf, NULL, forced, cause);
	int64_t deadline = util_mono_us() + (int64_t)timeout_ms * 1000;
	rd_kafka_t *rk;
	char errstr[512];
	int err = 0, i = 0;

	if (conf == NULL)
		return -EINVAL;
	rd_kafka_conf_set_error_cb(conf, kafka_probe_error_cb);
	rd_kafka_conf_set_log_cb(conf, kafka_probe_log_cb);
	rd_kafka_conf_set_opaque(conf, &probe);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka: %s", errstr);
		return -EINVAL;
	}
	for (i = 0; i < ntopics; i++)
		partitions[i] = -ENOENT;
	i = 0;
	/* No topic: the brokers' metadata alone says we may talk to them. */
	while (i < ntopics || (ntopics == 0 && i == 0)) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rkt = ntopics > 0 ? rd_kafka_topic_new(rk, topics[i], NULL) : NULL;
		rd_kafka_resp_err_t e;

		/* Short requests, so that an authentication or TLS failure
		 * (served by the poll) ends the wait at once. */
		e = rd_kafka_metadata(rk, 0, rkt, &md, 500);
		if (rkt != NULL)
			rd_kafka_topic_destroy(rkt);
		rd_kafka_poll(rk, 0);
		if (probe.err != 0) {
			char *why = kafka_explain(cf, probe.err, probe.why);

			*cause = xasprintf("kafka: %s", why);
			free(why);
			err = -EACCES;
			break;
		}
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR && ntopics == 0) {
			i = 1;
		} else if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
			rd_kafka_resp_err_t te = md->topics[0].err;

			if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
				partitions[i++] = md->topics[0].partition_cnt;
			} else if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
				partitions[i++] = -ENOENT;
			} else if (te == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
				*cause = xasprintf("kafka: not authorized to describe topic '%s': this "
				    "principal needs READ (an input) or WRITE (an output) on it "
				    "(see the README's Security section)", topics[i]);
				err = -EACCES;
				rd_kafka_metadata_destroy(md);
				break;
			}
			/* Anything else (no leader yet): ask again. */
		}
		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		else
			usleep(100 * 1000);	/* a transport error may come back at once */
		if ((i < ntopics || (ntopics == 0 && i == 0)) && util_mono_us() > deadline) {
			*cause = xasprintf("kafka: no answer from the broker (%s) within %d s%s%s",
			    kafka_conf_value(cf, "bootstrap.servers", "metadata.broker.list") ?
			    kafka_conf_value(cf, "bootstrap.servers", "metadata.broker.list") : "?",
			    timeout_ms / 1000, probe.transport[0] ? ": " : "", probe.transport);
			err = -ETIMEDOUT;
			break;
		}
	}
	rd_kafka_destroy(rk);
	return err;
}

/* How often kafka_high_watermark asks while a partition has no leader. */
#define KAFKA_LEADER_RETRY_MS 100

rd_kafka_resp_err_t
kafka_high_watermark(rd_kafka_t *rk, const char *topic, int32_t partition,
    int64_t deadline_us, int64_t *high, int64_t *low)
{
	int64_t lo = 0;
	rd_kafka_resp_err_t e;

	for (;;) {
		int64_t left_ms = (deadline_us - util_mono_us()) / 1000;
		/* Each request waits at most until the deadline too. */
		int wait_ms = left_ms < 1 ? 1 : left_ms > INT_MAX ? INT_MAX : (int)left_ms;

		e = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, high, wait_ms);
		/* A topic just created, or a broker just restarted, has no
		 * leader for a moment: worth asking again, other errors are not. */
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
		    (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
		    e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
		    e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
		    e != RD_KAFKA_RESP_ERR__TRANSPORT &&
		    e != RD_KAFKA_RESP_ERR__TIMED_OUT) || util_mono_us() >= deadline_us)
			break;
		usleep(KAFKA_LEADER_RETRY_MS * 1000);
	}
	if (low != NULL)
		*low = lo;
	return e;
}

/* Errors librdkafka recovers from by itself: a read waits them out. */
static bool
kafka_err_is_transient(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
	    e == RD_KAFKA_RESP_ERR__RESOLVE || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
	    e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	    e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
}


/* The limits of one kafka_read_records(): its end, and its last progress. */
struct kafka_read_clock {
	const struct kafka_read_options *opt;
	int64_t deadline;	/* INT64_MAX: none */
	int64_t last;		/* the last end offset or record read */
};

/* How long the read may still wait, in ms; 0 when it is over. */
static int
kafka_read_left_ms(const struct kafka_read_clock *t)
{
	int64_t now = util_mono_us(), left = t->deadline - now;

	if (t->opt->stall_ms > 0 && t->last + t->opt->stall_ms * 1000LL - now < left)
		left = t->last + t->opt->stall_ms * 1000LL - now;
	return left <= 0 ? 0 : left / 1000 >= INT32_MAX ? INT32_MAX : (int)(left / 1000) + 1;
}

/* The high watermark of a partition: the read's end.  A topic just created,
 * or a broker just restarted, has no leader for a moment: asked again
 * while the read may wait. */
static rd_kafka_resp_err_t
kafka_read_end(rd_kafka_t *rk, const char *topic, int32_t part, struct kafka_read_clock *t,
    int64_t *lo, int64_t *hi)
{
	int left = kafka_read_left_ms(t);
	rd_kafka_resp_err_t e;

	if (left <= 0)
		return RD_KAFKA_RESP_ERR__TIMED_OUT;
	e = kafka_high_watermark(rk, topic, part, util_mono_us() + left * 1000LL, hi, lo);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		t->last = util_mono_us();
	return e;
}

int
kafka_read_records(const struct config *cf, const char *topic, const int32_t *parts,
    int nparts, const struct kafka_read_options *opt, kafka_read_fn fn, void *arg,
    char **cause)
{
	const char *group = opt->group != NULL ? opt->group : "orderd-restore";
	const char *const defaults[] = {
		"client.id", group,
		"fetch.max.bytes", "16777216",
		NULL,
	};
	const char *const forced[] = {
		/* Assigned, never subscribed: the group is never joined and
		 * nothing is committed (librdkafka wants a group.id all the same,
		 * and looks it up: the principal needs DESCRIBE on it). */
		"group.id", group,
		"enable.auto.commit", "false",
		"enable.auto.offset.store", "false",
		"enable.partition.eof", "true",
		"auto.offset.reset", "earliest",
		NULL,
	};
	rd_kafka_conf_t *conf = kafka_conf_new(cf, defaults, forced, cause);
	struct kafka_read_clock t = { .opt = opt, .last = util_mono_us() };
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_resp_err_t e;
	int64_t *end = NULL;
	rd_kafka_t *rk = NULL;
	char errstr[512];
	int left = 0, n = 0, err = 0;

	if (conf == NULL)
		return -EINVAL;
	t.deadline = opt->timeout_ms > 0 ? t.last + opt->timeout_ms * 1000LL : INT64_MAX;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("%s: %s", topic, errstr);
		return -EINVAL;
	}
	end = xcalloc((size_t)(nparts > 0 ? nparts : 1), sizeof(*end));
	l = rd_kafka_topic_partition_list_new(nparts > 0 ? nparts : 1);
	/* The end is the high watermark now: what is written later is newer
	 * than the reader needs (its own partitions are not consumed yet). */
	for (int i = 0; i < nparts; i++) {
		int64_t lo = 0, hi = 0;

		if ((e = kafka_read_end(rk, topic, parts[i], &t, &lo, &hi)) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR) {
			*cause = xasprintf("%s [%d]: end offset: %s", topic, (int)parts[i],
			    rd_kafka_err2str(e));
			err = -EIO;
			goto done;
		}
		end[i] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(l, topic, parts[i])->offset =
			    RD_KAFKA_OFFSET_BEGINNING;
			left++;
		} else {
			end[i] = -1;	/* empty: nothing to read */
		}
	}
	if (left > 0 && (e = rd_kafka_assign(rk, l)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*cause = xasprintf("%s: assign: %s", topic, rd_kafka_err2str(e));
		err = -EIO;
		goto done;
	}
	while (left > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		int i;

		if (kafka_read_left_ms(&t) == 0) {
			if (util_mono_us() >= t.deadline)
				*cause = xasprintf("%s: not read to its end within %d ms", topic,
				    opt->timeout_ms);
			else
				*cause = xasprintf("%s: nothing read for %d s, %d partitions short "
				    "of their end", topic, opt->stall_ms / 1000, left);
			err = -ETIMEDOUT;
			if (m != NULL)
				rd_kafka_message_destroy(m);
			goto done;
		}
		if (m == NULL)
			continue;
		for (i = 0; i < nparts && parts[i] != m->partition; i++)
			;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* Compaction may leave the last offsets empty. */
			if (i < nparts && end[i] >= 0 && m->offset >= end[i]) {
				t.last = util_mono_us();
				end[i] = -1;
				left--;
			}
		} else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (opt->strict && !kafka_err_is_transient(m->err)) {
				*cause = xasprintf("%s: %s", topic, rd_kafka_message_errstr(m));
				err = -EIO;
				rd_kafka_message_destroy(m);
				goto done;
			}
			if (!opt->strict)
				log_warn("kafka", "reading %s: %s", topic, rd_kafka_message_errstr(m));
		} else if (i < nparts && end[i] >= 0) {
			struct kafka_record r = {
				.partition = m->partition, .offset = m->offset,
				.key = m->key, .key_len = m->key_len,
				.value = m->payload, .len = m->len,
			};

			t.last = util_mono_us();
			/* Past the end when offsets up to it were compacted away:
			 * a record of a later read. */
			if (m->offset < end[i]) {
				if ((err = fn(&r, arg)) < 0) {
					*cause = xasprintf("%s[%d]@%lld: %s", topic, (int)m->partition,
					    (long long)m->offset, strerror(-err));
					rd_kafka_message_destroy(m);
					goto done;
				}
				n++;
			}
			/* Offsets have gaps (compaction, transaction markers). */
			if (m->offset + 1 >= end[i]) {
				end[i] = -1;
				left--;
			}
		}
		rd_kafka_message_destroy(m);
	}
done:
	rd_kafka_topic_partition_list_destroy(l);
	free(end);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return err < 0 ? err : n;
}

/* kafka_read_partitions() through kafka_read_records(). */
struct kafka_read_adapter {
	kafka_record_fn fn;
	void *arg;
};

static int
kafka_read_adapt(const struct kafka_record *r, void *arg)
{
	struct kafka_read_adapter *a = arg;

	return a->fn(r->partition, r->key, r->key_len, r->value, r->len, a->arg);
}

int
kafka_read_partitions(const struct config *cf, const char *topic, const int32_t *parts,
    int nparts, int timeout_ms, kafka_record_fn fn, void *arg, char **cause)
{
	struct kafka_read_options opt = { .timeout_ms = timeout_ms };
	struct kafka_read_adapter a = { fn, arg };

	return kafka_read_records(cf, topic, parts, nparts, &opt, kafka_read_adapt, &a, cause);
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

int
kafka_producer_new(struct kafka **out, uv_loop_t *loop, rd_kafka_conf_t *conf,
    char **cause)
{
	struct kafka *k = kafka_alloc();
	char errstr[512];
	int err;

	*out = NULL;
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

rd_kafka_t *
kafka_handle(struct kafka *k)
{
	return k->rk;
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
