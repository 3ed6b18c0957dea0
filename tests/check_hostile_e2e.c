/* check_hostile_e2e.c: hostile input through a real orderd: each message to the DLQ with its bytes and reason, journaled, offset committed, service going on. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "testutil.h"
#include "util.h"

#define WAIT_MS 30000

struct hostile {
	const char *what;
	const char *key;	/* NULL: no key */
	char *value;
	size_t len;
	const char *error;	/* words the error header must contain */
};

static char *
order_json(const char *order_id, const char *items, const char *extra)
{
	return xasprintf("{\"event_id\":\"ev-%s\",\"type\":\"OrderCreated\",\"order_id\":\"%s\","
	    "\"customer_id\":\"c\",\"items\":%s,\"amount_cents\":100,\"currency\":\"EUR\"%s}",
	    order_id, order_id, items, extra);
}

static int
build_cases(struct hostile *c)
{
	int n = 0;
	char *lines, *big, *p;

	c[n++] = (struct hostile){ "not JSON", "h1", xstrdup("{this is not json"), 0, "not JSON" };
	c[n++] = (struct hostile){ "not an object", "h2", xstrdup("[1, 2, 3]"), 0,
	    "not a JSON object" };
	c[n++] = (struct hostile){ "wrong type: order_id a number", "h3",
	    xstrdup("{\"event_id\":\"e3\",\"type\":\"OrderCancellationRequested\",\"order_id\":3}"),
	    0, "order_id: not a string" };
	c[n++] = (struct hostile){ "wrong type: qty a string", "h4",
	    order_json("h4", "[{\"sku\":\"A\",\"qty\":\"2\"}]", ""), 0, "qty: not an integer" };
	c[n++] = (struct hostile){ "missing field", "h5",
	    xstrdup("{\"event_id\":\"e5\",\"type\":\"PaymentSucceeded\",\"order_id\":\"h5\"}"),
	    0, "payment_id: missing" };
	c[n++] = (struct hostile){ "qty 0", "h6", order_json("h6", "[{\"sku\":\"A\",\"qty\":0}]", ""),
	    0, "qty: 0 is out of range 1..1000000" };
	c[n++] = (struct hostile){ "qty negative", "h7",
	    order_json("h7", "[{\"sku\":\"A\",\"qty\":-4}]", ""), 0, "qty: -4 is out of range" };
	c[n++] = (struct hostile){ "qty above 1,000,000", "h8",
	    order_json("h8", "[{\"sku\":\"A\",\"qty\":1000001}]", ""), 0,
	    "qty: 1000001 is out of range" };
	lines = xmalloc(101 * 32 + 8);
	p = lines;
	*p++ = '[';
	for (int i = 0; i < 101; i++)
		p += sprintf(p, "%s{\"sku\":\"S%d\",\"qty\":1}", i ? "," : "", i);
	strcpy(p, "]");
	c[n++] = (struct hostile){ "101 lines", "h9", order_json("h9", lines, ""), 0,
	    "items: 101 lines is out of range 1..100" };
	free(lines);
	big = xmalloc(2 * 1024 * 1024 + 1);
	memset(big, 'x', 2 * 1024 * 1024);
	big[2 * 1024 * 1024] = '\0';
	p = xasprintf(",\"padding\":\"%s\"", big);
	c[n++] = (struct hostile){ "a 2 MB value", "h10", order_json("h10",
	    "[{\"sku\":\"A\",\"qty\":1}]", p), 0, "larger than" };
	free(p);
	free(big);
	c[n++] = (struct hostile){ "bad sku characters", "h11",
	    order_json("h11", "[{\"sku\":\"A B;DROP\",\"qty\":1}]", ""), 0, "sku: must be" };
	c[n++] = (struct hostile){ "empty order_id", "",
	    xstrdup("{\"event_id\":\"e12\",\"type\":\"OrderCancellationRequested\",\"order_id\":\"\"}"),
	    0, "order_id: must be" };
	c[n++] = (struct hostile){ "unknown type", "h13",
	    xstrdup("{\"event_id\":\"e13\",\"type\":\"OrderTeleported\",\"order_id\":\"h13\"}"), 0,
	    "unknown type 'OrderTeleported'" };
	c[n++] = (struct hostile){ "invalid UTF-8", "h14",
	    xstrdup("{\"event_id\":\"e14\xff\xfe\",\"type\":\"OrderCancellationRequested\","
	    "\"order_id\":\"h14\"}"), 0, "not JSON" };
	/* Log forging and terminal control: a newline, a fake log line and
	 * escape sequences in the type (escaped in the error and the log). */
	c[n++] = (struct hostile){ "log forging in type", "h16",
	    xstrdup("{\"event_id\":\"e16\",\"type\":\"X\\n2026-01-01T00:00:00.000Z ERROR "
	    "engine: FORGED\\u001b[2J\\u001b]0;t\\u0007\",\"order_id\":\"h16\"}"), 0,
	    "unknown type 'X\\x0a2026-01-01T00:00:00.000Z ERROR engine: FORGED\\x1b[2J" };
	c[n++] = (struct hostile){ "no key", NULL,
	    xstrdup("{\"event_id\":\"e15\",\"type\":\"OrderCancellationRequested\",\"order_id\":\"h15\"}"),
	    0, "no message key" };
	for (int i = 0; i < n; i++)
		c[i].len = strlen(c[i].value);
	return n;
}

/* The offset orderd's group committed for one partition of its orders topic. */
static int64_t
committed(struct h *h, int partition)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	char err[256];
	rd_kafka_t *rk;
	int64_t off;

	rd_kafka_conf_set(conf, "bootstrap.servers", tu_env("ORDERD_TEST_BOOTSTRAP"), err,
	    sizeof(err));
	rd_kafka_conf_set(conf, "group.id", h->name, err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_ptr_nonnull(rk);
	rd_kafka_topic_partition_list_add(l, h->topic[H_ORDERS], partition);
	ck_assert_int_eq(rd_kafka_committed(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return off;
}

START_TEST(test_hostile_input)
{
	struct hostile c[32];
	int n = build_cases(c);
	struct h *h = h_new("hostile", 1);
	const struct h_msg *m;
	char *out = NULL;
	json_t *doc;

	h_start(h);
	h_stock(h, "A", 5);
	for (int i = 0; i < n; i++) {
		/* The key goes in as given: "" is an empty key, NULL none. */
		rd_kafka_resp_err_t e = rd_kafka_producev(h->prod,
		    RD_KAFKA_V_TOPIC(h->topic[H_ORDERS]),
		    RD_KAFKA_V_KEY(c[i].key, c[i].key ? strlen(c[i].key) : 0),
		    RD_KAFKA_V_VALUE(c[i].value, c[i].len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);

		ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "%s: %s", c[i].what,
		    rd_kafka_err2str(e));
	}
	ck_assert_int_eq(rd_kafka_flush(h->prod, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	/* After all of them, a good order: the service goes on. */
	h_send(h, H_ORDERS, "good", "{s:s, s:s, s:s, s:s, s:[{s:s, s:i}], s:i, s:s}",
	    "event_id", "ev-good", "type", "OrderCreated", "order_id", "good",
	    "customer_id", "c", "items", "sku", "A", "qty", 1, "amount_cents", 1,
	    "currency", "EUR");
	ck_assert_ptr_nonnull(h_wait(h, H_PAYMENT_REQUESTS, "good", "PaymentRequested", WAIT_MS));

	/* Every one on the DLQ, in order, with its original bytes and the reason. */
	ck_assert_int_eq(h_count(h, H_DLQ, NULL, NULL, 500), n);
	for (int i = 0, k = 0; i < h->nmsgs; i++) {
		const struct h_msg *d = &h->msgs[i];

		if (strcmp(d->topic, h->topic[H_DLQ]) != 0)
			continue;
		ck_assert_msg(d->raw_len == c[k].len && memcmp(d->raw, c[k].value, c[k].len) == 0,
		    "%s: the DLQ value is not the original bytes (%zu vs %zu)", c[k].what,
		    d->raw_len, c[k].len);
		ck_assert_msg(d->error != NULL && strstr(d->error, c[k].error) != NULL,
		    "%s: error header '%s' does not say '%s'", c[k].what,
		    d->error ? d->error : "(none)", c[k].error);
		if (c[k].key != NULL && c[k].key[0] != '\0')
			ck_assert_msg(d->key != NULL && strcmp(d->key, c[k].key) == 0,
			    "%s: the key as read", c[k].what);
		k++;
	}
	/* An OrderCreated with a good envelope is also answered. */
	m = h_wait(h, H_ORDER_EVENTS, "h6", "OrderRejected", WAIT_MS);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m->body, "reason")), "invalid");

	/* Journaled, and listed by orderctl. */
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM dlq"), n);
	ck_assert_int_eq(h_ctl(h, &out, "dlq list --json"), 0);
	doc = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(json_array_size(json_object_get(doc, "messages")), n);
	for (int i = 0; i < n; i++) {
		json_t *x = json_array_get(json_object_get(doc, "messages"), i);

		ck_assert_msg(strstr(json_string_value(json_object_get(x, "error")), c[i].error),
		    "dlq list %d: %s", i, json_string_value(json_object_get(x, "error")));
		ck_assert_int_eq(json_integer_value(json_object_get(x, "bytes")), (json_int_t)c[i].len);
	}
	json_decref(doc);
	free(out);
	/* The text listing: every error on its own line, no control byte. */
	ck_assert_int_eq(h_ctl(h, &out, "dlq list"), 0);
	{
		int lines = 0;

		for (char *p = out; *p != '\0'; p++) {
			ck_assert_msg(*p == '\n' || (unsigned char)*p >= 0x20,
			    "dlq list prints control byte 0x%02x", (unsigned char)*p);
			lines += *p == '\n';
		}
		ck_assert_int_eq(lines, n + 1);
		ck_assert_ptr_nonnull(strstr(out, "unknown type 'X\\x0a2026-01-01T00:00:00.000Z "
		    "ERROR engine: FORGED\\x1b[2J\\x1b]0;t\\x07'"));
	}
	free(out);
	/* orderd's log has no line that starts with the forged text, and no
	 * escape byte. */
	{
		char *path = xasprintf("%s/orderd.log", h->dir), *log = NULL;

		ck_assert_int_eq(util_read_file(path, &log, NULL), 0);
		free(path);

		ck_assert_ptr_nonnull(log);
		ck_assert_ptr_null(strstr(log, "\n2026-01-01T00:00:00.000Z ERROR engine: FORGED"));
		ck_assert_ptr_null(strchr(log, '\x1b'));
		ck_assert_ptr_nonnull(strstr(log, "FORGED\\x1b[2J"));
		free(log);
	}

	/* The offsets advanced past every one: a restart reads none again. */
	ck_assert_int_eq(h_stop(h), 0);
	ck_assert_int_eq(committed(h, 0), n + 1);
	h_start(h);
	h_send(h, H_ORDERS, "after", "{s:s, s:s, s:s}", "event_id", "ev-after",
	    "type", "OrderCancellationRequested", "order_id", "after");
	for (int i = 0; i < 100 && h_sql(h, "SELECT count(*) FROM inbox WHERE event_id = 'ev-after'") < 1; i++)
		usleep(100000);
	ck_assert_int_eq(h_sql(h, "SELECT count(*) FROM dlq"), n);
	ck_assert_int_eq(h_count(h, H_DLQ, NULL, NULL, 500), n);
	h_reconcile_ok(h);
	ck_assert_int_eq(h_stop(h), 0);
	for (int i = 0; i < n; i++)
		free(c[i].value);
	h_free(h);
}
END_TEST

static Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile-e2e");
	TCase *tc = tcase_create("dlq");

	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_hostile_input);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(hostile_suite());
}
