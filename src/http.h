/* http.h: a tiny HTTP/1.1 server on the libuv loop (http-parser does the parsing) for /metrics and /healthz. */
#ifndef ORDERD_HTTP_H
#define ORDERD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct http_server;

/* A growable byte buffer that response bodies are written into. */
struct http_buf {
	char *p;			/* NUL-terminated while len < cap; malloc'd */
	size_t len, cap;
};

void http_buf_append(struct http_buf *b, const char *s, size_t len);
void http_buf_printf(struct http_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void http_buf_free(struct http_buf *b);

struct http_request {
	const char *method;		/* "GET" or "HEAD": other methods get 405 */
	const char *path;		/* the URL's path, without the query */
	const char *query;		/* "" when none */
};

struct http_response {
	int status;			/* 200 unless the handler says otherwise */
	const char *content_type;	/* static; "text/plain; charset=utf-8" by default */
	struct http_buf body;
};

/* Fills res for req; runs on the loop, so it must not block. */
typedef void (*http_handler_fn)(const struct http_request *req, struct http_response *res,
    void *arg);

struct http_route {
	const char *path;		/* exact match */
	http_handler_fn fn;
};

/*
 * Limits; a zero field takes the default in brackets.  A new connection
 * that finds its peer or the server at its limit is admitted anyway and
 * another is closed to make room: first one whose response was written
 * whole, then the one that has waited longest for its request (connected
 * and silent, or stalled mid-request), and only then a response in
 * progress, the one whose client took nothing for longest.  The newcomer
 * itself waits for its request too: one that sent nothing when only
 * responses in progress are left is turned away instead (rejected).
 */
struct http_options {
	int max_connections;		/* open at once [64] */
	int max_per_peer;		/* open at once from one IPv4 address or
					 * IPv6 /64 [16, at most max_connections] */
	size_t max_request;		/* bytes of request line + headers + body [8192] */
	int timeout_ms;			/* to receive a whole request, and again to
					 * deliver the response [5000] */
};

/* What a connection is doing, for the counts and gauges of http_stats. */
enum http_conn_state {
	HTTP_CONN_IDLE,			/* connected, no request byte yet */
	HTTP_CONN_PARTIAL,		/* a request begun, not finished */
	HTTP_CONN_WRITING,		/* its response being written */
	HTTP_CONN_FINISHED,		/* its response written, the client's close awaited */
	HTTP_CONN_STATES
};

/* "idle", "partial", "writing", "finished": the label values of /metrics. */
const char *http_conn_state_name(enum http_conn_state st);

/* What the server has done since it started (for /metrics). */
struct http_stats {
	uint64_t requests;		/* answered, whatever the status */
	uint64_t by_class[6];		/* answered, by status / 100 (index 2..5) */
	uint64_t evicted[HTTP_CONN_STATES];	/* closed to make room for a new
						 * one, by what they were doing */
	uint64_t rejected;		/* new connections turned away at max_connections */
	uint64_t peer_rejected;		/* new connections turned away at max_per_peer */
	uint64_t timeouts;		/* connections closed by the timeout */
	int connections;		/* open now */
	int by_state[HTTP_CONN_STATES];	/* open now, by state */
};

/*
 * Listens on listen ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and
 * answers each request with one of routes (the array must outlive the
 * server), 404 for another path and 405 for a method other than GET and
 * HEAD.  Every response closes its connection.  A host name is resolved
 * here, blocking (start-up only).  Returns 0 or a negative errno with
 * *cause (caller frees) naming the address.
 */
int http_server_new(struct http_server **out, uv_loop_t *loop, const char *listen,
    const struct http_options *opt, const struct http_route *routes, int nroutes,
    void *arg, char **cause);
/* The port listened on (useful after port 0). */
int http_server_port(const struct http_server *s);
const struct http_stats *http_server_stats(const struct http_server *s);
/*
 * Stops listening and closes every connection at once (a response being
 * written is dropped); no handler runs after this call.  s is freed in the
 * last close callback, then done(arg) runs (done may be NULL).
 */
void http_server_close(struct http_server *s, void (*done)(void *arg), void *arg);

/* The reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
