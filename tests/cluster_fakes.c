/* cluster_fakes.c: fake Redis Cluster nodes on loopback: a RESP reader per connection, CLUSTER SLOTS from the test's map, and the redirections of the test's rules. */
#include "autoconfig.h"

#include <check.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster.h"
#include "cluster_fakes.h"
#include "inventory.h"
#include "log.h"
#include "util.h"

struct fake_conn {
	uv_tcp_t tcp;
	struct fake *f;
	redisReader *rd;
	bool asking;
	bool open;
};

uv_loop_t loop;
static uv_timer_t tick;
struct fake fakes[FAKES];
struct fake_range ranges[8];
int nranges;

static void
fake_on_write(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void
fake_send(struct fake_conn *fc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fake_send(struct fake_conn *fc, const char *fmt, ...)
{
	uv_write_t *w = xcalloc(1, sizeof(*w));
	va_list ap;
	char *s;
	uv_buf_t b;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
	va_end(ap);
	w->data = s;
	b = uv_buf_init(s, (unsigned)strlen(s));
	ck_assert_int_eq(uv_write(w, (uv_stream_t *)&fc->tcp, &b, 1, fake_on_write), 0);
}

static void
fake_send_slots(struct fake_conn *fc)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "*%d\r\n", nranges);

	for (int i = 0; i < nranges; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		    "*3\r\n:%d\r\n:%d\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$4\r\nid-%d\r\n",
		    ranges[i].lo, ranges[i].hi, fakes[ranges[i].fake].port, ranges[i].fake);
	fake_send(fc, "%s", buf);
}

static struct fake_rule *
fake_rule(struct fake *f, int slot)
{
	for (int i = 0; i < f->nrules; i++)
		if (f->rules[i].slot == slot)
			return &f->rules[i];
	return NULL;
}

static void
fake_command(struct fake_conn *fc, redisReply *req)
{
	struct fake *f = fc->f;
	bool asking = fc->asking;
	const char *cmd, *key = NULL;
	struct fake_rule *rule;
	int slot;

	fc->asking = false;
	ck_assert_int_eq(req->type, REDIS_REPLY_ARRAY);
	cmd = req->element[0]->str;
	if (strcasecmp(cmd, "SCRIPT") == 0) {
		f->loads++;
		for (int i = 0; i < f->nrules; i++)
			if (f->rules[i].kind == FAKE_NOSCRIPT)
				f->rules[i].times = 0;
		/* Any 40 characters do for a sha here. */
		fake_send(fc, "$40\r\n%040u\r\n", (unsigned)cluster_crc16(req->element[2]->str,
		    req->element[2]->len));
		return;
	}
	if (strcasecmp(cmd, "CLUSTER") == 0) {
		f->cluster_slots++;
		fake_send_slots(fc);
		return;
	}
	if (strcasecmp(cmd, "ASKING") == 0) {
		f->askings++;
		fc->asking = true;
		fake_send(fc, "+OK\r\n");
		return;
	}
	if (strcasecmp(cmd, "PING") == 0) {
		fake_send(fc, "+PONG\r\n");
		return;
	}
	if (strcasecmp(cmd, "SCAN") == 0) {
		/* Two pages of one key each, named after the node. */
		f->scans++;
		if (strcmp(req->element[1]->str, "0") == 0)
			fake_send(fc, "*2\r\n$1\r\n7\r\n*1\r\n$6\r\nk%d-one\r\n", f->idx);
		else
			fake_send(fc, "*2\r\n$1\r\n0\r\n*1\r\n$6\r\nk%d-two\r\n", f->idx);
		return;
	}
	/* EVALSHA sha numkeys key ..., or CMD key ... */
	key = strcasecmp(cmd, "EVALSHA") == 0 ? req->element[3]->str : req->element[1]->str;
	slot = cluster_keyslot(key, strlen(key));
	rule = fake_rule(f, slot);
	if (rule != NULL && rule->kind == FAKE_SILENT) {
		f->silent++;
		return;
	}
	if (rule != NULL && rule->kind == FAKE_MOVED) {
		f->moved++;
		fake_send(fc, "-MOVED %d 127.0.0.1:%d\r\n", slot, fakes[rule->target].port);
		return;
	}
	if (rule != NULL && rule->kind == FAKE_ASK) {
		f->asked++;
		fake_send(fc, "-ASK %d 127.0.0.1:%d\r\n", slot, fakes[rule->target].port);
		return;
	}
	if (rule != NULL && rule->kind == FAKE_NEED_ASKING && !asking) {
		f->moved++;
		fake_send(fc, "-MOVED %d 127.0.0.1:%d\r\n", slot, fakes[rule->target].port);
		return;
	}
	if (rule != NULL && rule->kind == FAKE_NOSCRIPT && rule->times != 0 &&
	    strcasecmp(cmd, "EVALSHA") == 0) {
		fake_send(fc, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
		return;
	}
	if (rule != NULL && rule->kind == FAKE_TRYAGAIN && rule->times != 0) {
		if (rule->times > 0)
			rule->times--;
		f->tryagain++;
		fake_send(fc, "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
		return;
	}
	f->served++;
	fake_send(fc, "+DONE-%d\r\n", f->idx);
}

static void
fake_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	(void)h;
	(void)size;
	buf->base = xmalloc(65536);
	buf->len = 65536;
}

static void
fake_on_conn_close(uv_handle_t *h)
{
	struct fake_conn *fc = h->data;

	redisReaderFree(fc->rd);
	free(fc);
}

static void
fake_conn_close(struct fake_conn *fc)
{
	if (!fc->open)
		return;
	fc->open = false;
	uv_close((uv_handle_t *)&fc->tcp, fake_on_conn_close);
}

static void
fake_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct fake_conn *fc = s->data;
	void *req = NULL;

	if (n < 0) {
		for (int i = 0; i < fc->f->nconns; i++)
			if (fc->f->conns[i] == fc)
				fc->f->conns[i] = NULL;
		fake_conn_close(fc);
	} else if (n > 0) {
		ck_assert_int_eq(redisReaderFeed(fc->rd, buf->base, (size_t)n), REDIS_OK);
		while (redisReaderGetReply(fc->rd, &req) == REDIS_OK && req != NULL) {
			fake_command(fc, req);
			freeReplyObject(req);
			req = NULL;
		}
	}
	free(buf->base);
}

static void
fake_on_connection(uv_stream_t *server, int status)
{
	struct fake *f = server->data;
	struct fake_conn *fc = xcalloc(1, sizeof(*fc));

	ck_assert_int_eq(status, 0);
	ck_assert_int_lt(f->nconns, 32);
	fc->f = f;
	fc->rd = redisReaderCreate();
	uv_tcp_init(&loop, &fc->tcp);
	fc->tcp.data = fc;
	fc->open = true;
	ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&fc->tcp), 0);
	f->conns[f->nconns++] = fc;
	uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_on_read);
}

static void
fake_start(struct fake *f, int idx)
{
	struct sockaddr_in addr;
	struct sockaddr_storage got;
	int len = sizeof(got);

	memset(f, 0, sizeof(*f));
	f->idx = idx;
	uv_tcp_init(&loop, &f->server);
	f->server.data = f;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	ck_assert_int_eq(uv_tcp_bind(&f->server, (const struct sockaddr *)&addr, 0), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&f->server, 16, fake_on_connection), 0);
	ck_assert_int_eq(uv_tcp_getsockname(&f->server, (struct sockaddr *)&got, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

void
fake_add_rule(int fake, int slot, enum fake_rule_kind kind, int target, int times)
{
	struct fake *f = &fakes[fake];

	f->rules[f->nrules++] = (struct fake_rule){ slot, kind, target, times };
}

int
dead_port(void)
{
	uv_tcp_t t;
	struct sockaddr_in addr;
	struct sockaddr_storage got;
	int len = sizeof(got), port;

	uv_tcp_init(&loop, &t);
	uv_ip4_addr("127.0.0.1", 0, &addr);
	ck_assert_int_eq(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0), 0);
	ck_assert_int_eq(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
	port = ntohs(((struct sockaddr_in *)&got)->sin_port);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return port;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
}

void
setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(getenv("CLUSTER_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, on_tick, 5, 5);
	for (int i = 0; i < FAKES; i++)
		fake_start(&fakes[i], i);
	/* Two masters: fake 0 has the low half, fake 1 the high half; fake 2
	 * owns nothing until a test moves slots to it. */
	ranges[0] = (struct fake_range){ 0, 8191, 0 };
	ranges[1] = (struct fake_range){ 8192, 16383, 1 };
	nranges = 2;
}

static void
walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void
teardown(void)
{
	/* The connections' records are freed by their close callbacks. */
	for (int i = 0; i < FAKES; i++)
		for (int k = 0; k < fakes[i].nconns; k++)
			if (fakes[i].conns[k] != NULL)
				fake_conn_close(fakes[i].conns[k]);
	uv_walk(&loop, walk_close, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

void
key_in(char *buf, size_t len, int lo, int hi)
{
	for (int i = 0;; i++) {
		char sku[32];
		int s;

		snprintf(sku, sizeof(sku), "sku-%d", i);
		s = cluster_keyslot(sku, strlen(sku));
		if (s >= lo && s <= hi) {
			inventory_key_stock(buf, len, "t:", sku);
			return;
		}
	}
}
