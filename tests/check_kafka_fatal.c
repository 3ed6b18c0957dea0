/* check_kafka_fatal.c: a librdkafka fatal error (the idempotent producer's) reaches the fault handler once, on the loop, so that orderd stops instead of only logging it; no broker needed. */
#include "autoconfig.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "config.h"
#include "kafka.h"
#include "testutil.h"
#include "util.h"

/* The handle kafka_producer_new makes: librdkafka fabricates fatal errors
 * only through rd_kafka_test_fatal_error(rk, ...), and kafka.c hands out
 * no handle. */
rd_kafka_t *__real_rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
    size_t errstr_size);
rd_kafka_t *__wrap_rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
    size_t errstr_size);
static rd_kafka_t *made;

rd_kafka_t *
__wrap_rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
    size_t errstr_size)
{
	made = __real_rd_kafka_new(type, conf, errstr, errstr_size);
	return made;
}

static int faults;
static char fault_why[1024];

static void
on_fault(const char *why, void *arg)
{
	(void)arg;
	faults++;
	snprintf(fault_why, sizeof(fault_why), "%s", why);
}

static void
on_delivered(const struct kafka_delivery *d, void *arg)
{
	(void)d;
	(void)arg;
}

START_TEST(test_producer_fatal_error_stops)
{
	static const char *const defaults[] = {
		"enable.idempotence", "true",
		/* No broker: the handle is enough for a fabricated error. */
		"bootstrap.servers", "127.0.0.1:1",
		NULL,
	};
	struct kafka_producer_events ev = { .delivered = on_delivered };
	struct config *cf = config_new();
	struct kafka *k = NULL;
	rd_kafka_conf_t *conf;
	char *cause = NULL;
	uv_loop_t loop;
	int64_t until;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	kafka_set_fault_handler(cf, on_fault, NULL);
	conf = kafka_conf_new(cf, defaults, NULL, &cause);
	ck_assert_msg(conf != NULL, "%s", cause);
	ck_assert_msg(kafka_producer_new(&k, &loop, conf, &ev, &cause) == 0, "%s", cause);
	ck_assert_ptr_nonnull(made);
	ck_assert(!kafka_faulted());

	ck_assert_int_eq(rd_kafka_test_fatal_error(made,
	    RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap (test)"),
	    RD_KAFKA_RESP_ERR_NO_ERROR);
	/* The error comes through the producer's own wake-ups or a poll. */
	until = util_mono_us() + 5000000;
	while (faults == 0 && util_mono_us() < until) {
		kafka_poll(k);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
	ck_assert_int_eq(faults, 1);
	ck_assert(kafka_faulted());
	ck_assert_msg(strstr(fault_why, "sequence gap (test)") != NULL, "why: %s", fault_why);
	/* librdkafka repeats itself while the owner stops: one report. */
	for (int i = 0; i < 20; i++) {
		kafka_poll(k);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(5000);
	}
	ck_assert_int_eq(faults, 1);
	kafka_close(k, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	config_free(cf);
}
END_TEST

static Suite *
kafka_fatal_suite(void)
{
	Suite *s = suite_create("kafka-fatal");
	TCase *tc = tcase_create("producer");

	tcase_add_test(tc, test_producer_fatal_error_stops);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(kafka_fatal_suite());
}
