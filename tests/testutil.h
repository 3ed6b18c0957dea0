/* testutil.h: what every test needs: temporary directories and the servers of tests/servers.sh. */
#ifndef ORDERD_TESTUTIL_H
#define ORDERD_TESTUTIL_H

#include <stdint.h>

/* A new empty directory under $TMPDIR (or /tmp); the caller frees the string. */
char *tu_tmpdir(void);
/* The value of an environment variable that the harness must set; the
 * current test fails (never skips) when it is missing. */
const char *tu_env(const char *name);
/* A name unique to this process and call, for topics, keys, order ids. */
char *tu_unique(const char *prefix);
/* Runs Check's suite with the given name and returns main()'s exit status. */
struct Suite;
int tu_run(struct Suite *s);

#endif
