/* check_redis_async_connect.c: the async Redis module's connection with no Redis behind it: refused, a connect that never completes, a connection reset. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inventory.h"
#include "redis.h"
#include "redis_async_fixture.h"
#include "testutil.h"
#include "util.h"

/* A loopback port nobody listens on. */
static int
dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

START_TEST(test_never_up_then_close)
{
	struct redis_options opt = {
		.host = "127.0.0.1", .port = dead_port(), .timeout_ms = 300,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	struct res late = { 0 };
	char *bad[INVENTORY_SCRIPT_COUNT] = { NULL };
	struct redis *r2 = NULL;

	ck_assert_int_eq(redis_new(&r2, &loop, &opt, bad, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(r2);
	opt.port = 0;
	ck_assert_int_eq(redis_new(&r2, &loop, &opt, scripts, NULL, NULL), -EINVAL);
	opt.port = dead_port();

	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	run_for(500);	/* many refused attempts */
	ck_assert_int_eq(ups, 0);
	ck_assert_int_eq(downs, 0);
	ck_assert(!redis_is_up(rd));
	ck_assert_int_eq(eval_cb(INVENTORY_RESERVE, "D", "o1", "1", on_reply, &late), -ENOTCONN);
	close_redis();
	ck_assert_int_eq(late.calls, 0);
}
END_TEST

/* A loopback listener that is not Redis; returns its fd, *port its port. */
static int
fake_listen(int backlog, int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Runs the loop until the module connects to the fake listener and sends
 * something; returns the accepted fd (buf holds the first bytes) or -1. */
static int
fake_accept_command(int lfd, int ms, char *buf, size_t len)
{
	int64_t end = util_mono_us() + (int64_t)ms * 1000;
	int cfd = -1;
	ssize_t n = 0;

	fcntl(lfd, F_SETFL, O_NONBLOCK);
	while (util_mono_us() < end) {
		run_for(5);
		if (cfd < 0)
			cfd = accept(lfd, NULL, NULL);
		if (cfd < 0)
			continue;
		n = recv(cfd, buf, len - 1, MSG_DONTWAIT);
		if (n > 0) {
			buf[n] = '\0';
			return cfd;
		}
	}
	if (cfd >= 0)
		close(cfd);
	return -1;
}

/*
 * A listener whose accept queue is full drops SYNs, so a connect never
 * completes: the module must give it up after timeout_ms and try again.
 * Once the queue has room, the next attempt connects and sends SCRIPT LOAD
 * long before the stuck SYN's first retransmission (1 s, then 3 s).
 */
START_TEST(test_connect_timeout)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct redis_options opt = {
		.host = "127.0.0.1", .timeout_ms = 200,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	int lfd = fake_listen(0, &opt.port), fill, cfd;
	char buf[64] = "";

	/* Linux's accept queue with backlog 0 holds one connection: this one
	 * fills it, and further SYNs are dropped. */
	a.sin_port = htons((uint16_t)opt.port);
	fill = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fill, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	run_for(1200);
	ck_assert_int_eq(ups, 0);

	/* Make room: accept and drop the filler, then wait for SCRIPT LOAD. */
	cfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(fill);
	cfd = fake_accept_command(lfd, 700, buf, sizeof(buf));
	ck_assert_msg(cfd >= 0, "no command within 700 ms of the queue having room");
	ck_assert_msg(strstr(buf, "SCRIPT") != NULL, "first bytes: %s", buf);
	ck_assert_int_eq(ups, 0);	/* never answered */
	close(cfd);
	close(lfd);
	close_redis();
}
END_TEST

/*
 * A reset connection makes libuv report a poll error (and stop the watcher);
 * hiredis's bundled adapter ignores it and the connection would hang until a
 * timeout.  The module must see it at once and connect again.
 */
START_TEST(test_reset_is_noticed_at_once)
{
	struct redis_options opt = {
		.host = "127.0.0.1", .timeout_ms = 5000,
		.backoff_min_ms = 20, .backoff_max_ms = 50,
	};
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int lfd = fake_listen(8, &opt.port), cfd;
	char buf[64];
	int64_t t0, took_ms;

	ck_assert_int_eq(redis_new(&rd, &loop, &opt, scripts, on_state, NULL), 0);
	cfd = fake_accept_command(lfd, 2000, buf, sizeof(buf));
	ck_assert_msg(cfd >= 0, "the module never connected");
	ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(cfd);	/* RST */
	t0 = util_mono_us();
	cfd = fake_accept_command(lfd, 2000, buf, sizeof(buf));
	took_ms = (util_mono_us() - t0) / 1000;
	ck_assert_msg(cfd >= 0, "no reconnect within 2 s of the reset (timeout_ms is 5 s)");
	ck_assert_msg(took_ms < 1000, "reconnected after %lld ms", (long long)took_ms);
	ck_assert_int_eq(ups, 0);
	close(cfd);
	close(lfd);
	close_redis();
}
END_TEST

static Suite *
redis_async_connect_suite(void)
{
	Suite *s = suite_create("redis-async-connect");
	TCase *none = tcase_create("no-server");

	tcase_add_checked_fixture(none, setup, teardown);
	tcase_set_timeout(none, 60);
	tcase_add_test(none, test_never_up_then_close);
	tcase_add_test(none, test_connect_timeout);
	tcase_add_test(none, test_reset_is_noticed_at_once);
	suite_add_tcase(s, none);
	return s;
}

int
main(void)
{
	return tu_run(redis_async_connect_suite());
}
