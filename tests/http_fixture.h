/* http_fixture.h: an http.c server with the tests' routes on a uv loop in a thread of its own, for the tests as its blocking clients. */
#ifndef ORDERD_HTTP_FIXTURE_H
#define ORDERD_HTTP_FIXTURE_H

#include "http.h"

/* /big's body is at least BIG_BODY bytes, /huge's at least HUGE_BODY: far
 * more than the kernel buffers between a server and a client that reads
 * nothing (tcp_wmem's 4 MiB at most, and a small SO_RCVBUF), so its
 * response stays being written. */
#define BIG_BODY (1 << 20)
#define HUGE_BODY (8 << 20)

/* /hello, /big, /fail (a 503), /huge, /healthz, and /metrics (status.c's
 * rendering of tests/status_figures.c). */
extern const struct http_route routes[];
/* The port of the running server. */
extern int port;
/* Calls of /hello, /healthz and /metrics: written on the loop thread, read
 * after stop_server or while the loop is paused. */
extern int handler_calls, healthz_calls, metrics_calls;
/* The server's figures as it was closed by stop_server. */
extern struct http_stats final_stats;

/* Starts a server on 127.0.0.1 (any port) with opt (NULL: the defaults)
 * and its loop thread; stop_server closes it, joins the thread, and checks
 * every handle is closed. */
void start_server(const struct http_options *opt);
void stop_server(void);
/* start_server(NULL), as a Check fixture. */
void default_server(void);
/* Returns once the loop thread is parked: nothing runs on the loop until
 * loop_resume. */
void loop_pause(void);
void loop_resume(void);
/* The server's figures now (the loop parked while they are copied). */
struct http_stats snapshot(void);

#endif
