/* log.h: leveled log lines on stderr: time, level, component, order id. */
#ifndef ORDERD_LOG_H
#define ORDERD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the level below which lines are dropped (default INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* One line: time, level, component and, when order_id is not NULL, the order. */
void log_msg(enum log_level level, const char *component, const char *order_id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vmsg(enum log_level level, const char *component, const char *order_id,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Logs at ERROR and exits with status 1: for what cannot be recovered. */
void log_fatal(const char *component, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * The one-line message of a program's main() ("orderctl: ..."), on stderr,
 * cleaned like a log line: for errors that end a command-line tool.
 */
void log_plain(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Registers a secret (a password from the configuration): from now on it
 * is written as [redacted] wherever a log line or log_plain() would show
 * it.  Copied; shorter than 4 bytes it is not registered (it would garble
 * every line).  log_secrets_clear() forgets them all (SIGHUP, before the
 * new configuration's are added).
 */
void log_secret_add(const char *secret);
void log_secrets_clear(void);
/* Replaces registered secrets in line (len bytes, cap the buffer size,
 * NUL-terminated on return); returns the new length. */
size_t log_redact(char *line, size_t len, size_t cap);

#define log_error(c, ...) log_msg(LOG_LEVEL_ERROR, (c), NULL, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_LEVEL_WARN, (c), NULL, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_LEVEL_INFO, (c), NULL, __VA_ARGS__)
#define log_debug(c, ...) log_msg(LOG_LEVEL_DEBUG, (c), NULL, __VA_ARGS__)

#endif
