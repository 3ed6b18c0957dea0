/* redis_bench.c: the Redis limit alone: pipelined EVALSHA of lua/reserve.lua then lua/commit.lua on distinct orders over a few skus, in calls per second. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "inventory.h"
#include "util.h"

#define RB_PROG "redis_bench"

struct rb {
	redisContext *c;
	const char *prefix;
	int64_t orders;
	int64_t window;		/* calls written before their replies are read */
	int64_t skus;
	char sha[INVENTORY_SCRIPT_COUNT][41];
};

static void
rb_die(const char *what, const char *detail)
{
	fprintf(stderr, RB_PROG ": %s: %s\n", what, detail);
	exit(1);
}

/* One command, synchronously; the reply is the caller's. */
static redisReply *
rb_command(struct rb *b, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(b->c, argc, argv, NULL);

	if (r == NULL)
		rb_die(argv[0], b->c->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		rb_die(argv[0], r->str);
	return r;
}

static void
rb_load_scripts(struct rb *b)
{
	char *src[INVENTORY_SCRIPT_COUNT], *cause = NULL;

	if (inventory_read_scripts(src, &cause) < 0)
		rb_die("reading lua/", cause);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++) {
		const char *argv[] = { "SCRIPT", "LOAD", src[i] };
		redisReply *r = rb_command(b, 3, argv);

		if (r->type != REDIS_REPLY_STRING || r->len != 40)
			rb_die("SCRIPT LOAD", inventory_script_name(i));
		memcpy(b->sha[i], r->str, 41);
		freeReplyObject(r);
		free(src[i]);
	}
}

static void
rb_sku(char *buf, size_t len, int64_t k)
{
	snprintf(buf, len, "bench-sku-%" PRId64, k);
}

/* Plenty of stock for every sku, written directly (stock_add is not measured). */
static void
rb_stock(struct rb *b)
{
	char sku[64], key[INVENTORY_KEY_MAX];

	for (int64_t k = 0; k < b->skus; k++) {
		const char *argv[] = { "HSET", key, "available", "1000000000000", "reserved", "0",
			"sold", "0", "added", "1000000000000" };
		redisReply *r;

		rb_sku(sku, sizeof(sku), k);
		inventory_key_stock(key, sizeof(key), b->prefix, sku);
		r = rb_command(b, 10, argv);
		freeReplyObject(r);
	}
}

/* Writes one EVALSHA of script for order i (sku i mod skus, qty 1). */
static void
rb_append(struct rb *b, enum inventory_script s, int64_t i)
{
	char sku[64], order[64];
	const char *argv[INVENTORY_CALL_WORDS];
	struct inventory_call c;
	int err;

	rb_sku(sku, sizeof(sku), i % b->skus);
	snprintf(order, sizeof(order), "bench-order-%" PRId64, i);
	/* As orderd's steps build them (only reserve and commit are timed). */
	err = s == INVENTORY_RESERVE ? inventory_call_reserve(&c, b->prefix, sku, order, 1,
	    0) : inventory_call_commit(&c, b->prefix, sku, order, 0);
	if (err < 0)
		rb_die("keys", strerror(-err));
	if (redisAppendCommandArgv(b->c, inventory_call_command(&c, "EVALSHA", b->sha[s], argv),
	    argv, NULL) != REDIS_OK)
		rb_die("EVALSHA", b->c->errstr);
}

static void
rb_read(struct rb *b, const char *want)
{
	redisReply *r;

	if (redisGetReply(b->c, (void **)&r) != REDIS_OK || r == NULL)
		rb_die("EVALSHA reply", b->c->errstr);
	if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, want) != 0)
		rb_die("EVALSHA: unexpected reply", r->str != NULL ? r->str : "(not a status)");
	freeReplyObject(r);
}

/* Every order through script s, with at most window calls unanswered;
 * returns the seconds taken. */
static double
rb_phase(struct rb *b, enum inventory_script s, const char *want)
{
	int64_t sent = 0, got = 0, t0 = util_mono_us();

	while (got < b->orders) {
		while (sent < b->orders && sent - got < b->window)
			rb_append(b, s, sent++);
		/* Reading the first reply flushes everything appended. */
		do
			rb_read(b, want);
		while (++got < sent && sent - got >= b->window / 2);
	}
	return (double)(util_mono_us() - t0) / 1e6;
}

/* Redis's own time per EVALSHA since the last CONFIG RESETSTAT. */
static double
rb_server_us_per_call(struct rb *b)
{
	const char *argv[] = { "INFO", "commandstats" };
	redisReply *r = rb_command(b, 2, argv);
	const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:") : NULL;
	const char *q = p != NULL ? strstr(p, "usec_per_call=") : NULL;
	double v = q != NULL ? strtod(q + strlen("usec_per_call="), NULL) : 0;

	freeReplyObject(r);
	return v;
}

static void
rb_reset_stats(struct rb *b)
{
	const char *argv[] = { "CONFIG", "RESETSTAT" };

	freeReplyObject(rb_command(b, 2, argv));
}

static void
rb_usage(FILE *f)
{
	fprintf(f, "usage: " RB_PROG " [--host H] [--port P] [--orders N] [--window W] [--skus S]\n"
	    "\n"
	    "Loads lua/, gives S skus plenty of stock under a fresh key prefix, then\n"
	    "runs reserve for N distinct orders (one line of qty 1 each, skus in turn),\n"
	    "then commit for the same N orders, each as one pipeline with at most W\n"
	    "calls unanswered.  Prints 'name value' lines: calls per second and Redis's\n"
	    "own microseconds per call (INFO commandstats).  Defaults: 127.0.0.1:6379,\n"
	    "N 200000, W 512, S 3.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "orders", required_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{ "skus", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rb b = { .orders = 200000, .window = 512, .skus = 3 };
	const char *host = "127.0.0.1";
	char *prefix;
	double t_res, t_com, us_res, us_com;
	int port = 6379, c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': b.orders = strtoll(optarg, NULL, 10); break;
		case 'w': b.window = strtoll(optarg, NULL, 10); break;
		case 's': b.skus = strtoll(optarg, NULL, 10); break;
		case 'h': rb_usage(stdout); return 0;
		default: rb_usage(stderr); return 2;
		}
	}
	if (optind < argc || b.orders < 1 || b.window < 2 || b.skus < 1 || port <= 0) {
		rb_usage(stderr);
		return 2;
	}
	if ((b.c = redisConnect(host, port)) == NULL || b.c->err)
		rb_die("connect", b.c != NULL ? b.c->errstr : "out of memory");
	prefix = xasprintf("bench-%" PRId64 ":", util_now_ms());
	b.prefix = prefix;
	rb_load_scripts(&b);
	rb_stock(&b);

	rb_reset_stats(&b);
	t_res = rb_phase(&b, INVENTORY_RESERVE, "RESERVED");
	us_res = rb_server_us_per_call(&b);
	rb_reset_stats(&b);
	t_com = rb_phase(&b, INVENTORY_COMMIT, "COMMITTED");
	us_com = rb_server_us_per_call(&b);

	printf("redis_orders %" PRId64 "\n", b.orders);
	printf("redis_skus %" PRId64 "\n", b.skus);
	printf("redis_window %" PRId64 "\n", b.window);
	printf("redis_reserve_per_s %.0f\n", (double)b.orders / t_res);
	printf("redis_commit_per_s %.0f\n", (double)b.orders / t_com);
	/* One reserve and one commit per order line. */
	printf("redis_reserve_commit_per_s %.0f\n", (double)b.orders / (t_res + t_com));
	printf("redis_ops_per_s %.0f\n", 2.0 * (double)b.orders / (t_res + t_com));
	printf("redis_reserve_server_us %.2f\n", us_res);
	printf("redis_commit_server_us %.2f\n", us_com);
	redisFree(b.c);
	free(prefix);
	return 0;
}
