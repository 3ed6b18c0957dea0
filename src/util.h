/* util.h: allocation that cannot fail, clocks, and where orderd's data files live. */
#ifndef ORDERD_UTIL_H
#define ORDERD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocators that log and exit on out-of-memory: callers never check. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees a string that held a secret (a password), wiping it first; NULL is fine. */
void util_secret_free(char *s);

/* Wall clock in milliseconds since the epoch (what the journal records). */
int64_t util_now_ms(void);
/* Monotonic clock in microseconds (for latencies and timeouts). */
int64_t util_mono_us(void);

/*
 * The directory that holds lua/ and sql/: $ORDERD_DATADIR when set; else the
 * source tree when the running program lives in the build tree (tests, demo);
 * else $(pkgdatadir).  Never NULL; the string is static.
 */
const char *util_datadir(void);
/* Reads DATADIR/relpath whole; returns 0 or a negative errno.  *out is
 * NUL-terminated, owned by the caller. */
int util_read_data_file(const char *relpath, char **out, size_t *len);
/* Reads a whole file; returns 0 or a negative errno; *out owned by the caller. */
int util_read_file(const char *path, char **out, size_t *len);

#endif
