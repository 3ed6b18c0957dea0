/* testutil.c: helpers shared by the Check test programs. */
#include "autoconfig.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "util.h"

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path = xasprintf("%s/orderd-test.XXXXXX", base && *base ? base : "/tmp");

	ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp %s failed", path);
	return path;
}

const char *
tu_env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL && *v != '\0',
	    "%s is not set: run the tests through 'tests/servers.sh make check' "
	    "(or contrib/test.sh), which starts the servers", name);
	return v;
}

char *
tu_unique(const char *prefix)
{
	static unsigned counter;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return xasprintf("%s-%ld-%ld%03ld-%u", prefix, (long)getpid(),
	    (long)ts.tv_sec, (long)(ts.tv_nsec / 1000000), counter++);
}

int
tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
