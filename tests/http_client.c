/* http_client.c: the tests' blocking HTTP client: plain sockets and poll, with timeouts so a hung server fails a test instead of stalling it. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "util.h"

int
http_client_connect(int port)
{
	return http_client_connect_from(port, NULL, 0);
}

int
http_client_connect_from(int port, const char *src, int rcvbuf)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	/* Before connect: the window is agreed in the handshake. */
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		goto fail;
	if (src != NULL) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, src, &sin.sin_addr) != 1) {
			errno = EINVAL;
			goto fail;
		}
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto fail;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

long
http_client_read_all(int fd, int timeout_ms, char **out)
{
	int64_t until = util_mono_us() + (int64_t)timeout_ms * 1000;
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	long ret;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (until - util_mono_us()) / 1000;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (len + 4096 + 1 > cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = (long)len;	/* EOF, or a reset after what came */
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return ret;
}

long
http_client_raw(int port, const char *raw, size_t len, int timeout_ms, char **out)
{
	int fd = http_client_connect(port);
	long n;

	*out = NULL;
	if (fd < 0)
		return fd;
	/* The server may answer and close before it read everything: a
	 * failed write is not the test's verdict, the answer is. */
	for (size_t off = 0; off < len; ) {
		ssize_t w = send(fd, raw + off, len - off, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	n = http_client_read_all(fd, timeout_ms, out);
	close(fd);
	return n;
}

int
http_client_status(const char *response)
{
	int major, minor, status;

	if (response == NULL || sscanf(response, "HTTP/%d.%d %d", &major, &minor, &status) != 3)
		return -1;
	return status;
}

const char *
http_client_body(const char *response)
{
	const char *p = response ? strstr(response, "\r\n\r\n") : NULL;

	return p ? p + 4 : NULL;
}

int
http_client_get(int port, const char *path, char **body, char **content_type)
{
	char *req = xasprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: orderd-tests\r\n"
	    "Accept: */*\r\n\r\n", path, port), *resp = NULL;
	const char *b, *ct;
	long n = http_client_raw(port, req, strlen(req), 10000, &resp);
	int status;

	free(req);
	*body = NULL;
	if (content_type != NULL)
		*content_type = NULL;
	if (n < 0) {
		free(resp);
		return (int)n;
	}
	status = http_client_status(resp);
	b = http_client_body(resp);
	*body = xstrdup(b ? b : "");
	if (content_type != NULL && b != NULL) {
		for (ct = resp; ct != NULL && ct < b; ct = strstr(ct, "\r\n")) {
			ct += ct == resp ? 0 : 2;
			if (strncasecmp(ct, "Content-Type:", 13) == 0) {
				const char *v = ct + 13, *e = strstr(v, "\r\n");

				while (*v == ' ')
					v++;
				*content_type = xstrndup(v, (size_t)(e - v));
				break;
			}
		}
	}
	free(resp);
	return status;
}
