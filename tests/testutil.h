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
/* A loopback port nobody listens on right now (the kernel's pick, released). */
int tu_free_port(void);
/* The value of the sample named exactly so (name and labels) in a /metrics
 * text, or -1. */
double tu_metric(const char *text, const char *sample);
/* Runs Check's suite with the given name and returns main()'s exit status. */
struct Suite;
int tu_run(struct Suite *s);

#endif
