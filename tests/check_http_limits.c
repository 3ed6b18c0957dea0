/* check_http_limits.c: the HTTP server's limits per peer and its eviction under floods: which connection is closed to make room, and which newcomer is turned away. */
#include "autoconfig.h"

#include <check.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "http_client.h"
#include "http_fixture.h"
#include "testutil.h"
#include "util.h"

#define STALL_RCVBUF 4096
#define FLOOD 200

/* Waits until cond holds of st, a snapshot: the loop has done what the
 * test waits for.  The 20 s are there so a bug fails instead of hanging. */
#define WAIT_STATS(st, cond) do {						\
	int64_t t0_ = util_mono_us();						\
										\
	for (;;) {								\
		(st) = snapshot();						\
		if (cond)							\
			break;							\
		ck_assert_msg(util_mono_us() - t0_ < 20000000,			\
		    "still not %s after 20 s", #cond);				\
		usleep(1000);							\
	}									\
} while (0)

static void
flood_server_with(int max_connections, int max_per_peer)
{
	/* A timeout far longer than a test: no connection ends by it. */
	struct http_options opt = { .timeout_ms = 60000, .max_connections = max_connections,
	    .max_per_peer = max_per_peer };

	start_server(&opt);
}

static void
flood_server(void)
{
	flood_server_with(8, 4);
}

/* The server closed fd without a word: EOF or a reset, nothing before. */
static void
expect_dropped(int fd, const char *what)
{
	char *resp = NULL;
	long n = http_client_read_all(fd, 5000, &resp);

	ck_assert_msg(n == 0, "%s: want a close without an answer, got %ld: %.80s", what, n,
	    resp);
	free(resp);
}

/* fd is open: nothing to read, no end (the server has not closed it). */
static void
expect_open(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	ck_assert_msg(poll(&p, 1, 0) == 0, "%s: closed by the server", what);
}

/* Sends raw on fd (a connection kept open) and expects status back. */
static void
expect_answer(int fd, const char *raw, int status, const char *what)
{
	char *resp = NULL;
	long n;

	ck_assert_int_eq(send(fd, raw, strlen(raw), MSG_NOSIGNAL), (ssize_t)strlen(raw));
	n = http_client_read_all(fd, 5000, &resp);
	ck_assert_msg(n > 0 && http_client_status(resp) == status, "%s: want %d, got %ld: %.80s",
	    what, status, n, resp);
	free(resp);
}

/* A whole response on fd: its status, and as many body bytes as its
 * Content-Length says; returns the body's length. */
static size_t
expect_whole(int fd, int status, const char *what)
{
	char *resp = NULL;
	const char *cl, *body;
	long n = http_client_read_all(fd, 20000, &resp);

	ck_assert_msg(n > 0 && http_client_status(resp) == status, "%s: want %d, got %ld", what,
	    status, n);
	cl = strstr(resp, "\r\nContent-Length: ");
	body = http_client_body(resp);
	ck_assert_ptr_nonnull(cl);
	ck_assert_ptr_nonnull(body);
	ck_assert_msg(strtoull(cl + 18, NULL, 10) == strlen(body), "%s: %zu body bytes of %llu",
	    what, strlen(body), strtoull(cl + 18, NULL, 10));
	n = (long)strlen(body);
	free(resp);
	return (size_t)n;
}

static void
expect_healthz(void)
{
	char *body = NULL;

	ck_assert_int_eq(http_client_get(port, "/healthz", &body, NULL), 200);
	ck_assert_str_eq(body, "ok\n");
	free(body);
}

/* A request for /huge from src whose client reads nothing: once the loop
 * is seen writing it, it stays so until read. */
static int
stalled_writer(const char *src)
{
	int fd = http_client_connect_from(port, src, STALL_RCVBUF);
	const char *req = "GET /huge HTTP/1.1\r\n\r\n";

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	return fd;
}

START_TEST(test_flood_idle)
{
	struct http_stats st;
	int fd[FLOOD];

	/* One client opens 25 times max_connections and sends nothing. */
	for (int i = 0; i < FLOOD; i++) {
		fd[i] = http_client_connect(port);
		ck_assert_int_ge(fd[i], 0);
	}
	/* A probe from the same address, on a fresh connection: answered. */
	expect_healthz();
	/* Each newcomer closed the one idle longest: all but the last three
	 * (the probe took the fourth's place), without a word. */
	st = snapshot();
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE], FLOOD - 4 + 1);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_PARTIAL] + st.evicted[HTTP_CONN_WRITING] +
	    st.evicted[HTTP_CONN_FINISHED], 0);
	ck_assert_uint_eq(st.rejected + st.peer_rejected, 0);
	for (int i = 0; i < FLOOD - 3; i++)
		expect_dropped(fd[i], "an early idle connection");
	for (int i = FLOOD - 3; i < FLOOD; i++) {
		expect_open(fd[i], "one of the last three");
		expect_answer(fd[i], "GET /hello HTTP/1.1\r\n\r\n", 200, "one of the last three");
	}
	for (int i = 0; i < FLOOD; i++)
		close(fd[i]);
	st = snapshot();
	ck_assert_uint_eq(st.by_class[2], 4);
	ck_assert_int_eq(healthz_calls, 1);
}
END_TEST

START_TEST(test_flood_slowloris)
{
	const char *half = "GET /healthz HTTP/1.1\r\nX-Slow: a";
	struct http_stats st;
	int fd[FLOOD];

	/* Half a request on each, then nothing. */
	for (int i = 0; i < FLOOD; i++) {
		fd[i] = http_client_connect(port);
		ck_assert_int_ge(fd[i], 0);
		ck_assert_int_eq(write(fd[i], half, strlen(half)), (ssize_t)strlen(half));
	}
	expect_healthz();
	/* The stalled ones went, oldest first, without a 408 (nobody would
	 * read it); a stalled request is no answer, so the handler ran once. */
	st = snapshot();
	ck_assert_uint_eq(st.evicted[HTTP_CONN_PARTIAL], FLOOD - 4 + 1);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE] + st.evicted[HTTP_CONN_WRITING] +
	    st.evicted[HTTP_CONN_FINISHED], 0);
	ck_assert_uint_eq(st.by_class[4], 0);
	ck_assert_int_eq(healthz_calls, 1);
	for (int i = 0; i < FLOOD - 3; i++)
		expect_dropped(fd[i], "an early half request");
	/* The last three finish their requests and are answered. */
	for (int i = FLOOD - 3; i < FLOOD; i++) {
		expect_open(fd[i], "one of the last three");
		expect_answer(fd[i], "\r\n\r\n", 200, "one of the last three");
	}
	for (int i = 0; i < FLOOD; i++)
		close(fd[i]);
	ck_assert_int_eq(snapshot().by_class[2], 4);
}
END_TEST

START_TEST(test_flood_unread_metrics)
{
	const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
	struct http_stats st;
	int fd[FLOOD];

	/* A scrape on each, its response never read. */
	for (int i = 0; i < FLOOD; i++) {
		fd[i] = http_client_connect(port);
		ck_assert_int_ge(fd[i], 0);
		ck_assert_int_eq(write(fd[i], req, strlen(req)), (ssize_t)strlen(req));
	}
	expect_healthz();
	/* Every scrape was answered; those that made room had their response
	 * in the kernel already, and went first. */
	st = snapshot();
	ck_assert_int_eq(metrics_calls, FLOOD);
	ck_assert_int_eq(healthz_calls, 1);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_FINISHED], FLOOD - 4 + 1);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE] + st.evicted[HTTP_CONN_PARTIAL] +
	    st.evicted[HTTP_CONN_WRITING], 0);
	/* Closed gracefully, nothing was lost: every client reads its whole
	 * scrape, the evicted ones too. */
	for (int i = 0; i < FLOOD; i++) {
		ck_assert_uint_gt(expect_whole(fd[i], 200, "an unread scrape"), 1000);
		close(fd[i]);
	}
}
END_TEST

START_TEST(test_burst_with_probe)
{
	struct http_stats st;
	int idle[8], probe;
	char *resp = NULL;
	const char *req = "GET /healthz HTTP/1.1\r\n\r\n";

	for (int i = 0; i < 4; i++) {
		idle[i] = http_client_connect(port);
		ck_assert_int_ge(idle[i], 0);
	}
	WAIT_STATS(st, st.connections == 4);
	/* While the loop is parked: the probe and its request, then four more
	 * idle ones.  The loop accepts the five in one turn, before it reads
	 * any: the last finds the probe the one waiting longest, with its
	 * request not read yet.  It is read then and answered. */
	loop_pause();
	probe = http_client_connect(port);
	ck_assert_int_ge(probe, 0);
	ck_assert_int_eq(write(probe, req, strlen(req)), (ssize_t)strlen(req));
	for (int i = 4; i < 8; i++) {
		idle[i] = http_client_connect(port);
		ck_assert_int_ge(idle[i], 0);
	}
	loop_resume();
	ck_assert_int_gt(http_client_read_all(probe, 5000, &resp), 0);
	ck_assert_int_eq(http_client_status(resp), 200);
	ck_assert_str_eq(http_client_body(resp), "ok\n");
	free(resp);
	close(probe);
	/* The probe's answer, in the kernel, made room for the last one. */
	st = snapshot();
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE], 4);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_FINISHED], 1);
	ck_assert_uint_eq(st.rejected + st.peer_rejected, 0);
	for (int i = 0; i < 4; i++)
		expect_dropped(idle[i], "an idle one before the burst");
	for (int i = 4; i < 8; i++)
		expect_open(idle[i], "an idle one of the burst");
	for (int i = 0; i < 8; i++)
		close(idle[i]);
}
END_TEST

START_TEST(test_eviction_order)
{
	struct http_stats st;
	int a, b, c, w, e, f, g, h;

	/* a, b; b begins a request; c; a begins one; w's response stalls. */
	a = http_client_connect(port);
	WAIT_STATS(st, st.connections == 1);
	b = http_client_connect(port);
	WAIT_STATS(st, st.connections == 2);
	ck_assert_int_eq(write(b, "GET /hel", 8), 8);
	WAIT_STATS(st, st.by_state[HTTP_CONN_PARTIAL] == 1);
	c = http_client_connect(port);
	WAIT_STATS(st, st.connections == 3);
	ck_assert_int_eq(write(a, "GET /he", 7), 7);
	WAIT_STATS(st, st.by_state[HTTP_CONN_PARTIAL] == 2);
	w = stalled_writer(NULL);
	WAIT_STATS(st, st.by_state[HTTP_CONN_WRITING] == 1);
	ck_assert(a >= 0 && b >= 0 && c >= 0);
	/* Waiting longest: b (its bytes before c connected), c, a; w's
	 * response goes on. */
	e = http_client_connect(port);
	expect_dropped(b, "b");
	expect_open(a, "a");
	expect_open(c, "c");
	f = http_client_connect(port);
	expect_dropped(c, "c");
	expect_open(a, "a");
	g = http_client_connect(port);
	expect_dropped(a, "a");
	h = http_client_connect(port);
	expect_dropped(e, "e");
	ck_assert(f >= 0 && g >= 0 && h >= 0);
	/* w was spared throughout: its whole response is there. */
	expect_open(f, "f");
	expect_open(g, "g");
	expect_open(h, "h");
	ck_assert_uint_eq(expect_whole(w, 200, "w"), HUGE_BODY);
	st = snapshot();
	ck_assert_uint_eq(st.evicted[HTTP_CONN_PARTIAL], 2);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE], 2);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_WRITING] + st.evicted[HTTP_CONN_FINISHED], 0);
	expect_answer(f, "GET /hello HTTP/1.1\r\n\r\n", 200, "f");
	expect_answer(g, "GET /hello HTTP/1.1\r\n\r\n", 200, "g");
	expect_answer(h, "GET /hello HTTP/1.1\r\n\r\n", 200, "h");
	close(a);
	close(b);
	close(c);
	close(w);
	close(e);
	close(f);
	close(g);
	close(h);
}
END_TEST

START_TEST(test_peer_limit)
{
	struct http_stats st;
	int x[14], y[2], z[3];

	/* Y (127.0.0.3) has two; X (127.0.0.2) opens fourteen: at its limit of
	 * four, each closes X's own idle longest, never Y's. */
	for (int i = 0; i < 2; i++) {
		y[i] = http_client_connect_from(port, "127.0.0.3", 0);
		ck_assert_int_ge(y[i], 0);
	}
	WAIT_STATS(st, st.connections == 2);
	for (int i = 0; i < 14; i++) {
		x[i] = http_client_connect_from(port, "127.0.0.2", 0);
		ck_assert_int_ge(x[i], 0);
	}
	WAIT_STATS(st, st.evicted[HTTP_CONN_IDLE] == 10);
	ck_assert_int_eq(st.connections, 6);
	for (int i = 0; i < 10; i++)
		expect_dropped(x[i], "X's first ten");
	for (int i = 10; i < 14; i++)
		expect_open(x[i], "X's last four");
	expect_open(y[0], "Y's first");
	expect_open(y[1], "Y's second");
	/* Z fills the server to max_connections (8); its third takes the
	 * place of the one of all that waited longest: Y's first. */
	for (int i = 0; i < 3; i++) {
		z[i] = http_client_connect_from(port, "127.0.0.4", 0);
		ck_assert_int_ge(z[i], 0);
	}
	WAIT_STATS(st, st.evicted[HTTP_CONN_IDLE] == 11);
	ck_assert_int_eq(st.connections, 8);
	ck_assert_uint_eq(st.rejected + st.peer_rejected, 0);
	expect_dropped(y[0], "Y's first");
	expect_open(y[1], "Y's second");
	/* Whoever is left is served. */
	expect_answer(y[1], "GET /hello HTTP/1.1\r\n\r\n", 200, "Y's second");
	for (int i = 10; i < 14; i++)
		expect_answer(x[i], "GET /hello HTTP/1.1\r\n\r\n", 200, "X's last four");
	for (int i = 0; i < 3; i++)
		expect_answer(z[i], "GET /hello HTTP/1.1\r\n\r\n", 200, "Z's");
	for (int i = 0; i < 14; i++)
		close(x[i]);
	close(y[0]);
	close(y[1]);
	for (int i = 0; i < 3; i++)
		close(z[i]);
}
END_TEST

START_TEST(test_responses_in_progress)
{
	const char *healthz = "GET /healthz HTTP/1.1\r\n\r\n";
	struct http_stats st;
	int x[2], y[2], n, probe, q, z;
	char *resp = NULL;
	long got;

	/* Four slots, two per peer. */
	stop_server();
	flood_server_with(4, 2);
	/* X's two slots hold responses it does not read. */
	x[0] = stalled_writer("127.0.0.2");
	x[1] = stalled_writer("127.0.0.2");
	WAIT_STATS(st, st.by_state[HTTP_CONN_WRITING] == 2);
	/* A new connection of X that sends nothing is turned away: it is
	 * worth less than a response in progress. */
	n = http_client_connect_from(port, "127.0.0.2", 0);
	ck_assert_int_ge(n, 0);
	expect_dropped(n, "X's idle newcomer");
	st = snapshot();
	ck_assert_uint_eq(st.peer_rejected, 1);
	ck_assert_int_eq(st.by_state[HTTP_CONN_WRITING], 2);
	/* X's probe, its request there before the loop looks: answered from
	 * the kernel, and closed, which is the room it needed. */
	loop_pause();
	probe = http_client_connect_from(port, "127.0.0.2", 0);
	ck_assert_int_ge(probe, 0);
	ck_assert_int_eq(write(probe, healthz, strlen(healthz)), (ssize_t)strlen(healthz));
	loop_resume();
	ck_assert_int_gt(http_client_read_all(probe, 5000, &resp), 0);
	ck_assert_int_eq(http_client_status(resp), 200);
	free(resp);
	st = snapshot();
	ck_assert_uint_eq(st.evicted[HTTP_CONN_FINISHED], 1);
	ck_assert_int_eq(st.by_state[HTTP_CONN_WRITING], 2);
	/* X asks for a big response: only now is a response in progress
	 * dropped, the oldest whose client took nothing. */
	loop_pause();
	q = stalled_writer("127.0.0.2");
	loop_resume();
	WAIT_STATS(st, st.evicted[HTTP_CONN_WRITING] == 1);
	got = http_client_read_all(x[0], 5000, &resp);
	ck_assert_int_ge(got, 0);
	ck_assert_msg(strlen(http_client_body(resp) ? http_client_body(resp) : "") < HUGE_BODY,
	    "x[0] got its whole response");
	free(resp);
	/* Y fills the server with two more; Z's idle newcomer finds nothing
	 * but responses in progress: turned away at max_connections. */
	y[0] = stalled_writer("127.0.0.3");
	y[1] = stalled_writer("127.0.0.3");
	WAIT_STATS(st, st.by_state[HTTP_CONN_WRITING] == 4);
	z = http_client_connect_from(port, "127.0.0.4", 0);
	ck_assert_int_ge(z, 0);
	expect_dropped(z, "Z's idle newcomer");
	st = snapshot();
	ck_assert_uint_eq(st.rejected, 1);
	ck_assert_uint_eq(st.peer_rejected, 1);
	ck_assert_uint_eq(st.evicted[HTTP_CONN_IDLE] + st.evicted[HTTP_CONN_PARTIAL], 0);
	/* The four responses in progress arrive whole. */
	ck_assert_uint_eq(expect_whole(x[1], 200, "x[1]"), HUGE_BODY);
	ck_assert_uint_eq(expect_whole(q, 200, "q"), HUGE_BODY);
	ck_assert_uint_eq(expect_whole(y[0], 200, "y[0]"), HUGE_BODY);
	ck_assert_uint_eq(expect_whole(y[1], 200, "y[1]"), HUGE_BODY);
	close(x[0]);
	close(x[1]);
	close(n);
	close(probe);
	close(q);
	close(y[0]);
	close(y[1]);
	close(z);
}
END_TEST

static Suite *
http_limits_suite(void)
{
	Suite *s = suite_create("http-limits");
	TCase *flood = tcase_create("flood");

	tcase_add_checked_fixture(flood, flood_server, stop_server);
	tcase_add_test(flood, test_flood_idle);
	tcase_add_test(flood, test_flood_slowloris);
	tcase_add_test(flood, test_flood_unread_metrics);
	tcase_add_test(flood, test_burst_with_probe);
	tcase_add_test(flood, test_eviction_order);
	tcase_add_test(flood, test_peer_limit);
	tcase_add_test(flood, test_responses_in_progress);
	tcase_set_timeout(flood, 120);
	suite_add_tcase(s, flood);
	return s;
}

int
main(void)
{
	return tu_run(http_limits_suite());
}
