/* log.c: the one place where orderd writes log lines, so every component looks alike. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const log_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

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

/* Advances *n by what snprintf reported, clamped to the buffer. */
static void
log_advance(size_t *n, int r, size_t cap)
{
	if (r > 0)
		*n = *n + (size_t)r < cap ? *n + (size_t)r : cap - 1;
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
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so lines of concurrent processes do not interleave. */
	fwrite(line, 1, n, stderr);
	fflush(stderr);
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
log_fatal(const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, component, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
