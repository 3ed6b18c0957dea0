/* paysim.c: orderd-paysim, a payment provider simulator that answers PaymentRequested events on the payments topic. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"
#include "util.h"

#define PAYSIM_PROG "orderd-paysim"
#define PAYSIM_LOG "paysim"
/* Messages taken per loop turn, so answers go out in big batches. */
#define PAYSIM_POLL_BATCH 10000
/* Unanswered requests above which fetching pauses (a long --delay-ms at a
 * high rate would otherwise grow without bound); it resumes at half. */
#define PAYSIM_MAX_PENDING 200000
/* How long a failed answer waits before it is sent again. */
#define PAYSIM_RETRY_US 1000000
/* How long the stop and a rebalance wait for outstanding answers. */
#define PAYSIM_FLUSH_MS 10000
#define PAYSIM_TRACEPARENT_MAX 512
#define PAYSIM_ID_PREFIX "paysim:"

/* One consumed message of payment-requests, from fetch to its stored offset. */
struct paysim_request {
	int32_t partition;
	int64_t offset;
	bool answer;			/* false: nothing to send (refund, malformed) */
	bool fail;			/* answer PaymentFailed, not PaymentSucceeded */
	bool duplicate;			/* send the answer twice */
	bool done;			/* every copy delivered: the offset may be stored */
	bool failed;			/* a copy was not delivered: send again */
	bool dropped;			/* its partition was revoked while copies
					 * were in flight: the last report frees it */
	int outstanding;		/* copies produced, not yet reported */
	int64_t due_us;
	char *order_id;
	char *event_id;			/* the answer's */
	char *traceparent;
	size_t traceparent_len;
	char *value;			/* the answer, built once so that every
					 * copy and every retry has the same bytes */
	struct paysim_request *next_due;
};

/* The requests of one input partition in offset order: an offset is stored
 * only when everything before it is done too. */
struct paysim_partition {
	struct paysim_request **ring;
	size_t cap, head, len;
	int64_t store_offset;		/* the next offset to store, -1 none */
	bool dirty;			/* store_offset changed since last stored */
};

struct paysim {
	struct config *cf;
	double fail_ratio;
	double duplicate_ratio;
	int64_t delay_us;
	uint64_t seed;
	const char *group;
	rd_kafka_t *consumer;
	rd_kafka_t *producer;
	struct paysim_partition *parts;
	int nparts;
	/* Answers waiting for their time; the delay is the same for all, so
	 * a FIFO is already in due order. */
	struct paysim_request *due_head, *due_tail;
	size_t pending;			/* tracked requests not yet done */
	bool paused;
	bool stopping;
	bool fatal;
	uint64_t requests, succeeded, failed, duplicates, refunds, malformed;
	uint64_t delivery_errors;
};

enum {
	PAYSIM_OPT_FAIL_RATIO = 256,
	PAYSIM_OPT_DELAY_MS,
	PAYSIM_OPT_DUPLICATE_RATIO,
	PAYSIM_OPT_GROUP,
	PAYSIM_OPT_SEED,
};

/* Beside -c, -s, --help and --version (tool_parse_args). */
static const struct option paysim_options[] = {
	{ "fail-ratio", required_argument, NULL, PAYSIM_OPT_FAIL_RATIO },
	{ "delay-ms", required_argument, NULL, PAYSIM_OPT_DELAY_MS },
	{ "duplicate-ratio", required_argument, NULL, PAYSIM_OPT_DUPLICATE_RATIO },
	{ "group", required_argument, NULL, PAYSIM_OPT_GROUP },
	{ "seed", required_argument, NULL, PAYSIM_OPT_SEED },
	{ NULL, 0, NULL, 0 },
};

static void
paysim_usage(void)
{
	printf("usage: " PAYSIM_PROG " [-c FILE] [-s SECTION.KEY=VALUE]... [--fail-ratio R]\n"
	    "                     [--delay-ms N] [--duplicate-ratio R] [--group G] [--seed N]\n"
	    "\n"
	    "Answers every PaymentRequested on [topics] payment_requests with a\n"
	    "PaymentSucceeded or PaymentFailed on [topics] payments, as a payment\n"
	    "provider would.  SIGINT/SIGTERM stop it and print a summary on stderr.\n"
	    "\n"
	    "  -c, --config FILE        configuration file (default %s)\n"
	    "  -s, --set S.K=V          override one configuration key; may repeat\n"
	    "      --fail-ratio R       share of payments that fail, 0..1 (default 0)\n"
	    "      --delay-ms N         wait N ms before answering (default 0)\n"
	    "      --duplicate-ratio R  share of answers sent twice with the same\n"
	    "                           event_id, 0..1 (default 0)\n"
	    "      --group G            consumer group (default orderd-paysim)\n"
	    "      --seed N             decides which requests fail or repeat; the\n"
	    "                           same seed answers the same request alike\n"
	    "                           (default 0)\n"
	    "  -h, --help               show this help\n"
	    "  -V, --version            show the version\n", config_default_path);
}

/* A uniform draw in [0, 1) fixed by the request: a redelivered request gets
 * the same answer, so its deterministic event_id never names two outcomes. */
static double
paysim_draw(const struct paysim *ps, const char *event_id, uint64_t salt)
{
	return (double)(tool_hash64(event_id, strlen(event_id), ps->seed ^ salt) >> 11) *
	    0x1.0p-53;
}

/* The answer's id: deterministic from the request's, and within the
 * contract's 128 bytes even when the request's id is long. */
static char *
paysim_answer_id(const char *request_id)
{
	size_t n = strlen(request_id);

	if (n + strlen(PAYSIM_ID_PREFIX) <= EVENT_ID_MAX)
		return xasprintf(PAYSIM_ID_PREFIX "%s", request_id);
	return xasprintf(PAYSIM_ID_PREFIX "h%016" PRIx64 "%016" PRIx64,
	    tool_hash64(request_id, n, 1), tool_hash64(request_id, n, 2));
}

static void
paysim_request_free(struct paysim_request *r)
{
	if (r == NULL)
		return;
	free(r->order_id);
	free(r->event_id);
	free(r->traceparent);
	free(r->value);
	free(r);
}

/* A string member of 1..max bytes, or NULL. */
static const char *
paysim_string(json_t *root, const char *name, size_t max)
{
	json_t *v = json_object_get(root, name);

	if (!json_is_string(v) || json_string_length(v) < 1 ||
	    json_string_length(v) > max)
		return NULL;
	return json_string_value(v);
}

/*
 * Reads one request into r: a PaymentRequested sets r->answer; a
 * RefundRequested is only counted; anything else is logged and skipped
 * (a simulator has no DLQ).
 */
static void
paysim_parse(struct paysim *ps, const rd_kafka_message_t *m, struct paysim_request *r)
{
	json_error_t jerr;
	json_t *root;
	const char *event_id, *type, *order_id, *why = NULL;
	const void *tp;
	size_t tp_len;

	root = json_loadb(m->payload != NULL ? m->payload : "", m->len, 0, &jerr);
	if (root == NULL || !json_is_object(root))
		why = root == NULL ? jerr.text : "not a JSON object";
	else if ((event_id = paysim_string(root, "event_id", EVENT_ID_MAX)) == NULL)
		why = "event_id: missing or not a string of 1..128 bytes";
	else if ((type = paysim_string(root, "type", 64)) == NULL)
		why = "type: missing or not a string";
	else if ((order_id = paysim_string(root, "order_id", EVENT_ORDER_ID_MAX)) == NULL ||
	    !event_valid_name(order_id, strlen(order_id), EVENT_ORDER_ID_MAX))
		why = "order_id: missing or not 1..64 of [A-Za-z0-9._:-]";
	else if (strcmp(type, "RefundRequested") == 0)
		ps->refunds++;
	else if (strcmp(type, "PaymentRequested") != 0)
		why = "type: neither PaymentRequested nor RefundRequested";
	else {
		r->answer = true;
		r->order_id = xstrdup(order_id);
		r->event_id = paysim_answer_id(event_id);
		r->fail = paysim_draw(ps, event_id, 0) < ps->fail_ratio;
		r->duplicate = paysim_draw(ps, event_id, 0x5eed) < ps->duplicate_ratio;
		if ((tp = tool_header(m, "traceparent", &tp_len)) != NULL &&
		    tp_len <= PAYSIM_TRACEPARENT_MAX) {
			r->traceparent = xstrndup(tp, tp_len);
			r->traceparent_len = tp_len;
		}
	}
	if (why != NULL) {
		ps->malformed++;
		log_warn(PAYSIM_LOG, "%s [%" PRId32 "] offset %" PRId64 ": skipped: %s",
		    rd_kafka_topic_name(m->rkt), m->partition, m->offset, why);
	}
	json_decref(root);
}

static struct paysim_partition *
paysim_partition(struct paysim *ps, int32_t partition)
{
	if (partition >= ps->nparts) {
		ps->parts = xrealloc(ps->parts, (size_t)(partition + 1) * sizeof(*ps->parts));
		for (int i = ps->nparts; i <= partition; i++)
			ps->parts[i] = (struct paysim_partition){ .store_offset = -1 };
		ps->nparts = partition + 1;
	}
	return &ps->parts[partition];
}

static void
paysim_track(struct paysim *ps, struct paysim_request *r)
{
	struct paysim_partition *p = paysim_partition(ps, r->partition);

	if (p->len == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct paysim_request **ring = xmalloc(cap * sizeof(*ring));

		for (size_t i = 0; i < p->len; i++)
			ring[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = ring;
		p->cap = cap;
		p->head = 0;
	}
	p->ring[(p->head + p->len++) % p->cap] = r;
	if (!r->done)
		ps->pending++;
}

static void
paysim_queue(struct paysim *ps, struct paysim_request *r, int64_t due_us)
{
	r->due_us = due_us;
	r->next_due = NULL;
	if (ps->due_tail != NULL)
		ps->due_tail->next_due = r;
	else
		ps->due_head = r;
	ps->due_tail = r;
}

/* Called when the last outstanding copy of r has its delivery report. */
static void
paysim_settle(struct paysim *ps, struct paysim_request *r)
{
	if (r->dropped) {
		paysim_request_free(r);
		return;
	}
	if (r->failed) {
		/* Its offset stays unstored; while running, send it again (the
		 * same event_id, so a copy that did arrive is a mere duplicate). */
		r->failed = false;
		if (!ps->stopping)
			paysim_queue(ps, r, util_mono_us() + PAYSIM_RETRY_US);
		return;
	}
	r->done = true;
	ps->pending--;
	if (r->fail)
		ps->failed++;
	else
		ps->succeeded++;
	if (r->duplicate)
		ps->duplicates++;
}

static void
paysim_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct paysim *ps = opaque;
	struct paysim_request *r = m->_private;

	(void)rk;
	if (m->err) {
		ps->delivery_errors++;
		log_warn(PAYSIM_LOG, "answer %s for order %s not delivered: %s",
		    r->event_id, r->order_id, rd_kafka_err2str(m->err));
		r->failed = true;
	}
	if (--r->outstanding == 0)
		paysim_settle(ps, r);
}

static char *
paysim_encode(const struct paysim_request *r)
{
	char when[32], *payment_id = NULL, *s;
	json_t *root;

	event_format_time(when, util_now_ms());
	root = json_pack("{s:s, s:s, s:i, s:s, s:s}", "event_id", r->event_id,
	    "type", r->fail ? "PaymentFailed" : "PaymentSucceeded", "version", 1,
	    "occurred_at", when, "order_id", r->order_id);
	if (r->fail) {
		json_object_set_new(root, "reason", json_string("card_declined"));
	} else {
		payment_id = xasprintf("pay-%s", r->order_id);
		json_object_set_new(root, "payment_id", json_string(payment_id));
	}
	s = json_dumps(root, JSON_COMPACT);
	if (s == NULL)
		log_fatal(PAYSIM_LOG, "out of memory encoding an answer");
	json_decref(root);
	free(payment_id);
	return s;
}

/* Produces every copy of r's answer; the reports settle it. */
static void
paysim_send(struct paysim *ps, struct paysim_request *r)
{
	int copies = r->duplicate ? 2 : 1;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (r->value == NULL)
		r->value = paysim_encode(r);
	/* Held while producing: a report served while we wait for queue room
	 * must not settle r before its second copy is out. */
	r->outstanding++;
	for (int i = 0; i < copies; i++) {
		rd_kafka_headers_t *h = rd_kafka_headers_new(2);

		rd_kafka_header_add(h, "event_id", -1, r->event_id, -1);
		if (r->traceparent != NULL)
			rd_kafka_header_add(h, "traceparent", -1, r->traceparent,
			    (ssize_t)r->traceparent_len);
		for (;;) {
			e = rd_kafka_producev(ps->producer,
			    RD_KAFKA_V_TOPIC(ps->cf->topic_payments),
			    RD_KAFKA_V_KEY(r->order_id, strlen(r->order_id)),
			    RD_KAFKA_V_VALUE(r->value, strlen(r->value)),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tool_stopping())
				break;
			/* The local queue is full: serving reports makes room. */
			rd_kafka_poll(ps->producer, 10);
		}
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			/* On failure the headers are still ours. */
			rd_kafka_headers_destroy(h);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				log_warn(PAYSIM_LOG, "answer %s for order %s not produced: %s",
				    r->event_id, r->order_id, rd_kafka_err2str(e));
			r->failed = true;
			break;
		}
		r->outstanding++;
	}
	if (--r->outstanding == 0)
		paysim_settle(ps, r);
}

static void
paysim_send_due(struct paysim *ps)
{
	int64_t now = util_mono_us();

	while (ps->due_head != NULL && ps->due_head->due_us <= now && !tool_stopping()) {
		struct paysim_request *r = ps->due_head;

		if ((ps->due_head = r->next_due) == NULL)
			ps->due_tail = NULL;
		r->next_due = NULL;
		paysim_send(ps, r);
	}
}

/* Takes one consumed message; the caller destroys it. */
static void
paysim_take(struct paysim *ps, const rd_kafka_message_t *m, int64_t now)
{
	struct paysim_request *r;

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn(PAYSIM_LOG, "consumer: %s", rd_kafka_message_errstr(m));
		return;
	}
	ps->requests++;
	r = xcalloc(1, sizeof(*r));
	r->partition = m->partition;
	r->offset = m->offset;
	paysim_parse(ps, m, r);
	/* What needs no answer is done at once, but still waits in offset
	 * order behind the answers before it. */
	r->done = !r->answer;
	paysim_track(ps, r);
	if (r->answer)
		paysim_queue(ps, r, now + ps->delay_us);
}

/* Stores, for each partition, the offset after its run of done requests. */
static void
paysim_store(struct paysim *ps)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_resp_err_t e;

	for (int i = 0; i < ps->nparts; i++) {
		struct paysim_partition *p = &ps->parts[i];

		while (p->len > 0 && p->ring[p->head]->done) {
			struct paysim_request *r = p->ring[p->head];

			p->store_offset = r->offset + 1;
			p->dirty = true;
			p->head = (p->head + 1) % p->cap;
			p->len--;
			paysim_request_free(r);
		}
		if (!p->dirty || p->store_offset < 0)
			continue;
		p->dirty = false;
		if (l == NULL)
			l = rd_kafka_topic_partition_list_new(ps->nparts);
		rd_kafka_topic_partition_list_add(l, ps->cf->topic_payment_requests,
		    i)->offset = p->store_offset;
	}
	if (l == NULL)
		return;
	/* A partition revoked meanwhile is refused; its next owner answers
	 * from the last commit, which at-least-once allows. */
	if ((e = rd_kafka_offsets_store(ps->consumer, l)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_debug(PAYSIM_LOG, "storing offsets: %s", rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
}

static void
paysim_commit(struct paysim *ps)
{
	rd_kafka_resp_err_t e = rd_kafka_commit(ps->consumer, NULL, 0);

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn(PAYSIM_LOG, "commit: %s", rd_kafka_err2str(e));
}

/*
 * Gives up partitions: answers already produced are waited for and their
 * offsets committed first, so the next owner repeats as little as
 * possible; answers not yet sent are forgotten, the next owner sends them.
 */
static void
paysim_release(struct paysim *ps, const rd_kafka_topic_partition_list_t *l, bool lost)
{
	struct paysim_request **link;

	if (!lost) {
		rd_kafka_flush(ps->producer, PAYSIM_FLUSH_MS);
		paysim_store(ps);
		paysim_commit(ps);
	}
	for (int i = 0; i < l->cnt; i++) {
		int32_t n = l->elems[i].partition;

		if (n >= 0 && n < ps->nparts && strcmp(l->elems[i].topic,
		    ps->cf->topic_payment_requests) == 0) {
			struct paysim_partition *p = &ps->parts[n];

			for (size_t j = 0; j < p->len; j++)
				p->ring[(p->head + j) % p->cap]->dropped = true;
		}
	}
	for (link = &ps->due_head, ps->due_tail = NULL; *link != NULL;) {
		if ((*link)->dropped) {
			*link = (*link)->next_due;
		} else {
			ps->due_tail = *link;
			link = &(*link)->next_due;
		}
	}
	for (int i = 0; i < l->cnt; i++) {
		int32_t n = l->elems[i].partition;
		struct paysim_partition *p;

		if (n < 0 || n >= ps->nparts || strcmp(l->elems[i].topic,
		    ps->cf->topic_payment_requests) != 0)
			continue;
		p = &ps->parts[n];
		for (size_t j = 0; j < p->len; j++) {
			struct paysim_request *r = p->ring[(p->head + j) % p->cap];

			if (!r->done)
				ps->pending--;
			/* One still in flight is freed by its last report. */
			if (r->outstanding == 0)
				paysim_request_free(r);
		}
		p->head = p->len = 0;
		p->store_offset = -1;
		p->dirty = false;
	}
}

static void
paysim_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *l, void *opaque)
{
	struct paysim *ps = opaque;
	const char *protocol = rd_kafka_rebalance_protocol(rk);
	bool cooperative = protocol != NULL && strcmp(protocol, "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		log_info(PAYSIM_LOG, "assigned %d partition(s)", l->cnt);
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, l);
		else
			rd_kafka_assign(rk, l);
		/* Fetching restarts unpaused; the next turn pauses it again
		 * if the backlog is still too long. */
		rd_kafka_resume_partitions(rk, l);
		ps->paused = false;
	} else {
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			log_error(PAYSIM_LOG, "rebalance: %s", rd_kafka_err2str(err));
		log_info(PAYSIM_LOG, "revoked %d partition(s)", l->cnt);
		paysim_release(ps, l, rd_kafka_assignment_lost(rk));
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, l);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (error != NULL) {
		log_error(PAYSIM_LOG, "rebalance: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
}

/* Pauses fetching while too many requests wait for their answer. */
static void
paysim_flow(struct paysim *ps)
{
	rd_kafka_topic_partition_list_t *l;
	bool want = ps->pending >= PAYSIM_MAX_PENDING ? true :
	    ps->pending < PAYSIM_MAX_PENDING / 2 ? false : ps->paused;

	if (want == ps->paused || rd_kafka_assignment(ps->consumer, &l) != 0)
		return;
	if (want)
		rd_kafka_pause_partitions(ps->consumer, l);
	else
		rd_kafka_resume_partitions(ps->consumer, l);
	rd_kafka_topic_partition_list_destroy(l);
	ps->paused = want;
}

static bool
paysim_fatal(struct paysim *ps, rd_kafka_t *rk)
{
	char why[512];

	if (rd_kafka_fatal_error(rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	log_error(PAYSIM_LOG, "%s: fatal error: %s", rd_kafka_name(rk), why);
	ps->fatal = true;
	return true;
}

static void
paysim_run(struct paysim *ps)
{
	while (!tool_stopping()) {
		int64_t now = util_mono_us();
		int timeout_ms = 100;
		rd_kafka_message_t *m;

		/* Sleep in the consumer until the next answer is due at most. */
		if (ps->due_head != NULL) {
			int64_t wait = (ps->due_head->due_us - now + 999) / 1000;

			timeout_ms = wait <= 0 ? 0 : wait < timeout_ms ? (int)wait : timeout_ms;
		}
		for (int n = 0; n < PAYSIM_POLL_BATCH; n++) {
			if ((m = rd_kafka_consumer_poll(ps->consumer, n == 0 ? timeout_ms : 0)) == NULL)
				break;
			paysim_take(ps, m, util_mono_us());
			rd_kafka_message_destroy(m);
		}
		paysim_send_due(ps);
		rd_kafka_poll(ps->producer, 0);
		paysim_store(ps);
		paysim_flow(ps);
		if (paysim_fatal(ps, ps->producer) || paysim_fatal(ps, ps->consumer))
			break;
	}
}

/* One of paysim_options into ps (tool_cli.option). */
static int
paysim_option(int val, const char *arg, void *ctx, char **cause)
{
	struct paysim *ps = ctx;
	int64_t v;

	switch (val) {
	case PAYSIM_OPT_FAIL_RATIO:
		return tool_parse_double("--fail-ratio", arg, 0, 1, &ps->fail_ratio, cause);
	case PAYSIM_OPT_DUPLICATE_RATIO:
		return tool_parse_double("--duplicate-ratio", arg, 0, 1, &ps->duplicate_ratio,
		    cause);
	case PAYSIM_OPT_DELAY_MS:
		if (tool_parse_int("--delay-ms", arg, 0, 3600000, &v, cause) < 0)
			return -EINVAL;
		ps->delay_us = v * 1000;
		return 0;
	case PAYSIM_OPT_GROUP:
		if (arg[0] == '\0') {
			*cause = xstrdup("--group: must not be empty");
			return -EINVAL;
		}
		ps->group = arg;
		return 0;
	case PAYSIM_OPT_SEED:
	default:	/* paysim_options has no other */
		if (tool_parse_int("--seed", arg, 0, INT64_MAX, &v, cause) < 0)
			return -EINVAL;
		ps->seed = (uint64_t)v;
		return 0;
	}
}

/* Creates both clients and subscribes; returns 0, or an exit status with
 * *cause. */
static int
paysim_open(struct paysim *ps, char **cause)
{
	/* Defaults a [kafka] key may change, then what at-least-once needs. */
	static const char *const producer_defaults[] = { "linger.ms", "5", NULL };
	static const char *const producer_forced[] = {
		"enable.idempotence", "true", "acks", "all", NULL,
	};
	static const char *const consumer_defaults[] = {
		"auto.commit.interval.ms", "1000", NULL,
	};
	const char *consumer_forced[] = {
		"group.id", ps->group, "auto.offset.reset", "earliest",
		"enable.auto.commit", "true", "enable.auto.offset.store", "false", NULL,
	};
	rd_kafka_topic_partition_list_t *sub;
	rd_kafka_conf_t *conf;
	rd_kafka_resp_err_t e;
	char err[512];

	const char *topics[2] = { ps->cf->topic_payment_requests, ps->cf->topic_payments };
	int parts[2];

	if ((conf = kafka_conf_new(ps->cf, producer_defaults, producer_forced, cause)) == NULL)
		return TOOL_EXIT_USAGE;
	/* A refused password or certificate: one line, at once. */
	if (kafka_check_access(ps->cf, topics, 2, parts, 30000, cause) < 0) {
		rd_kafka_conf_destroy(conf);
		return TOOL_EXIT_FAIL;
	}
	rd_kafka_conf_set_opaque(conf, ps);
	rd_kafka_conf_set_dr_msg_cb(conf, paysim_dr_cb);
	if ((ps->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka producer: %s", err);
		return TOOL_EXIT_USAGE;
	}
	if ((conf = kafka_conf_new(ps->cf, consumer_defaults, consumer_forced, cause)) == NULL)
		return TOOL_EXIT_USAGE;
	rd_kafka_conf_set_opaque(conf, ps);
	rd_kafka_conf_set_rebalance_cb(conf, paysim_rebalance_cb);
	if ((ps->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka consumer: %s", err);
		return TOOL_EXIT_USAGE;
	}
	rd_kafka_poll_set_consumer(ps->consumer);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, ps->cf->topic_payment_requests,
	    RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(ps->consumer, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*cause = xasprintf("subscribe %s: %s", ps->cf->topic_payment_requests,
		    rd_kafka_err2str(e));
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

/* Stops: waits for answers in flight, commits their offsets and leaves
 * the group.  Answers still waiting for their time are not sent; their
 * requests stay uncommitted and are answered after a restart. */
static void
paysim_close(struct paysim *ps)
{
	ps->stopping = true;
	if (ps->consumer != NULL) {
		if (!ps->fatal) {
			rd_kafka_flush(ps->producer, PAYSIM_FLUSH_MS);
			paysim_store(ps);
			paysim_commit(ps);
		}
		/* Runs the revoke callback, which releases every partition. */
		rd_kafka_consumer_close(ps->consumer);
		rd_kafka_destroy(ps->consumer);
		ps->consumer = NULL;
	}
	if (ps->producer != NULL) {
		if (rd_kafka_outq_len(ps->producer) > 0) {
			log_warn(PAYSIM_LOG, "%d answer(s) still undelivered, dropped",
			    rd_kafka_outq_len(ps->producer));
			rd_kafka_purge(ps->producer, RD_KAFKA_PURGE_F_QUEUE |
			    RD_KAFKA_PURGE_F_INFLIGHT);
			/* The purged messages' reports free their requests. */
			rd_kafka_flush(ps->producer, 1000);
		}
		rd_kafka_destroy(ps->producer);
		ps->producer = NULL;
	}
	for (int i = 0; i < ps->nparts; i++) {
		struct paysim_partition *p = &ps->parts[i];

		for (size_t j = 0; j < p->len; j++)
			paysim_request_free(p->ring[(p->head + j) % p->cap]);
		free(p->ring);
	}
	free(ps->parts);
	ps->parts = NULL;
	ps->nparts = 0;
}

int
main(int argc, char **argv)
{
	struct paysim ps = { .group = "orderd-paysim" };
	struct tool_config_args ca = { 0 };
	const struct tool_cli cli = {
		.prog = PAYSIM_PROG, .options = paysim_options, .usage = paysim_usage,
		.option = paysim_option, .ctx = &ps,
	};
	char *cause = NULL;
	int status, r;

	if ((r = tool_parse_args(&cli, argc, argv, &ca, &cause)) != 0) {
		status = r > 0 ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
		goto out;
	}
	tool_scrub_argv(PAYSIM_PROG, argc, argv);
	if (tool_config_load(&ca, &ps.cf, &cause) != 0) {
		status = TOOL_EXIT_USAGE;
		goto out;
	}
	tool_signals_init();
	if ((status = paysim_open(&ps, &cause)) != 0) {
		paysim_close(&ps);
		goto out;
	}
	log_info(PAYSIM_LOG, "answering %s on %s in group %s: fail %g, duplicate %g, "
	    "delay %" PRId64 " ms", ps.cf->topic_payment_requests, ps.cf->topic_payments,
	    ps.group, ps.fail_ratio, ps.duplicate_ratio, ps.delay_us / 1000);
	paysim_run(&ps);
	paysim_close(&ps);
	fprintf(stderr, PAYSIM_PROG ": requests %" PRIu64 " succeeded %" PRIu64
	    " failed %" PRIu64 " duplicates %" PRIu64 " refunds %" PRIu64
	    " malformed %" PRIu64 "\n", ps.requests, ps.succeeded, ps.failed,
	    ps.duplicates, ps.refunds, ps.malformed);
	status = ps.fatal ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
out:
	if (cause != NULL)
		log_plain(PAYSIM_PROG, "%s", cause);
	free(cause);
	config_free(ps.cf);
	tool_config_args_free(&ca);
	return status;
}
