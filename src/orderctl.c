/* orderctl.c: the operator's tool: stock, orders, reconcile, outbox, DLQ and rebuilding Redis from the journal. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uuid/uuid.h>

#include "cluster.h"
#include "config.h"
#include "escape.h"
#include "event.h"
#include "inventory.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"
#include "util.h"

struct ctl {
	struct config *cf;
	struct journal *j;
	struct cluster_sync *rc;	/* one server, or every master of a cluster */
	bool json;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: orderctl [-c FILE] [-s SECTION.KEY=VALUE]... COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  stock add SKU QTY              add QTY (> 0) units; journaled, applied by Lua\n"
	    "  stock show [SKU...] [--json]   available, reserved, sold per sku\n"
	    "  order show ORDER_ID [--json]   state, lines, every step with its time\n"
	    "  reconcile [--json]             journal vs Redis; exit 1 on any drift\n"
	    "  reconcile --changelog [--json] the state topic (every instance's orders) vs\n"
	    "                                 Redis; exit 1 on any drift\n"
	    "  outbox [--json]                pending, published, oldest pending age\n"
	    "  dlq list [--json]              messages parked as undecodable or invalid\n"
	    "  topics create [--partitions N] create the configured topics (default 3)\n"
	    "  recover --rebuild-redis [--force] [--json]\n"
	    "                                 rebuild every sku and reservation in an empty\n"
	    "                                 Redis from the journal alone (orderd stopped);\n"
	    "                                 --force replaces the inventory keys there\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -s, --set S.K=V     override one key; may repeat\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       the version\n"
	    "\n"
	    "Exit status: 0 success, 1 a failed check or operation, 2 bad usage or\n"
	    "configuration.\n", CONFIG_DEFAULT_PATH);
}

static int
ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
ctl_fail(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	/* Through log_plain: no secret and no control character reaches the
	 * terminal, whatever the message quotes. */
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	log_plain("orderctl", "%s", msg != NULL ? msg : "out of memory");
	free(msg);
	return 1;
}

/*
 * Text output shows bytes that came from messages (ids, reasons, error
 * texts, changelog records) and from Redis keys: every string of doc is
 * replaced by its escaped form (escape_tty), so that none can move the
 * cursor or forge a line on the operator's terminal.  --json needs none
 * of this: JSON escapes control characters itself.
 */
/* The escaped copy of a string that needs one, else NULL. */
static json_t *
ctl_clean_string(json_t *v)
{
	json_t *clean;
	char *e;

	if (!json_is_string(v) || (escape_is_safe(json_string_value(v), json_string_length(v)) &&
	    json_string_length(v) <= ESCAPE_TTY_MAX))
		return NULL;
	e = escape_tty(json_string_value(v), json_string_length(v), ESCAPE_TTY_MAX);
	clean = json_string(e);
	free(e);
	return clean;
}

static void
ctl_json_clean(json_t *doc)
{
	json_t *v, *clean;
	size_t i;

	if (json_is_object(doc)) {
		for (void *it = json_object_iter(doc); it != NULL;
		    it = json_object_iter_next(doc, it)) {
			v = json_object_iter_value(it);
			if ((clean = ctl_clean_string(v)) != NULL)
				json_object_iter_set_new(doc, it, clean);
			else
				ctl_json_clean(v);
		}
	} else if (json_is_array(doc)) {
		json_array_foreach(doc, i, v) {
			if ((clean = ctl_clean_string(v)) != NULL)
				json_array_set_new(doc, i, clean);
			else
				ctl_json_clean(v);
		}
	}
}

static void
ctl_print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

	puts(s);
	free(s);
	json_decref(doc);
}

static int
ctl_journal(struct ctl *c)
{
	struct journal_options jo = { .synchronous_full = true, .busy_timeout_ms = 10000 };
	char *cause = NULL;

	if (c->j != NULL)
		return 0;
	if (journal_open(&c->j, c->cf->journal_path, &jo, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	return 0;
}

static int
ctl_redis(struct ctl *c)
{
	struct cluster_options o = {
		.cluster = c->cf->redis_cluster,
		.host = c->cf->redis_host,
		.port = c->cf->redis_port,
		.nodes = c->cf->redis_nodes,
		.timeout_ms = c->cf->redis_timeout_ms,
		.user = c->cf->redis_user,
		.password = c->cf->redis_secret,
	};
	char *cause = NULL;

	if (c->rc != NULL)
		return 0;
	if (cluster_sync_open(&c->rc, &o, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	return 0;
}

/* ---- stock ------------------------------------------------------------ */

static int
ctl_stock_add(struct ctl *c, int argc, char **argv)
{
	char id[37], k1[INVENTORY_KEY_MAX], k2[INVENTORY_KEY_MAX], *src[INVENTORY_SCRIPT_COUNT];
	char *cause = NULL, *end, qbuf[24];
	long long qty;
	redisReply *r;
	uuid_t u;
	int err;

	if (argc != 2) {
		fprintf(stderr, "orderctl: usage: stock add SKU QTY\n");
		return 2;
	}
	if (!event_valid_name(argv[0], strlen(argv[0]), SAGA_SKU_MAX)) {
		fprintf(stderr, "orderctl: SKU '%s': must be 1..%d of [A-Za-z0-9._:-]\n",
		    argv[0], SAGA_SKU_MAX);
		return 2;
	}
	errno = 0;
	qty = strtoll(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[1] || qty <= 0 ||
	    qty > 1000000000000LL) {
		fprintf(stderr, "orderctl: QTY '%s': must be an integer in 1..10^12\n", argv[1]);
		return 2;
	}
	if (ctl_journal(c))
		return 1;
	/* Journaled first: what Redis gets is never more than the journal knows. */
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	if ((err = journal_begin(c->j)) < 0 ||
	    (err = journal_stock_adjustment_add(c->j, id, argv[0], qty, util_now_ms())) < 0 ||
	    (err = journal_commit(c->j)) < 0) {
		journal_rollback(c->j);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (ctl_redis(c))
		return ctl_fail("stock addition %s is journaled; orderd applies it when "
		    "it reaches Redis", id);
	if (inventory_read_scripts(src, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	if (inventory_key_stock(k1, sizeof(k1), c->cf->redis_prefix, argv[0]) < 0 ||
	    inventory_key_adds(k2, sizeof(k2), c->cf->redis_prefix, argv[0]) < 0) {
		for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
			free(src[i]);
		return ctl_fail("%s: its Redis keys do not fit in %d bytes", argv[0],
		    INVENTORY_KEY_MAX);
	}
	snprintf(qbuf, sizeof(qbuf), "%lld", qty);
	{
		const char *cmd[7] = { "EVAL", src[INVENTORY_STOCK_ADD], "2", k1, k2, id, qbuf };

		r = cluster_sync_command(c->rc, 3, 7, cmd, NULL);
	}
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(src[i]);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		ctl_fail("redis: %s; stock addition %s is journaled and applied later",
		    r == NULL ? cluster_sync_errstr(c->rc) : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply", id);
		freeReplyObject(r);
		return 1;
	}
	if ((err = journal_stock_adjustment_applied(c->j, id, util_now_ms())) < 0)
		ctl_fail("journal: %s (the stock was added)", journal_errmsg(c->j));
	if (c->json) {
		ctl_print_json(json_pack("{s:s, s:s, s:I, s:I}", "adjustment_id", id,
		    "sku", argv[0], "added", (json_int_t)qty,
		    "available", (json_int_t)r->element[1]->integer));
	} else {
		printf("%s: added %lld, available %lld\n", argv[0], qty,
		    r->element[1]->integer);
	}
	freeReplyObject(r);
	return err < 0 ? 1 : 0;
}

struct stock_row {
	long long available, reserved, sold, added;
	bool exists;
};

static int
ctl_stock_get(struct ctl *c, const char *sku, struct stock_row *row)
{
	char key[INVENTORY_KEY_MAX];
	const char *argv[6] = { "HMGET", key, "available", "reserved", "sold", "added" };
	redisReply *r;

	memset(row, 0, sizeof(*row));
	/* A sku from the command line may be of any length. */
	if (inventory_key_stock(key, sizeof(key), c->cf->redis_prefix, sku) < 0) {
		ctl_fail("%s: its Redis key does not fit in %d bytes", sku, INVENTORY_KEY_MAX);
		return -ENAMETOOLONG;
	}
	r = cluster_sync_command(c->rc, 1, 6, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		ctl_fail("redis: %s", r == NULL ? cluster_sync_errstr(c->rc) :
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		freeReplyObject(r);
		return -EIO;
	}
	for (int i = 0; i < 4; i++) {
		long long v = r->element[i]->type == REDIS_REPLY_STRING ?
		    atoll(r->element[i]->str) : 0;

		row->exists |= r->element[i]->type == REDIS_REPLY_STRING;
		if (i == 0) row->available = v;
		if (i == 1) row->reserved = v;
		if (i == 2) row->sold = v;
		if (i == 3) row->added = v;
	}
	freeReplyObject(r);
	return 0;
}

/* Keys of a SCAN, collected (what the callback of cluster_sync_scan() fills). */
struct ctl_keys {
	char **v;
	int n, cap;
	size_t plen;		/* of the prefix */
	const char *suffix;	/* keep only PREFIX{...}SUFFIX; NULL keeps PREFIX{...}... */
	bool skus;		/* store the sku between the braces, not the key */
};

static int
ctl_keys_add(const char *key, void *arg)
{
	struct ctl_keys *ks = arg;
	const char *k = key + ks->plen, *close;

	if (strlen(key) < ks->plen || *k != '{' || (close = strchr(k, '}')) == NULL)
		return 0;
	if (ks->suffix != NULL && strcmp(close + 1, ks->suffix) != 0)
		return 0;
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 64;
		ks->v = xrealloc(ks->v, (size_t)ks->cap * sizeof(*ks->v));
	}
	ks->v[ks->n++] = ks->skus ? xstrndup(k + 1, (size_t)(close - k - 1)) : xstrdup(key);
	return 0;
}

static void
ctl_keys_free(struct ctl_keys *ks)
{
	for (int i = 0; i < ks->n; i++)
		free(ks->v[i]);
	free(ks->v);
	ks->v = NULL;
	ks->n = ks->cap = 0;
}

static int ctl_cmpstr(const void *a, const void *b);

/* Sorted, each once: a key whose slot moves during a cluster SCAN can be
 * seen on both masters. */
static void
ctl_keys_sort(struct ctl_keys *ks)
{
	int n = 0;

	if (ks->n == 0)
		return;		/* v may be NULL: qsort() must not see it */
	qsort(ks->v, (size_t)ks->n, sizeof(*ks->v), ctl_cmpstr);
	for (int i = 0; i < ks->n; i++) {
		if (n > 0 && strcmp(ks->v[n - 1], ks->v[i]) == 0)
			free(ks->v[i]);
		else
			ks->v[n++] = ks->v[i];
	}
	ks->n = n;
}

/* Every sku with a stock hash in Redis (SCAN, so it never blocks Redis;
 * every master of a cluster), sorted; *err < 0 when the SCAN failed. */
static char **
ctl_redis_skus(struct ctl *c, const char *suffix, int *n, int *err)
{
	struct ctl_keys ks = { .plen = strlen(c->cf->redis_prefix), .skus = true };
	char pattern[INVENTORY_KEY_MAX], want[64];

	snprintf(want, sizeof(want), ":%s", suffix);
	ks.suffix = want;
	snprintf(pattern, sizeof(pattern), "%s{*}:%s", c->cf->redis_prefix, suffix);
	*err = cluster_sync_scan(c->rc, pattern, ctl_keys_add, &ks);
	if (*err < 0)
		ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
	ctl_keys_sort(&ks);
	*n = ks.n;
	return ks.v;
}

static int
ctl_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
ctl_stock_show(struct ctl *c, int argc, char **argv)
{
	char **skus;
	int n, status = 0;
	json_t *doc = NULL, *arr = NULL;

	if (ctl_redis(c))
		return 1;
	if (argc > 0) {
		n = argc;
		skus = xcalloc((size_t)n, sizeof(*skus));
		for (int i = 0; i < n; i++)
			skus[i] = xstrdup(argv[i]);
	} else {
		int err;

		/* What a failed SCAN found is still shown, with exit 1. */
		skus = ctl_redis_skus(c, "stock", &n, &err);
		if (err < 0)
			status = 1;
	}
	if (c->json) {
		doc = json_object();
		arr = json_array();
		json_object_set_new(doc, "skus", arr);
	} else {
		printf("%-24s %12s %12s %12s\n", "SKU", "AVAILABLE", "RESERVED", "SOLD");
	}
	for (int i = 0; i < n; i++) {
		struct stock_row row;

		if (ctl_stock_get(c, skus[i], &row) < 0) {
			status = 1;
			break;
		}
		if (!row.exists && argc > 0)
			fprintf(stderr, "orderctl: %s: no stock recorded\n", skus[i]);
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I}",
			    "sku", skus[i], "available", (json_int_t)row.available,
			    "reserved", (json_int_t)row.reserved, "sold", (json_int_t)row.sold,
			    "added", (json_int_t)row.added));
		else {
			/* A sku read from a Redis key may hold any byte. */
			char *k = escape_tty(skus[i], strlen(skus[i]), ESCAPE_TTY_MAX);

			printf("%-24s %12lld %12lld %12lld\n", k, row.available,
			    row.reserved, row.sold);
			free(k);
		}
	}
	for (int i = 0; i < n; i++)
		free(skus[i]);
	free(skus);
	if (doc != NULL) {
		if (status == 0)
			ctl_print_json(doc);
		else
			json_decref(doc);
	}
	return status;
}

/* ---- order show --------------------------------------------------------- */

static json_t *
col_json(const struct journal_row *r, const char *col)
{
	switch (journal_row_type(r, col)) {
	case JOURNAL_NULL:
		return json_null();
	case JOURNAL_INTEGER:
		return json_integer(journal_row_int(r, col));
	default:
		return json_string(journal_row_text(r, col));
	}
}

/* Appends one row as an object whose keys are the column names. */
static int
ctl_row_json(const struct journal_row *r, void *arg)
{
	json_t *arr = arg, *obj = json_object();

	for (int i = 0; i < journal_row_columns(r); i++)
		json_object_set_new(obj, journal_row_column(r, i),
		    col_json(r, journal_row_column(r, i)));
	json_array_append_new(arr, obj);
	return 0;
}

static void
ctl_time(char *buf, size_t len, json_t *v)
{
	if (json_is_integer(v)) {
		char t[32];

		event_format_time(t, json_integer_value(v));
		snprintf(buf, len, "%s", t);
	} else {
		snprintf(buf, len, "-");
	}
}

static int
ctl_order_show(struct ctl *c, int argc, char **argv)
{
	const char *params[1];
	json_t *orders = json_array(), *steps = json_array(), *events = json_array(),
	    *outputs = json_array(), *deadline = json_array(), *o, *items;
	int n;

	if (argc != 1) {
		fprintf(stderr, "orderctl: usage: order show ORDER_ID [--json]\n");
		json_decref(orders);
		json_decref(steps);
		json_decref(events);
		json_decref(outputs);
		json_decref(deadline);
		return 2;
	}
	params[0] = argv[0];
	if (ctl_journal(c))
		return 1;
	n = journal_report(c->j, "order", params, 1, ctl_row_json, orders);
	if (n <= 0) {
		json_decref(orders);
		json_decref(steps);
		json_decref(events);
		json_decref(outputs);
		json_decref(deadline);
		return n < 0 ? ctl_fail("journal: %s", journal_errmsg(c->j)) :
		    ctl_fail("order %s: not in the journal", argv[0]);
	}
	journal_report(c->j, "order_steps", params, 1, ctl_row_json, steps);
	journal_report(c->j, "order_events", params, 1, ctl_row_json, events);
	journal_report(c->j, "order_outputs", params, 1, ctl_row_json, outputs);
	journal_report(c->j, "order_deadline", params, 1, ctl_row_json, deadline);
	o = json_incref(json_array_get(orders, 0));
	json_decref(orders);
	items = json_loads(json_string_value(json_object_get(o, "items")), 0, NULL);
	json_object_set_new(o, "items", items ? items : json_array());
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "events", events);
	json_object_set_new(o, "outputs", outputs);
	json_object_set_new(o, "deadline", json_array_size(deadline) ?
	    json_incref(json_array_get(deadline, 0)) : json_null());
	json_decref(deadline);
	if (c->json) {
		ctl_print_json(o);
		return 0;
	}
	ctl_json_clean(o);
	printf("order     %s\nstate     %s", json_string_value(json_object_get(o, "order_id")),
	    json_string_value(json_object_get(o, "state")));
	if (json_is_string(json_object_get(o, "reason")))
		printf(" (%s%s%s)", json_string_value(json_object_get(o, "reason")),
		    json_is_string(json_object_get(o, "reason_sku")) ? " " : "",
		    json_is_string(json_object_get(o, "reason_sku")) ?
		    json_string_value(json_object_get(o, "reason_sku")) : "");
	printf("\ncustomer  %s\namount    %lld %s\n",
	    json_string_value(json_object_get(o, "customer_id")),
	    (long long)json_integer_value(json_object_get(o, "amount_cents")),
	    json_string_value(json_object_get(o, "currency")));
	if (json_is_string(json_object_get(o, "payment_id")))
		printf("payment   %s\n", json_string_value(json_object_get(o, "payment_id")));
	printf("lines\n");
	for (size_t i = 0; i < json_array_size(json_object_get(o, "items")); i++) {
		json_t *it = json_array_get(json_object_get(o, "items"), i);

		printf("  %-24s %lld\n", json_string_value(json_object_get(it, "sku")),
		    (long long)json_integer_value(json_object_get(it, "qty")));
	}
	printf("events\n");
	for (size_t i = 0; i < json_array_size(events); i++) {
		json_t *ev = json_array_get(events, i);
		char t[32];

		ctl_time(t, sizeof(t), json_object_get(ev, "received_at"));
		printf("  %s  %-28s %-8s %s\n", t,
		    json_string_value(json_object_get(ev, "type")),
		    json_string_value(json_object_get(ev, "status")),
		    json_string_value(json_object_get(ev, "event_id")));
	}
	printf("steps\n");
	for (size_t i = 0; i < json_array_size(steps); i++) {
		json_t *s = json_array_get(steps, i);
		char t1[32], t2[32];

		ctl_time(t1, sizeof(t1), json_object_get(s, "intent_at"));
		ctl_time(t2, sizeof(t2), json_object_get(s, "done_at"));
		printf("  %s  %-8s %-20s %8lld  %-10s %s\n", t1,
		    json_string_value(json_object_get(s, "kind")),
		    json_string_value(json_object_get(s, "sku")),
		    (long long)json_integer_value(json_object_get(s, "qty")),
		    json_is_string(json_object_get(s, "result")) ?
		    json_string_value(json_object_get(s, "result")) : "in flight", t2);
	}
	printf("outputs\n");
	for (size_t i = 0; i < json_array_size(outputs); i++) {
		json_t *x = json_array_get(outputs, i);
		char t1[32], t2[32];

		ctl_time(t1, sizeof(t1), json_object_get(x, "created_at"));
		ctl_time(t2, sizeof(t2), json_object_get(x, "published_at"));
		printf("  %s  %-18s %s  published %s\n", t1,
		    json_string_value(json_object_get(x, "type")),
		    json_string_value(json_object_get(x, "event_id")), t2);
	}
	json_decref(o);
	return 0;
}

/* ---- outbox, dlq -------------------------------------------------------- */

static int
ctl_outbox(struct ctl *c, int argc, char **argv)
{
	int64_t pending, published, oldest, age;

	if (argc != 0) {
		fprintf(stderr, "orderctl: usage: outbox [--json]\n");
		return 2;
	}
	if (ctl_journal(c))
		return 1;
	if (journal_outbox_stats(c->j, &pending, &published, &oldest) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	age = pending > 0 && oldest > 0 ? util_now_ms() - oldest : 0;
	if (age < 0)
		age = 0;
	if (c->json)
		ctl_print_json(json_pack("{s:I, s:I, s:I}", "pending", (json_int_t)pending,
		    "published", (json_int_t)published, "oldest_pending_age_ms",
		    (json_int_t)age));
	else
		printf("pending    %lld\npublished  %lld\noldest pending age  %lld ms\n",
		    (long long)pending, (long long)published, (long long)age);
	return 0;
}

static int
ctl_dlq_row(const struct journal_row *r, void *arg)
{
	json_t *arr = arg;
	const char *key = journal_row_text(r, "msg_key");
	json_t *jkey = key ? json_string(key) : NULL;	/* NULL: not UTF-8 */

	json_array_append_new(arr, json_pack("{s:I, s:s, s:i, s:I, s:s, s:I, s:I, s:o}",
	    "id", (json_int_t)journal_row_int(r, "id"),
	    "topic", journal_row_text(r, "topic"),
	    "partition", (int)journal_row_int(r, "kafka_partition"),
	    "offset", (json_int_t)journal_row_int(r, "kafka_offset"),
	    "error", journal_row_text(r, "error"),
	    "received_at", (json_int_t)journal_row_int(r, "received_at"),
	    "bytes", (json_int_t)journal_row_int(r, "bytes"),
	    "key", jkey ? jkey : json_null()));
	return 0;
}

static int
ctl_dlq(struct ctl *c, int argc, char **argv)
{
	json_t *arr;
	int n;

	if (argc != 1 || strcmp(argv[0], "list") != 0) {
		fprintf(stderr, "orderctl: usage: dlq list [--json]\n");
		return 2;
	}
	if (ctl_journal(c))
		return 1;
	arr = json_array();
	n = journal_report(c->j, "dlq", NULL, 0, ctl_dlq_row, arr);
	if (n < 0) {
		json_decref(arr);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	if (c->json) {
		ctl_print_json(json_pack("{s:o}", "messages", arr));
		return 0;
	}
	ctl_json_clean(arr);
	printf("%-6s %-20s %4s %10s  %s\n", "ID", "TOPIC", "PART", "OFFSET", "ERROR");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *m = json_array_get(arr, i);

		printf("%-6lld %-20s %4d %10lld  %s\n",
		    (long long)json_integer_value(json_object_get(m, "id")),
		    json_string_value(json_object_get(m, "topic")),
		    (int)json_integer_value(json_object_get(m, "partition")),
		    (long long)json_integer_value(json_object_get(m, "offset")),
		    json_string_value(json_object_get(m, "error")));
	}
	json_decref(arr);
	return 0;
}

/* ---- reconcile ---------------------------------------------------------- */

struct reconcile {
	json_t *problems;
	int skus;
	int unsettled;
	const char *source;	/* what Redis is compared with: "journal", "changelog" */
};

static void
ctl_problem(struct reconcile *rc, const char *kind, const char *sku, const char *order_id,
    const char *detail)
{
	json_t *p = json_pack("{s:s, s:s}", "kind", kind, "detail", detail);

	if (sku != NULL)
		json_object_set_new(p, "sku", json_string(sku));
	if (order_id != NULL)
		json_object_set_new(p, "order_id", json_string(order_id));
	json_array_append_new(rc->problems, p);
}

static int
ctl_reconcile_stock_row(const struct journal_row *r, void *arg)
{
	struct reconcile *rc = arg;
	/* The types first: SQLite leaves a column's type undefined once it
	 * has converted its value. */
	bool in_redis = journal_row_type(r, "redis_available") != JOURNAL_NULL;
	/* The changelog knows no stock additions (NULL): Redis's own
	 * invariant is all that checks added then. */
	bool knows_added = journal_row_type(r, "added") != JOURNAL_NULL;
	const char *sku = journal_row_text(r, "sku");
	long long added = journal_row_int(r, "added"), reserved = journal_row_int(r, "reserved"),
	    sold = journal_row_int(r, "sold");
	bool unsettled = journal_row_int(r, "unsettled") != 0;
	long long r_av = journal_row_int(r, "redis_available"),
	    r_res = journal_row_int(r, "redis_reserved"), r_sold = journal_row_int(r, "redis_sold"),
	    r_add = journal_row_int(r, "redis_added");
	char detail[512];

	rc->skus++;
	if (in_redis && r_av + r_res + r_sold != r_add) {
		snprintf(detail, sizeof(detail), "Redis: available %lld + reserved %lld + "
		    "sold %lld != added %lld", r_av, r_res, r_sold, r_add);
		ctl_problem(rc, "invariant", sku, NULL, detail);
	}
	if (in_redis && (r_av < 0 || r_res < 0 || r_sold < 0)) {
		snprintf(detail, sizeof(detail), "Redis: a negative counter (available %lld, "
		    "reserved %lld, sold %lld)", r_av, r_res, r_sold);
		ctl_problem(rc, "negative_counter", sku, NULL, detail);
	}
	if (unsettled) {
		rc->unsettled++;
		return 0;
	}
	if (!knows_added)
		added = r_add;
	if (!in_redis && (added != 0 || reserved != 0 || sold != 0)) {
		if (knows_added)
			snprintf(detail, sizeof(detail), "%s: added %lld, reserved %lld, sold "
			    "%lld; Redis has no stock for it", rc->source, added, reserved, sold);
		else
			snprintf(detail, sizeof(detail), "%s: reserved %lld, sold %lld; Redis "
			    "has no stock for it", rc->source, reserved, sold);
		ctl_problem(rc, "missing_in_redis", sku, NULL, detail);
	} else if (in_redis && (added != r_add || reserved != r_res || sold != r_sold)) {
		if (knows_added)
			snprintf(detail, sizeof(detail), "%s: added %lld, reserved %lld, sold "
			    "%lld; Redis: added %lld, reserved %lld, sold %lld", rc->source, added,
			    reserved, sold, r_add, r_res, r_sold);
		else
			snprintf(detail, sizeof(detail), "%s: reserved %lld, sold %lld; Redis: "
			    "reserved %lld, sold %lld", rc->source, reserved, sold, r_res, r_sold);
		ctl_problem(rc, "counter_drift", sku, NULL, detail);
	}
	return 0;
}

static int
ctl_reconcile_line_row(const struct journal_row *r, void *arg)
{
	ctl_problem(arg, journal_row_text(r, "kind"), journal_row_text(r, "sku"),
	    journal_row_text(r, "order_id"), journal_row_text(r, "detail"));
	return 0;
}

/* Copies Redis's stock hashes and reservation records into TEMP tables of
 * orderctl's own connection, pipelined, so SQL can compare them. */
static int
ctl_reconcile_load(struct ctl *c)
{
	struct ctl_keys ks = { .plen = strlen(c->cf->redis_prefix) };
	char pattern[INVENTORY_KEY_MAX];
	size_t plen = ks.plen;
	char **keys;
	int nkeys, err = 0;

	if (journal_report(c->j, "redis_tables", NULL, 0, NULL, NULL) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	snprintf(pattern, sizeof(pattern), "%s{*}:*", c->cf->redis_prefix);
	if (cluster_sync_scan(c->rc, pattern, ctl_keys_add, &ks) < 0) {
		err = ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
		goto out;
	}
	/* Only stock hashes and reservation records, each once. */
	ctl_keys_sort(&ks);
	keys = ks.v;
	nkeys = 0;
	for (int i = 0; i < ks.n; i++) {
		const char *close = strchr(ks.v[i] + plen, '}');

		if (strcmp(close, "}:stock") == 0 || strncmp(close, "}:r:", 4) == 0)
			keys[nkeys++] = ks.v[i];
		else
			free(ks.v[i]);
	}
	ks.n = nkeys;

	if (journal_begin(c->j) < 0) {
		err = ctl_fail("journal: %s", journal_errmsg(c->j));
		goto out;
	}
	for (int base = 0; base < nkeys && err == 0; base += 1000) {
		int end = base + 1000 < nkeys ? base + 1000 : nkeys;

		for (int i = base; i < end; i++) {
			const char *stock[6] = { "HMGET", keys[i], "available", "reserved", "sold",
			    "added" };
			const char *resv[5] = { "HMGET", keys[i], "state", "qty", "order" };
			bool is_stock = strstr(keys[i] + plen, "}:stock") != NULL;

			if (cluster_sync_append(c->rc, 1, is_stock ? 6 : 5, is_stock ? stock : resv,
			    NULL) < 0) {
				err = ctl_fail("redis: %s", cluster_sync_errstr(c->rc));
				break;
			}
		}
		for (int i = base; i < end; i++) {
			redisReply *r = NULL;
			const char *sku0 = keys[i] + plen + 1;
			const char *close = strchr(sku0, '}');
			char *sku;
			const char *p[5];
			char buf[4][24];

			if (cluster_sync_queued(c->rc) == 0)
				break;
			if (cluster_sync_get_reply(c->rc, &r) < 0 || r->type != REDIS_REPLY_ARRAY) {
				if (err == 0)
					err = ctl_fail("redis: %s", r == NULL ? cluster_sync_errstr(c->rc) :
					    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
				freeReplyObject(r);
				continue;	/* the rest of the replies still come */
			}
			sku = xstrndup(sku0, (size_t)(close - sku0));
			if (strcmp(close, "}:stock") == 0) {
				p[0] = sku;
				for (int f = 0; f < 4; f++) {
					snprintf(buf[f], sizeof(buf[f]), "%s",
					    r->element[f]->type == REDIS_REPLY_STRING ?
					    r->element[f]->str : "0");
					p[f + 1] = buf[f];
				}
				journal_report(c->j, "redis_stock_insert", p, 5, NULL, NULL);
			} else if (r->element[0]->type == REDIS_REPLY_STRING) {
				p[0] = r->element[2]->type == REDIS_REPLY_STRING ?
				    r->element[2]->str : close + 4;
				p[1] = sku;
				p[2] = r->element[0]->str;
				p[3] = r->element[1]->type == REDIS_REPLY_STRING ?
				    r->element[1]->str : "0";
				journal_report(c->j, "redis_resv_insert", p, 4, NULL, NULL);
			}
			free(sku);
			freeReplyObject(r);
		}
	}
	/* TEMP tables only: nothing of the journal's own changes. */
	if (journal_commit(c->j) < 0 && err == 0)
		err = ctl_fail("journal: %s", journal_errmsg(c->j));
out:
	ctl_keys_free(&ks);
	return err;
}

/* ---- reconcile --changelog ---------------------------------------------- */

#define CTL_KAFKA_TIMEOUT_MS 10000	/* the start-up check of the broker (kafka_check_access) */
/* Nothing read for this long while partitions are still short of their
 * end: the broker or a leader is gone, and waiting longer shows nothing. */
#define CTL_CHANGELOG_STALL_MS 30000

struct changelog {
	struct ctl *c;
	struct reconcile *rc;
	const char *topic;
	int32_t *parts;		/* every partition of the topic */
	int nparts;
	long long records, tombstones;
	int orders, new_orders;
	bool failed;		/* a journal call failed inside a callback (said) */
};

/* The states a changelog record may carry; NONE: only parked events. */
static const char *const ctl_changelog_states[] = {
	"NONE", "NEW", "RESERVED", "CONFIRMED", "REJECTED", "CANCELLED", NULL,
};

static void
ctl_changelog_bad(struct changelog *cl, const struct kafka_record *m, const char *order_id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A record that cannot be read is drift of its own: the order it was
 * about is compared on its other records only. */
static void
ctl_changelog_bad(struct changelog *cl, const struct kafka_record *m, const char *order_id,
    const char *fmt, ...)
{
	char why[256], detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(detail, sizeof(detail), "%s [%" PRId32 "] offset %" PRId64 ": %s", cl->topic,
	    m->partition, m->offset, why);
	ctl_problem(cl->rc, "changelog_bad_record", NULL, order_id, detail);
}

/* Checks one record and keeps it in temp.changelog_orders when its
 * (epoch, version) is the order's highest so far. */
static int
ctl_changelog_record(const struct kafka_record *m, void *arg)
{
	struct changelog *cl = arg;
	struct saga_line lines[SAGA_MAX_LINES];
	char num[4][24], key[EVENT_ORDER_ID_MAX + 1] = "";
	const char *order_id, *state, *text, *p[7];
	json_error_t jerr;
	json_t *doc, *v;
	int nlines, i, err = 0;

	cl->records++;
	/* Names the order of a record whose own order_id is unreadable. */
	if (m->key != NULL && event_valid_name(m->key, m->key_len, EVENT_ORDER_ID_MAX)) {
		memcpy(key, m->key, m->key_len);
		key[m->key_len] = '\0';
	}
	/* A tombstone (the order was dropped) carries no (epoch, version), so
	 * it outranks none of the order's records: it is skipped. */
	if (m->value == NULL) {
		cl->tombstones++;
		return 0;
	}
	doc = json_loadb(m->value, m->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		ctl_changelog_bad(cl, m, key[0] ? key : NULL, "%s",
		    doc == NULL ? jerr.text : "not a JSON object");
		goto out;
	}
	order_id = json_string_value(json_object_get(doc, "order_id"));
	if (order_id == NULL || !event_valid_name(order_id, strlen(order_id), EVENT_ORDER_ID_MAX)) {
		ctl_changelog_bad(cl, m, key[0] ? key : NULL, "order_id: missing or not an "
		    "order id");
		goto out;
	}
	if (m->key != NULL && (m->key_len != strlen(order_id) ||
	    memcmp(m->key, order_id, m->key_len) != 0)) {
		ctl_changelog_bad(cl, m, order_id, "the key is not the order_id");
		goto out;
	}
	for (i = 0; i < 2; i++) {
		v = json_object_get(doc, i == 0 ? "epoch" : "version");
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			ctl_changelog_bad(cl, m, order_id, "%s: not an integer >= 0",
			    i == 0 ? "epoch" : "version");
			goto out;
		}
		snprintf(num[i], sizeof(num[i]), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	}
	state = json_string_value(json_object_get(doc, "state"));
	for (i = 0; state != NULL && ctl_changelog_states[i] != NULL; i++)
		if (strcmp(state, ctl_changelog_states[i]) == 0)
			break;
	if (state == NULL || ctl_changelog_states[i] == NULL) {
		ctl_changelog_bad(cl, m, order_id, "state: not one of NONE, NEW, RESERVED, "
		    "CONFIRMED, REJECTED, CANCELLED");
		goto out;
	}
	/* An order not created yet (NONE) may have no lines at all. */
	v = json_object_get(doc, "lines");
	text = v == NULL || json_is_null(v) ? "" : json_string_value(v);
	if (text == NULL || event_lines_parse(text, lines, &nlines) < 0) {
		ctl_changelog_bad(cl, m, order_id, "lines: not \"sku qty;sku qty\"");
		goto out;
	}
	/* Summed per sku by the writer: a sku twice is a broken record. */
	for (i = 0; i < nlines; i++)
		for (int k = 0; k < i; k++)
			if (strcmp(lines[i].sku, lines[k].sku) == 0) {
				ctl_changelog_bad(cl, m, order_id, "lines: sku %s twice",
				    lines[i].sku);
				goto out;
			}
	snprintf(num[2], sizeof(num[2]), "%" PRId32, m->partition);
	snprintf(num[3], sizeof(num[3]), "%" PRId64, m->offset);
	p[0] = order_id;
	p[1] = num[0];
	p[2] = num[1];
	p[3] = state;
	p[4] = text;
	p[5] = num[2];
	p[6] = num[3];
	if (journal_report(cl->c->j, "changelog_record", p, 7, NULL, NULL) < 0) {
		ctl_fail("journal: %s", journal_errmsg(cl->c->j));
		cl->failed = true;
		err = -EIO;
	}
out:
	json_decref(doc);
	return err;
}

/* Splits the lines of one current record into temp.changelog_lines. */
static int
ctl_changelog_lines_row(const struct journal_row *r, void *arg)
{
	struct changelog *cl = arg;
	const char *order_id = journal_row_text(r, "order_id");
	struct saga_line lines[SAGA_MAX_LINES];
	int nlines;

	/* Checked when the record was read. */
	if (event_lines_parse(journal_row_text(r, "lines"), lines, &nlines) < 0)
		nlines = 0;
	for (int i = 0; i < nlines; i++) {
		char qty[24];
		const char *p[3] = { order_id, lines[i].sku, qty };

		snprintf(qty, sizeof(qty), "%" PRId64, lines[i].qty);
		if (journal_report(cl->c->j, "changelog_line_insert", p, 3, NULL, NULL) < 0) {
			cl->failed = true;
			return 1;
		}
	}
	return 0;
}

static int
ctl_changelog_counts_row(const struct journal_row *r, void *arg)
{
	struct changelog *cl = arg;

	cl->orders = (int)journal_row_int(r, "orders");
	cl->new_orders = (int)journal_row_int(r, "new_orders");
	return 0;
}

/*
 * The partitions of the state topic, through the start-up check (a refused
 * password or certificate: one line, at once).  Returns 0, -ENOENT when
 * the topic does not exist, or -EIO; each said on stderr.
 */
static int
ctl_changelog_topic(struct changelog *cl)
{
	const char *topics[1] = { cl->topic };
	char *cause = NULL;
	int nparts;

	if (kafka_check_access(cl->c->cf, topics, 1, &nparts, CTL_KAFKA_TIMEOUT_MS,
	    &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return -EIO;
	}
	if (nparts == -ENOENT) {
		ctl_fail("changelog topic %s ([topics] state): no such topic", cl->topic);
		return -ENOENT;
	}
	/* Kafka numbers the partitions of a topic 0..N-1. */
	cl->nparts = nparts;
	cl->parts = xcalloc((size_t)nparts + 1, sizeof(*cl->parts));
	for (int i = 0; i < nparts; i++)
		cl->parts[i] = i;
	return 0;
}

/*
 * Reads every partition from its start up to its high watermark at the
 * start of the read: records published later belong to a later run.
 * Returns 0, -EINVAL (a [kafka] configuration librdkafka refuses) or
 * another negative errno, each said on stderr.
 */
static int
ctl_changelog_read(struct changelog *cl)
{
	/* A group of its own each run, never joined nor committed to: the
	 * ACLs grant DESCRIBE on the prefix orderctl-reconcile-. */
	char *group = xasprintf("orderctl-reconcile-%ld", (long)getpid());
	struct kafka_read_options opt = {
		.group = group, .stall_ms = CTL_CHANGELOG_STALL_MS, .strict = true,
	};
	char *cause = NULL;
	int err;

	err = kafka_read_records(cl->c->cf, cl->topic, cl->parts, cl->nparts, &opt,
	    ctl_changelog_record, cl, &cause);
	if (err < 0 && !cl->failed)
		ctl_fail(err == -EINVAL ? "%s" : "kafka: %s", cause);
	free(cause);
	free(group);
	return err < 0 ? err : 0;
}

/*
 * Fills the TEMP tables of an in-memory database with Redis and the
 * current record of every order in the state topic.  Returns 0, or
 * -EINVAL / -ENOENT (configuration: exit 2) or another negative errno,
 * each said on stderr.
 */
static int
ctl_changelog(struct changelog *cl)
{
	struct journal_options jo = { .busy_timeout_ms = 10000 };
	struct ctl *c = cl->c;
	char *cause = NULL;
	bool open_tx = false;
	int err;

	if (cl->topic[0] == '\0') {
		ctl_fail("topics.state is empty: there is no changelog topic to read");
		return -EINVAL;
	}
	/* A database of its own: a journal knows only its own instance's
	 * orders, and this host may have none. */
	if (journal_open(&c->j, ":memory:", &jo, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return -EIO;
	}
	/* The topic first, so a wrong name fails before any Redis work. */
	if ((err = ctl_changelog_topic(cl)) < 0)
		goto fail;
	/* Redis before the end offsets: a state orderd publishes while Redis
	 * is read is then still in this run's part of the topic. */
	if (ctl_redis(c) || ctl_reconcile_load(c)) {
		err = -EIO;
		goto fail;
	}
	if (journal_report(c->j, "changelog_tables", NULL, 0, NULL, NULL) < 0 ||
	    journal_begin(c->j) < 0) {
		err = -EIO;
		ctl_fail("journal: %s", journal_errmsg(c->j));
		goto fail;
	}
	open_tx = true;
	if ((err = ctl_changelog_read(cl)) < 0)
		goto fail;
	if (journal_report(c->j, "changelog_current", NULL, 0, ctl_changelog_lines_row,
	    cl) < 0 || cl->failed ||
	    journal_report(c->j, "changelog_counts", NULL, 0, ctl_changelog_counts_row,
	    cl) < 0 || journal_commit(c->j) < 0) {
		err = -EIO;
		ctl_fail("journal: %s", journal_errmsg(c->j));
		goto fail;
	}
	return 0;
fail:
	if (open_tx)
		journal_rollback(c->j);
	return err;
}

static int
ctl_reconcile(struct ctl *c, int argc, char **argv)
{
	struct reconcile rc = { .problems = json_array(), .source = "journal" };
	struct changelog cl = { .c = c, .rc = &rc, .topic = c->cf->topic_state };
	bool changelog = argc == 1 && strcmp(argv[0], "--changelog") == 0;
	size_t n;
	int err;

	if (argc != 0 && !changelog) {
		fprintf(stderr, "orderctl: usage: reconcile [--changelog] [--json]\n");
		json_decref(rc.problems);
		return 2;
	}
	if (changelog) {
		rc.source = "changelog";
		err = ctl_changelog(&cl);
		free(cl.parts);
		if (err < 0) {
			json_decref(rc.problems);
			/* A [kafka] key librdkafka refuses or a topic that is not
			 * there is configuration. */
			return err == -EINVAL || err == -ENOENT ? 2 : 1;
		}
	} else if (ctl_journal(c) || ctl_redis(c) || ctl_reconcile_load(c)) {
		json_decref(rc.problems);
		return 1;
	}
	if (journal_report(c->j, changelog ? "changelog_reconcile_stock" : "reconcile_stock",
	    NULL, 0, ctl_reconcile_stock_row, &rc) < 0 ||
	    journal_report(c->j, changelog ? "changelog_reconcile_lines" : "reconcile_lines",
	    NULL, 0, ctl_reconcile_line_row, &rc) < 0) {
		json_decref(rc.problems);
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	}
	n = json_array_size(rc.problems);
	if (c->json) {
		json_t *doc = json_pack("{s:b, s:o, s:i, s:i}", "ok", n == 0, "problems",
		    rc.problems, "skus", rc.skus, "unsettled_skus", rc.unsettled);

		if (changelog)
			json_object_set_new(doc, "changelog", json_pack("{s:s, s:I, s:I, s:i, s:i}",
			    "topic", cl.topic, "records", (json_int_t)cl.records,
			    "tombstones", (json_int_t)cl.tombstones, "orders", cl.orders,
			    "new_orders", cl.new_orders));
		ctl_print_json(doc);
		return n == 0 ? 0 : 1;
	}
	ctl_json_clean(rc.problems);
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(rc.problems, i);

		printf("%-28s %-20s %-24s %s\n", json_string_value(json_object_get(p, "kind")),
		    json_is_string(json_object_get(p, "sku")) ?
		    json_string_value(json_object_get(p, "sku")) : "-",
		    json_is_string(json_object_get(p, "order_id")) ?
		    json_string_value(json_object_get(p, "order_id")) : "-",
		    json_string_value(json_object_get(p, "detail")));
	}
	if (changelog)
		printf("reconcile: %s: %d skus, %d unsettled (orders in NEW), %zu problems; "
		    "changelog %s: %lld records (%lld tombstones), %d orders, %d in NEW not "
		    "compared\n", n == 0 ? "ok" : "DRIFT", rc.skus, rc.unsettled, n, cl.topic,
		    cl.records, cl.tombstones, cl.orders, cl.new_orders);
	else
		printf("reconcile: %s: %d skus, %d unsettled (steps in flight), %zu problems\n",
		    n == 0 ? "ok" : "DRIFT", rc.skus, rc.unsettled, n);
	json_decref(rc.problems);
	return n == 0 ? 0 : 1;
}

/* ---- recover ------------------------------------------------------------ */

#define CTL_PIPELINE 1000	/* calls sent before their replies are read */

struct restore {
	struct ctl *c;
	char sha[41];
	int pending;		/* calls sent whose reply is not read yet */
	bool failed;		/* a call failed: stop sending */
	long long skus, stock_keys, reservations, adjustments, dropped;
	long long unapplied, in_flight;
};

/* Escapes s for a Redis glob pattern: the prefix is the operator's choice. */
static void
ctl_glob_escape(char *out, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < len; s++) {
		if (strchr("*?[]\\", *s) != NULL)
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

/* Reads replies until at most keep are outstanding.  An error reply or a
 * lost connection is reported once and stops the rebuild. */
static int
ctl_restore_drain(struct restore *rs, int keep)
{
	while (rs->pending > keep) {
		redisReply *r = NULL;

		rs->pending--;
		if (cluster_sync_get_reply(rs->c->rc, &r) < 0) {
			/* The replies after it are read all the same. */
			if (!rs->failed)
				ctl_fail("redis: %s", cluster_sync_errstr(rs->c->rc));
			rs->failed = true;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			if (!rs->failed)
				ctl_fail("redis: restore.lua: %s", r->str);
			rs->failed = true;
		} else if (r->type == REDIS_REPLY_INTEGER) {
			rs->dropped += r->integer;
		}
		freeReplyObject(r);
	}
	return rs->failed ? -EIO : 0;
}

/* Sends one restore.lua call (pipelined). */
static int
ctl_restore_call(struct restore *rs, int argc, const char **argv)
{
	if (rs->failed)
		return -EIO;
	/* Every call is EVALSHA SHA NKEYS KEY...: routed by its first key. */
	if (cluster_sync_append(rs->c->rc, 3, argc, argv, NULL) < 0) {
		ctl_fail("redis: %s", cluster_sync_errstr(rs->c->rc));
		rs->failed = true;
		return -EIO;
	}
	rs->pending++;
	return rs->pending >= CTL_PIPELINE ? ctl_restore_drain(rs, 0) : 0;
}

static int
ctl_first_key(const char *key, void *arg)
{
	*(char **)arg = xstrdup(key);
	return 1;	/* one is enough */
}

/* The first key under the prefix, or NULL when there is none (*err < 0 on
 * a failed SCAN).  The caller frees it. */
static char *
ctl_redis_any_key(struct ctl *c, int *err)
{
	char pattern[INVENTORY_KEY_MAX * 2 + 2], *key = NULL;

	ctl_glob_escape(pattern, sizeof(pattern) - 1, c->cf->redis_prefix);
	strcat(pattern, "*");
	*err = cluster_sync_scan(c->rc, pattern, ctl_first_key, &key);
	if (*err < 0) {
		ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
		return NULL;
	}
	*err = 0;
	return key;
}

/* --force: every inventory key under the prefix goes first, so keys the
 * journal does not know (a reservation of an unknown order, a stray
 * adjustment id) do not survive the rebuild.  Other keys are left alone. */
static int
ctl_restore_drop(struct restore *rs)
{
	struct ctl *c = rs->c;
	struct ctl_keys ks = { .plen = strlen(c->cf->redis_prefix) };
	char pattern[INVENTORY_KEY_MAX * 2 + 8];
	int err = 0;

	ctl_glob_escape(pattern, sizeof(pattern) - 6, c->cf->redis_prefix);
	strcat(pattern, "{*}:*");
	/* Collected first: a SCAN cannot share the connections with calls
	 * whose replies are still to be read. */
	if (cluster_sync_scan(c->rc, pattern, ctl_keys_add, &ks) < 0) {
		ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
		ctl_keys_free(&ks);
		return -EIO;
	}
	ctl_keys_sort(&ks);
	for (int i = 0; i < ks.n && err == 0; i++) {
		const char *k = ks.v[i];
		const char *close = strchr(k + ks.plen, '}');
		const char *argv[6] = { "EVALSHA", rs->sha, "1", k, "drop", NULL };

		if (close == NULL || (strcmp(close, "}:stock") != 0 &&
		    strcmp(close, "}:adds") != 0 && strncmp(close, "}:r:", 4) != 0))
			continue;
		err = ctl_restore_call(rs, 5, argv);
	}
	ctl_keys_free(&ks);
	if (ctl_restore_drain(rs, 0) < 0)
		return -EIO;
	return 0;
}

static int
ctl_restore_stock_row(const struct journal_row *r, void *arg)
{
	struct restore *rs = arg;
	const char *sku = journal_row_text(r, "sku");
	long long added = journal_row_int(r, "added"), reserved = journal_row_int(r, "reserved"),
	    sold = journal_row_int(r, "sold");
	long long unapplied = journal_row_int(r, "unapplied");
	json_t *ids = json_loads(journal_row_text(r, "ids"), 0, NULL);
	char k1[INVENTORY_KEY_MAX], k2[INVENTORY_KEY_MAX], num[3][24];
	size_t nids = json_array_size(ids);
	const char **argv = xcalloc(9 + nids, sizeof(*argv));
	int argc = 0, err;

	if (ids == NULL || !json_is_array(ids) ||
	    inventory_key_stock(k1, sizeof(k1), rs->c->cf->redis_prefix, sku) < 0 ||
	    inventory_key_adds(k2, sizeof(k2), rs->c->cf->redis_prefix, sku) < 0) {
		ctl_fail("sku %s: cannot restore it (a key too long or unreadable ids)", sku);
		json_decref(ids);
		free(argv);
		rs->failed = true;
		return 1;
	}
	snprintf(num[0], sizeof(num[0]), "%lld", added);
	snprintf(num[1], sizeof(num[1]), "%lld", reserved);
	snprintf(num[2], sizeof(num[2]), "%lld", sold);
	argv[argc++] = "EVALSHA";
	argv[argc++] = rs->sha;
	argv[argc++] = "2";
	argv[argc++] = k1;
	argv[argc++] = k2;
	argv[argc++] = "stock";
	for (int i = 0; i < 3; i++)
		argv[argc++] = num[i];
	for (size_t i = 0; i < nids; i++)
		argv[argc++] = json_string_value(json_array_get(ids, i));
	rs->skus++;
	rs->adjustments += (long long)nids;
	rs->unapplied += unapplied;
	rs->in_flight += journal_row_int(r, "in_flight");
	if (added != 0 || reserved != 0 || sold != 0 || nids != 0)
		rs->stock_keys++;
	if (added - reserved - sold < 0)
		fprintf(stderr, "orderctl: %s: warning: available is %lld until orderd applies "
		    "the %lld stock additions not marked applied in the journal\n", sku,
		    added - reserved - sold, unapplied);
	err = ctl_restore_call(rs, argc, argv);
	json_decref(ids);
	free(argv);
	return err < 0;
}

static int
ctl_restore_line_row(const struct journal_row *r, void *arg)
{
	struct restore *rs = arg;
	const char *order_id = journal_row_text(r, "order_id");
	const char *sku = journal_row_text(r, "sku");
	const char *qty = journal_row_text(r, "qty");
	const char *state = journal_row_text(r, "result");
	char key[INVENTORY_KEY_MAX];
	const char *argv[8] = { "EVALSHA", rs->sha, "1", key, "reservation", state, qty,
	    order_id };

	if (inventory_key_reservation(key, sizeof(key), rs->c->cf->redis_prefix, sku,
	    order_id) < 0) {
		ctl_fail("order %s, sku %s: the key is too long", order_id, sku);
		rs->failed = true;
		return 1;
	}
	rs->reservations++;
	return ctl_restore_call(rs, 8, argv) < 0;
}

/*
 * recover --rebuild-redis: writes back, through restore.lua, what the
 * journal says Redis held.  It reads the journal in one read transaction,
 * so it sees one consistent moment of it; orderd must be stopped, else its
 * steps would race the rebuild.
 */
static int
ctl_recover(struct ctl *c, int argc, char **argv)
{
	struct restore rs = { .c = c };
	char *src[INVENTORY_SCRIPT_COUNT], *cause = NULL, *key;
	bool rebuild = false, force = false, bad = false;
	int err;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--rebuild-redis") == 0)
			rebuild = true;
		else if (strcmp(argv[i], "--force") == 0)
			force = true;
		else
			bad = true;
	}
	if (!rebuild || bad) {
		fprintf(stderr, "orderctl: usage: recover --rebuild-redis [--force] [--json]\n");
		return 2;
	}
	/* Opening creates a missing journal, and an empty one would make
	 * --force an eraser: a wrong journal.path must stop here. */
	if (access(c->cf->journal_path, F_OK) != 0)
		return ctl_fail("journal %s: %s: nothing to rebuild from", c->cf->journal_path,
		    strerror(errno));
	if (ctl_journal(c))
		return 1;
	if ((err = journal_report(c->j, "skus", NULL, 0, NULL, NULL)) <= 0)
		return err < 0 ? ctl_fail("journal: %s", journal_errmsg(c->j)) :
		    ctl_fail("journal %s knows no sku: nothing to rebuild from",
		    c->cf->journal_path);
	if (ctl_redis(c))
		return 1;
	key = ctl_redis_any_key(c, &err);
	if (err < 0)
		return 1;
	if (key != NULL && !force) {
		ctl_fail("Redis %s already holds keys under the prefix '%s' (%s, ...): "
		    "refusing to rebuild over them; stop orderd and use --force to replace "
		    "its inventory keys", cluster_sync_name(c->rc), c->cf->redis_prefix, key);
		free(key);
		return 1;
	}
	free(key);
	if (inventory_read_scripts(src, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	/* On every master of a cluster. */
	err = cluster_sync_script_load(c->rc, src[INVENTORY_RESTORE], rs.sha);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(src[i]);
	if (err < 0)
		return ctl_fail("redis: SCRIPT LOAD restore: %s", cluster_sync_errstr(c->rc));
	if (force && ctl_restore_drop(&rs) < 0)
		return 1;

	/* One read transaction: the counters and the records of one moment. */
	if (journal_begin_read(c->j) < 0)
		return ctl_fail("journal: %s", journal_errmsg(c->j));
	if (journal_report(c->j, "restore_stock", NULL, 0, ctl_restore_stock_row, &rs) < 0 ||
	    (!rs.failed &&
	    journal_report(c->j, "restore_lines", NULL, 0, ctl_restore_line_row, &rs) < 0)) {
		if (!rs.failed)
			ctl_fail("journal: %s", journal_errmsg(c->j));
		rs.failed = true;
	}
	/* Ends the read: nothing was written. */
	(void)journal_commit(c->j);
	ctl_restore_drain(&rs, 0);
	if (rs.failed)
		return ctl_fail("the rebuild is incomplete: run it again with --force");
	if (c->json) {
		ctl_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1,
		    "skus", (json_int_t)rs.skus, "skus_with_stock", (json_int_t)rs.stock_keys,
		    "reservations", (json_int_t)rs.reservations,
		    "adjustments", (json_int_t)rs.adjustments,
		    "unapplied_adjustments", (json_int_t)rs.unapplied,
		    "steps_in_flight", (json_int_t)rs.in_flight,
		    "dropped_keys", (json_int_t)rs.dropped));
		return 0;
	}
	printf("recover: rebuilt %lld skus (%lld with stock), %lld reservation records and "
	    "%lld applied stock additions from the journal", rs.skus, rs.stock_keys,
	    rs.reservations, rs.adjustments);
	if (force)
		printf("; %lld old keys dropped first", rs.dropped);
	printf("\n");
	if (rs.unapplied > 0 || rs.in_flight > 0)
		printf("recover: orderd applies %lld more stock additions and runs %lld steps "
		    "in flight again when it starts\n", rs.unapplied, rs.in_flight);
	return 0;
}

/* ---- topics ------------------------------------------------------------- */

static int
ctl_topics(struct ctl *c, int argc, char **argv)
{
	const char *names[6] = { c->cf->topic_orders, c->cf->topic_payments,
	    c->cf->topic_payment_requests, c->cf->topic_order_events, c->cf->topic_dlq,
	    c->cf->topic_state };
	/* The changelog only when configured. */
	int ntopics = c->cf->topic_state[0] ? 6 : 5;
	rd_kafka_NewTopic_t *nt[6];
	rd_kafka_conf_t *conf;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	rd_kafka_t *rk;
	const rd_kafka_topic_result_t **res;
	char *cause = NULL, errstr[512];
	long partitions = 3;
	size_t nres;
	int status = 0;

	if (argc < 1 || strcmp(argv[0], "create") != 0 ||
	    (argc != 1 && !(argc == 3 && strcmp(argv[1], "--partitions") == 0))) {
		fprintf(stderr, "orderctl: usage: topics create [--partitions N]\n");
		return 2;
	}
	if (argc == 3) {
		char *end;

		partitions = strtol(argv[2], &end, 10);
		if (*end != '\0' || partitions < 1 || partitions > 10000) {
			fprintf(stderr, "orderctl: --partitions %s: must be in 1..10000\n", argv[2]);
			return 2;
		}
	}
	conf = kafka_conf_new(c->cf, NULL, NULL, &cause);
	if (conf == NULL) {
		log_plain("orderctl", "%s", cause);
		free(cause);
		return 2;
	}
	if (kafka_check_access(c->cf, NULL, 0, NULL, CTL_KAFKA_TIMEOUT_MS, &cause) < 0) {
		rd_kafka_conf_destroy(conf);
		status = ctl_fail("%s", cause);
		free(cause);
		return status;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		return ctl_fail("kafka: %s", errstr);
	for (int i = 0; i < ntopics; i++) {
		nt[i] = rd_kafka_NewTopic_new(names[i], i == 4 ? 1 : (int)partitions, -1,
		    errstr, sizeof(errstr));
		/* The changelog keeps the latest record of every order. */
		if (i == 5)
			rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
	}
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)ntopics, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev == NULL || rd_kafka_event_error(ev)) {
		status = ctl_fail("kafka: creating topics: %s", ev ?
		    rd_kafka_event_error_string(ev) : "timed out");
	} else {
		res = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &nres);
		for (size_t i = 0; i < nres; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				printf("%s: created\n", rd_kafka_topic_result_name(res[i]));
			else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				printf("%s: exists\n", rd_kafka_topic_result_name(res[i]));
			else
				status = ctl_fail("%s: %s", rd_kafka_topic_result_name(res[i]),
				    rd_kafka_topic_result_error_string(res[i]));
		}
	}
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	for (int i = 0; i < ntopics; i++)
		rd_kafka_NewTopic_destroy(nt[i]);
	rd_kafka_destroy(rk);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool_config_args args = { 0 };
	struct ctl c = { 0 };
	char *cause = NULL, **rest;
	int ch, nrest, status;

	opterr = 0;
	/* "+" stops at the command; options after it are read below. */
	while ((ch = getopt_long(argc, argv, "+:c:s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			args.path = optarg;
			break;
		case 's':
			tool_config_args_add(&args, optarg);
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			tool_config_args_free(&args);
			return 0;
		case 'V':
			tool_print_version("orderctl");
			tool_config_args_free(&args);
			return 0;
		default:
			cause = tool_option_error(ch, argv);
			log_plain("orderctl", "%s", cause);
			free(cause);
			usage(stderr);
			tool_config_args_free(&args);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		tool_config_args_free(&args);
		return 2;
	}
	tool_scrub_argv("orderctl", argc, argv);
	/* --json may come anywhere after the command too. */
	rest = xcalloc((size_t)(argc - optind), sizeof(*rest));
	nrest = 0;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else
			rest[nrest++] = argv[i];
	}
	log_set_level(LOG_LEVEL_WARN);
	if (tool_config_load(&args, &c.cf, &cause) < 0) {
		log_plain("orderctl", "%s", cause);
		free(cause);
		free(rest);
		tool_config_args_free(&args);
		return 2;
	}
	if (log_get_level() > LOG_LEVEL_WARN)
		log_set_level(LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(rest[0], "stock") == 0 && nrest >= 2 && strcmp(rest[1], "add") == 0)
		status = ctl_stock_add(&c, nrest - 2, rest + 2);
	else if (strcmp(rest[0], "stock") == 0 && nrest >= 2 && strcmp(rest[1], "show") == 0)
		status = ctl_stock_show(&c, nrest - 2, rest + 2);
	else if (strcmp(rest[0], "order") == 0 && nrest >= 2 && strcmp(rest[1], "show") == 0)
		status = ctl_order_show(&c, nrest - 2, rest + 2);
	else if (strcmp(rest[0], "reconcile") == 0)
		status = ctl_reconcile(&c, nrest - 1, rest + 1);
	else if (strcmp(rest[0], "outbox") == 0)
		status = ctl_outbox(&c, nrest - 1, rest + 1);
	else if (strcmp(rest[0], "dlq") == 0)
		status = ctl_dlq(&c, nrest - 1, rest + 1);
	else if (strcmp(rest[0], "topics") == 0)
		status = ctl_topics(&c, nrest - 1, rest + 1);
	else if (strcmp(rest[0], "recover") == 0)
		status = ctl_recover(&c, nrest - 1, rest + 1);
	else {
		fprintf(stderr, "orderctl: unknown command '%s'\n", rest[0]);
		usage(stderr);
		status = 2;
	}
	cluster_sync_free(c.rc);
	journal_free(c.j);
	config_free(c.cf);
	free(rest);
	tool_config_args_free(&args);
	return status;
}
