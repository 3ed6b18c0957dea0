/* http_fixture.c: the tests' HTTP server on its own loop thread: routes, start and stop, pausing the loop to read what it writes. */
#include "autoconfig.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <uv.h>

#include "http.h"
#include "http_fixture.h"
#include "status.h"
#include "status_figures.h"
#include "util.h"

/* The server runs on its loop in a thread of its own; the test is the
 * blocking client.  uv calls happen on the loop thread only, except
 * before the thread starts and after it ended. */
static uv_loop_t loop;
static uv_async_t stop_async;
static pthread_t loop_thread;
static struct http_server *srv;
int port;
int handler_calls;
int healthz_calls, metrics_calls;
struct http_stats final_stats;
static bool closed_done;

/* The loop thread parks in pause_cb while the test reads what the loop
 * writes, or queues connections the loop will find all at once. */
static uv_async_t pause_async;
static pthread_mutex_t pause_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cv = PTHREAD_COND_INITIALIZER;
static enum { RUNNING, PARKED, RELEASED } pause_state;

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
	static struct status_figures fig;	/* on the loop thread only */
	struct status_input in;

	metrics_calls++;
	status_figures_fill(&fig, &in);
	res->content_type = STATUS_METRICS_CONTENT_TYPE;
	status_render_metrics(&in, &res->body);
}

const struct http_route routes[] = {
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

void
loop_pause(void)
{
	pthread_mutex_lock(&pause_mu);
	uv_async_send(&pause_async);
	while (pause_state != PARKED)
		pthread_cond_wait(&pause_cv, &pause_mu);
	pthread_mutex_unlock(&pause_mu);
}

void
loop_resume(void)
{
	pthread_mutex_lock(&pause_mu);
	pause_state = RELEASED;
	pthread_cond_broadcast(&pause_cv);
	while (pause_state != RUNNING)
		pthread_cond_wait(&pause_cv, &pause_mu);
	pthread_mutex_unlock(&pause_mu);
}

struct http_stats
snapshot(void)
{
	struct http_stats st;

	loop_pause();
	st = *http_server_stats(srv);
	loop_resume();
	return st;
}

void
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

void
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

void
default_server(void)
{
	start_server(NULL);
}

