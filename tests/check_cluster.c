/* check_cluster.c: Redis Cluster routing without a server: CRC16 slots, redirection parsing, and the router against fake nodes on loopback. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "inventory.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

/* ---- slots ---- */

static int
slot_of(const char *key)
{
	return cluster_keyslot(key, strlen(key));
}

START_TEST(test_crc16_vector)
{
	/* The check value of CRC16-XMODEM, as the specification gives it. */
	ck_assert_uint_eq(cluster_crc16("123456789", 9), 0x31C3);
	ck_assert_uint_eq(cluster_crc16("", 0), 0);
	ck_assert_int_eq(slot_of("123456789"), 0x31C3 & (CLUSTER_SLOTS - 1));
}
END_TEST

START_TEST(test_known_slots)
{
	/* What CLUSTER KEYSLOT answers for these. */
	ck_assert_int_eq(slot_of("foo"), 12182);
	ck_assert_int_eq(slot_of("bar"), 5061);
	ck_assert_int_eq(slot_of("hello"), 866);
	ck_assert_int_eq(slot_of("somekey"), 11058);
	for (int i = 0; i < 1000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "key:%d", i);
		ck_assert_int_ge(slot_of(key), 0);
		ck_assert_int_lt(slot_of(key), CLUSTER_SLOTS);
	}
}
END_TEST

START_TEST(test_hash_tags)
{
	char a[INVENTORY_KEY_MAX], b[INVENTORY_KEY_MAX], d[INVENTORY_KEY_MAX];

	/* As CLUSTER KEYSLOT answers, and the rule of the specification. */
	ck_assert_int_eq(slot_of("{user1000}.following"), 3443);
	ck_assert_int_eq(slot_of("foo{}{bar}"), 8363);
	ck_assert_int_eq(slot_of("foo{{bar}}zap"), 4015);
	ck_assert_int_eq(slot_of("foo{bar}{zap}"), 5061);
	ck_assert_int_eq(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
	ck_assert_int_eq(slot_of("{user1000}.following"), slot_of("user1000"));
	/* An empty tag is no tag: the whole key. */
	ck_assert_int_eq(slot_of("foo{}{bar}"),
	    cluster_crc16("foo{}{bar}", 10) & (CLUSTER_SLOTS - 1));
	/* The first '{' and the first '}' after it. */
	ck_assert_int_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
	ck_assert_int_eq(slot_of("foo{bar}{zap}"), slot_of("bar"));
	/* No closing brace: the whole key. */
	ck_assert_int_eq(slot_of("foo{bar"), cluster_crc16("foo{bar", 7) & (CLUSTER_SLOTS - 1));
	/* The length counts, not a NUL. */
	ck_assert_int_eq(cluster_keyslot("{bar}xyz", 5), slot_of("bar"));
	ck_assert_int_eq(cluster_keyslot("foo{bar}", 4), slot_of("foo{"));
	/* Every key of a sku shares its slot, whatever the prefix. */
	inventory_key_stock(a, sizeof(a), "orderd:", "sku-7");
	inventory_key_reservation(b, sizeof(b), "orderd:", "sku-7", "order-1");
	inventory_key_adds(d, sizeof(d), "x{y}:", "sku-7");
	ck_assert_int_eq(slot_of(a), slot_of("sku-7"));
	ck_assert_int_eq(slot_of(b), slot_of("sku-7"));
	ck_assert_int_eq(slot_of(d), slot_of("y"));	/* a prefix with braces wins */
}
END_TEST

/* ---- redirections and node lists ---- */

static int
parse(const char *s, struct cluster_redirect *rd)
{
	return cluster_parse_redirect(s, strlen(s), rd);
}

START_TEST(test_parse_redirect)
{
	static const char *const malformed[] = {
		"MOVED", "MOVED ", "ASK", "MOVED 3999", "MOVED 3999 ", "MOVED  3999 127.0.0.1:6381",
		"MOVED 3999  127.0.0.1:6381", "MOVED 16384 127.0.0.1:6381", "MOVED -1 127.0.0.1:6381",
		"MOVED x 127.0.0.1:6381", "MOVED 39x9 127.0.0.1:6381", "MOVED 3999 127.0.0.1",
		"MOVED 3999 127.0.0.1:", "MOVED 3999 127.0.0.1:0", "MOVED 3999 127.0.0.1:65536",
		"MOVED 3999 127.0.0.1:63a", "MOVED 3999 127.0.0.1:6381 extra", "ASK 1 h:1 ",
		"ASK 99999999999999999999 h:1", "MOVED 3999 h,x:1",
	};
	static const char *const others[] = {
		"ERR unknown command", "MOVEDX 1 h:1", "NOSCRIPT No matching script",
		"TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN", "",
		"moved 1 h:1", "ASKING",
	};
	struct cluster_redirect rd;

	ck_assert_int_eq(parse("MOVED 3999 127.0.0.1:6381", &rd), 0);
	ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_MOVED);
	ck_assert_int_eq(rd.slot, 3999);
	ck_assert_str_eq(rd.host, "127.0.0.1");
	ck_assert_int_eq(rd.port, 6381);
	ck_assert_int_eq(parse("ASK 0 10.0.0.2:7000", &rd), 0);
	ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_ASK);
	ck_assert_int_eq(rd.slot, 0);
	ck_assert_str_eq(rd.host, "10.0.0.2");
	ck_assert_int_eq(rd.port, 7000);
	ck_assert_int_eq(parse("MOVED 16383 ::1:7001", &rd), 0);
	ck_assert_int_eq(rd.slot, 16383);
	ck_assert_str_eq(rd.host, "::1");
	ck_assert_int_eq(rd.port, 7001);
	/* Redis 7 writes no host when it does not know the endpoint. */
	ck_assert_int_eq(parse("MOVED 12 :7002", &rd), 0);
	ck_assert_str_eq(rd.host, "");
	ck_assert_int_eq(rd.port, 7002);
	ck_assert_int_eq(parse("ASK 5 redis-3.example:65535", &rd), 0);
	ck_assert_str_eq(rd.host, "redis-3.example");
	/* Only len bytes count. */
	ck_assert_int_eq(cluster_parse_redirect("MOVED 12 h:1 garbage", 12, &rd), 0);
	ck_assert_int_eq(rd.port, 1);
	ck_assert_int_eq(cluster_parse_redirect("MOVED 12 h:1", 10, &rd), -EINVAL);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(malformed); i++)
		ck_assert_msg(parse(malformed[i], &rd) == -EINVAL, "'%s' parsed", malformed[i]);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(others); i++)
		ck_assert_msg(parse(others[i], &rd) == -ENOENT, "'%s' is no redirection",
		    others[i]);
}
END_TEST

START_TEST(test_parse_nodes)
{
	static const char *const bad[][2] = {
		{ "", NULL }, { "   ", NULL }, { "127.0.0.1", "'127.0.0.1'" },
		{ "127.0.0.1:0", "'127.0.0.1:0'" }, { "127.0.0.1:70000", "'127.0.0.1:70000'" },
		{ "127.0.0.1:7000,", "''" }, { ",127.0.0.1:7000", "''" },
		{ "127.0.0.1:7000,nonsense", "'nonsense'" }, { ":7000", "':7000'" },
		{ "127.0.0.1:7000 127.0.0.1:7001", "'127.0.0.1:7000 127.0.0.1:7001'" },
		{ "127.0.0.1:7x", "'127.0.0.1:7x'" },
	};
	struct cluster_addr *v;
	char *cause;
	int n;

	ck_assert_int_eq(cluster_parse_nodes("127.0.0.1:7000,127.0.0.1:7001", &v, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(v[0].host, "127.0.0.1");
	ck_assert_int_eq(v[0].port, 7000);
	ck_assert_int_eq(v[1].port, 7001);
	free(v);
	ck_assert_int_eq(cluster_parse_nodes(" 10.0.0.1:1 ,\t::1:65535 ", &v, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(v[0].host, "10.0.0.1");
	ck_assert_str_eq(v[1].host, "::1");
	ck_assert_int_eq(v[1].port, 65535);
	free(v);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		cause = NULL;
		ck_assert_msg(cluster_parse_nodes(bad[i][0], &v, &n, &cause) == -EINVAL,
		    "'%s' accepted", bad[i][0]);
		ck_assert_ptr_null(v);
		ck_assert_ptr_nonnull(cause);
		if (bad[i][1] != NULL)
			ck_assert_msg(strstr(cause, bad[i][1]) != NULL, "'%s': %s", bad[i][0], cause);
		free(cause);
	}
}
END_TEST

/* ---- fake cluster nodes ---- */

#define FAKES 3

enum fake_rule_kind {
	FAKE_MOVED = 1,		/* answers MOVED slot target */
	FAKE_ASK,		/* answers ASK slot target */
	FAKE_NEED_ASKING,	/* serves the slot only after ASKING, else MOVED target */
	FAKE_TRYAGAIN,		/* answers TRYAGAIN, times times (-1: always) */
	FAKE_NOSCRIPT,		/* answers NOSCRIPT until a SCRIPT LOAD came */
	FAKE_SILENT,		/* never answers: a node that hangs */
};

struct fake_rule {
	int slot;
	enum fake_rule_kind kind;
	int target;		/* fake index */
	int times;
};

struct fake;

struct fake_conn {
	uv_tcp_t tcp;
	struct fake *f;
	redisReader *rd;
	bool asking;
	bool open;
};

struct fake {
	uv_tcp_t server;
	int idx;
	int port;
	struct fake_rule rules[8];
	int nrules;
	struct fake_conn *conns[32];
	int nconns;
	/* What it saw and answered. */
	int served;		/* commands with a key that it ran */
	int moved, asked, tryagain, askings, cluster_slots, loads, scans, silent;
};

/* The map every fake answers CLUSTER SLOTS with: [lo, hi] -> fake. */
struct fake_range {
	int lo, hi, fake;
};

static uv_loop_t loop;
static uv_timer_t tick;
static struct fake fakes[FAKES];
static struct fake_range ranges[8];
static int nranges;

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
	slot = slot_of(key);
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

static void
fake_add_rule(int fake, int slot, enum fake_rule_kind kind, int target, int times)
{
	struct fake *f = &fakes[fake];

	f->rules[f->nrules++] = (struct fake_rule){ slot, kind, target, times };
}

/* A port nothing listens on. */
static int
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

static void
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

static void
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

/* Runs the loop until *flag or ms pass; returns *flag. */
static bool
run_until(const bool *flag, int ms)
{
	int64_t until = util_mono_us() + (int64_t)ms * 1000;

	while (!*flag && util_mono_us() < until)
		uv_run(&loop, UV_RUN_ONCE);
	return *flag;
}

static void
run_for(int ms)
{
	bool never = false;

	run_until(&never, ms);
}

/* ---- the router ---- */

struct result {
	bool done;
	int status;
	int type;
	char str[256];
};

static void
on_result(redisReply *reply, int status, void *arg)
{
	struct result *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->status = status;
	if (reply != NULL) {
		r->type = reply->type;
		snprintf(r->str, sizeof(r->str), "%s", reply->str ? reply->str : "");
	}
}

struct state {
	bool up;
	int ups, downs;
	bool closed;
};

static void
on_state(bool up, void *arg)
{
	struct state *st = arg;

	st->up = up;
	if (up)
		st->ups++;
	else
		st->downs++;
}

static void
on_closed(void *arg)
{
	((struct state *)arg)->closed = true;
}

static char *fake_scripts[INVENTORY_SCRIPT_COUNT] = {
	"return 0", "return 1", "return 2", "return 3", "return 4",
};

static struct cluster *
router(struct state *st, int timeout_ms)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), fakes[0].port);
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = timeout_ms,
	    .backoff_min_ms = 20, .backoff_max_ms = 50 };
	struct cluster *c = NULL;

	memset(st, 0, sizeof(*st));
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, st), 0);
	free(nodes);
	ck_assert_msg(run_until(&st->up, 5000), "the router never came up");
	ck_assert(cluster_is_up(c));
	return c;
}

static void
router_close(struct cluster *c, struct state *st)
{
	cluster_close(c, on_closed, st);
	ck_assert(run_until(&st->closed, 5000));
}

/* A key whose slot is in [lo, hi] (and not slot avoid). */
static void
key_in(char *buf, size_t len, int lo, int hi)
{
	for (int i = 0;; i++) {
		char sku[32];
		int s;

		snprintf(sku, sizeof(sku), "sku-%d", i);
		s = slot_of(sku);
		if (s >= lo && s <= hi) {
			inventory_key_stock(buf, len, "t:", sku);
			return;
		}
	}
}

static void
eval(struct cluster *c, const char *key, struct result *r)
{
	char rkey[INVENTORY_KEY_MAX];
	const char *keys[2] = { key, rkey };
	const char *args[2] = { "order-1", "1" };

	/* The reservation key of the same sku: same slot. */
	snprintf(rkey, sizeof(rkey), "%.*s:r:order-1", (int)(strchr(key, '}') + 1 - key), key);
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 2, keys, 2, args, on_result, r), 0);
}

START_TEST(test_routes_by_slot)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char lo[INVENTORY_KEY_MAX], hi[INVENTORY_KEY_MAX];
	const char *exists[2] = { "EXISTS", hi };
	const char *ping[1] = { "PING" };
	struct result r1, r2, r3, r4;

	key_in(lo, sizeof(lo), 0, 8191);
	key_in(hi, sizeof(hi), 8192, 16383);
	eval(c, lo, &r1);
	eval(c, hi, &r2);
	memset(&r3, 0, sizeof(r3));
	memset(&r4, 0, sizeof(r4));
	ck_assert_int_eq(cluster_command_argv(c, 1, 2, exists, NULL, on_result, &r3), 0);
	ck_assert_int_eq(cluster_command_argv(c, -1, 1, ping, NULL, on_result, &r4), 0);
	ck_assert_uint_eq(cluster_pending(c), 4);
	ck_assert(run_until(&r4.done, 2000) && run_until(&r1.done, 2000) &&
	    run_until(&r2.done, 2000) && run_until(&r3.done, 2000));
	ck_assert_int_eq(r1.status, 0);
	ck_assert_str_eq(r1.str, "DONE-0");
	ck_assert_str_eq(r2.str, "DONE-1");
	ck_assert_str_eq(r3.str, "DONE-1");
	ck_assert_str_eq(r4.str, "PONG");
	ck_assert_uint_eq(cluster_pending(c), 0);
	ck_assert_int_eq(fakes[2].served, 0);
	/* SUBSCRIBE answers more than once: refused, as by redis.c. */
	ck_assert_int_eq(cluster_command_argv(c, 1, 2, (const char *[]){ "SUBSCRIBE", "x" },
	    NULL, on_result, &r4), -EINVAL);
	router_close(c, &st);
}
END_TEST

START_TEST(test_moved_updates_the_map)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	/* The slot moves to fake 2: fake 0 says so, and so does the map. */
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	nranges = 0;
	if (slot > 0)
		ranges[nranges++] = (struct fake_range){ 0, slot - 1, 0 };
	ranges[nranges++] = (struct fake_range){ slot, slot, 2 };
	if (slot < 8191)
		ranges[nranges++] = (struct fake_range){ slot + 1, 8191, 0 };
	ranges[nranges++] = (struct fake_range){ 8192, 16383, 1 };
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-2");
	ck_assert_int_eq(fakes[0].moved, 1);
	/* The next call goes to the new master at once, and the map was read again. */
	run_for(300);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-2");
	ck_assert_int_eq(fakes[0].moved, 1);
	ck_assert_int_ge(fakes[0].cluster_slots + fakes[1].cluster_slots +
	    fakes[2].cluster_slots, 2);
	ck_assert(cluster_is_up(c));
	router_close(c, &st);
}
END_TEST

START_TEST(test_ask_sends_asking_first)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 8192, 16383);
	slot = cluster_keyslot(key, strlen(key));
	/* Slot migrating from fake 1 to fake 0: fake 0 serves it after ASKING only. */
	fake_add_rule(1, slot, FAKE_ASK, 0, -1);
	fake_add_rule(0, slot, FAKE_NEED_ASKING, 1, -1);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[0].askings, 1);
	ck_assert_int_eq(fakes[0].moved, 0);
	/* ASK changes nothing in the map: the next call asks fake 1 again. */
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[1].asked, 2);
	ck_assert_int_eq(fakes[0].askings, 2);
	router_close(c, &st);
}
END_TEST

START_TEST(test_tryagain_is_retried)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, 3);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.str, "DONE-0");
	ck_assert_int_eq(fakes[0].tryagain, 3);
	router_close(c, &st);
}
END_TEST

START_TEST(test_tryagain_gives_up_after_timeout)
{
	struct state st;
	struct cluster *c = router(&st, 300);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int64_t t0;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, -1);
	t0 = util_mono_us();
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_ge(util_mono_us() - t0, 250000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strncmp(r.str, "TRYAGAIN", 8) == 0, "%s", r.str);
	ck_assert_int_gt(fakes[0].tryagain, 3);
	router_close(c, &st);
}
END_TEST

/* SIGHUP's redis.timeout_ms reaches every node: a hanging master's calls
 * time out after the new value, and so does a call waiting for a slot,
 * parked before the change. */
START_TEST(test_set_timeout_every_node)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char busy[INVENTORY_KEY_MAX], lo[INVENTORY_KEY_MAX], hi[INVENTORY_KEY_MAX];
	struct result parked, r0, r1;
	int64_t t1, took_ms;

	key_in(busy, sizeof(busy), 0, 4095);
	key_in(lo, sizeof(lo), 4096, 8191);
	key_in(hi, sizeof(hi), 8192, 16383);
	fake_add_rule(0, cluster_keyslot(busy, strlen(busy)), FAKE_TRYAGAIN, 0, -1);
	fake_add_rule(0, cluster_keyslot(lo, strlen(lo)), FAKE_SILENT, 0, -1);
	fake_add_rule(1, cluster_keyslot(hi, strlen(hi)), FAKE_SILENT, 0, -1);
	eval(c, busy, &parked);
	run_for(100);
	ck_assert(!parked.done);
	t1 = util_mono_us();
	cluster_set_timeout(c, 300);
	ck_assert(run_until(&parked.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "gave up after %lld ms, not 300",
	    (long long)took_ms);
	ck_assert_int_eq(parked.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strncmp(parked.str, "TRYAGAIN", 8) == 0, "%s", parked.str);

	t1 = util_mono_us();
	eval(c, lo, &r0);
	eval(c, hi, &r1);
	ck_assert(run_until(&r0.done, 3000) && run_until(&r1.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "timed out after %lld ms, not 300",
	    (long long)took_ms);
	ck_assert_int_eq(r0.status, -ETIMEDOUT);
	ck_assert_int_eq(r1.status, -ETIMEDOUT);
	ck_assert_int_eq(fakes[0].silent, 1);
	ck_assert_int_eq(fakes[1].silent, 1);
	router_close(c, &st);
}
END_TEST

/* ... and a node met after the change connects with the new value. */
START_TEST(test_set_timeout_new_node)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int64_t t1, took_ms;
	int slot;

	cluster_set_timeout(c, 300);
	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	/* The slot moves to fake 2, unknown so far, which hangs. */
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	fake_add_rule(2, slot, FAKE_SILENT, 0, -1);
	nranges = 0;
	if (slot > 0)
		ranges[nranges++] = (struct fake_range){ 0, slot - 1, 0 };
	ranges[nranges++] = (struct fake_range){ slot, slot, 2 };
	if (slot < 8191)
		ranges[nranges++] = (struct fake_range){ slot + 1, 8191, 0 };
	ranges[nranges++] = (struct fake_range){ 8192, 16383, 1 };
	t1 = util_mono_us();
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	took_ms = (util_mono_us() - t1) / 1000;
	ck_assert_int_eq(r.status, -ETIMEDOUT);
	ck_assert_int_eq(fakes[2].silent, 1);
	ck_assert_msg(took_ms >= 250 && took_ms < 1500, "timed out after %lld ms, not 300",
	    (long long)took_ms);
	router_close(c, &st);
}
END_TEST

START_TEST(test_redirect_loop_is_capped)
{
	struct state st;
	struct cluster *c = router(&st, 2000);
	char key[INVENTORY_KEY_MAX];
	struct result r;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	fake_add_rule(0, slot, FAKE_MOVED, 1, -1);
	fake_add_rule(1, slot, FAKE_MOVED, 0, -1);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r.type, REDIS_REPLY_ERROR);
	ck_assert_msg(strstr(r.str, "too many redirections") != NULL, "%s", r.str);
	ck_assert_int_eq(fakes[0].moved + fakes[1].moved, CLUSTER_REDIRECT_MAX + 1);
	ck_assert_uint_eq(cluster_pending(c), 0);
	router_close(c, &st);
}
END_TEST

START_TEST(test_close_cancels_waiting_calls)
{
	struct state st;
	struct cluster *c = router(&st, 5000);
	char key[INVENTORY_KEY_MAX];
	struct result r;

	key_in(key, sizeof(key), 0, 8191);
	fake_add_rule(0, cluster_keyslot(key, strlen(key)), FAKE_TRYAGAIN, 0, -1);
	eval(c, key, &r);
	run_for(100);
	ck_assert(!r.done);
	ck_assert_uint_eq(cluster_pending(c), 1);
	cluster_close(c, on_closed, &st);
	ck_assert(r.done);
	ck_assert_int_eq(r.status, -ECANCELED);
	ck_assert(!cluster_is_up(c));
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 1, (const char *[]){ key }, 0, NULL,
	    on_result, &r), -ENOTCONN);
	ck_assert(run_until(&st.closed, 3000));
	ck_assert_int_eq(st.downs, 0);
}
END_TEST

START_TEST(test_no_node_answers)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 200,
	    .backoff_min_ms = 20, .backoff_max_ms = 50 };
	struct cluster *c = NULL;
	struct state st = { 0 };
	struct result r = { 0 };

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, &st), 0);
	run_for(500);
	ck_assert(!cluster_is_up(c));
	ck_assert_int_eq(st.ups, 0);
	ck_assert_int_eq(cluster_eval(c, INVENTORY_RESERVE, 1, (const char *[]){ "k" }, 0, NULL,
	    on_result, &r), -ENOTCONN);
	ck_assert_int_eq(cluster_command_argv(c, -1, 1, (const char *[]){ "PING" }, NULL,
	    on_result, &r), -ENOTCONN);
	router_close(c, &st);
	free(nodes);
}
END_TEST

START_TEST(test_bad_options)
{
	struct cluster_options o = { .cluster = true, .nodes = "127.0.0.1:7000,nonsense" };
	struct cluster *c = NULL;

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(c);
	o.nodes = NULL;
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	o.nodes = "";
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	o = (struct cluster_options){ .cluster = false, .host = "127.0.0.1", .port = 0 };
	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_single_server_passthrough)
{
	struct cluster_options o = { .cluster = false, .host = "127.0.0.1",
	    .port = fakes[1].port, .timeout_ms = 2000 };
	struct cluster *c = NULL;
	struct state st = { 0 };
	char key[INVENTORY_KEY_MAX];
	struct result r;

	ck_assert_int_eq(cluster_new(&c, &loop, &o, fake_scripts, on_state, &st), 0);
	ck_assert(run_until(&st.up, 3000));
	/* Any slot goes to the one server; CLUSTER SLOTS is never asked. */
	key_in(key, sizeof(key), 0, 8191);
	eval(c, key, &r);
	ck_assert(run_until(&r.done, 3000));
	ck_assert_str_eq(r.str, "DONE-1");
	ck_assert_int_eq(fakes[1].cluster_slots, 0);
	router_close(c, &st);
}
END_TEST

/* ---- the blocking client, with the fakes on a loop of their own ---- */

static pthread_t loop_thread;
static uv_async_t loop_stop;

static void
on_loop_stop(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, NULL);
	uv_stop(&loop);
}

static void *
loop_main(void *arg)
{
	(void)arg;
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

/* The fakes answer from another thread while this one blocks in hiredis. */
static void
fakes_in_thread(void)
{
	uv_async_init(&loop, &loop_stop, on_loop_stop);
	ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
}

static void
fakes_back(void)
{
	uv_async_send(&loop_stop);
	ck_assert_int_eq(pthread_join(loop_thread, NULL), 0);
}

static struct cluster_sync *
sync_open(void)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), fakes[1].port);
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 1000 };
	struct cluster_sync *s = NULL;
	char *cause = NULL;

	fakes_in_thread();
	ck_assert_msg(cluster_sync_open(&s, &o, &cause) == 0, "%s", cause);
	free(nodes);
	return s;
}

static void
expect_reply(redisReply *r, const char *want)
{
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->str != NULL && strcmp(r->str, want) == 0, "got %s, want %s",
	    r->str ? r->str : "(no string)", want);
	freeReplyObject(r);
}

START_TEST(test_sync_follows_redirections)
{
	char k0[INVENTORY_KEY_MAX], k1[INVENTORY_KEY_MAX], moved[INVENTORY_KEY_MAX];
	char asked[INVENTORY_KEY_MAX], busy[INVENTORY_KEY_MAX];
	struct cluster_sync *s;
	redisReply *r;
	int slot;

	key_in(k0, sizeof(k0), 0, 4000);
	key_in(k1, sizeof(k1), 8192, 12000);
	key_in(moved, sizeof(moved), 4001, 8191);
	key_in(asked, sizeof(asked), 12001, 16383);
	key_in(busy, sizeof(busy), 6000, 8191);
	if (cluster_keyslot(busy, strlen(busy)) == cluster_keyslot(moved, strlen(moved)))
		key_in(busy, sizeof(busy), 0, 4000);
	slot = cluster_keyslot(moved, strlen(moved));
	fake_add_rule(0, slot, FAKE_MOVED, 2, -1);
	fake_add_rule(1, cluster_keyslot(asked, strlen(asked)), FAKE_ASK, 2, -1);
	fake_add_rule(2, cluster_keyslot(asked, strlen(asked)), FAKE_NEED_ASKING, 1, -1);
	fake_add_rule(0, cluster_keyslot(busy, strlen(busy)), FAKE_TRYAGAIN, 0, 2);
	s = sync_open();
	ck_assert_msg(strncmp(cluster_sync_name(s), "cluster 127.0.0.1:", 18) == 0, "%s",
	    cluster_sync_name(s));
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k0 }, NULL), "DONE-0");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k1 }, NULL), "DONE-1");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", moved }, NULL),
	    "DONE-2");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", asked }, NULL),
	    "DONE-2");
	expect_reply(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", busy }, NULL),
	    "DONE-0");
	/* A pipeline with a redirection in its middle keeps its order. */
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", k0 }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", moved }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", asked }, NULL), 0);
	ck_assert_int_eq(cluster_sync_append(s, 1, 2, (const char *[]){ "GET", k1 }, NULL), 0);
	ck_assert_int_eq(cluster_sync_queued(s), 4);
	ck_assert_ptr_null(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", k0 }, NULL));
	ck_assert_int_eq(cluster_sync_scan(s, "*", NULL, NULL), -EBUSY);
	for (int i = 0; i < 4; i++) {
		static const char *const want[4] = { "DONE-0", "DONE-2", "DONE-2", "DONE-1" };

		ck_assert_int_eq(cluster_sync_get_reply(s, &r), 0);
		expect_reply(r, want[i]);
	}
	ck_assert_int_eq(cluster_sync_get_reply(s, &r), -ENOENT);
	cluster_sync_free(s);
	fakes_back();
	ck_assert_int_eq(fakes[0].tryagain, 2);
	ck_assert_int_ge(fakes[2].askings, 2);
}
END_TEST

START_TEST(test_sync_redirect_loop_fails)
{
	char key[INVENTORY_KEY_MAX];
	struct cluster_sync *s;
	int slot;

	key_in(key, sizeof(key), 0, 8191);
	slot = cluster_keyslot(key, strlen(key));
	fake_add_rule(0, slot, FAKE_MOVED, 1, -1);
	fake_add_rule(1, slot, FAKE_MOVED, 0, -1);
	s = sync_open();
	ck_assert_ptr_null(cluster_sync_command(s, 1, 2, (const char *[]){ "GET", key }, NULL));
	ck_assert_msg(strstr(cluster_sync_errstr(s), "redirections") != NULL, "%s",
	    cluster_sync_errstr(s));
	cluster_sync_free(s);
	fakes_back();
}
END_TEST

static int
collect_key(const char *key, void *arg)
{
	char *all = arg;

	strcat(all, key);
	strcat(all, " ");
	return 0;
}

START_TEST(test_sync_scan_and_scripts)
{
	char key[INVENTORY_KEY_MAX], sha[41], all[256] = "";
	struct cluster_sync *s;
	redisReply *r;

	key_in(key, sizeof(key), 8192, 16383);
	fake_add_rule(1, cluster_keyslot(key, strlen(key)), FAKE_NOSCRIPT, 0, 0);
	s = sync_open();
	/* Every master (the seed first), every page; fake 2 owns nothing. */
	ck_assert_int_eq(cluster_sync_scan(s, "*", collect_key, all), 0);
	ck_assert_str_eq(all, "k1-one k1-two k0-one k0-two ");
	ck_assert_int_eq(cluster_sync_script_load(s, "return 1", sha), 0);
	ck_assert_int_eq(strlen(sha), 40);
	/* A NOSCRIPT (the node lost its scripts) loads it again, once.  The
	 * fakes' loop is idle between two calls: no race on the rule. */
	fakes[1].rules[0].times = -1;
	r = cluster_sync_command(s, 3, 4, (const char *[]){ "EVALSHA", sha, "1", key }, NULL);
	expect_reply(r, "DONE-1");
	cluster_sync_free(s);
	fakes_back();
	ck_assert_int_eq(fakes[0].loads, 1);
	ck_assert_int_eq(fakes[1].loads, 2);
	ck_assert_int_eq(fakes[2].loads, 0);
}
END_TEST

START_TEST(test_sync_no_node_answers)
{
	char *nodes = xasprintf("127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
	struct cluster_options o = { .cluster = true, .nodes = nodes, .timeout_ms = 500 };
	struct cluster_sync *s = NULL;
	char *cause = NULL;

	ck_assert_int_eq(cluster_sync_open(&s, &o, &cause), -EIO);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(cause, "Connection refused") != NULL &&
	    strstr(cause, nodes) != NULL, "%s", cause);
	free(cause);
	o.nodes = "127.0.0.1:1,x";
	ck_assert_int_eq(cluster_sync_open(&s, &o, &cause), -EINVAL);
	ck_assert_msg(strstr(cause, "'x'") != NULL, "%s", cause);
	free(cause);
	free(nodes);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *pure = tcase_create("slots");
	TCase *fake = tcase_create("router");

	tcase_add_test(pure, test_crc16_vector);
	tcase_add_test(pure, test_known_slots);
	tcase_add_test(pure, test_hash_tags);
	tcase_add_test(pure, test_parse_redirect);
	tcase_add_test(pure, test_parse_nodes);
	suite_add_tcase(s, pure);
	tcase_add_checked_fixture(fake, setup, teardown);
	tcase_set_timeout(fake, 30);
	tcase_add_test(fake, test_routes_by_slot);
	tcase_add_test(fake, test_moved_updates_the_map);
	tcase_add_test(fake, test_ask_sends_asking_first);
	tcase_add_test(fake, test_tryagain_is_retried);
	tcase_add_test(fake, test_tryagain_gives_up_after_timeout);
	tcase_add_test(fake, test_redirect_loop_is_capped);
	tcase_add_test(fake, test_set_timeout_every_node);
	tcase_add_test(fake, test_set_timeout_new_node);
	tcase_add_test(fake, test_close_cancels_waiting_calls);
	tcase_add_test(fake, test_no_node_answers);
	tcase_add_test(fake, test_bad_options);
	tcase_add_test(fake, test_single_server_passthrough);
	tcase_add_test(fake, test_sync_follows_redirections);
	tcase_add_test(fake, test_sync_redirect_loop_fails);
	tcase_add_test(fake, test_sync_scan_and_scripts);
	tcase_add_test(fake, test_sync_no_node_answers);
	suite_add_tcase(s, fake);
	return s;
}

int
main(void)
{
	return tu_run(cluster_suite());
}
