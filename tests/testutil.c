/* testutil.c: helpers shared by the Check test programs. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int
tu_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

double
tu_metric(const char *text, const char *sample)
{
	size_t n = strlen(sample);

	for (const char *l = text; l != NULL && *l; ) {
		const char *e = strchr(l, '\n');

		if (strncmp(l, sample, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
		l = e ? e + 1 : NULL;
	}
	return -1;
}
