/* config_fixture.h: configuration files in scratch directories, config_load expected to succeed or to fail with an exact cause, and config_reload's report lines collected. */
#ifndef ORDERD_CONFIG_FIXTURE_H
#define ORDERD_CONFIG_FIXTURE_H

#include <stdbool.h>

/* By its path: a build directory configured before autoconf's header was
 * renamed autoconfig.h still holds a stale config.h that -I. finds first. */
#include "../src/config.h"

/* Writes text to a new file DIR/name and returns its path (caller frees). */
char *write_file(const char *name, const char *text);
/* config_load that must succeed: the configuration, no cause. */
struct config *load_ok(const char *path, char *const *ov, int nov);
/* Points config_default_path at a file that does not exist; returns it. */
char *no_default_file(void);
/* What a test points its result at before a config_load that must fail,
 * which must reset it to NULL. */
extern struct config sentinel;
/* Loads text as a file; expects failure with err and exactly the cause
 * "PATH:" + where (or where alone when it starts with '-'). */
void expect_file_error(const char *text, int err, const char *where);
/* Loads no file and the override between two good ones; expects -EINVAL
 * and exactly the cause want. */
void expect_override_error(const char *override, const char *want);

/* The lines config_reload reports, collected by collect_line (its log_fn). */
struct lines {
	char *line[32];
	int n;
};

void collect_line(const char *line, void *arg);
bool has_line(const struct lines *l, const char *want);
/* Frees the lines and empties l for the next reload. */
void lines_free(struct lines *l);

#endif
