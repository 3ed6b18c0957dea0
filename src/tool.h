/* tool.h: what orderd-paysim and orderd-loadgen share: options, configuration, headers, signals and randomness. */
#ifndef ORDERD_TOOL_H
#define ORDERD_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <getopt.h>
#include <librdkafka/rdkafka.h>

struct config;

/* The exit statuses of every orderd program (doc: cli.md). */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAIL 1
#define TOOL_EXIT_USAGE 2

/* Prints "PROG (orderd) VERSION" on stdout, for --version. */
void tool_print_version(const char *prog);

/*
 * Parses a whole decimal integer in min..max.  Returns 0, or -EINVAL with
 * *cause (caller frees) naming the option: "--delay-ms x: not an integer".
 */
int tool_parse_int(const char *opt, const char *arg, int64_t min, int64_t max,
    int64_t *out, char **cause);
/* Parses a finite number in min..max; same contract as tool_parse_int. */
int tool_parse_double(const char *opt, const char *arg, double min, double max,
    double *out, char **cause);

/*
 * The one-line message for what getopt_long returned as '?' or ':' (opterr
 * must be 0 and optstring start with ':'); the caller frees it.
 */
char *tool_option_error(int c, char *const argv[]);

/* -c FILE and the -s overrides, gathered while parsing the command line. */
struct tool_config_args {
	const char *path;		/* NULL: the default file */
	char **overrides;		/* copies of the -s arguments */
	int noverrides;
};

/*
 * A tool's command line: the options every tool takes (-c/--config FILE,
 * -s/--set S.K=V, -h/--help, -V/--version) and the program's own, long
 * only: getopt_long's table, each val >= 256, ended by a zeroed entry.
 */
struct tool_cli {
	const char *prog;		/* for --version */
	const struct option *options;	/* the program's own */
	void (*usage)(void);		/* prints the --help text on stdout */
	/* One of the program's options with its argument (NULL when it takes
	 * none): returns 0, or -EINVAL with *cause (caller frees). */
	int (*option)(int val, const char *arg, void *ctx, char **cause);
	void *ctx;
};

/*
 * Parses argv: -c and -s into ca, the program's options through
 * cli->option.  Returns 0; 1 when --help or --version was printed (exit
 * TOOL_EXIT_OK); or -EINVAL with *cause (caller frees) for an unknown or
 * ambiguous option, a missing argument, a word that is no option, or what
 * cli->option refused (exit TOOL_EXIT_USAGE).
 */
int tool_parse_args(const struct tool_cli *cli, int argc, char **argv,
    struct tool_config_args *ca, char **cause);

/* Adds a copy of one -s argument. */
void tool_config_args_add(struct tool_config_args *a, char *override);
/*
 * Overwrites with 'x' the value of every -s override in argv that sets a
 * secret (config_is_secret), so that ps shows it no longer, and warns on
 * stderr ("PROG: warning: ...") that the _file form keeps it out of ps
 * altogether.  Call after the options are parsed.
 */
void tool_scrub_argv(const char *prog, int argc, char **argv);
void tool_config_args_free(struct tool_config_args *a);
/* config_load with these arguments, then registers its secrets with log.c
 * and applies [log] level.  Returns 0
 * or a negative errno with *cause (caller frees). */
int tool_config_load(const struct tool_config_args *a, struct config **out,
    char **cause);

/* The value of the last header called name, or NULL; *len gets its size. */
const void *tool_header(const rd_kafka_message_t *m, const char *name, size_t *len);

/*
 * SIGINT and SIGTERM ask the program to stop (tool_stopping turns true); a
 * second one kills it at once, for when the graceful stop hangs.  SIGPIPE
 * is ignored.
 */
void tool_signals_init(void);
bool tool_stopping(void);

/* A small fast PRNG (splitmix64): reproducible per seed, not for secrets. */
struct tool_rng {
	uint64_t state;
};

void tool_rng_seed(struct tool_rng *r, uint64_t seed);
uint64_t tool_rng_next(struct tool_rng *r);
/* Uniform in 0..n-1 (n >= 1). */
uint64_t tool_rng_below(struct tool_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double tool_rng_double(struct tool_rng *r);
/* 64 bits from the kernel's random source, for seeds and run ids. */
uint64_t tool_random_u64(void);
/* Mixes bytes with a seed into 64 well-spread bits (FNV-1a then splitmix). */
uint64_t tool_hash64(const void *p, size_t len, uint64_t seed);

#endif
