/* http.c: a small HTTP/1.1 server on the libuv loop: http-parser parses, every response closes its connection, a full server or peer closes its idlest connection for a new one. */
#include "autoconfig.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <uthash.h>
#include <utlist.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_MAX_PER_PEER 16
#define HTTP_MAX_REQUEST 8192
#define HTTP_TIMEOUT_MS 5000
/* After the response, what the client still sends is read and dropped (so
 * closing does not reset the connection under the response), up to this. */
#define HTTP_LINGER_MAX 65536
#define HTTP_READ_CHUNK 4096
/* The listen backlog (nginx's default; the kernel caps it at somaxconn).
 * A full backlog drops SYNs, and a probe's is then retried only a second
 * later: a flood is better drained by the loop, which makes room. */
#define HTTP_BACKLOG 511
/* A peer is an IPv4 address or an IPv6 /64, the least one host is given:
 * a family byte and 8 bytes of address. */
#define HTTP_PEER_KEY 9

/*
 * The connections of a server are on three lists, in the order they are
 * closed to make room (struct http_options): within each, the order of
 * their last activity, oldest first.
 */
enum http_list {
	HTTP_LIST_FINISHED,		/* HTTP_CONN_FINISHED */
	HTTP_LIST_WAITING,		/* HTTP_CONN_IDLE and HTTP_CONN_PARTIAL */
	HTTP_LIST_WRITING,		/* HTTP_CONN_WRITING */
	HTTP_LISTS
};

struct http_peer {
	unsigned char key[HTTP_PEER_KEY];
	int count;			/* connections open */
	UT_hash_handle hh;
};

struct http_conn {
	struct http_server *srv;
	struct http_conn *prev, *next;	/* on the list of its state (utlist) */
	struct http_peer *peer;		/* NULL until accepted, and once closing */
	enum http_conn_state state;
	bool listed;			/* on a list, in the counts of stats */
	uint64_t scan;			/* the last make-room scan that looked at it */
	bool looked;			/* writing: unsent is what a scan saw */
	size_t unsent;			/* writing: bytes libuv still held then */
	uv_tcp_t tcp;
	uv_timer_t timer;		/* the deadline of the current phase */
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	http_parser parser;
	char rbuf[HTTP_READ_CHUNK];
	size_t received;		/* request bytes given to the parser */
	size_t discarded;		/* bytes dropped after the response */
	struct http_buf url;
	struct http_buf out;		/* the response being written */
	bool url_done;			/* the parser is past the request line */
	bool headers_done;
	bool responded;			/* a response is queued: input is dropped */
	bool closing;
	int open_handles;
};

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	struct http_options opt;
	const struct http_route *routes;
	int nroutes;
	void *arg;
	struct http_conn *lists[HTTP_LISTS];
	struct http_peer *peers;	/* uthash, by key */
	uint64_t scan;			/* make-room scans so far */
	int open;			/* handles not yet closed: listener, connections */
	int port;
	bool closing;
	struct http_stats stats;
	void (*done)(void *arg);
	void *done_arg;
};

static void http_conn_error(struct http_conn *c, int status, const char *extra_headers);
static void http_conn_input(struct http_conn *c, ssize_t nread);

void
http_buf_append(struct http_buf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
http_buf_printf(struct http_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap : 256;

			while (cap < b->len + (size_t)n + 1)
				cap *= 2;
			b->p = xrealloc(b->p, cap);
			b->cap = cap;
		}
	}
}

void
http_buf_free(struct http_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

const char *
http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

const char *
http_conn_state_name(enum http_conn_state st)
{
	switch (st) {
	case HTTP_CONN_IDLE: return "idle";
	case HTTP_CONN_PARTIAL: return "partial";
	case HTTP_CONN_WRITING: return "writing";
	case HTTP_CONN_FINISHED: return "finished";
	default: return "unknown";
	}
}

/* The server is freed when its last handle closed after http_server_close. */
static void
http_server_unref(struct http_server *s)
{
	void (*done)(void *arg);
	void *arg;

	if (--s->open > 0 || !s->closing)
		return;
	done = s->done;
	arg = s->done_arg;
	free(s);
	if (done != NULL)
		done(arg);
}

static void
http_handle_unref(uv_handle_t *h)
{
	http_server_unref(h->data);
}

static void
http_conn_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	struct http_server *s = c->srv;

	if (--c->open_handles > 0)
		return;
	http_buf_free(&c->url);
	http_buf_free(&c->out);
	free(c);
	http_server_unref(s);
}

static enum http_list
http_list_of(enum http_conn_state st)
{
	return st == HTTP_CONN_FINISHED ? HTTP_LIST_FINISHED : st == HTTP_CONN_WRITING ?
	    HTTP_LIST_WRITING : HTTP_LIST_WAITING;
}

/* Puts c in state st, at the end of its list: what just happened to it is
 * its latest activity.  The same state again only moves it there. */
static void
http_conn_set_state(struct http_conn *c, enum http_conn_state st)
{
	struct http_server *s = c->srv;

	if (!c->listed) {
		c->state = st;
		return;
	}
	DL_DELETE(s->lists[http_list_of(c->state)], c);
	s->stats.by_state[c->state]--;
	c->state = st;
	DL_APPEND(s->lists[http_list_of(st)], c);
	s->stats.by_state[st]++;
}

/*
 * Closes c.  With reset, an RST instead of a FIN (SO_LINGER 0): for a
 * connection closed to make room, the client learns at once and the kernel
 * keeps no FIN_WAIT state for a client that would never close its end.
 */
static void
http_conn_close_how(struct http_conn *c, bool reset)
{
	struct http_server *s = c->srv;

	if (c->closing)
		return;
	c->closing = true;
	if (c->listed) {
		DL_DELETE(s->lists[http_list_of(c->state)], c);
		s->stats.by_state[c->state]--;
		s->stats.connections--;
		c->listed = false;
	}
	if (c->peer != NULL && --c->peer->count == 0) {
		HASH_DEL(s->peers, c->peer);
		free(c->peer);
	}
	c->peer = NULL;
	/* close_reset refuses a stream with a shutdown under way: uv_close. */
	if (!reset || uv_tcp_close_reset(&c->tcp, http_conn_closed) < 0)
		uv_close((uv_handle_t *)&c->tcp, http_conn_closed);
	uv_close((uv_handle_t *)&c->timer, http_conn_closed);
}

static void
http_conn_close(struct http_conn *c)
{
	http_conn_close_how(c, false);
}

static void
http_conn_timeout_cb(uv_timer_t *t)
{
	struct http_conn *c = t->data;

	c->srv->stats.timeouts++;
	/* A client that sent part of a request hears why; then it gets one
	 * more timeout to take the answer. */
	if (!c->responded && c->received > 0)
		http_conn_error(c, 408, NULL);
	else
		http_conn_close(c);
}

static void
http_conn_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct http_conn *c = req->data;

	/* On success the client's EOF (or the timer) closes the connection. */
	if (status < 0)
		http_conn_close(c);
}

static void
http_conn_written_cb(uv_write_t *req, int status)
{
	struct http_conn *c = req->data;
	int err;

	if (status < 0 || c->closing) {
		http_conn_close(c);
		return;
	}
	http_conn_set_state(c, HTTP_CONN_FINISHED);
	c->shutdown_req.data = c;
	if ((err = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
	    http_conn_shutdown_cb)) < 0)
		http_conn_close(c);
}

/* Queues the whole response (headers, and the body unless head) and ends
 * the request phase: what arrives from now on is dropped. */
static void
http_conn_respond(struct http_conn *c, int status, const char *content_type,
    const char *extra_headers, const struct http_buf *body, bool head)
{
	struct http_server *s = c->srv;
	size_t len = body != NULL ? body->len : 0;
	uv_buf_t b;
	int err;

	c->responded = true;
	/* Pausing stops the parser at this message (a pipelined next one is
	 * not ours to answer); a parser in error has stopped already. */
	if (HTTP_PARSER_ERRNO(&c->parser) == HPE_OK)
		http_parser_pause(&c->parser, 1);
	http_buf_printf(&c->out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "%s\r\n", status, http_status_text(status),
	    content_type ? content_type : "text/plain; charset=utf-8", len,
	    extra_headers ? extra_headers : "");
	if (!head && len > 0)
		http_buf_append(&c->out, body->p, len);
	s->stats.requests++;
	if (status / 100 < (int)UTIL_ARRAY_SIZE(s->stats.by_class))
		s->stats.by_class[status / 100]++;
	/* The client gets as long again to take the response. */
	uv_timer_start(&c->timer, http_conn_timeout_cb, (uint64_t)s->opt.timeout_ms, 0);
	http_conn_set_state(c, HTTP_CONN_WRITING);
	c->write_req.data = c;
	b = uv_buf_init(c->out.p, (unsigned int)c->out.len);
	if ((err = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1,
	    http_conn_written_cb)) < 0)
		http_conn_close(c);
}

/* A status with a one-line text body. */
static void
http_conn_error(struct http_conn *c, int status, const char *extra_headers)
{
	struct http_buf body = { NULL, 0, 0 };

	http_buf_printf(&body, "%s\n", http_status_text(status));
	http_conn_respond(c, status, NULL, extra_headers, &body, false);
	http_buf_free(&body);
}

static void
http_conn_dispatch(struct http_conn *c)
{
	struct http_server *s = c->srv;
	struct http_parser_url u;
	struct http_response res;
	struct http_request req;
	char *path = NULL, *query = NULL;
	bool head = c->parser.method == HTTP_HEAD;
	int i;

	if (c->parser.method != HTTP_GET && !head) {
		http_conn_error(c, 405, "Allow: GET, HEAD\r\n");
		return;
	}
	http_parser_url_init(&u);
	if (c->url.len == 0 || http_parser_parse_url(c->url.p, c->url.len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH))) {
		http_conn_error(c, 400, NULL);
		return;
	}
	path = xstrndup(c->url.p + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
	query = u.field_set & (1 << UF_QUERY) ? xstrndup(c->url.p +
	    u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len) : xstrdup("");
	req.method = head ? "HEAD" : "GET";
	req.path = path;
	req.query = query;
	for (i = 0; i < s->nroutes && strcmp(s->routes[i].path, path) != 0; i++)
		;
	if (i == s->nroutes) {
		log_debug("http", "%s %s: 404", req.method, path);
		http_conn_error(c, 404, NULL);
	} else {
		memset(&res, 0, sizeof(res));
		res.status = 200;
		s->routes[i].fn(&req, &res, s->arg);
		log_debug("http", "%s %s: %d, %zu bytes", req.method, path, res.status,
		    res.body.len);
		http_conn_respond(c, res.status, res.content_type, NULL, &res.body, head);
		http_buf_free(&res.body);
	}
	free(path);
	free(query);
}

static int
http_on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	http_buf_append(&c->url, at, len);
	return 0;
}

static int
http_on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	c->url_done = true;
	return 0;
}

static int
http_on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	c->url_done = c->headers_done = true;
	return 0;
}

static int
http_on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	if (!c->responded)
		http_conn_dispatch(c);
	return 0;
}

static const http_parser_settings http_settings = {
	.on_url = http_on_url,
	.on_header_field = http_on_header_field,
	.on_headers_complete = http_on_headers_complete,
	.on_message_complete = http_on_message_complete,
};

static void
http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = h->data;

	buf->base = c->rbuf;
	buf->len = sizeof(c->rbuf);
}

static void
http_conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	/* buf is c->rbuf (http_conn_alloc_cb). */
	http_conn_input(st->data, nread);
}

/* nread bytes in c->rbuf, or the end (a negative libuv error). */
static void
http_conn_input(struct http_conn *c, ssize_t nread)
{
	size_t room, n;

	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		/* EOF or a reset: whatever phase, nothing more to do. */
		http_conn_close(c);
		return;
	}
	if (c->responded) {
		c->discarded += (size_t)nread;
		if (c->discarded > HTTP_LINGER_MAX)
			http_conn_close(c);
		return;
	}
	/* The parser never sees more than max_request bytes of one request. */
	room = c->srv->opt.max_request - c->received;
	n = (size_t)nread < room ? (size_t)nread : room;
	c->received += n;
	http_parser_execute(&c->parser, &http_settings, c->rbuf, n);
	if (c->responded || c->closing)
		return;
	http_conn_set_state(c, HTTP_CONN_PARTIAL);
	if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
		log_debug("http", "bad request: %s",
		    http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
		http_conn_error(c, 400, NULL);
		return;
	}
	if (c->parser.upgrade) {
		/* CONNECT or an Upgrade the parser stopped at: not ours to serve. */
		http_conn_error(c, c->parser.method == HTTP_CONNECT ? 405 : 400,
		    c->parser.method == HTTP_CONNECT ? "Allow: GET, HEAD\r\n" : NULL);
		return;
	}
	if (c->received >= c->srv->opt.max_request)
		http_conn_error(c, !c->url_done ? 414 : !c->headers_done ? 431 : 413, NULL);
}

/* The peer of an accepted connection (HTTP_PEER_KEY); an IPv4-mapped
 * IPv6 address is its IPv4 address. */
static int
http_peer_key(uv_tcp_t *t, unsigned char *key)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), err;

	memset(key, 0, HTTP_PEER_KEY);
	if ((err = uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len)) < 0)
		return err;
	if (ss.ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a->s6_addr, 8);
		}
	} else {
		return UV_EAFNOSUPPORT;
	}
	return 0;
}

/*
 * Reads what c has pending, without waiting, as its read callback would.
 * A connection accepted in this loop turn has not been read yet: under a
 * flood, the probe accepted just before a burst would look idle when the
 * burst reaches it, its request sitting unread in the kernel.
 */
static void
http_conn_read_pending(struct http_conn *c)
{
	uv_os_fd_t fd;
	ssize_t n;

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
		return;
	do
		n = recv(fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	http_conn_input(c, n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno));
}

/* The first connection of list l in pool (a peer's, or all when NULL). */
static struct http_conn *
http_pool_first(struct http_server *s, enum http_list l, const struct http_peer *pool)
{
	struct http_conn *c;

	for (c = s->lists[l]; c != NULL && pool != NULL && c->peer != pool; c = c->next)
		;
	return c;
}

/* Closes c, seen as st, to make room for nc: nc closed for itself while
 * still waiting for its request was turned away. */
static void
http_evict(struct http_conn *c, enum http_conn_state st, const struct http_conn *nc,
    const struct http_peer *pool)
{
	struct http_server *s = c->srv;

	if (c == nc && (st == HTTP_CONN_IDLE || st == HTTP_CONN_PARTIAL)) {
		if (pool != NULL)
			s->stats.peer_rejected++;
		else
			s->stats.rejected++;
		log_debug("http", "new connection turned away: %s", pool != NULL ?
		    "its peer is at max_per_peer" : "max_connections");
	} else {
		s->stats.evicted[st]++;
		log_debug("http", "%s connection closed for a new one (%s)",
		    http_conn_state_name(st), pool != NULL ? "max_per_peer" : "max_connections");
	}
	/* A response handed over whole is closed with a FIN: the kernel still
	 * delivers what it holds.  Any other gets a reset. */
	http_conn_close_how(c, st != HTTP_CONN_FINISHED);
}

/*
 * One step towards room for nc in pool (its peer's connections, or all
 * when NULL): closes a connection, or finds that the first candidate was
 * not what it seemed (a request unread, a response moving) and leaves the
 * choice to the next step.  Each step closes one, answers one (it never
 * waits again) or moves on from a writer the scan has not looked at yet,
 * so the steps end.  Returns false when the pool has nothing to close.
 */
static bool
http_make_room_step(struct http_server *s, struct http_conn *nc, struct http_peer *pool)
{
	struct http_conn *c;
	size_t unsent;

	/* A response written whole, to the stream or into the kernel: closing
	 * it loses nothing. */
	if ((c = http_pool_first(s, HTTP_LIST_FINISHED, pool)) != NULL) {
		http_evict(c, HTTP_CONN_FINISHED, nc, pool);
		return true;
	}
	for (c = s->lists[HTTP_LIST_WRITING]; c != NULL; c = c->next)
		if ((pool == NULL || c->peer == pool) &&
		    uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
			http_evict(c, HTTP_CONN_FINISHED, nc, pool);
			return true;
		}
	/* The connection that has waited longest for its request.  nc, the
	 * newest, is the last of them: one that sent nothing is turned away
	 * before a response in progress is dropped for it.  Bytes read only
	 * now came before nc did: a request they complete is answered, a
	 * part of one does not make its connection younger than nc. */
	if ((c = http_pool_first(s, HTTP_LIST_WAITING, pool)) != NULL) {
		http_conn_read_pending(c);
		if (!c->closing && http_list_of(c->state) == HTTP_LIST_WAITING)
			http_evict(c, c->state, nc, pool);
		return true;
	}
	/* Only responses in progress: the one whose client took nothing since
	 * an earlier scan looked (a first look knows nothing: oldest first). */
	if ((c = http_pool_first(s, HTTP_LIST_WRITING, pool)) == NULL)
		return false;
	if (c->scan != s->scan) {
		c->scan = s->scan;
		unsent = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
		if (c->looked && unsent < c->unsent) {
			c->unsent = unsent;
			http_conn_set_state(c, HTTP_CONN_WRITING);
			return true;
		}
		c->unsent = unsent;
		c->looked = true;
	}
	http_evict(c, HTTP_CONN_WRITING, nc, pool);
	return true;
}

/* After nc was admitted: back within max_per_peer and max_connections.
 * Both held before nc came, so once nc is closed they hold again. */
static void
http_make_room(struct http_server *s, struct http_conn *nc)
{
	s->scan++;
	while (!nc->closing) {
		struct http_peer *pool;

		if (nc->peer->count > s->opt.max_per_peer)
			pool = nc->peer;
		else if (s->stats.connections > s->opt.max_connections)
			pool = NULL;
		else
			break;
		if (!http_make_room_step(s, nc, pool))
			break;
	}
}

static void
http_on_connection(uv_stream_t *ls, int status)
{
	struct http_server *s = ls->data;
	unsigned char key[HTTP_PEER_KEY];
	struct http_peer *p;
	struct http_conn *c;
	int err;

	if (status < 0) {
		log_warn("http", "accept: %s", uv_strerror(status));
		return;
	}
	if (s->closing)
		return;
	c = xcalloc(1, sizeof(*c));
	c->srv = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	s->open++;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	if ((err = uv_accept(ls, (uv_stream_t *)&c->tcp)) < 0 ||
	    (err = http_peer_key(&c->tcp, key)) < 0 ||
	    (err = uv_read_start((uv_stream_t *)&c->tcp, http_conn_alloc_cb,
	    http_conn_read_cb)) < 0) {
		/* A client that reset before we got to it is no news. */
		if (err == UV_ENOTCONN)
			log_debug("http", "accept: %s", uv_strerror(err));
		else
			log_warn("http", "accept: %s", uv_strerror(err));
		http_conn_close(c);
		return;
	}
	HASH_FIND(hh, s->peers, key, HTTP_PEER_KEY, p);
	if (p == NULL) {
		p = xcalloc(1, sizeof(*p));
		memcpy(p->key, key, HTTP_PEER_KEY);
		HASH_ADD(hh, s->peers, key, HTTP_PEER_KEY, p);
	}
	p->count++;
	c->peer = p;
	c->state = HTTP_CONN_IDLE;
	c->listed = true;
	DL_APPEND(s->lists[HTTP_LIST_WAITING], c);
	s->stats.by_state[HTTP_CONN_IDLE]++;
	s->stats.connections++;
	/* The whole request must arrive within the timeout, however slowly
	 * it trickles in: a slow client cannot hold a slot for long. */
	uv_timer_start(&c->timer, http_conn_timeout_cb, (uint64_t)s->opt.timeout_ms, 0);
	/* Admitted first, then room made: the newcomer may be the one to go. */
	http_make_room(s, c);
}

/* HOST:PORT or [V6]:PORT to an address; a name is resolved (blocking). */
static int
http_resolve(const char *listen, struct sockaddr_storage *ss, char **cause)
{
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints, *res = NULL;
	char *host, *end;
	long port;
	int err;

	if (colon == NULL || colon == listen) {
		*cause = xasprintf("%s: not HOST:PORT", listen);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535) {
		*cause = xasprintf("%s: bad port", listen);
		return -EINVAL;
	}
	host = xstrndup(listen, (size_t)(colon - listen));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(ss, 0, sizeof(*ss));
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) {
		free(host);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((err = getaddrinfo(host, NULL, &hints, &res)) != 0 || res == NULL) {
		*cause = xasprintf("%s: %s", listen, gai_strerror(err));
		free(host);
		return -ENOENT;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	freeaddrinfo(res);
	free(host);
	return 0;
}

int
http_server_new(struct http_server **out, uv_loop_t *loop, const char *listen,
    const struct http_options *opt, const struct http_route *routes, int nroutes,
    void *arg, char **cause)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	int len = sizeof(ss), err;

	*out = NULL;
	s->loop = loop;
	s->routes = routes;
	s->nroutes = nroutes;
	s->arg = arg;
	if (opt != NULL)
		s->opt = *opt;
	if (s->opt.max_connections <= 0)
		s->opt.max_connections = HTTP_MAX_CONNECTIONS;
	if (s->opt.max_per_peer <= 0)
		s->opt.max_per_peer = HTTP_MAX_PER_PEER;
	if (s->opt.max_per_peer > s->opt.max_connections)
		s->opt.max_per_peer = s->opt.max_connections;
	if (s->opt.max_request == 0)
		s->opt.max_request = HTTP_MAX_REQUEST;
	if (s->opt.timeout_ms <= 0)
		s->opt.timeout_ms = HTTP_TIMEOUT_MS;
	if ((err = http_resolve(listen, &ss, cause)) < 0) {
		free(s);
		return err;
	}
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	s->open = 1;
	/* bind may defer EADDRINUSE to listen: both name the address. */
	if ((err = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0)) < 0 ||
	    (err = uv_listen((uv_stream_t *)&s->tcp, HTTP_BACKLOG, http_on_connection)) < 0) {
		*cause = xasprintf("%s: %s", listen, uv_strerror(err));
		goto fail;
	}
	if ((err = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len)) < 0) {
		*cause = xasprintf("%s: getsockname: %s", listen, uv_strerror(err));
		goto fail;
	}
	s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	*out = s;
	return 0;
fail:
	/* Freed by the close callback, which needs the loop to run once. */
	s->closing = true;
	uv_close((uv_handle_t *)&s->tcp, http_handle_unref);
	return err;
}

int
http_server_port(const struct http_server *s)
{
	return s->port;
}

const struct http_stats *
http_server_stats(const struct http_server *s)
{
	return &s->stats;
}

void
http_server_close(struct http_server *s, void (*done)(void *arg), void *arg)
{
	if (s == NULL || s->closing)
		return;
	s->closing = true;
	s->done = done;
	s->done_arg = arg;
	for (int l = 0; l < HTTP_LISTS; l++)
		while (s->lists[l] != NULL)
			http_conn_close(s->lists[l]);
	uv_close((uv_handle_t *)&s->tcp, http_handle_unref);
}
