/* config_fixture.c: configuration files for the tests of config.c, what config_load must answer, and the lines config_reload reports. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_fixture.h"
#include "testutil.h"
#include "util.h"

/* Writes text to a new file DIR/name and returns its path (caller frees). */
char *
write_file(const char *name, const char *text)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	free(dir);
	return path;
}

struct config *
load_ok(const char *path, char *const *ov, int nov)
{
	struct config *cf = NULL;
	char *cause = NULL;
	int err = config_load(&cf, path, ov, nov, &cause);

	ck_assert_msg(err == 0, "config_load(%s): %d %s", path ? path : "(default)", err,
	    cause ? cause : "");
	ck_assert_ptr_nonnull(cf);
	ck_assert_ptr_null(cause);
	return cf;
}

/* Points config_default_path at a file that does not exist; returns it. */
char *
no_default_file(void)
{
	char *dir = tu_tmpdir(), *path = xasprintf("%s/orderd.conf", dir);

	free(dir);
	config_default_path = path;
	return path;
}

struct config sentinel;

/* Loads text as a file; expects failure with err and exactly the cause
 * "PATH:" + where (or where alone when it starts with '-'). */
void
expect_file_error(const char *text, int err, const char *where)
{
	char *path = write_file("orders.conf", text), *cause = NULL, *want;
	struct config *cf = &sentinel;	/* config_load must reset it to NULL */

	ck_assert_int_eq(config_load(&cf, path, NULL, 0, &cause), err);
	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(cause);
	want = xasprintf("%s:%s", path, where);
	ck_assert_str_eq(cause, want);
	ck_assert_ptr_null(strchr(cause, '\n'));
	free(want);
	free(cause);
	unlink(path);
	free(path);
}

void
expect_override_error(const char *override, const char *want)
{
	char *ov[] = { "redis.port=6380", (char *)override, "log.level=debug" };
	char *cause = NULL, *missing;
	struct config *cf = &sentinel;
	const char *saved = config_default_path;

	/* No file, so that only the override can be wrong; the good overrides
	 * around it must not hide it. */
	missing = no_default_file();
	ck_assert_int_eq(config_load(&cf, NULL, ov, 3, &cause), -EINVAL);
	config_default_path = saved;
	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(cause);
	ck_assert_str_eq(cause, want);
	ck_assert_ptr_null(strchr(cause, '\n'));
	free(cause);
	free(missing);
}

void
collect_line(const char *line, void *arg)
{
	struct lines *l = arg;

	ck_assert_int_lt(l->n, 32);
	l->line[l->n++] = xstrdup(line);
}

bool
has_line(const struct lines *l, const char *want)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->line[i], want) == 0)
			return true;
	return false;
}

void
lines_free(struct lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->line[i]);
	l->n = 0;
}
