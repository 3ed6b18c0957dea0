/* http_client.h: a blocking HTTP client for tests: one raw request out, everything the server sends until it closes back. */
#ifndef ORDERD_HTTP_CLIENT_H
#define ORDERD_HTTP_CLIENT_H

#include <stddef.h>

/* Connects to 127.0.0.1:port; returns the socket or a negative errno. */
int http_client_connect(int port);
/* The same from the loopback address src ("127.0.0.2": another peer for
 * the server; NULL: any), with a receive buffer of rcvbuf bytes (0: the
 * kernel's default, which grows), so that a response not read stalls. */
int http_client_connect_from(int port, const char *src, int rcvbuf);
/* Reads until EOF, a reset or timeout_ms; *out is NUL-terminated (caller
 * frees).  Returns the byte count, or -ETIMEDOUT when the server neither
 * closed nor stopped within timeout_ms (what came is still in *out). */
long http_client_read_all(int fd, int timeout_ms, char **out);
/* Sends raw (len bytes) on a new connection and reads the whole answer. */
long http_client_raw(int port, const char *raw, size_t len, int timeout_ms, char **out);
/* GET path: returns the status code (or a negative errno); *body (caller
 * frees) is the body, *content_type (caller frees, may be NULL) its type. */
int http_client_get(int port, const char *path, char **body, char **content_type);
/* The status code of a raw response ("HTTP/1.1 404 ..."), or -1. */
int http_client_status(const char *response);
/* The body of a raw response (a pointer into it), or NULL. */
const char *http_client_body(const char *response);

#endif
