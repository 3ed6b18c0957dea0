/* check_http.c: the HTTP server through real sockets on a real uv loop, and the /metrics and /healthz rendering of made-up figures. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "http.h"
#include "http_client.h"
#include "status.h"
#include "testutil.h"
#include "util.h"

#define BIG_BODY (1 << 20)
/* Far more than the kernel buffers between a server and a client that
 * reads nothing (tcp_wmem's 4 MiB at most, and a small SO_RCVBUF): its
 * response stays being written. */
#define HUGE_BODY (8 << 20)
#define STALL_RCVBUF 4096
#define FLOOD 200

/* The server runs on its loop in a thread of its own; the test is the
 * blocking client.  uv calls happen on the loop thread only, except
 * before the thread starts and after it ended. */
static uv_loop_t loop;
static uv_async_t stop_async;
static pthread_t loop_thread;
static struct http_server *srv;
static int port;
static int handler_calls;	/* written on the loop thread, read after join */
static int healthz_calls, metrics_calls;	/* the same, or read while paused */
static struct http_stats final_stats;
static bool closed_done;

/* The loop thread parks in pause_cb while the test reads what the loop
 * writes, or queues connections the loop will find all at once. */
static uv_async_t pause_async;
static pthread_mutex_t pause_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cv = PTHREAD_COND_INITIALIZER;
static enum { RUNNING, PARKED, RELEASED } pause_state;

static void synthetic(struct status_input *in);

static void
hello_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	handler_calls++;
	http_buf_printf(&res->body, "hello %s\n", req->query);
}

static void
big_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	char line[64];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	while (res->body.len < BIG_BODY)
		http_buf_append(&res->body, line, sizeof(line));
}

static void
fail_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	res->status = 503;
	http_buf_printf(&res->body, "down\n");
}

static void
huge_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	char line[64];

	memset(line, 'y', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	while (res->body.len < HUGE_BODY)
		http_buf_append(&res->body, line, sizeof(line));
}

static void
healthz_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	healthz_calls++;
	http_buf_printf(&res->body, "ok\n");
}

/* A scrape's worth of text: status.c's rendering of made-up figures. */
static void
metrics_cb(const struct http_request *req, struct http_response *res, void *arg)
{
	struct status_input in;

	metrics_calls++;
	synthetic(&in);
	res->content_type = STATUS_METRICS_CONTENT_TYPE;
	status_render_metrics(&in, &res->body);
}

static const struct http_route routes[] = {
	{ "/hello", hello_cb },
	{ "/big", big_cb },
	{ "/fail", fail_cb },
	{ "/huge", huge_cb },
	{ "/healthz", healthz_cb },
	{ "/metrics", metrics_cb },
};

static void *
loop_main(void *arg)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

static void
server_closed(void *arg)
{
	closed_done = true;
}

static void
stop_cb(uv_async_t *a)
{
	final_stats = *http_server_stats(srv);
	http_server_close(srv, server_closed, NULL);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&pause_async, NULL);
}

static void
pause_cb(uv_async_t *a)
{
	pthread_mutex_lock(&pause_mu);
	pause_state = PARKED;
	pthread_cond_broadcast(&pause_cv);
	while (pause_state == PARKED)
		pthread_cond_wait(&pause_cv, &pause_mu);
	pause_state = RUNNING;
	pthread_cond_broadcast(&pause_cv);
	pthread_mutex_unlock(&pause_mu);
}

/* Returns once the loop thread is parked: nothing runs on the loop until
 * loop_resume. */
static void
loop_pause(void)
{
	pthread_mutex_lock(&pause_mu);
	uv_async_send(&pause_async);
	while (pause_state != PARKED)
		pthread_cond_wait(&pause_cv, &pause_mu);
	pthread_mutex_unlock(&pause_mu);
}

static void
loop_resume(void)
{
	pthread_mutex_lock(&pause_mu);
	pause_state = RELEASED;
	pthread_cond_broadcast(&pause_cv);
	while (pause_state != RUNNING)
		pthread_cond_wait(&pause_cv, &pause_mu);
	pthread_mutex_unlock(&pause_mu);
}

/* The server's figures now (the loop parked while they are copied). */
static struct http_stats
snapshot(void)
{
	struct http_stats st;

	loop_pause();
	st = *http_server_stats(srv);
	loop_resume();
	return st;
}

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
start_server(const struct http_options *opt)
{
	char *cause = NULL;

	handler_calls = healthz_calls = metrics_calls = 0;
	closed_done = false;
	pause_state = RUNNING;
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uv_async_init(&loop, &stop_async, stop_cb), 0);
	ck_assert_int_eq(uv_async_init(&loop, &pause_async, pause_cb), 0);
	ck_assert_msg(http_server_new(&srv, &loop, "127.0.0.1:0", opt, routes,
	    (int)UTIL_ARRAY_SIZE(routes), NULL, &cause) == 0, "listen: %s", cause);
	port = http_server_port(srv);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
}

static void
stop_server(void)
{
	/* A test that failed between loop_pause and loop_resume (CK_FORK=no
	 * runs the teardown then) left the loop parked. */
	pthread_mutex_lock(&pause_mu);
	if (pause_state == PARKED) {
		pause_state = RELEASED;
		pthread_cond_broadcast(&pause_cv);
	}
	pthread_mutex_unlock(&pause_mu);
	uv_async_send(&stop_async);
	pthread_join(loop_thread, NULL);
	ck_assert(closed_done);
	/* Every handle closed and freed: what valgrind and libuv's own tests ask. */
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void
default_server(void)
{
	start_server(NULL);
}

/* Sends raw and returns the whole answer (caller frees). */
static char *
ask(const char *raw, int timeout_ms)
{
	char *resp = NULL;
	long n = http_client_raw(port, raw, strlen(raw), timeout_ms, &resp);

	ck_assert_msg(n >= 0, "no answer to %.40s: %s", raw, strerror((int)-n));
	return resp;
}

static void
expect_status(const char *raw, int status)
{
	char *resp = ask(raw, 5000);

	ck_assert_msg(http_client_status(resp) == status, "%.60s: want %d, got: %.200s", raw,
	    status, resp);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nConnection: close\r\n"));
	free(resp);
}

START_TEST(test_get)
{
	char *body = NULL, *ct = NULL, *resp;

	ck_assert_int_eq(http_client_get(port, "/hello?x=1", &body, &ct), 200);
	ck_assert_str_eq(body, "hello x=1\n");
	ck_assert_str_eq(ct, "text/plain; charset=utf-8");
	free(body);
	free(ct);
	resp = ask("GET /hello HTTP/1.0\r\n\r\n", 5000);
	ck_assert_int_eq(http_client_status(resp), 200);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nContent-Length: 7\r\n"));
	ck_assert_str_eq(http_client_body(resp), "hello \n");
	free(resp);
	/* HEAD: the same headers, no body. */
	resp = ask("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
	ck_assert_int_eq(http_client_status(resp), 200);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nContent-Length: 7\r\n"));
	ck_assert_str_eq(http_client_body(resp), "");
	free(resp);
	/* A handler's own status. */
	ck_assert_int_eq(http_client_get(port, "/fail", &body, NULL), 503);
	ck_assert_str_eq(body, "down\n");
	free(body);
}
END_TEST

START_TEST(test_big_response)
{
	char *body = NULL;

	ck_assert_int_eq(http_client_get(port, "/big", &body, NULL), 200);
	ck_assert_uint_ge(strlen(body), BIG_BODY);
	free(body);
}
END_TEST

START_TEST(test_not_found_and_methods)
{
	char *resp;

	expect_status("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404);
	expect_status("GET / HTTP/1.1\r\n\r\n", 404);
	expect_status("GET /hello/ HTTP/1.1\r\n\r\n", 404);
	expect_status("POST /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405);
	expect_status("DELETE /nope HTTP/1.1\r\n\r\n", 405);
	expect_status("PUT /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405);
	expect_status("OPTIONS * HTTP/1.1\r\n\r\n", 405);
	expect_status("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405);
	resp = ask("POST /hello HTTP/1.1\r\n\r\n", 5000);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
	free(resp);
	/* A GET with a body is still a GET. */
	expect_status("GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 200);
	/* An absolute URL has a path too. */
	expect_status("GET http://127.0.0.1/hello HTTP/1.1\r\n\r\n", 200);
}
END_TEST

START_TEST(test_garbage)
{
	char *resp;

	expect_status("\x01\x02\x03 garbage\r\n\r\n", 400);
	expect_status("GET /hello HTP/1.1\r\n\r\n", 400);
	expect_status("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n", 400);
	expect_status("GET /hello HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
	expect_status("GET /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
	expect_status("GET /he\x7fllo HTTP/1.1\r\n\r\n", 400);
	expect_status("GET /hello HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	    200);
	/* Binary noise, all 256 byte values. */
	{
		char noise[512];

		for (int i = 0; i < (int)sizeof(noise); i++)
			noise[i] = (char)(i * 7 + 3);
		ck_assert_int_ge(http_client_raw(port, noise, sizeof(noise), 5000, &resp), 0);
		ck_assert_int_eq(http_client_status(resp), 400);
		free(resp);
	}
	/* Two requests in one write: one answer, then the connection closes. */
	resp = ask("GET /hello?a HTTP/1.1\r\n\r\nGET /hello?b HTTP/1.1\r\n\r\n", 5000);
	ck_assert_int_eq(http_client_status(resp), 200);
	ck_assert_ptr_null(strstr(resp + 4, "HTTP/1.1"));
	ck_assert_str_eq(http_client_body(resp), "hello a\n");
	free(resp);
	/* The server is still fine. */
	expect_status("GET /hello HTTP/1.1\r\n\r\n", 200);
}
END_TEST

/* A request of n bytes: the line, filler headers, the blank line. */
static char *
request_of(size_t url_len, size_t header_len, size_t body_len)
{
	size_t cap = url_len + header_len + body_len + 256;
	char *r = xmalloc(cap);
	size_t n = 0;

	n += (size_t)snprintf(r + n, cap - n, "GET /hello?");
	memset(r + n, 'u', url_len);
	n += url_len;
	n += (size_t)snprintf(r + n, cap - n, " HTTP/1.1\r\nHost: x\r\n");
	if (header_len > 0) {
		n += (size_t)snprintf(r + n, cap - n, "X-Filler: ");
		memset(r + n, 'h', header_len);
		n += header_len;
		n += (size_t)snprintf(r + n, cap - n, "\r\n");
	}
	n += (size_t)snprintf(r + n, cap - n, "Content-Length: %zu\r\n\r\n", body_len);
	memset(r + n, 'b', body_len);
	n += body_len;
	r[n] = '\0';
	return r;
}

START_TEST(test_oversized)
{
	char *r;

	/* 8192 bytes is the default limit: just under passes. */
	r = request_of(10, 7000, 0);
	expect_status(r, 200);
	free(r);
	r = request_of(10000, 0, 0);
	expect_status(r, 414);
	free(r);
	r = request_of(10, 10000, 0);
	expect_status(r, 431);
	free(r);
	r = request_of(10, 100, 10000);
	expect_status(r, 413);
	free(r);
	/* Far over: the server answers, drops up to 64 KiB more and closes;
	 * the client, still sending, may see a reset before the answer. */
	r = request_of(10, 1000000, 0);
	{
		char *resp = NULL;
		long n = http_client_raw(port, r, strlen(r), 5000, &resp);

		ck_assert_int_ge(n, 0);
		ck_assert(n == 0 || http_client_status(resp) == 431);
		free(resp);
	}
	free(r);
	expect_status("GET /hello HTTP/1.1\r\n\r\n", 200);
}
END_TEST

static void
short_timeout_server(void)
{
	struct http_options opt = { .timeout_ms = 300, .max_connections = 8 };

	start_server(&opt);
}

START_TEST(test_slow_client_times_out)
{
	int fd = http_client_connect(port);
	int64_t t0 = util_mono_us();
	char *resp = NULL;
	long n;

	/* Half a request, then nothing: a 408 and a close, within the timeout. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "GET /hel", 8), 8);
	n = http_client_read_all(fd, 3000, &resp);
	close(fd);
	ck_assert_msg(n >= 0, "the server kept a stalled connection for 3 s");
	ck_assert_int_eq(http_client_status(resp), 408);
	ck_assert_int_lt(util_mono_us() - t0, 2000000);
	free(resp);

	/* A byte every 100 ms (slowloris) does not extend the deadline.  The
	 * client stops when the answer is there: sending on would meet the
	 * closed socket's reset, which may drop the answer unread. */
	fd = http_client_connect(port);
	ck_assert_int_ge(fd, 0);
	t0 = util_mono_us();
	for (int i = 0; i < 20; i++) {
		const char *req = "GET /hello HTTP/1.1\r\nX: y\r\n";
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 || send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	n = http_client_read_all(fd, 3000, &resp);
	close(fd);
	ck_assert_msg(n >= 0, "a trickling client kept its connection for 4 s");
	ck_assert_int_eq(http_client_status(resp), 408);
	ck_assert_int_lt(util_mono_us() - t0, 2000000);
	free(resp);

	/* Connected and silent: closed without a word. */
	fd = http_client_connect(port);
	ck_assert_int_ge(fd, 0);
	n = http_client_read_all(fd, 3000, &resp);
	close(fd);
	ck_assert_int_eq(n, 0);
	free(resp);
	expect_status("GET /hello HTTP/1.1\r\n\r\n", 200);
}
END_TEST

static void
few_connections_server(void)
{
	struct http_options opt = { .timeout_ms = 10000, .max_connections = 8 };

	start_server(&opt);
}

START_TEST(test_many_connections)
{
	int held[8], extra[6];
	char *resp;
	long n;

	/* 8 may be open at once; they stay open until their timeout. */
	for (int i = 0; i < 8; i++) {
		held[i] = http_client_connect(port);
		ck_assert_int_ge(held[i], 0);
	}
	/* Each one more closes the one idle longest, at once and without an
	 * answer: the first held ones, in order. */
	for (int i = 0; i < 6; i++) {
		extra[i] = http_client_connect(port);
		ck_assert_int_ge(extra[i], 0);
		n = http_client_read_all(held[i], 5000, &resp);
		ck_assert_int_eq(n, 0);
		free(resp);
		close(held[i]);
	}
	/* The others still work, all at once. */
	for (int i = 0; i < 8; i++) {
		int fd = i < 6 ? extra[i] : held[i];

		ck_assert_int_gt(write(fd, "GET /hello HTTP/1.1\r\n\r\n", 23), 0);
	}
	for (int i = 0; i < 8; i++) {
		int fd = i < 6 ? extra[i] : held[i];

		n = http_client_read_all(fd, 3000, &resp);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(http_client_status(resp), 200);
		free(resp);
		close(fd);
	}
	for (int i = 0; i < 20; i++)
		expect_status("GET /hello HTTP/1.1\r\n\r\n", 200);
	stop_server();
	ck_assert_uint_eq(final_stats.evicted[HTTP_CONN_IDLE], 6);
	ck_assert_uint_eq(final_stats.rejected, 0);
	ck_assert_uint_eq(final_stats.by_class[2], 28);
	ck_assert_int_eq(handler_calls, 28);
	/* The fixture's teardown would stop it again: start a fresh one. */
	few_connections_server();
}
END_TEST

START_TEST(test_close_with_open_connections)
{
	int fds[4];
	char *resp;

	for (int i = 0; i < 4; i++) {
		fds[i] = http_client_connect(port);
		ck_assert_int_ge(fds[i], 0);
	}
	ck_assert_int_eq(write(fds[0], "GET /big HTTP/1.1\r\n\r\n", 21), 21);
	ck_assert_int_eq(write(fds[1], "GET /hel", 8), 8);
	usleep(100000);
	stop_server();
	/* Closed under them: every client sees the end. */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_ge(http_client_read_all(fds[i], 2000, &resp), 0);
		free(resp);
		close(fds[i]);
	}
	default_server();
}
END_TEST

/* ---- limits per peer and eviction ---- */

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

START_TEST(test_listen_errors)
{
	uv_loop_t l;
	struct http_server *s = NULL;
	char *cause = NULL, *busy = xasprintf("127.0.0.1:%d", port);

	ck_assert_int_eq(uv_loop_init(&l), 0);
	/* The fixture's server holds the port. */
	ck_assert_int_eq(http_server_new(&s, &l, busy, NULL, routes, 1, NULL, &cause),
	    UV_EADDRINUSE);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(cause, busy) != NULL && strstr(cause, "in use") != NULL,
	    "cause: %s", cause);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(http_server_new(&s, &l, "no-port", NULL, routes, 1, NULL, &cause),
	    -EINVAL);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(http_server_new(&s, &l, "127.0.0.1:99999", NULL, routes, 1, NULL,
	    &cause), -EINVAL);
	free(cause);
	cause = NULL;
	ck_assert_int_lt(http_server_new(&s, &l, "no-such-host.invalid:80", NULL, routes, 1,
	    NULL, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "no-such-host.invalid:80"));
	free(cause);
	cause = NULL;
	ck_assert_int_lt(http_server_new(&s, &l, "192.0.2.1:80", NULL, routes, 1, NULL,
	    &cause), 0);	/* not an address of this host */
	free(cause);
	cause = NULL;
	/* Names and IPv6 work. */
	ck_assert_int_eq(http_server_new(&s, &l, "localhost:0", NULL, routes, 1, NULL,
	    &cause), 0);
	http_server_close(s, NULL, NULL);
	if (http_server_new(&s, &l, "[::1]:0", NULL, routes, 1, NULL, &cause) == 0)
		http_server_close(s, NULL, NULL);
	else
		free(cause);	/* a host without IPv6 */
	uv_run(&l, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&l), 0);
	free(busy);
}
END_TEST

/* ---- /metrics and /healthz rendering ---- */

static struct engine_stats es;
static struct relay_snapshot rs;
static struct http_stats hs;
static struct engine_lag lags[2];

static void
synthetic(struct status_input *in)
{
	memset(&es, 0, sizeof(es));
	memset(&rs, 0, sizeof(rs));
	memset(&hs, 0, sizeof(hs));
	es.consumed[SAGA_EV_ORDER_CREATED] = 100;
	es.consumed[SAGA_EV_ORDER_INVALID] = 3;
	es.consumed[SAGA_EV_PAYMENT_SUCCEEDED] = 80;
	es.consumed[SAGA_EV_PAYMENT_FAILED] = 7;
	es.consumed[SAGA_EV_CANCEL_REQUESTED] = 2;
	es.duplicates = 5;
	es.dead_letters = 4;
	es.sagas_by_state[SAGA_NEW] = 103;
	es.sagas_by_state[SAGA_CONFIRMED] = 80;
	es.steps_in_flight = 12;
	es.redis_up = true;
	/* 40 us, 40 us, 300 us, 2 s, 20 s: buckets 50us, 50us, 500us, 2.5s, +Inf. */
	metrics_observe(&es.step_latency, 40);
	metrics_observe(&es.step_latency, 40);
	metrics_observe(&es.step_latency, 300);
	metrics_observe(&es.step_latency, 2000000);
	metrics_observe(&es.step_latency, 20000000);
	metrics_observe(&es.batch_size, 7);
	metrics_observe(&rs.ack_latency, 1500);
	rs.produced = 9;
	rs.published = 8;
	hs.by_class[2] = 11;
	hs.evicted[HTTP_CONN_IDLE] = 7;
	hs.evicted[HTTP_CONN_FINISHED] = 2;
	hs.rejected = 1;
	hs.peer_rejected = 3;
	hs.connections = 5;
	hs.by_state[HTTP_CONN_IDLE] = 4;
	hs.by_state[HTTP_CONN_WRITING] = 1;
	snprintf(lags[0].topic, sizeof(lags[0].topic), "orders");
	lags[0].partition = 0;
	lags[0].lag = 42;
	snprintf(lags[1].topic, sizeof(lags[1].topic), "we\"ird\\");
	lags[1].partition = 2;
	lags[1].lag = 0;
	memset(in, 0, sizeof(*in));
	in->engine = &es;
	in->relay = &rs;
	in->http = &hs;
	in->journal_ok = true;
	in->orders_new = 1;
	in->orders_reserved = 20;
	in->outbox_pending = 3;
	in->outbox_oldest_age_ms = 1234;
	in->lag = lags;
	in->nlag = 2;
	in->process_ok = true;
	in->rss_bytes = 1 << 20;
	in->cpu_seconds = 1.5;
	in->open_fds = 10;
	in->max_fds = 1024;
}

/* The value of the sample line that starts with prefix (name and labels). */
static const char *
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 :
	    NULL)
		if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
			return l + n + 1;
	return NULL;
}

static void
expect_sample(const char *text, const char *prefix, const char *value)
{
	const char *v = sample(text, prefix);
	size_t n = strlen(value);

	ck_assert_msg(v != NULL, "no sample %s in:\n%s", prefix, text);
	ck_assert_msg(strncmp(v, value, n) == 0 && v[n] == '\n', "%s: want %s, got %.20s",
	    prefix, value, v);
}

START_TEST(test_exposition_format)
{
	struct status_input in;
	struct http_buf b = { NULL, 0, 0 };
	char family[128] = "";
	bool typed = false;

	synthetic(&in);
	status_render_metrics(&in, &b);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.p[b.len - 1], '\n');
	/* Every line is a HELP, a TYPE, or a sample of the family just typed. */
	for (char *l = b.p, *e; *l; l = e + 1) {
		char name[128];

		e = strchr(l, '\n');
		ck_assert_ptr_nonnull(e);
		if (strncmp(l, "# HELP ", 7) == 0) {
			ck_assert_int_eq(sscanf(l + 7, "%127s", family), 1);
			typed = false;
			continue;
		}
		if (strncmp(l, "# TYPE ", 7) == 0) {
			char type[32];

			ck_assert_int_eq(sscanf(l + 7, "%127s %31s", name, type), 2);
			ck_assert_str_eq(name, family);
			ck_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0)
				ck_assert_msg(strstr(name, "_total") == name + strlen(name) - 6,
				    "counter %s without _total", name);
			typed = true;
			continue;
		}
		ck_assert_msg(typed, "sample before its TYPE: %.*s", (int)(e - l), l);
		ck_assert_msg(strncmp(l, family, strlen(family)) == 0,
		    "sample outside its family %s: %.*s", family, (int)(e - l), l);
		ck_assert(strncmp(l, "orderd_", 7) == 0 || strncmp(l, "process_", 8) == 0);
		ck_assert_ptr_nonnull(memchr(l, ' ', (size_t)(e - l)));
	}

	/* An invalid OrderCreated counts as an OrderCreated; no label set twice. */
	expect_sample(b.p, "orderd_events_consumed_total{type=\"OrderCreated\"}", "103");
	ck_assert_ptr_null(strstr(strstr(b.p, "{type=\"OrderCreated\"}") + 1,
	    "{type=\"OrderCreated\"}"));
	expect_sample(b.p, "orderd_events_consumed_total{type=\"PaymentFailed\"}", "7");
	ck_assert_ptr_null(strstr(b.p, "PaymentDeadline"));
	expect_sample(b.p, "orderd_duplicates_dropped_total", "5");
	expect_sample(b.p, "orderd_dead_letters_total", "4");
	expect_sample(b.p, "orderd_saga_transitions_total{state=\"NEW\"}", "103");
	expect_sample(b.p, "orderd_saga_transitions_total{state=\"CANCELLED\"}", "0");
	expect_sample(b.p, "orderd_sagas_live{state=\"RESERVED\"}", "20");
	expect_sample(b.p, "orderd_steps_in_flight", "12");
	expect_sample(b.p, "orderd_outbox_pending", "3");
	expect_sample(b.p, "orderd_outbox_oldest_pending_age_seconds", "1.234");
	expect_sample(b.p, "orderd_redis_up", "1");
	expect_sample(b.p, "orderd_broker_down", "0");
	expect_sample(b.p, "orderd_relay_published_total", "8");
	expect_sample(b.p, "orderd_consumer_lag{topic=\"orders\",partition=\"0\"}", "42");
	expect_sample(b.p, "orderd_consumer_lag{topic=\"we\\\"ird\\\\\",partition=\"2\"}", "0");
	expect_sample(b.p, "orderd_http_requests_total{code=\"2xx\"}", "11");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"idle\"}", "7");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"partial\"}", "0");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"writing\"}", "0");
	expect_sample(b.p, "orderd_http_connections_evicted_total{state=\"finished\"}", "2");
	expect_sample(b.p, "orderd_http_connections_rejected_total", "1");
	expect_sample(b.p, "orderd_http_connections_peer_rejected_total", "3");
	expect_sample(b.p, "orderd_http_connections_open{state=\"idle\"}", "4");
	expect_sample(b.p, "orderd_http_connections_open{state=\"writing\"}", "1");
	expect_sample(b.p, "orderd_http_connections_open{state=\"finished\"}", "0");
	expect_sample(b.p, "process_resident_memory_bytes", "1048576");
	expect_sample(b.p, "process_cpu_seconds_total", "1.50");
	ck_assert_ptr_nonnull(strstr(b.p, "orderd_build_info{version=\"" PACKAGE_VERSION "\""));

	/* Histograms: cumulative, in seconds, +Inf equals _count. */
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.00005\"}", "2");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.0001\"}", "2");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"0.0005\"}", "3");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"1\"}", "3");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"2.5\"}", "4");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"10\"}", "4");
	expect_sample(b.p, "orderd_step_duration_seconds_bucket{le=\"+Inf\"}", "5");
	expect_sample(b.p, "orderd_step_duration_seconds_count", "5");
	expect_sample(b.p, "orderd_step_duration_seconds_sum", "22.00038");
	expect_sample(b.p, "orderd_outbox_ack_duration_seconds_bucket{le=\"0.0025\"}", "1");
	expect_sample(b.p, "orderd_outbox_ack_duration_seconds_sum", "0.0015");
	expect_sample(b.p, "orderd_redis_call_duration_seconds_count", "0");
	expect_sample(b.p, "orderd_redis_call_duration_seconds_sum", "0");
	expect_sample(b.p, "orderd_consumer_batch_events_bucket{le=\"50\"}", "1");
	expect_sample(b.p, "orderd_consumer_batch_events_sum", "7");
	{
		/* Every bucket of every histogram is >= the one before. */
		const char *hists[] = { "orderd_step_duration_seconds",
		    "orderd_redis_call_duration_seconds", "orderd_journal_commit_duration_seconds",
		    "orderd_outbox_ack_duration_seconds", "orderd_consumer_batch_events" };

		for (size_t h = 0; h < UTIL_ARRAY_SIZE(hists); h++) {
			char pfx[160];
			unsigned long long prev = 0, v;
			int nb = 0;

			snprintf(pfx, sizeof(pfx), "%s_bucket{le=\"", hists[h]);
			for (const char *p = strstr(b.p, pfx); p != NULL; p = strstr(p + 1, pfx)) {
				const char *sp = strchr(p, ' ');

				v = strtoull(sp + 1, NULL, 10);
				ck_assert_uint_ge(v, prev);
				prev = v;
				nb++;
			}
			ck_assert_int_eq(nb, METRICS_BUCKETS + 1);
		}
	}
	http_buf_free(&b);

	/* Without the journal, its gauges are left out rather than shown as 0. */
	in.journal_ok = false;
	in.relay = NULL;
	in.process_ok = false;
	status_render_metrics(&in, &b);
	ck_assert_ptr_null(strstr(b.p, "orderd_sagas_live"));
	ck_assert_ptr_null(strstr(b.p, "orderd_outbox_pending"));
	ck_assert_ptr_null(strstr(b.p, "process_"));
	expect_sample(b.p, "orderd_relay_published_total", "0");
	http_buf_free(&b);
}
END_TEST

START_TEST(test_health)
{
	struct status_input in;
	struct http_buf b = { NULL, 0, 0 };

	synthetic(&in);
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 200);
	ck_assert_str_eq(b.p, "ok\n");
	http_buf_free(&b);

	es.redis_up = false;
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 503);
	ck_assert_str_eq(b.p, "redis: not connected\n");
	http_buf_free(&b);

	rs.broker_down = true;
	in.outbox_oldest_age_ms = 60001;
	ck_assert_int_eq(status_render_health(&in, 60000, &b), 503);
	ck_assert_str_eq(b.p, "redis: not connected\nkafka: all brokers down\n"
	    "outbox: oldest unpublished row is 60001 ms old (http.unhealthy_outbox_age_ms = 60000)\n");
	http_buf_free(&b);

	es.redis_up = true;
	rs.broker_down = false;
	ck_assert_int_eq(status_render_health(&in, 70000, &b), 200);
	http_buf_free(&b);

	in.journal_ok = false;
	in.journal_error = "disk I/O error";
	ck_assert_int_eq(status_render_health(&in, 70000, &b), 503);
	ck_assert_str_eq(b.p, "journal: disk I/O error\n");
	http_buf_free(&b);
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server");
	TCase *slow = tcase_create("limits");
	TCase *many = tcase_create("connections");
	TCase *flood = tcase_create("flood");
	TCase *render = tcase_create("render");

	tcase_add_checked_fixture(tc, default_server, stop_server);
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_big_response);
	tcase_add_test(tc, test_not_found_and_methods);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_close_with_open_connections);
	tcase_add_test(tc, test_listen_errors);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(slow, short_timeout_server, stop_server);
	tcase_add_test(slow, test_slow_client_times_out);
	tcase_set_timeout(slow, 30);
	suite_add_tcase(s, slow);

	tcase_add_checked_fixture(many, few_connections_server, stop_server);
	tcase_add_test(many, test_many_connections);
	tcase_set_timeout(many, 60);
	suite_add_tcase(s, many);

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

	tcase_add_test(render, test_exposition_format);
	tcase_add_test(render, test_health);
	suite_add_tcase(s, render);
	return s;
}

int
main(void)
{
	return tu_run(http_suite());
}
