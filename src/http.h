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

/* Limits; a zero field takes the default in brackets. */
struct http_options {
	int max_connections;		/* open at once; more are closed on accept [64] */
	size_t max_request;		/* bytes of request line + headers + body [8192] */
	int timeout_ms;			/* to receive a whole request, and again to
					 * deliver the response [5000] */
};

/* What the server has done since it started (for /metrics). */
struct http_stats {
	uint64_t requests;		/* answered, whatever the status */
	uint64_t by_class[6];		/* answered, by status / 100 (index 2..5) */
	uint64_t rejected;		/* connections closed on accept: too many open */
	uint64_t timeouts;		/* connections closed by the timeout */
	int connections;		/* open now */
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
