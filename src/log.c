/* log.c: the one place where orderd writes log lines, so every component looks alike. */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "escape.h"
#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const log_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

/*
 * The secrets of the configuration, replaced by [redacted] wherever they
 * would appear in a line: the last defence should any message (one of
 * librdkafka's, say) ever quote one.  librdkafka logs from its own
 * threads, and SIGHUP replaces the list, hence the lock.
 */
#define LOG_SECRETS_MAX 32
#define LOG_SECRET_MIN 4	/* shorter ones would garble every line */
#define LOG_REDACTED "[redacted]"
static pthread_mutex_t log_secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_SECRETS_MAX];
static size_t log_secret_len[LOG_SECRETS_MAX];
static int log_nsecrets;

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -EINVAL;
}

void
log_secret_add(const char *secret)
{
	size_t n = secret != NULL ? strlen(secret) : 0;
	char *copy;

	if (n < LOG_SECRET_MIN)
		return;
	pthread_mutex_lock(&log_secrets_lock);
	for (int i = 0; i < log_nsecrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			goto out;
	if (log_nsecrets < LOG_SECRETS_MAX && (copy = strdup(secret)) != NULL) {
		log_secrets[log_nsecrets] = copy;
		log_secret_len[log_nsecrets++] = n;
	}
out:
	pthread_mutex_unlock(&log_secrets_lock);
}

void
log_secrets_clear(void)
{
	pthread_mutex_lock(&log_secrets_lock);
	for (int i = 0; i < log_nsecrets; i++) {
		/* Not left in freed memory either. */
		memset(log_secrets[i], 0, log_secret_len[i]);
		free(log_secrets[i]);
		log_secrets[i] = NULL;
	}
	log_nsecrets = 0;
	pthread_mutex_unlock(&log_secrets_lock);
}

size_t
log_redact(char *line, size_t len, size_t cap)
{
	char *out = NULL;
	size_t o = 0;

	pthread_mutex_lock(&log_secrets_lock);
	if (log_nsecrets == 0)
		goto done;
	for (size_t i = 0; i < len;) {
		int hit = -1;

		for (int k = 0; k < log_nsecrets && hit < 0; k++)
			if (log_secret_len[k] <= len - i &&
			    memcmp(line + i, log_secrets[k], log_secret_len[k]) == 0)
				hit = k;
		if (hit >= 0 && out == NULL) {
			/* The first hit: from here on the line is copied. */
			if ((out = malloc(cap)) == NULL)
				break;
			memcpy(out, line, i);
			o = i;
		}
		if (hit >= 0) {
			size_t r = strlen(LOG_REDACTED);

			if (o + r < cap) {
				memcpy(out + o, LOG_REDACTED, r);
				o += r;
			}
			i += log_secret_len[hit];
		} else {
			if (out != NULL && o + 1 < cap)
				out[o++] = line[i];
			i++;
		}
	}
	if (out != NULL) {
		memcpy(line, out, o);
		line[o] = '\0';
		len = o;
		free(out);
	}
done:
	pthread_mutex_unlock(&log_secrets_lock);
	return len;
}

/* Advances *n by what snprintf reported, clamped to the buffer. */
static void
log_advance(size_t *n, int r, size_t cap)
{
	if (r > 0)
		*n = *n + (size_t)r < cap ? *n + (size_t)r : cap - 1;
}

/* Writes the n bytes of line (a buffer of cap bytes) as one line on stderr. */
static void
log_emit(char *line, size_t n, size_t cap)
{
	/* Whatever a value held, the line stays one line of plain text, and
	 * shows no secret. */
	n = escape_line(line, n, cap - 1);
	n = log_redact(line, n, cap - 1);
	if (n > cap - 2)
		n = cap - 2;
	line[n++] = '\n';
	/* One write per line, so lines of concurrent processes do not interleave. */
	fwrite(line, 1, n, stderr);
	fflush(stderr);
}

void
log_vmsg(enum log_level level, const char *component, const char *order_id,
    const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;

	if (level > log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	log_advance(&n, snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s %s: ",
	    (int)(tv.tv_usec / 1000), log_names[level], component), sizeof(line));
	if (order_id != NULL)
		log_advance(&n, snprintf(line + n, sizeof(line) - n, "order=%s ",
		    order_id), sizeof(line));
	log_advance(&n, vsnprintf(line + n, sizeof(line) - n, fmt, ap), sizeof(line));
	log_emit(line, n, sizeof(line));
}

void
log_msg(enum log_level level, const char *component, const char *order_id,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, component, order_id, fmt, ap);
	va_end(ap);
}

void
log_plain(const char *prog, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	size_t n;
	int r;

	r = snprintf(line, sizeof(line), "%s: ", prog);
	n = r > 0 && (size_t)r < sizeof(line) ? (size_t)r : 0;
	va_start(ap, fmt);
	log_advance(&n, vsnprintf(line + n, sizeof(line) - n, fmt, ap), sizeof(line));
	va_end(ap);
	log_emit(line, n, sizeof(line));
}

void
log_fatal(const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, component, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
