/* kafka_read.c: reading partitions of a topic from their start to their end at the call, with a consumer of its own (the changelog restore, orderctl, loadgen's end offsets). */
#include "autoconfig.h"

#include <errno.h>
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

/* How often kafka_high_watermark asks while a partition has no leader. */
#define KAFKA_LEADER_RETRY_MS 100

rd_kafka_resp_err_t
kafka_topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms,
    const struct rd_kafka_metadata **md)
{
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);

	if (e == RD_KAFKA_RESP_ERR_NO_ERROR && ((*md)->topic_cnt != 1 || (*md)->topics[0].err))
		e = (*md)->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC :
		    (*md)->topics[0].err;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR && *md != NULL) {
		rd_kafka_metadata_destroy(*md);
		*md = NULL;
	}
	return e;
}

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
