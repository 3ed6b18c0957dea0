/* harness.c: runs the real orderd against the real broker and Redis for end-to-end tests. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <sqlite3.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "harness.h"
#include "inventory.h"
#include "testutil.h"
#include "util.h"

static const char *const h_topic_suffix[H_NTOPICS] = {
	"orders", "payments", "payment-requests", "order-events", "dlq", "state"
};
static const char *const h_topic_key[H_NTOPICS] = {
	"orders", "payments", "payment_requests", "order_events", "dlq", "state"
};

const char *
h_bin(const char *prog)
{
	static char path[4][4096];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/src/%s", ABS_TOP_BUILDDIR, prog);
	return p;
}

static rd_kafka_t *
h_client(rd_kafka_type_t type, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", tu_env("ORDERD_TEST_BOOTSTRAP"),
	    err, sizeof(err));
	if (type == RD_KAFKA_PRODUCER) {
		rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err));
		rd_kafka_conf_set(conf, "message.max.bytes", "4194304", err, sizeof(err));
	} else {
		rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
		rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof(err));
	}
	rk = rd_kafka_new(type, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "rd_kafka_new: %s", err);
	return rk;
}

/* CreateTopics answers when the controller has the topic; the broker's
 * metadata may lag a moment behind, so wait until it serves it. */
static void
h_wait_topic(rd_kafka_t *rk, const char *name)
{
	for (int i = 0; i < 200; i++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
		bool ok = rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topics[0].partition_cnt > 0;

		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
		if (ok)
			return;
		usleep(50000);
	}
	ck_abort_msg("topic %s never showed up in the metadata", name);
}

static void
h_create_topics(rd_kafka_t *rk, char **names, int partitions)
{
	rd_kafka_NewTopic_t *nt[H_NTOPICS];
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **tr;
	char err[256];
	size_t n;

	for (int i = 0; i < H_NTOPICS; i++) {
		nt[i] = rd_kafka_NewTopic_new(names[i], i == H_DLQ ? 1 : partitions, 1, err,
		    sizeof(err));
		/* As orderctl topics create does: room for the 2 MB hostile value. */
		rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes", "4194304");
		if (i == H_STATE)
			rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
	}
	rd_kafka_CreateTopics(rk, nt, H_NTOPICS, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "CreateTopics timed out");
	tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(rd_kafka_topic_result_error(tr[i]) == RD_KAFKA_RESP_ERR_NO_ERROR,
		    "create %s: %s", rd_kafka_topic_result_name(tr[i]),
		    rd_kafka_topic_result_error_string(tr[i]));
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	for (int i = 0; i < H_NTOPICS; i++) {
		rd_kafka_NewTopic_destroy(nt[i]);
		h_wait_topic(rk, names[i]);
	}
}

struct h *
h_new(const char *name, int partitions)
{
	struct h *h = xcalloc(1, sizeof(*h));
	rd_kafka_topic_partition_list_t *tp;

	h->name = tu_unique(name);
	h->dir = tu_tmpdir();
	h->journal = xasprintf("%s/journal.db", h->dir);
	h->prefix = xasprintf("%s:", h->name);
	for (int i = 0; i < H_NTOPICS; i++)
		h->topic[i] = xasprintf("%s.%s", h->name, h_topic_suffix[i]);
	h->prod = h_client(RD_KAFKA_PRODUCER, NULL);
	h_create_topics(h->prod, h->topic, partitions);
	/* Every output from the start: assigned, not subscribed (no group wait). */
	h->out = h_client(RD_KAFKA_CONSUMER, h->name);
	tp = rd_kafka_topic_partition_list_new(partitions * 3 + 1);
	for (int t = H_PAYMENT_REQUESTS; t <= H_STATE; t++)
		for (int p = 0; p < (t == H_DLQ ? 1 : partitions); p++)
			rd_kafka_topic_partition_list_add(tp, h->topic[t], p)->offset =
			    RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(h->out, tp), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(tp);
	h->pid = -1;
	return h;
}

void
h_set(struct h *h, const char *override)
{
	h->extra = xrealloc(h->extra, (size_t)(h->nextra + 1) * sizeof(*h->extra));
	h->extra[h->nextra++] = xstrdup(override);
}

static char *
h_log_tail(struct h *h)
{
	char *path = xasprintf("%s/orderd.log", h->dir), *buf = NULL, *tail;
	size_t len = 0;

	util_read_file(path, &buf, &len);
	free(path);
	if (buf == NULL)
		return xstrdup("(no log)");
	tail = xstrdup(len > 3000 ? buf + len - 3000 : buf);
	free(buf);
	return tail;
}

/* The seed nodes of the Redis Cluster the tests run on, or NULL (a test
 * with a private Redis of its own never uses the cluster). */
static const char *
h_cluster_nodes(const struct h *h)
{
	const char *nodes = getenv("ORDERD_TEST_REDIS_NODES");

	return h->redis_port == 0 && nodes != NULL && *nodes != '\0' ? nodes : NULL;
}

/* argv for orderd / orderctl with this instance's configuration. */
static char **
h_argv(struct h *h, const char *prog, int *argc)
{
	char **argv = xcalloc((size_t)(48 + h->nextra), sizeof(*argv));
	int n = 0;

	argv[n++] = xstrdup(h_bin(prog));
	argv[n++] = xstrdup("-c");
	argv[n++] = xasprintf("%s/none.conf", h->dir);
	argv[n++] = xstrdup("-s");
	argv[n++] = xasprintf("kafka.bootstrap.servers=%s", tu_env("ORDERD_TEST_BOOTSTRAP"));
	argv[n++] = xstrdup("-s");
	argv[n++] = xasprintf("redis.port=%s", tu_env("ORDERD_TEST_REDIS_PORT"));
	argv[n++] = xstrdup("-s");
	argv[n++] = xasprintf("redis.prefix=%s", h->prefix);
	/* tests/cluster.sh: the same tests on a Redis Cluster. */
	if (h_cluster_nodes(h) != NULL) {
		argv[n++] = xstrdup("-s");
		argv[n++] = xstrdup("redis.cluster=yes");
		argv[n++] = xstrdup("-s");
		argv[n++] = xasprintf("redis.nodes=%s", h_cluster_nodes(h));
	}
	argv[n++] = xstrdup("-s");
	argv[n++] = xasprintf("journal.path=%s", h->journal);
	argv[n++] = xstrdup("-s");
	argv[n++] = xasprintf("consumer.group=%s", h->name);
	argv[n++] = xstrdup("-s");
	argv[n++] = xstrdup("http.listen=");
	for (int i = 0; i < H_NTOPICS; i++) {
		argv[n++] = xstrdup("-s");
		argv[n++] = xasprintf("topics.%s=%s", h_topic_key[i], h->topic[i]);
	}
	for (int i = 0; i < h->nextra; i++) {
		argv[n++] = xstrdup("-s");
		argv[n++] = xstrdup(h->extra[i]);
	}
	*argc = n;
	return argv;
}

static void
h_argv_free(char **argv)
{
	for (int i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

void
h_start(struct h *h)
{
	char *conf = xasprintf("%s/none.conf", h->dir), *log = xasprintf("%s/orderd.log", h->dir);
	char **argv;
	int argc, fd;
	FILE *f = fopen(conf, "w");
	struct stat sb;
	/* A restart appends to the log: only what this start writes counts. */
	size_t start = stat(log, &sb) == 0 ? (size_t)sb.st_size : 0;

	/* An empty file: nothing but the -s overrides, whatever is installed. */
	ck_assert_ptr_nonnull(f);
	fclose(f);
	argv = h_argv(h, "orderd", &argc);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		dup2(fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	h_argv_free(argv);
	/* Ready when it logs that it consumes; dead or slow is a failure. */
	for (int i = 0; i < 600; i++) {
		char *buf = NULL;
		size_t len = 0;
		int status;

		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			char *tail = h_log_tail(h);

			h->pid = -1;
			ck_abort_msg("orderd exited at start (status %d):\n%s", status, tail);
		}
		if (util_read_file(log, &buf, &len) == 0 && len >= start &&
		    strstr(buf + start, "engine: consuming")) {
			free(buf);
			break;
		}
		free(buf);
		usleep(50000);
	}
	free(conf);
	free(log);
}

int
h_run_orderd(struct h *h, char **out)
{
	char *conf = xasprintf("%s/none.conf", h->dir), *log = xasprintf("%s/orderd.log", h->dir);
	char **argv;
	int argc, status;
	pid_t pid;
	FILE *f = fopen(conf, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	argv = h_argv(h, "orderd", &argc);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		dup2(fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	h_argv_free(argv);
	waitpid(pid, &status, 0);
	*out = NULL;
	if (util_read_file(log, out, NULL) < 0)
		*out = xstrdup("");
	free(conf);
	free(log);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
h_create_topic(struct h *h, const char *name, int partitions)
{
	rd_kafka_NewTopic_t *nt;
	rd_kafka_queue_t *q = rd_kafka_queue_new(h->prod);
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **tr;
	char err[256];
	size_t n;

	nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof(err));
	rd_kafka_CreateTopics(h->prod, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_ptr_nonnull(ev);
	tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	ck_assert_int_eq(rd_kafka_topic_result_error(tr[0]), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	h_wait_topic(h->prod, name);
}

int
h_stop(struct h *h)
{
	int status = 0;

	if (h->pid <= 0)
		return -1;
	kill(h->pid, SIGTERM);
	for (int i = 0; i < 600; i++) {
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(50000);
	}
	kill(h->pid, SIGKILL);
	waitpid(h->pid, &status, 0);
	h->pid = -1;
	ck_abort_msg("orderd did not stop within 30 s of SIGTERM");
	return -1;
}

void
h_kill(struct h *h)
{
	if (h->pid <= 0)
		return;
	kill(h->pid, SIGKILL);
	waitpid(h->pid, NULL, 0);
	h->pid = -1;
}

void
h_free(struct h *h)
{
	if (h == NULL)
		return;
	if (h->pid > 0)
		h_kill(h);
	rd_kafka_flush(h->prod, 5000);
	rd_kafka_destroy(h->prod);
	rd_kafka_consumer_close(h->out);
	rd_kafka_destroy(h->out);
	for (int i = 0; i < h->nmsgs; i++) {
		free(h->msgs[i].topic);
		free(h->msgs[i].key);
		free(h->msgs[i].event_id);
		free(h->msgs[i].traceparent);
		free(h->msgs[i].error);
		free(h->msgs[i].raw);
		json_decref(h->msgs[i].body);
	}
	free(h->msgs);
	for (int i = 0; i < h->nextra; i++)
		free(h->extra[i]);
	free(h->extra);
	for (int i = 0; i < H_NTOPICS; i++)
		free(h->topic[i]);
	free(h->name);
	free(h->dir);
	free(h->journal);
	free(h->prefix);
	free(h);
}

void
h_produce(struct h *h, int topic, const char *key, const char *value, const char *traceparent)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
	rd_kafka_resp_err_t e;

	if (traceparent != NULL)
		rd_kafka_header_add(hdrs, "traceparent", -1, traceparent, -1);
	e = rd_kafka_producev(h->prod, RD_KAFKA_V_TOPIC(h->topic[topic]),
	    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
	    RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
	ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
	ck_assert_int_eq(rd_kafka_flush(h->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

void
h_send(struct h *h, int topic, const char *order_id, const char *fmt, ...)
{
	json_error_t err;
	va_list ap;
	json_t *j;
	char *s;

	va_start(ap, fmt);
	j = json_vpack_ex(&err, 0, fmt, ap);
	va_end(ap);
	ck_assert_msg(j != NULL, "json_pack: %s", err.text);
	s = json_dumps(j, JSON_COMPACT);
	h_produce(h, topic, order_id, s, NULL);
	free(s);
	json_decref(j);
}

static char *
h_header(const rd_kafka_message_t *m, const char *name)
{
	rd_kafka_headers_t *hdrs;
	const void *v;
	size_t len;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	return xstrndup(v, len);
}

/* Reads what arrived on the output topics for up to ms. */
static void
h_consume(struct h *h, int ms)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;

	do {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(h->out, 50);
		struct h_msg *x;

		if (m == NULL)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (h->nmsgs == h->capmsgs) {
			h->capmsgs = h->capmsgs ? h->capmsgs * 2 : 64;
			h->msgs = xrealloc(h->msgs, (size_t)h->capmsgs * sizeof(*h->msgs));
		}
		x = &h->msgs[h->nmsgs++];
		memset(x, 0, sizeof(*x));
		x->topic = xstrdup(rd_kafka_topic_name(m->rkt));
		x->key = m->key ? xstrndup(m->key, m->key_len) : NULL;
		x->event_id = h_header(m, "event_id");
		x->traceparent = h_header(m, "traceparent");
		x->error = h_header(m, "error");
		x->raw = xstrndup(m->payload ? m->payload : "", m->len);
		x->raw_len = m->len;
		x->body = json_loadb(m->payload ? m->payload : "", m->len, 0, NULL);
		rd_kafka_message_destroy(m);
	} while (util_mono_us() < until);
}

static bool
h_match(const struct h *h, const struct h_msg *x, int topic, const char *order_id,
    const char *type)
{
	const char *t, *o;

	if (strcmp(x->topic, h->topic[topic]) != 0)
		return false;
	if (topic == H_DLQ)
		return order_id == NULL || (x->key && strcmp(x->key, order_id) == 0);
	if (x->body == NULL)
		return false;
	/* A changelog record has no type: its state stands for it. */
	t = json_string_value(json_object_get(x->body, topic == H_STATE ? "state" : "type"));
	o = json_string_value(json_object_get(x->body, "order_id"));
	return (order_id == NULL || (o && strcmp(o, order_id) == 0)) &&
	    (type == NULL || (t && strcmp(t, type) == 0));
}

const struct h_msg *
h_wait(struct h *h, int topic, const char *order_id, const char *type, int timeout_ms)
{
	int64_t until = util_mono_us() + (int64_t)timeout_ms * 1000;

	do {
		for (int i = 0; i < h->nmsgs; i++)
			if (h_match(h, &h->msgs[i], topic, order_id, type))
				return &h->msgs[i];
		h_consume(h, 100);
	} while (util_mono_us() < until);
	return NULL;
}

int
h_count(struct h *h, int topic, const char *order_id, const char *type, int settle_ms)
{
	int n = 0;

	h_consume(h, settle_ms);
	for (int i = 0; i < h->nmsgs; i++)
		if (h_match(h, &h->msgs[i], topic, order_id, type))
			n++;
	return n;
}

int
h_ctl(struct h *h, char **out, const char *fmt, ...)
{
	char **argv, *cmd, *tok, *save = NULL, buf[4096];
	int argc, fds[2], status;
	size_t len = 0;
	char *acc = NULL;
	va_list ap;
	pid_t pid;
	ssize_t r;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		ck_abort_msg("vasprintf");
	va_end(ap);
	argv = h_argv(h, "orderctl", &argc);
	argv = xrealloc(argv, (size_t)(argc + 32) * sizeof(*argv));
	for (tok = strtok_r(cmd, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = xstrdup(tok);
	argv[argc] = NULL;
	free(cmd);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while ((r = read(fds[0], buf, sizeof(buf))) > 0) {
		acc = xrealloc(acc, len + (size_t)r + 1);
		memcpy(acc + len, buf, (size_t)r);
		len += (size_t)r;
		acc[len] = '\0';
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	h_argv_free(argv);
	if (out != NULL)
		*out = acc ? acc : xstrdup("");
	else
		free(acc);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
h_stock(struct h *h, const char *sku, long long qty)
{
	int st = h_ctl(h, NULL, "stock add %s %lld", sku, qty);

	ck_assert_msg(st == 0, "orderctl stock add %s %lld: exit %d", sku, qty, st);
}

static redisContext *
h_redis(struct h *h)
{
	int port = h->redis_port > 0 ? h->redis_port : atoi(tu_env("ORDERD_TEST_REDIS_PORT"));
	redisContext *rc = redisConnect("127.0.0.1", port);

	ck_assert_msg(rc != NULL && rc->err == 0, "redis on %d: %s", port,
	    rc ? rc->errstr : "oom");
	return rc;
}

/* One command on the key argv[1]: on this instance's Redis, or on the
 * master of the key's slot in the cluster. */
static redisReply *
h_redis_key_cmd(struct h *h, int argc, const char **argv)
{
	struct cluster_options o = { .cluster = h_cluster_nodes(h) != NULL,
	    .nodes = h_cluster_nodes(h), .host = "127.0.0.1", .timeout_ms = 5000,
	    .port = h->redis_port > 0 ? h->redis_port : atoi(tu_env("ORDERD_TEST_REDIS_PORT")) };
	struct cluster_sync *s = NULL;
	char *cause = NULL;
	redisReply *r;

	ck_assert_msg(cluster_sync_open(&s, &o, &cause) == 0, "%s", cause);
	r = cluster_sync_command(s, 1, argc, argv, NULL);
	ck_assert_msg(r != NULL, "redis %s %s: %s", argv[0], argv[1], cluster_sync_errstr(s));
	cluster_sync_free(s);
	return r;
}

void
h_counters(struct h *h, const char *sku, long long *available, long long *reserved,
    long long *sold)
{
	char key[INVENTORY_KEY_MAX];
	const char *argv[6] = { "HMGET", key, "available", "reserved", "sold", "added" };
	redisReply *r;
	long long v[4];

	inventory_key_stock(key, sizeof(key), h->prefix, sku);
	r = h_redis_key_cmd(h, 6, argv);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	for (int i = 0; i < 4; i++)
		v[i] = r->element[i]->type == REDIS_REPLY_STRING ? atoll(r->element[i]->str) : 0;
	freeReplyObject(r);
	ck_assert_msg(v[0] + v[1] + v[2] == v[3], "%s: %lld + %lld + %lld != added %lld", sku,
	    v[0], v[1], v[2], v[3]);
	*available = v[0];
	*reserved = v[1];
	*sold = v[2];
}

void
h_reservation(struct h *h, const char *sku, const char *order_id, char *state, size_t len)
{
	char key[INVENTORY_KEY_MAX];
	const char *argv[3] = { "HGET", key, "state" };
	redisReply *r;

	inventory_key_reservation(key, sizeof(key), h->prefix, sku, order_id);
	r = h_redis_key_cmd(h, 3, argv);
	snprintf(state, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

long long
h_sql(struct h *h, const char *fmt, ...)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v = -1;
	va_list ap;
	char *sql;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	ck_assert_int_eq(sqlite3_open_v2(h->journal, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	sqlite3_free(sql);
	return v;
}

void
h_reconcile_ok(struct h *h)
{
	char *out = NULL;
	json_t *doc = NULL;
	int st = 1;

	/* Steps may still be settling right after the last output: retry a while. */
	for (int i = 0; i < 50; i++) {
		free(out);
		json_decref(doc);
		st = h_ctl(h, &out, "reconcile --json");
		doc = json_loads(out, 0, NULL);
		ck_assert_msg(doc != NULL, "reconcile --json printed no JSON: %s", out);
		if (st == 0 && json_is_true(json_object_get(doc, "ok")) &&
		    json_integer_value(json_object_get(doc, "unsettled_skus")) == 0)
			break;
		usleep(100000);
	}
	ck_assert_msg(st == 0 && json_is_true(json_object_get(doc, "ok")),
	    "reconcile: exit %d: %s", st, out);
	ck_assert_int_eq(json_array_size(json_object_get(doc, "problems")), 0);
	free(out);
	json_decref(doc);
}

void
h_use_redis(struct h *h, int port)
{
	char *set = xasprintf("redis.port=%d", port);

	h->redis_port = port;
	h_set(h, set);		/* later -s overrides win over h_argv's shared port */
	free(set);
}

long long
h_redis_cmd(struct h *h, const char *fmt, ...)
{
	redisContext *rc = h_redis(h);
	redisReply *r;
	long long v = 0;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	ck_assert_msg(r != NULL, "redis %s: %s", fmt, rc->errstr);
	ck_assert_msg(r->type != REDIS_REPLY_ERROR, "redis %s: %s", fmt, r->str);
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	freeReplyObject(r);
	redisFree(rc);
	return v;
}

static int
h_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The string elements of an array reply, sorted; pairs joins field and value. */
static char *
h_sorted_elements(const redisReply *r, bool pairs)
{
	size_t n = pairs ? r->elements / 2 : r->elements, len = 1;
	char **v = xcalloc(n + 1, sizeof(*v)), *out;

	for (size_t i = 0; i < n; i++) {
		v[i] = pairs ? xasprintf("%s=%s", r->element[2 * i]->str,
		    r->element[2 * i + 1]->str) : xstrdup(r->element[i]->str);
		len += strlen(v[i]) + 1;
	}
	qsort(v, n, sizeof(*v), h_cmpstr);
	out = xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		strcat(out, " ");
		strcat(out, v[i]);
		free(v[i]);
	}
	free(v);
	return out;
}

char *
h_redis_snapshot(struct h *h)
{
	redisContext *rc = h_redis(h);
	char cursor[32] = "0", *out = xstrdup("");
	char **keys = NULL;
	size_t n = 0;

	do {
		redisReply *r = redisCommand(rc, "SCAN %s MATCH %s* COUNT 1000", cursor,
		    h->prefix);

		ck_assert_msg(r != NULL && r->type == REDIS_REPLY_ARRAY, "SCAN failed");
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		keys = xrealloc(keys, (n + r->element[1]->elements + 1) * sizeof(*keys));
		for (size_t i = 0; i < r->element[1]->elements; i++)
			keys[n++] = xstrdup(r->element[1]->element[i]->str);
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	qsort(keys, n, sizeof(*keys), h_cmpstr);
	for (size_t i = 0; i < n; i++) {
		redisReply *t = redisCommand(rc, "TYPE %s", keys[i]), *r = NULL;
		char *items, *line;

		ck_assert_ptr_nonnull(t);
		if (strcmp(t->str, "hash") == 0)
			r = redisCommand(rc, "HGETALL %s", keys[i]);
		else if (strcmp(t->str, "set") == 0)
			r = redisCommand(rc, "SMEMBERS %s", keys[i]);
		else if (strcmp(t->str, "string") == 0)
			r = redisCommand(rc, "GET %s", keys[i]);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY)
			items = h_sorted_elements(r, strcmp(t->str, "hash") == 0);
		else
			items = xasprintf(" %s", r != NULL && r->str ? r->str : "?");
		line = xasprintf("%s%s %s:%s\n", out, keys[i], t->str, items);
		free(out);
		out = line;
		free(items);
		freeReplyObject(r);
		freeReplyObject(t);
		free(keys[i]);
	}
	free(keys);
	redisFree(rc);
	return out;
}

long long
h_committed(struct h *h, int topic)
{
	rd_kafka_t *rk = h->out;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, h->topic[topic], NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *tp;
	rd_kafka_resp_err_t err;
	long long sum = 0;

	err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1,
	    "metadata of %s: %s", h->topic[topic], rd_kafka_err2str(err));
	tp = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int p = 0; p < md->topics[0].partition_cnt; p++)
		rd_kafka_topic_partition_list_add(tp, h->topic[topic], p);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	/* h->out is in orderd's group (assigned, never committing): it may ask. */
	err = rd_kafka_committed(rk, tp, 10000);
	ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "committed offsets: %s",
	    rd_kafka_err2str(err));
	for (int i = 0; i < tp->cnt; i++)
		if (tp->elems[i].offset > 0)
			sum += tp->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(tp);
	return sum;
}
