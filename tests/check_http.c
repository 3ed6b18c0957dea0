/* check_http.c: the HTTP server through real sockets on a real uv loop: routes and methods, malformed and oversized requests, slow clients, max_connections, closing, listen errors. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "http.h"
#include "http_client.h"
#include "http_fixture.h"
#include "testutil.h"
#include "util.h"

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

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server");
	TCase *slow = tcase_create("limits");
	TCase *many = tcase_create("connections");

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
	return s;
}

int
main(void)
{
	return tu_run(http_suite());
}
