/* tool.c: the pieces orderd-paysim and orderd-loadgen both need, so their main files hold only their own logic. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tool.h"
#include "util.h"

void
tool_print_version(const char *prog)
{
	printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION);
}

int
tool_parse_int(const char *opt, const char *arg, int64_t min, int64_t max,
    int64_t *out, char **cause)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	/* strtoll skips leading blanks and takes "" as 0; an option value
	 * must be the number and nothing else. */
	if (arg[0] == '\0' || arg[0] == ' ' || arg[0] == '\t' || *end != '\0') {
		*cause = xasprintf("%s %s: not an integer", opt, arg);
		return -EINVAL;
	}
	if (errno == ERANGE || v < min || v > max) {
		*cause = xasprintf("%s %s: must be in %lld..%lld", opt, arg,
		    (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int
tool_parse_double(const char *opt, const char *arg, double min, double max,
    double *out, char **cause)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (arg[0] == '\0' || arg[0] == ' ' || arg[0] == '\t' || *end != '\0' ||
	    errno == ERANGE || !isfinite(v)) {
		*cause = xasprintf("%s %s: not a number", opt, arg);
		return -EINVAL;
	}
	if (v < min || v > max) {
		*cause = xasprintf("%s %s: must be in %g..%g", opt, arg, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

char *
tool_option_error(int c, char *const argv[])
{
	/* getopt leaves optind past the offending word; for a short option
	 * (perhaps inside a bundle such as "-xc") optopt names the letter. */
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	bool is_long = strncmp(word, "--", 2) == 0;

	if (c == ':') {
		if (!is_long && optopt > 0 && optopt < 128)
			return xasprintf("-%c: needs an argument (see --help)", optopt);
		return xasprintf("%s: needs an argument (see --help)", word);
	}
	if (!is_long && optopt > 0 && optopt < 128)
		return xasprintf("-%c: unknown option (see --help)", optopt);
	return xasprintf("%s: unknown or ambiguous option (see --help)", word);
}

void
tool_config_args_add(struct tool_config_args *a, char *override)
{
	a->overrides = xrealloc(a->overrides,
	    (size_t)(a->noverrides + 1) * sizeof(*a->overrides));
	/* A copy: tool_scrub_argv() may wipe the original in argv. */
	a->overrides[a->noverrides++] = xstrdup(override);
}

int
tool_parse_args(const struct tool_cli *cli, int argc, char **argv,
    struct tool_config_args *ca, char **cause)
{
	static const struct option common_head[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
	};
	static const struct option common_tail[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct option *all;
	size_t n = 0, h = UTIL_ARRAY_SIZE(common_head), t = UTIL_ARRAY_SIZE(common_tail);
	int c, rc = 0;

	while (cli->options[n].name != NULL)
		n++;
	/* One table, in the order --help lists them. */
	all = xcalloc(h + n + t, sizeof(*all));
	memcpy(all, common_head, sizeof(common_head));
	memcpy(all + h, cli->options, n * sizeof(*all));
	memcpy(all + h + n, common_tail, sizeof(common_tail));
	/* Errors are ours to word (tool_option_error), on one line. */
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":c:s:hV", all, NULL)) != -1) {
		switch (c) {
		case 'c':
			ca->path = optarg;
			break;
		case 's':
			tool_config_args_add(ca, optarg);
			break;
		case 'h':
			cli->usage();
			rc = 1;
			break;
		case 'V':
			tool_print_version(cli->prog);
			rc = 1;
			break;
		default:
			/* '?' or ':' (getopt's complaints), else one of the program's. */
			if (c < 256)
				*cause = tool_option_error(c, argv);
			if (c < 256 || cli->option(c, optarg, cli->ctx, cause) < 0)
				rc = -EINVAL;
			break;
		}
	}
	free(all);
	if (rc == 0 && optind < argc) {
		*cause = xasprintf("%s: unexpected argument (see --help)", argv[optind]);
		rc = -EINVAL;
	}
	return rc;
}

void
tool_config_args_free(struct tool_config_args *a)
{
	/* An override may hold a secret (-s redis.password=...). */
	for (int i = 0; i < a->noverrides; i++)
		util_secret_free(a->overrides[i]);
	free(a->overrides);
	a->overrides = NULL;
	a->noverrides = 0;
}

/* The "SECTION.KEY" of an override "SECTION.KEY=VALUE" if it names a
 * secret, else NULL; the caller frees it. */
static char *
tool_secret_name(const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *name;
	size_t n;

	if (eq == NULL)
		return NULL;
	arg += strspn(arg, " \t");
	n = (size_t)(eq - arg);
	while (n > 0 && (arg[n - 1] == ' ' || arg[n - 1] == '\t'))
		n--;
	name = xstrndup(arg, n);
	if (config_is_secret(name))
		return name;
	free(name);
	return NULL;
}

void
tool_scrub_argv(const char *prog, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *v = NULL, *name;

		/* -s X, --set X, -sX, --set=X (getopt's spellings). */
		if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--set") == 0) && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--set=", 6) == 0)
			v = argv[i] + 6;
		else if (strncmp(argv[i], "-s", 2) == 0 && argv[i][2] != '\0' && argv[i][1] != '-')
			v = argv[i] + 2;
		if (v == NULL || (name = tool_secret_name(v)) == NULL)
			continue;
		/* What ps and /proc/PID/cmdline show from now on; they showed it
		 * until here, which is why the warning says to use a file. */
		for (char *p = strchr(v, '=') + 1; *p != '\0'; p++)
			*p = 'x';
		log_plain(prog, "warning: -s %s: a secret on the command line can be read by "
		    "other users of this host (ps); use %s_file", name, name);
		free(name);
	}
}

int
tool_config_load(const struct tool_config_args *a, struct config **out,
    char **cause)
{
	enum log_level level;
	int err;

	if ((err = config_load(out, a->path, a->overrides, a->noverrides, cause)) != 0)
		return err;
	/* From here on no log line can show one of them. */
	config_register_secrets(*out);
	/* config_load has already checked the name, so this cannot fail. */
	if ((*out)->log_level != NULL && log_level_parse((*out)->log_level, &level) == 0)
		log_set_level(level);
	return 0;
}

const void *
tool_header(const rd_kafka_message_t *m, const char *name, size_t *len)
{
	rd_kafka_headers_t *hdrs;
	const void *v;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	return v;
}

static volatile sig_atomic_t tool_stop;

static void
tool_on_signal(int sig)
{
	(void)sig;
	tool_stop = 1;
}

void
tool_signals_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tool_on_signal;
	/* SA_RESETHAND: the first signal asks for a graceful stop, the
	 * second finds the default action and ends the process at once. */
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool
tool_stopping(void)
{
	return tool_stop != 0;
}

void
tool_rng_seed(struct tool_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t
tool_rng_next(struct tool_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
tool_rng_below(struct tool_rng *r, uint64_t n)
{
	/* Rejection keeps the draw uniform when n does not divide 2^64. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;

	do
		v = tool_rng_next(r);
	while (v >= limit);
	return v % n;
}

double
tool_rng_double(struct tool_rng *r)
{
	/* The top 53 bits fill a double's mantissa exactly. */
	return (double)(tool_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
tool_random_u64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;

		/* No entropy source: time and pid still differ between runs. */
		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		v ^= (uint64_t)getpid() << 32;
	}
	return v;
}

uint64_t
tool_hash64(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	struct tool_rng r;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	/* FNV-1a alone spreads short inputs poorly in the high bits. */
	tool_rng_seed(&r, h ^ seed);
	return tool_rng_next(&r);
}
