/* escape.c: printable forms of untrusted bytes for log lines and terminals (control characters as \xNN, long values cut with a marker). */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "util.h"

/*
 * How many bytes at s (n left) may be copied as they are: 1 for printable
 * ASCII, the length of a well-formed UTF-8 sequence whose code point
 * cannot move a cursor, end a line or reorder text, and 0 when s[0] must
 * be written as \xNN.  Whether a backslash is escaped is the caller's.
 */
static size_t
escape_keep(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need;
	uint32_t cp;

	if (c >= 0x20 && c < 0x7f)
		return 1;
	/* C0, DEL, stray continuation bytes, overlong leads (0xc0, 0xc1)
	 * and leads beyond U+10FFFF. */
	if (c < 0xc2 || c > 0xf4)
		return 0;
	need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (need == 2) {
		cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
		/* C1 controls: 0x9b is CSI to terminals that take 8-bit controls. */
		return cp < 0xa0 ? 0 : 2;
	}
	if (need == 3) {
		cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
		if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;	/* overlong, or a surrogate */
		/* Line and paragraph separators, and the bidirectional marks
		 * and overrides that make a line read other than it is. */
		if (cp == 0x061c || cp == 0x200e || cp == 0x200f ||
		    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
			return 0;
		return 3;
	}
	cp = ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) |
	    (s[3] & 0x3fu);
	return cp < 0x10000 || cp > 0x10ffff ? 0 : 4;
}

bool
escape_is_clean(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len;) {
		size_t k = escape_keep(s + i, len - i);

		if (k == 0 || s[i] == '\\')
			return false;
		i += k;
	}
	return true;
}

/* Writes the escaped form of s[0..len) to out (which has room for 4 bytes
 * per input byte); returns the bytes written. */
static size_t
escape_into(char *out, const unsigned char *s, size_t len, bool backslash)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		size_t k = escape_keep(s + i, len - i);

		if (k > 0 && !(backslash && s[i] == '\\')) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		} else if (s[i] == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
			i++;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 0xf];
			i++;
		}
	}
	return o;
}

static char *
escape_alloc(const void *p, size_t len, size_t max, bool backslash)
{
	size_t shown = max > 0 && len > max ? max : len, o;
	char *out = xmalloc(shown * 4 + 48);

	o = escape_into(out, p != NULL ? p : (const void *)"", p != NULL ? shown : 0,
	    backslash);
	if (shown < len)
		o += (size_t)snprintf(out + o, 48, "...[+%zu bytes]", len - shown);
	out[o] = '\0';
	return out;
}

char *
escape_dup(const void *p, size_t len, size_t max)
{
	return escape_alloc(p, len, max, true);
}

char *
escape_tty(const void *p, size_t len, size_t max)
{
	return escape_alloc(p, len, max, false);
}

bool
escape_is_safe(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len;) {
		size_t k = escape_keep(s + i, len - i);

		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

char *
escape_str(const char *s, size_t max)
{
	if (s == NULL)
		return xstrdup("(null)");
	return escape_dup(s, strlen(s), max);
}

size_t
escape_line(char *line, size_t len, size_t cap)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t i = 0, o;
	char *tmp;

	/* The common case: nothing to do, and no copy. */
	while (i < len) {
		size_t k = escape_keep(s + i, len - i);

		if (k == 0)
			break;
		i += k;
	}
	if (i == len)
		return len;
	tmp = xmalloc(len * 4 + 1);
	o = escape_into(tmp, s, len, false);
	if (o > cap - 1) {
		/* Cut, but never inside a UTF-8 sequence or a \xNN. */
		o = cap - 1;
		while (o > 0 && ((unsigned char)tmp[o] & 0xc0) == 0x80)
			o--;
		for (size_t b = o >= 3 ? o - 3 : 0; b + 1 < o; b++)
			if (tmp[b] == '\\' && tmp[b + 1] == 'x') {
				o = b;
				break;
			}
	}
	memcpy(line, tmp, o);
	line[o] = '\0';
	free(tmp);
	return o;
}
