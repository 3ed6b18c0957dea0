/* orderd.c: main() of the service: options, configuration, signals and the one libuv loop. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config.h"
#include "engine.h"
#include "fault.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "notify.h"
#include "retention.h"
#include "status.h"
#include "tool.h"
#include "util.h"

#define ORDERD_GRACE_MS 30000

struct orderd {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	struct tool_config_args args;
	struct config *cf;
	/* The journal: opened here, handed to the engine (and through it the
	 * relay) and retention, freed after the loop ends. */
	struct journal *journal;
	struct engine *engine;
	struct retention *retention;	/* NULL until the engine runs */
	struct status *status;		/* /metrics, /healthz; NULL when disabled */
	int signals;
	int exit_status;		/* 1 after a fault orderd stopped for */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: orderd [-c FILE] [-s SECTION.KEY=VALUE]... [--check-config]\n"
	    "\n"
	    "Runs the order saga between Kafka and Redis, in the foreground, logging\n"
	    "to stderr.  SIGTERM/SIGINT stop it gracefully (a second one at once),\n"
	    "SIGHUP reloads the reloadable keys.\n"
	    "\n"
	    "  -c, --config FILE      configuration file (default %s)\n"
	    "  -s, --set S.KEY=VALUE  override one key of the file; may repeat\n"
	    "      --check-config     check the configuration, print it, and exit\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          the version\n", CONFIG_DEFAULT_PATH);
}

static void
orderd_stopped(void *arg)
{
	struct orderd *o = arg;

	o->engine = NULL;
	uv_close((uv_handle_t *)&o->sigterm, NULL);
	uv_close((uv_handle_t *)&o->sigint, NULL);
	uv_close((uv_handle_t *)&o->sighup, NULL);
}

/* The graceful stop, for a signal or a fault. */
static void
orderd_stop(struct orderd *o, int grace_ms)
{
	/* First, so that no request reads an engine being torn down. */
	status_close(o->status);
	o->status = NULL;
	notify_stopping();
	/* Before the engine: no retention pass may start while it stops. */
	retention_close(o->retention);
	o->retention = NULL;
	if (o->engine != NULL)
		engine_stop(o->engine, grace_ms, orderd_stopped, o);
}

/* Not a signal handler: called from the loop, so anything goes here. */
static void
orderd_on_stop(uv_signal_t *h, int signum)
{
	struct orderd *o = h->data;

	if (++o->signals > 1) {
		log_warn("orderd", "second %s: exiting now; the journal has the rest",
		    strsignal(signum));
		exit(1);
	}
	log_info("orderd", "%s: stopping", strsignal(signum));
	orderd_stop(o, ORDERD_GRACE_MS);
}

/* How long a stop for a fault waits for steps and the outbox: the fault
 * may be what keeps them from finishing, and the journal has them. */
#define ORDERD_FAULT_GRACE_MS 5000

/* The engine cannot go on: stop as for SIGTERM, but exit 1, so that a
 * supervisor notices (and restarts it, once the cause is fixed). */
static void
orderd_on_fatal(const char *why, void *arg)
{
	struct orderd *o = arg;

	if (o->exit_status != 0 || o->signals > 0)
		return;
	log_error("orderd", "cannot go on, stopping (exit 1): %s", why);
	o->exit_status = 1;
	orderd_stop(o, ORDERD_FAULT_GRACE_MS);
}

static void
orderd_reload_line(const char *line, void *arg)
{
	log_info("config", "%s", line);
}

static void
orderd_on_hup(uv_signal_t *h, int signum)
{
	struct orderd *o = h->data;
	struct config *next = NULL;
	char *cause = NULL;
	enum log_level level;
	int n;

	notify_reloading();
	if (tool_config_load(&o->args, &next, &cause) < 0) {
		log_error("config", "reload failed, keeping the running configuration: %s",
		    cause);
		free(cause);
		notify_ready();
		return;
	}
	n = config_reload(o->cf, next, orderd_reload_line, NULL);
	if (log_level_parse(o->cf->log_level, &level) == 0)
		log_set_level(level);
	if (o->engine != NULL)
		engine_reload(o->engine, next);
	if (o->retention != NULL)
		retention_reload(o->retention);
	log_info("config", "reloaded %s: %d keys changed", o->cf->path ? o->cf->path :
	    "(built-in defaults)", n);
	config_free(next);
	notify_ready();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct orderd o;
	bool check = false;
	char *cause = NULL;
	int c, err, status = 0;

	memset(&o, 0, sizeof(o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:s:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.args.path = optarg;
			break;
		case 's':
			tool_config_args_add(&o.args, optarg);
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			tool_print_version("orderd");
			return 0;
		default:
			cause = tool_option_error(c, argv);
			fprintf(stderr, "orderd: %s\n", cause);
			usage(stderr);
			free(cause);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "orderd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	tool_scrub_argv("orderd", argc, argv);
	if (tool_config_load(&o.args, &o.cf, &cause) < 0) {
		log_plain("orderd", "%s", cause);
		free(cause);
		tool_config_args_free(&o.args);
		return 2;
	}
	{
		/* librdkafka is the judge of [kafka]: ask it now, not at start-up. */
		rd_kafka_conf_t *kc = kafka_conf_new(o.cf, NULL, NULL, &cause);

		if (kc == NULL) {
			log_plain("orderd", "%s", cause);
			free(cause);
			config_free(o.cf);
			tool_config_args_free(&o.args);
			return 2;
		}
		rd_kafka_conf_destroy(kc);
	}
	if (check) {
		char *dump = config_dump(o.cf);

		fputs(dump, stdout);
		fprintf(stderr, "orderd: configuration OK (%s)\n", o.cf->path ?
		    o.cf->path : "built-in defaults");
		free(dump);
		config_free(o.cf);
		tool_config_args_free(&o.args);
		return 0;
	}

	if (fault_init() < 0) {
		config_free(o.cf);
		tool_config_args_free(&o.args);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* librdkafka runs a thread per broker; glibc would give each its own
	 * malloc arena, and memory freed in one is not reused by another. */
	mallopt(M_ARENA_MAX, 2);
	uv_loop_init(&o.loop);
	uv_signal_init(&o.loop, &o.sigterm);
	uv_signal_init(&o.loop, &o.sigint);
	uv_signal_init(&o.loop, &o.sighup);
	o.sigterm.data = o.sigint.data = o.sighup.data = &o;
	uv_signal_start(&o.sigterm, orderd_on_stop, SIGTERM);
	uv_signal_start(&o.sigint, orderd_on_stop, SIGINT);
	uv_signal_start(&o.sighup, orderd_on_hup, SIGHUP);
	log_info("orderd", "orderd %s starting", PACKAGE_VERSION);
	/* A broker that refuses a right or the credentials stops orderd. */
	kafka_set_fault_handler(o.cf, orderd_on_fatal, &o);
	/* First: a broker that refuses us fails the start before anything
	 * else is opened. */
	err = engine_check_topics(o.cf, &cause);
	if (err == 0) {
		struct journal_options jo;

		engine_journal_options(o.cf, &jo);
		err = journal_open(&o.journal, o.cf->journal_path, &jo, &cause);
	}
	if (err == 0)
		err = engine_new(&o.engine, &o.loop, o.cf, o.journal, &cause);
	if (err == 0)
		engine_set_fatal(o.engine, orderd_on_fatal, &o);
	/* Retention writes to the same connection, between the engine's
	 * transactions (one thread; journal_begin asserts it). */
	if (err == 0)
		retention_new(&o.retention, &o.loop, o.journal, o.cf);
	if (err == 0 && o.cf->http_listen[0] != '\0')
		err = status_new(&o.status, &o.loop, o.cf, engine_snapshot(o.engine), &cause);
	if (err < 0) {
		log_error("orderd", "cannot start: %s", cause ? cause : strerror(-err));
		free(cause);
		status = 1;
		retention_close(o.retention);
		o.retention = NULL;
		if (o.engine != NULL)
			engine_stop(o.engine, 0, orderd_stopped, &o);
		else
			orderd_stopped(&o);
	}
	if (status == 0)
		notify_ready();
	uv_run(&o.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&o.loop) != 0)
		log_warn("orderd", "handles left open at exit");
	/* Last: the engine, the relay and retention are gone. */
	journal_free(o.journal);
	if (status == 0 && o.exit_status == 0)
		log_info("orderd", "stopped");
	config_free(o.cf);
	tool_config_args_free(&o.args);
	return status != 0 ? status : o.exit_status;
}
