/* check_escape.c: unit tests of escaping untrusted bytes and of the log's last defences: no forged line, no terminal control, no secret. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

static void
expect_escape(const char *in, size_t len, size_t max, const char *want)
{
	char *got = escape_dup(in, len, max);

	ck_assert_str_eq(got, want);
	if (max == 0 || len <= max)
		ck_assert_int_eq(escape_is_clean(in, len), strcmp(got, in) == 0 &&
		    strlen(in) == len);
	free(got);
}

/* The length of a literal, NULs included. */
#define EXPECT_ESCAPE(lit, max, want) expect_escape((lit), sizeof(lit) - 1, (max), (want))

START_TEST(test_escape_values)
{
	/* Printable ASCII and UTF-8 text stay as they are. */
	EXPECT_ESCAPE("order-1", 0, "order-1");
	EXPECT_ESCAPE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6", 0,
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6");
	/* A newline and a fake log line after it: one line. */
	EXPECT_ESCAPE("x\n2026-01-01T00:00:00.000Z ERROR engine: fake", 0,
	    "x\\x0a2026-01-01T00:00:00.000Z ERROR engine: fake");
	/* Terminal escapes: ESC (C0), CSI as a C1 control in UTF-8, DEL, NUL. */
	EXPECT_ESCAPE("\x1b[2J\x1b]0;pwned\x07", 0, "\\x1b[2J\\x1b]0;pwned\\x07");
	EXPECT_ESCAPE("a\xc2\x9b" "31mb", 0, "a\\xc2\\x9b31mb");
	EXPECT_ESCAPE("a\x7f\0b", 0, "a\\x7f\\x00b");
	/* A backslash is doubled, so that a literal "\x0a" is not a newline. */
	EXPECT_ESCAPE("a\\x0a", 0, "a\\\\x0a");
	/* Bytes that are not UTF-8: a lone continuation, an overlong NUL, a
	 * surrogate, a truncated sequence, a raw 8-bit CSI. */
	EXPECT_ESCAPE("\x80", 0, "\\x80");
	EXPECT_ESCAPE("\xc0\x80", 0, "\\xc0\\x80");
	EXPECT_ESCAPE("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");
	EXPECT_ESCAPE("\xe2\x82", 0, "\\xe2\\x82");
	EXPECT_ESCAPE("\x9b" "2J", 0, "\\x9b2J");
	/* Bidirectional overrides and the line separator (U+202E, U+2028). */
	EXPECT_ESCAPE("a\xe2\x80\xae" "b", 0, "a\\xe2\\x80\\xaeb");
	EXPECT_ESCAPE("a\xe2\x80\xa8" "b", 0, "a\\xe2\\x80\\xa8b");
	/* Long values are cut, and say how much is missing. */
	EXPECT_ESCAPE("abcdefghij", 4, "abcd...[+6 bytes]");
	EXPECT_ESCAPE("abcd", 4, "abcd");
	/* For a terminal: the same, but a backslash stays one. */
	{
		char *t = escape_tty("a\\x0a\n\x1b", 7, 0);

		ck_assert_str_eq(t, "a\\x0a\\x0a\\x1b");
		ck_assert(escape_is_safe("a\\x0a", 5));
		ck_assert(!escape_is_safe("a\n", 2));
		free(t);
	}
	{
		char *s = escape_str(NULL, 0);

		ck_assert_str_eq(s, "(null)");
		free(s);
	}
}
END_TEST

START_TEST(test_escape_line)
{
	char line[64];
	size_t n;

	strcpy(line, "clean line \\x0a stays");
	n = escape_line(line, strlen(line), sizeof(line));
	ck_assert_str_eq(line, "clean line \\x0a stays");
	ck_assert_uint_eq(n, strlen(line));
	strcpy(line, "two\nlines\r\x1b[1m");
	n = escape_line(line, strlen(line), sizeof(line));
	ck_assert_str_eq(line, "two\\x0alines\\x0d\\x1b[1m");
	ck_assert_uint_eq(n, strlen(line));
	/* Growing past the buffer cuts it, never inside a \xNN. */
	memset(line, '\n', 20);
	line[20] = '\0';
	n = escape_line(line, 20, 15);
	ck_assert_str_eq(line, "\\x0a\\x0a\\x0a");
	ck_assert_uint_eq(n, 12);
}
END_TEST

/* Runs fn with stderr going to a file; returns what it wrote (caller frees). */
static char *
capture_stderr(void (*fn)(void))
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/stderr", dir), *out = NULL;
	int saved = dup(2);
	FILE *f = fopen(path, "w+");

	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fclose(f);
	ck_assert_int_eq(util_read_file(path, &out, NULL), 0);
	unlink(path);
	free(path);
	free(dir);
	return out;
}

static void
log_hostile(void)
{
	log_set_level(LOG_LEVEL_INFO);
	log_msg(LOG_LEVEL_WARN, "engine", "o-1", "type: %s", "X\n2026-01-01T00:00:00.000Z "
	    "ERROR engine: forged\x1b[2J");
	log_info("redis", "AUTH with %s refused", "Secret-Password-77");
	log_plain("orderctl", "cannot use %s: %s", "Secret-Password-77", "bad\nline");
}

START_TEST(test_log_defences)
{
	char *out;
	int lines = 0;

	log_secret_add("Secret-Password-77");
	log_secret_add("abc");		/* too short to register: would garble every line */
	out = capture_stderr(log_hostile);
	for (char *p = out; *p != '\0'; p++)
		lines += *p == '\n';
	/* Three calls, three lines, whatever the values held. */
	ck_assert_msg(lines == 3, "%d lines:\n%s", lines, out);
	ck_assert_ptr_null(strchr(out, '\x1b'));
	ck_assert_ptr_null(strstr(out, "Secret-Password-77"));
	ck_assert_ptr_nonnull(strstr(out, "order=o-1 type: X\\x0a2026-01-01T00:00:00.000Z ERROR "
	    "engine: forged\\x1b[2J\n"));
	ck_assert_ptr_nonnull(strstr(out, "redis: AUTH with [redacted] refused\n"));
	ck_assert_ptr_nonnull(strstr(out, "orderctl: cannot use [redacted]: bad\\x0aline\n"));
	free(out);
	/* Cleared, the secret is a string like any other. */
	log_secrets_clear();
	{
		char line[64] = "x Secret-Password-77 abc";

		ck_assert_uint_eq(log_redact(line, strlen(line), sizeof(line)), strlen(line));
		log_secret_add("Secret-Password-77");
		log_redact(line, strlen(line), sizeof(line));
		ck_assert_str_eq(line, "x [redacted] abc");
		log_secrets_clear();
	}
}
END_TEST

static Suite *
escape_suite(void)
{
	Suite *s = suite_create("escape");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_escape_values);
	tcase_add_test(tc, test_escape_line);
	tcase_add_test(tc, test_log_defences);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(escape_suite());
}
