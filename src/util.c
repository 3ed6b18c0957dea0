/* util.c: allocation that cannot fail, clocks, and locating installed data files. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static void
util_oom(size_t n)
{
	log_fatal("util", "out of memory allocating %zu bytes", n);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		util_oom(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		util_oom(nmemb * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		util_oom(n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		util_oom(strlen(fmt));
	va_end(ap);
	return s;
}

void
util_secret_free(char *s)
{
	if (s == NULL)
		return;
	/* volatile: a memset right before free may be optimised away. */
	for (volatile char *p = s; *p != '\0'; p++)
		*p = '\0';
	free(s);
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
util_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *
util_datadir(void)
{
	static char dir[PATH_MAX];
	char exe[PATH_MAX];
	const char *env;
	ssize_t n;

	if (dir[0] != '\0')
		return dir;
	env = getenv("ORDERD_DATADIR");
	if (env != NULL && env[0] != '\0') {
		snprintf(dir, sizeof(dir), "%s", env);
		return dir;
	}
	/* A program running from the build tree uses the sources next to it,
	 * so tests and the demo never pick up an older installed copy. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		size_t blen = strlen(ABS_TOP_BUILDDIR);

		exe[n] = '\0';
		if (strncmp(exe, ABS_TOP_BUILDDIR, blen) == 0 && exe[blen] == '/' &&
		    util_is_dir(ABS_TOP_SRCDIR "/lua")) {
			snprintf(dir, sizeof(dir), "%s", ABS_TOP_SRCDIR);
			return dir;
		}
	}
	snprintf(dir, sizeof(dir), "%s", PKGDATADIR);
	return dir;
}

int
util_read_file(const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	size_t off = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			free(buf);
			close(fd);
			return err;
		}
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	*out = buf;
	if (len != NULL)
		*len = off;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

int
util_read_data_file(const char *relpath, char **out, size_t *len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", util_datadir(), relpath);
	return util_read_file(path, out, len);
}
