/* escape.h: printable forms of untrusted bytes, so that a message can neither forge a log line nor drive a terminal. */
#ifndef ORDERD_ESCAPE_H
#define ORDERD_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* How many bytes of one untrusted value a log line shows; the rest is
 * cut and counted ("...[+123 bytes]"). */
#define ESCAPE_LOG_MAX 200
/* The same for one field of orderctl's text output. */
#define ESCAPE_TTY_MAX 1024

/*
 * The printable form of len bytes at p: printable ASCII and well-formed
 * UTF-8 stay as they are; a backslash becomes "\\"; control characters
 * (C0, DEL and C1), bidirectional overrides, line separators, bytes that
 * are not well-formed UTF-8 and NUL become "\xNN" per byte.  Only the
 * first max bytes are shown (max 0: all), followed by "...[+N bytes]"
 * when there were more.  The result is malloc'd; the caller frees it.
 */
char *escape_dup(const void *p, size_t len, size_t max);
/*
 * For a terminal: escape_dup without doubling backslashes, so that text
 * escaped before (a DLQ reason) reads as it was written.  Safe for a
 * terminal, not unambiguous.
 */
char *escape_tty(const void *p, size_t len, size_t max);
/* Whether escape_tty would leave the len bytes at p as they are. */
bool escape_is_safe(const void *p, size_t len);

/* escape_dup of a NUL-terminated string (NULL gives "(null)"). */
char *escape_str(const char *s, size_t max);

/*
 * The last line of defence of log.c: rewrites the NUL-terminated line in
 * place (growing within cap bytes, cutting at the end when it must) so
 * that it holds no control character and no byte that is not well-formed
 * UTF-8; backslashes are left alone (the values in it were escaped
 * already, or are orderd's own text).  Returns the new length.
 */
size_t escape_line(char *line, size_t len, size_t cap);

/* Whether the len bytes at p would come out of escape_dup unchanged. */
bool escape_is_clean(const void *p, size_t len);

#endif
