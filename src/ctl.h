/* ctl.h: what orderctl.c shares with the files of its commands (src/ctl_*.c), and nothing outside orderctl includes. */
#ifndef ORDERD_CTL_H
#define ORDERD_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct cluster_sync;
struct config;
struct journal;

/* What a command talks to (ctl_entry.needs and .opens). */
#define CTL_JOURNAL	0x1	/* the journal of journal.path */
#define CTL_REDIS	0x2	/* Redis: one server, or every master of a cluster */
/* The broker.  Never in .opens: each command makes the client it needs
 * (an admin producer, a consumer of the changelog). */
#define CTL_KAFKA	0x4

struct ctl_entry;

/* What every command runs with; main() frees what is open. */
struct ctl {
	struct config *cf;
	struct journal *j;
	struct cluster_sync *rc;	/* one server, or every master of a cluster */
	bool json;			/* --json, anywhere on the command line */
	const struct ctl_entry *entry;	/* the command running */
};

/*
 * One command of the table in orderctl.c; each ctl_*.c file defines the
 * entries of its group.  main() finds the entry whose words start the
 * command line (the longest), checks the number of arguments after them,
 * opens what .opens says and runs .exec with those arguments (--json
 * taken out).
 */
struct ctl_entry {
	const char *name;	/* its words: "stock add" */
	const char *usage;	/* what a usage error prints after "usage: " */
	const char *synopsis;	/* --help's left column; NULL: usage */
	const char *help;	/* --help's right column, lines split by \n */
	int needs;		/* CTL_*: all it talks to (ctl_journal and friends check) */
	/* The part of needs opened before exec.  A command whose own checks
	 * must come first (a journal created by a typo, Redis only once the
	 * journal has the addition) opens the rest itself. */
	int opens;
	int min_args, max_args;	/* after the name; max_args -1: any number */
	/* The first word alone, or with a word of no entry, is a usage error
	 * of this entry (its group's only command), not an unknown command. */
	bool group_usage;
	int (*exec)(struct ctl *c, int argc, char **argv);	/* the exit status */
};

/* orderctl.c */
/* Says one line "orderctl: ..." on stderr (through log_plain: no secret,
 * no control character); returns 1, the exit status of a failure. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Says the usage line of the running command; returns 2. */
int ctl_usage(struct ctl *c);
/* Open the journal or Redis of the configuration unless open: 0, or 1
 * when it failed (said). */
int ctl_journal(struct ctl *c);
int ctl_redis(struct ctl *c);
/* The start-up check of the broker (kafka_check_access: partitions[i] of
 * topics[i], or -ENOENT); 0, or 1 when it failed (said). */
int ctl_kafka_check(struct ctl *c, const char *const *topics, int ntopics, int *partitions);
/* Replaces every string of doc by its escaped form (escape_tty), for text
 * output of bytes that came from messages or Redis keys. */
void ctl_json_clean(json_t *doc);
/* Prints doc, compact, on one line of stdout; takes it. */
void ctl_print_json(json_t *doc);

/* ctl_keys.c: the inventory keys under the prefix, by SCAN. */
struct ctl_keys {
	char **v;		/* keys, or skus (.skus) */
	int n, cap;
	/* Only keys PREFIX{sku}KIND with KIND one of these (one that ends in
	 * ':' starts KIND: ":r:" for reservation records); NULL: every kind. */
	const char *const *kinds;
	bool skus;		/* keep the sku between the braces, not the key */
	size_t plen;		/* of the prefix (ctl_keys_scan sets it) */
};
/* SCANs keys PREFIX + match (every master of a cluster) into ks, sorted,
 * each once; what a failed SCAN found is kept.  0, or -EIO (said). */
int ctl_keys_scan(struct ctl *c, const char *match, struct ctl_keys *ks);
void ctl_keys_free(struct ctl_keys *ks);
/* The first key under the prefix, or NULL when there is none (*err -EIO
 * when the SCAN failed, said).  The caller frees it. */
char *ctl_keys_any(struct ctl *c, int *err);

/* ctl_reconcile.c: Redis compared with what the journal or the changelog says. */
struct reconcile {
	json_t *problems;
	int skus;
	int unsettled;
	const char *source;	/* what Redis is compared with: "journal", "changelog" */
	const char *unsettled_why;	/* what makes a sku unsettled, for the text */
};
/* Adds one drift to rc->problems (sku and order_id may be NULL). */
void ctl_problem(struct reconcile *rc, const char *kind, const char *sku, const char *order_id,
    const char *detail);
/* Copies Redis's stock hashes and reservation records into TEMP tables of
 * c->j: 0, or 1 (said). */
int ctl_reconcile_load(struct ctl *c);
/* Runs the reports that compare (stock: per sku, lines: per order and sku)
 * into rc->problems: 0, or 1 (said). */
int ctl_reconcile_compare(struct ctl *c, struct reconcile *rc, const char *stock,
    const char *lines);
/* Prints rc (more, when not NULL, as the JSON member named rc->source, and
 * tail at the end of the text's summary line), frees its problems; returns
 * the exit status: 1 on any drift. */
int ctl_reconcile_print(struct ctl *c, struct reconcile *rc, json_t *more, const char *tail);

#endif
