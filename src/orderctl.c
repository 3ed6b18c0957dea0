/* orderctl.c: the operator's tool: main(), its options, the table of commands (each in a ctl_*.c file of its group) and what they share. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "config.h"
#include "ctl.h"
#include "escape.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "tool.h"
#include "util.h"

#define CTL_KAFKA_TIMEOUT_MS 10000	/* the start-up check of the broker */

/* The commands, in the order of --help.  A new one is a file defining its
 * entry, a line here and its line in Makefile.am. */
extern const struct ctl_entry ctl_stock_add_entry;
extern const struct ctl_entry ctl_stock_show_entry;
extern const struct ctl_entry ctl_order_show_entry;
extern const struct ctl_entry ctl_reconcile_entry;
extern const struct ctl_entry ctl_reconcile_changelog_entry;
extern const struct ctl_entry ctl_outbox_entry;
extern const struct ctl_entry ctl_outbox_list_entry;
extern const struct ctl_entry ctl_outbox_retry_entry;
extern const struct ctl_entry ctl_outbox_drop_entry;
extern const struct ctl_entry ctl_dlq_list_entry;
extern const struct ctl_entry ctl_topics_create_entry;
extern const struct ctl_entry ctl_recover_entry;

static const struct ctl_entry *const ctl_table[] = {
	&ctl_stock_add_entry,
	&ctl_stock_show_entry,
	&ctl_order_show_entry,
	&ctl_reconcile_entry,
	&ctl_reconcile_changelog_entry,
	&ctl_outbox_entry,
	&ctl_outbox_list_entry,
	&ctl_outbox_retry_entry,
	&ctl_outbox_drop_entry,
	&ctl_dlq_list_entry,
	&ctl_topics_create_entry,
	&ctl_recover_entry,
	NULL,
};

/* --help's columns: a synopsis wider than the first goes on a line of its own. */
#define CTL_HELP_SYNOPSIS 30
#define CTL_HELP_INDENT "                                 "	/* 2 + 30 + 1 */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: orderctl [-c FILE] [-s SECTION.KEY=VALUE]... COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n");
	for (int i = 0; ctl_table[i] != NULL; i++) {
		const struct ctl_entry *e = ctl_table[i];
		const char *syn = e->synopsis != NULL ? e->synopsis : e->usage, *h, *nl;

		if (strlen(syn) <= CTL_HELP_SYNOPSIS)
			fprintf(f, "  %-*s ", CTL_HELP_SYNOPSIS, syn);
		else
			fprintf(f, "  %s\n%s", syn, CTL_HELP_INDENT);
		for (h = e->help; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(f, "%.*s\n%s", (int)(nl - h), h, CTL_HELP_INDENT);
		fprintf(f, "%s\n", h);
	}
	fprintf(f,
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -s, --set S.K=V     override one key; may repeat\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       the version\n"
	    "\n"
	    "Exit status: 0 success, 1 a failed check or operation, 2 bad usage or\n"
	    "configuration.\n", CONFIG_DEFAULT_PATH);
}

int
ctl_fail(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	/* Through log_plain: no secret and no control character reaches the
	 * terminal, whatever the message quotes. */
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	log_plain("orderctl", "%s", msg != NULL ? msg : "out of memory");
	free(msg);
	return 1;
}

int
ctl_usage(struct ctl *c)
{
	fprintf(stderr, "orderctl: usage: %s\n", c->entry->usage);
	return 2;
}

/* A command opens only what its entry says it talks to: the table stays
 * true to the code. */
static void
ctl_check_needs(const struct ctl *c, int what)
{
	if (c->entry != NULL && (c->entry->needs & what) == 0) {
		fprintf(stderr, "orderctl: %s: opens what its table entry does not need\n",
		    c->entry->name);
		abort();
	}
}

/*
 * Text output shows bytes that came from messages (ids, reasons, error
 * texts, changelog records) and from Redis keys: every string of doc is
 * replaced by its escaped form (escape_tty), so that none can move the
 * cursor or forge a line on the operator's terminal.  --json needs none
 * of this: JSON escapes control characters itself.
 */
/* The escaped copy of a string that needs one, else NULL. */
static json_t *
ctl_clean_string(json_t *v)
{
	json_t *clean;
	char *e;

	if (!json_is_string(v) || (escape_is_safe(json_string_value(v), json_string_length(v)) &&
	    json_string_length(v) <= ESCAPE_TTY_MAX))
		return NULL;
	e = escape_tty(json_string_value(v), json_string_length(v), ESCAPE_TTY_MAX);
	clean = json_string(e);
	free(e);
	return clean;
}

void
ctl_json_clean(json_t *doc)
{
	json_t *v, *clean;
	size_t i;

	if (json_is_object(doc)) {
		for (void *it = json_object_iter(doc); it != NULL;
		    it = json_object_iter_next(doc, it)) {
			v = json_object_iter_value(it);
			if ((clean = ctl_clean_string(v)) != NULL)
				json_object_iter_set_new(doc, it, clean);
			else
				ctl_json_clean(v);
		}
	} else if (json_is_array(doc)) {
		json_array_foreach(doc, i, v) {
			if ((clean = ctl_clean_string(v)) != NULL)
				json_array_set_new(doc, i, clean);
			else
				ctl_json_clean(v);
		}
	}
}

void
ctl_print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

	puts(s);
	free(s);
	json_decref(doc);
}

int
ctl_journal(struct ctl *c)
{
	struct journal_options jo = { .synchronous_full = true, .busy_timeout_ms = 10000 };
	char *cause = NULL;

	ctl_check_needs(c, CTL_JOURNAL);
	if (c->j != NULL)
		return 0;
	if (journal_open(&c->j, c->cf->journal_path, &jo, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	return 0;
}

int
ctl_redis(struct ctl *c)
{
	struct cluster_options o = {
		.cluster = c->cf->redis_cluster,
		.host = c->cf->redis_host,
		.port = c->cf->redis_port,
		.nodes = c->cf->redis_nodes,
		.timeout_ms = c->cf->redis_timeout_ms,
		.user = c->cf->redis_user,
		.password = c->cf->redis_secret,
	};
	char *cause = NULL;

	ctl_check_needs(c, CTL_REDIS);
	if (c->rc != NULL)
		return 0;
	if (cluster_sync_open(&c->rc, &o, &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	return 0;
}

int
ctl_kafka_check(struct ctl *c, const char *const *topics, int ntopics, int *partitions)
{
	char *cause = NULL;

	ctl_check_needs(c, CTL_KAFKA);
	if (kafka_check_access(c->cf, topics, ntopics, partitions, CTL_KAFKA_TIMEOUT_MS,
	    &cause) < 0) {
		ctl_fail("%s", cause);
		free(cause);
		return 1;
	}
	return 0;
}

/* Whether arg is the word of len bytes at w. */
static bool
ctl_word_is(const char *w, size_t len, const char *arg)
{
	return strlen(arg) == len && strncmp(arg, w, len) == 0;
}

/* How many words of argv the name of e is (0: not e). */
static int
ctl_match(const struct ctl_entry *e, int argc, char **argv)
{
	const char *w = e->name;
	int n = 0;

	while (*w != '\0') {
		size_t len = strcspn(w, " ");

		if (n >= argc || !ctl_word_is(w, len, argv[n]))
			return 0;
		n++;
		w += len;
		w += *w == ' ';
	}
	return n;
}

/*
 * The entry whose name starts argv, the longest ("reconcile --changelog"
 * before "reconcile"), with *words its length; else the entry of the
 * first word's group that answers a usage error for it, with *words 0.
 */
static const struct ctl_entry *
ctl_lookup(int argc, char **argv, int *words)
{
	const struct ctl_entry *best = NULL;

	*words = 0;
	for (int i = 0; ctl_table[i] != NULL; i++) {
		int n = ctl_match(ctl_table[i], argc, argv);

		if (n > *words) {
			best = ctl_table[i];
			*words = n;
		}
	}
	for (int i = 0; best == NULL && ctl_table[i] != NULL; i++) {
		const struct ctl_entry *e = ctl_table[i];

		if (e->group_usage && ctl_word_is(e->name, strcspn(e->name, " "), argv[0]))
			best = e;
	}
	return best;
}

/* Finds the command, checks its arguments, opens what it needs first and
 * runs it; returns the exit status. */
static int
ctl_run(struct ctl *c, int argc, char **argv)
{
	const struct ctl_entry *e;
	int words, nargs;

	if (argc == 0) {
		usage(stderr);	/* "orderctl -- --json" */
		return 2;
	}
	if ((e = ctl_lookup(argc, argv, &words)) == NULL) {
		fprintf(stderr, "orderctl: unknown command '%s'\n", argv[0]);
		usage(stderr);
		return 2;
	}
	c->entry = e;
	nargs = argc - words;
	if (words == 0 || nargs < e->min_args || (e->max_args >= 0 && nargs > e->max_args))
		return ctl_usage(c);
	if ((e->opens & CTL_JOURNAL) && ctl_journal(c))
		return 1;
	if ((e->opens & CTL_REDIS) && ctl_redis(c))
		return 1;
	return e->exec(c, nargs, argv + words);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct tool_config_args args = { 0 };
	struct ctl c = { 0 };
	char *cause = NULL, **rest;
	int ch, nrest, status;

	opterr = 0;
	/* "+" stops at the command; options after it are read below. */
	while ((ch = getopt_long(argc, argv, "+:c:s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			args.path = optarg;
			break;
		case 's':
			tool_config_args_add(&args, optarg);
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			tool_config_args_free(&args);
			return 0;
		case 'V':
			tool_print_version("orderctl");
			tool_config_args_free(&args);
			return 0;
		default:
			cause = tool_option_error(ch, argv);
			log_plain("orderctl", "%s", cause);
			free(cause);
			usage(stderr);
			tool_config_args_free(&args);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		tool_config_args_free(&args);
		return 2;
	}
	tool_scrub_argv("orderctl", argc, argv);
	/* --json may come anywhere after the command too. */
	rest = xcalloc((size_t)(argc - optind), sizeof(*rest));
	nrest = 0;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else
			rest[nrest++] = argv[i];
	}
	log_set_level(LOG_LEVEL_WARN);
	if (tool_config_load(&args, &c.cf, &cause) < 0) {
		log_plain("orderctl", "%s", cause);
		free(cause);
		free(rest);
		tool_config_args_free(&args);
		return 2;
	}
	if (log_get_level() > LOG_LEVEL_WARN)
		log_set_level(LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	status = ctl_run(&c, nrest, rest);
	cluster_sync_free(c.rc);
	journal_free(c.j);
	config_free(c.cf);
	free(rest);
	tool_config_args_free(&args);
	return status;
}
