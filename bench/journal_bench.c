/* journal_bench.c: the journal limit alone: inbox events per second through journal_begin + journal_inbox_add x GROUP + journal_commit, fsync'd, and one event per transaction. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "util.h"

#define JB_PROG "journal_bench"

static int64_t jb_seq;

static void
jb_die(struct journal *j, const char *what)
{
	fprintf(stderr, JB_PROG ": %s: %s\n", what, j != NULL ? journal_errmsg(j) : "");
	exit(1);
}

/* n events in transactions of group; returns the seconds taken. */
static double
jb_run(struct journal *j, int64_t n, int64_t group, const char *payload)
{
	int64_t t0 = util_mono_us();

	for (int64_t done = 0; done < n;) {
		if (journal_begin(j, "bench") < 0)
			jb_die(j, "begin");
		for (int64_t k = 0; k < group && done < n; k++, done++) {
			char event_id[64], order_id[64];
			int64_t seq = jb_seq++;
			struct journal_event ev = {
				.event_id = event_id, .topic = "orders",
				.partition = (int32_t)(seq % 3), .offset = seq / 3,
				.type = "OrderCreated", .order_id = order_id,
				.status = "applied", .received_at = util_now_ms(),
				.payload = payload, .payload_len = strlen(payload),
			};

			snprintf(event_id, sizeof(event_id), "bench-event-%012" PRId64, seq);
			snprintf(order_id, sizeof(order_id), "bench-order-%" PRId64, seq);
			if (journal_inbox_add(j, &ev) < 0)
				jb_die(j, "inbox_add");
		}
		if (journal_commit(j) < 0)
			jb_die(j, "commit");
	}
	return (double)(util_mono_us() - t0) / 1e6;
}

static void
jb_usage(FILE *f)
{
	fprintf(f, "usage: " JB_PROG " --path FILE [--events N] [--group G] [--single N]\n"
	    "                     [--size BYTES] [--normal]\n"
	    "\n"
	    "Creates a journal at FILE (removed first), then adds N inbox events of\n"
	    "BYTES bytes in transactions of G events, then N' (--single) events one\n"
	    "per transaction.  synchronous = FULL unless --normal.  Prints 'name value'\n"
	    "lines.  Defaults: N 256000, G 64, N' 5000, BYTES 300.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "path", required_argument, NULL, 'f' },
		{ "events", required_argument, NULL, 'n' },
		{ "group", required_argument, NULL, 'g' },
		{ "single", required_argument, NULL, '1' },
		{ "size", required_argument, NULL, 'b' },
		{ "normal", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct journal_options o = { .synchronous_full = true, .busy_timeout_ms = 5000 };
	int64_t events = 256000, group = 64, single = 5000, size = 300;
	const char *path = NULL;
	struct journal *j;
	char *cause = NULL, *payload, *wal, *shm;
	double tg, ts;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case 'n': events = strtoll(optarg, NULL, 10); break;
		case 'g': group = strtoll(optarg, NULL, 10); break;
		case '1': single = strtoll(optarg, NULL, 10); break;
		case 'b': size = strtoll(optarg, NULL, 10); break;
		case 'N': o.synchronous_full = false; break;
		case 'h': jb_usage(stdout); return 0;
		default: jb_usage(stderr); return 2;
		}
	}
	if (optind < argc || path == NULL || events < 1 || group < 1 || single < 1 ||
	    size < 16 || size > 1000000) {
		jb_usage(stderr);
		return 2;
	}
	wal = xasprintf("%s-wal", path);
	shm = xasprintf("%s-shm", path);
	unlink(path);
	unlink(wal);
	unlink(shm);
	if (journal_open(&j, path, &o, &cause) < 0) {
		fprintf(stderr, JB_PROG ": %s\n", cause);
		return 1;
	}
	/* An event-like payload: JSON of the given size. */
	payload = xmalloc((size_t)size + 1);
	memset(payload, 'x', (size_t)size);
	memcpy(payload, "{\"pad\":\"", 8);
	memcpy(payload + size - 2, "\"}", 2);
	payload[size] = '\0';

	tg = jb_run(j, events, group, payload);
	ts = jb_run(j, single, 1, payload);

	printf("journal_synchronous %s\n", o.synchronous_full ? "full" : "normal");
	printf("journal_event_bytes %" PRId64 "\n", size);
	printf("journal_group %" PRId64 "\n", group);
	printf("journal_group_events %" PRId64 "\n", events);
	printf("journal_group_events_per_s %.0f\n", (double)events / tg);
	printf("journal_group_commits_per_s %.0f\n",
	    (double)((events + group - 1) / group) / tg);
	printf("journal_single_events %" PRId64 "\n", single);
	printf("journal_single_events_per_s %.0f\n", (double)single / ts);
	journal_free(j);
	free(payload);
	free(wal);
	free(shm);
	return 0;
}
