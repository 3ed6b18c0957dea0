/* journal.c: the SQLite journal: schema migration, group commits and the statements of sql/queries.sql. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "event.h"
#include "journal.h"
#include "log.h"
#include "util.h"

/* The statements of sql/queries.sql; the names must match its "-- name:" lines. */
#define JOURNAL_QUERIES(X) \
	X(INBOX_INSERT, "inbox_insert") \
	X(INBOX_SET_STATUS, "inbox_set_status") \
	X(INBOX_UNAPPLIED, "inbox_unapplied") \
	X(OUTBOX_INSERT, "outbox_insert") \
	X(OUTBOX_PENDING, "outbox_pending") \
	X(OUTBOX_PUBLISHED, "outbox_published") \
	X(OUTBOX_FAILED, "outbox_failed") \
	X(OUTBOX_STATS, "outbox_stats") \
	X(STOCK_ADJUSTMENT_INSERT, "stock_adjustment_insert") \
	X(STOCK_ADJUSTMENT_APPLIED, "stock_adjustment_applied") \
	X(ORDER_GET, "order_get") \
	X(ORDER_INSERT, "order_insert") \
	X(ORDER_UPDATE, "order_update") \
	X(ORDER_IN_FLIGHT, "order_in_flight") \
	X(STEP_INSERT, "step_insert") \
	X(STEP_RESULT, "step_result") \
	X(STEPS_IN_FLIGHT, "steps_in_flight") \
	X(DEADLINE_SET, "deadline_set") \
	X(DEADLINE_CLEAR, "deadline_clear") \
	X(DEADLINE_FIRED, "deadline_fired") \
	X(DEADLINES_DUE, "deadlines_due") \
	X(DLQ_INSERT, "dlq_insert") \
	X(STOCK_ADJUSTMENTS_UNAPPLIED, "stock_adjustments_unapplied") \
	X(ORDERS_LIVE, "orders_live") \
	X(OUTBOX_BACKLOG, "outbox_backlog") \
	X(RETENTION_INBOX, "retention_inbox") \
	X(RETENTION_OUTBOX_WINDOW, "retention_outbox_window") \
	X(RETENTION_OUTBOX, "retention_outbox") \
	X(STOCK_ADJUSTMENT_LATEST_APPLIED, "stock_adjustment_latest_applied") \
	X(STEP_RESULTS, "step_results") \
	X(ORDERS_WITH_UNAPPLIED_EVENTS, "orders_with_unapplied_events") \
	X(OWNED_CLEAR, "owned_clear") \
	X(OWNED_ADD, "owned_add") \
	X(PARTITION_EPOCH, "partition_epoch") \
	X(ORDER_BUMP, "order_bump") \
	X(CHANGELOG_INSERT, "changelog_insert") \
	X(CHANGELOG_INSERT_PARKED, "changelog_insert_parked") \
	X(PARKED_COUNT, "parked_count") \
	X(RESTORE_ORDER, "restore_order") \
	X(RESTORE_PARKED_NEWER, "restore_parked_newer") \
	X(RESTORE_FORGET_EVENTS, "restore_forget_events") \
	X(RESTORE_EVENTS, "restore_events") \
	X(RESTORE_PARKED, "restore_parked") \
	X(RESTORE_DEADLINE, "restore_deadline") \
	X(RESTORE_NO_DEADLINE, "restore_no_deadline") \
	X(SUPERSEDE_ORDER, "supersede_order") \
	X(SUPERSEDE_ORDER_STEPS, "supersede_order_steps") \
	X(SUPERSEDE_UNOWNED, "supersede_unowned") \
	X(SUPERSEDE_UNOWNED_STEPS, "supersede_unowned_steps") \
	X(OUTBOX_MAX_ID, "outbox_max_id") \
	X(OUTBOX_PUBLISHED_RANGE, "outbox_published_range")

enum journal_query {
#define X(id, name) JQ_##id,
	JOURNAL_QUERIES(X)
#undef X
	JQ_COUNT
};

static const char *const journal_query_names[JQ_COUNT] = {
#define X(id, name) name,
	JOURNAL_QUERIES(X)
#undef X
};

/* A report of sql/reports.sql, prepared the first time it is used, with
 * the names of its columns (copied: SQLite's may move on a re-prepare). */
struct journal_report_stmt {
	char *name;
	sqlite3_stmt *st;
	char **cols;
	int ncols;
};

/* What a row callback of journal_report reads through. */
struct journal_row {
	sqlite3_stmt *st;
	const struct journal_report_stmt *rep;
	const char **missing;	/* the first name asked for that is no column */
};

/* WAL frames (pages) between checkpoints: 32 MiB of 4 KiB pages, so a hot
 * page rewritten many times in between is copied back once. */
#define JOURNAL_CHECKPOINT_FRAMES 8192
/* The checkpointer falls this far behind: the loop does it itself, so the
 * WAL stays bounded whatever the disk does. */
#define JOURNAL_CHECKPOINT_FRAMES_MAX (8 * JOURNAL_CHECKPOINT_FRAMES)
/* Passes of the checkpointer to catch up with frames written meanwhile. */
#define JOURNAL_CHECKPOINT_PASSES 4

enum journal_ckpt_state {
	JOURNAL_CKPT_IDLE,	/* nothing asked */
	JOURNAL_CKPT_WORKING,	/* the thread copies the WAL back */
	JOURNAL_CKPT_DONE,	/* it has: only frames committed meanwhile are left */
	JOURNAL_CKPT_STOP,
};

/*
 * The checkpointer of journal_options.checkpoint_thread: a second
 * connection on a thread of its own copies the WAL back into the database
 * file and fsyncs it, which on a slow disk takes long enough to stall a
 * loop.  SQLite only starts the WAL over when every frame is copied back,
 * so the writer copies the few frames committed during the thread's pass
 * itself (journal_wal_hook).
 */
struct journal_ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sqlite3 *db;
	enum journal_ckpt_state state;	/* under mu */
	int64_t passes;			/* under mu */
};

struct journal {
	sqlite3 *db;
	struct journal_ckpt *ckpt;	/* or NULL: SQLite's own autocheckpoint */
	char *reports_sql;		/* sql/reports.sql, read on first use */
	/* Each on its own: a row callback may prepare another report while
	 * its own one runs, which grows this array. */
	struct journal_report_stmt **reports;
	int nreports;
	sqlite3_stmt *stmt[JQ_COUNT];
	sqlite3_stmt *begin, *begin_read, *commit, *rollback;
	bool in_tx;
};

/* Maps an SQLite result code to a negative errno. */
static int
journal_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		/* A duplicate key is expected (dedupe); any other violation is a bug. */
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
			return -EEXIST;
		return -EINVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

const char *
journal_errmsg(struct journal *j)
{
	return sqlite3_errmsg(j->db);
}

static int
journal_exec(struct journal *j, const char *sql, char **cause)
{
	char *msg = NULL;
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		if (cause != NULL)
			*cause = xasprintf("%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return journal_err(rc) ? journal_err(rc) : -EIO;
	}
	return 0;
}

/* SQL orderd_state_id(order_id, epoch, version): the event id of an order's
 * changelog record (event_state_id), so changelog_insert names the record
 * from the row it reads instead of asking for its version first. */
static void
journal_state_id_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *order_id = sqlite3_value_text(argv[0]);
	char id[37];

	(void)argc;
	if (order_id == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	event_state_id(id, (const char *)order_id, sqlite3_value_int64(argv[1]),
	    sqlite3_value_int64(argv[2]));
	sqlite3_result_text(ctx, id, 36, SQLITE_TRANSIENT);
}

static int
journal_user_version(struct journal *j)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(j->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
journal_version(struct journal *j)
{
	return journal_user_version(j);
}

/* Brings the schema from its version to JOURNAL_VERSION, one file per step,
 * each in its own transaction with the version bump, so a crash mid-way
 * leaves a journal of a consistent version. */
static int
journal_migrate(struct journal *j, const char *path, char **cause)
{
	int v = journal_user_version(j), err = 0;

	if (v < 0) {
		*cause = xasprintf("%s: cannot read user_version: %s", path,
		    sqlite3_errmsg(j->db));
		return -EBADMSG;
	}
	if (v > JOURNAL_VERSION) {
		*cause = xasprintf("%s: journal version %d is newer than this "
		    "orderd supports (%d); refusing to open it", path, v,
		    JOURNAL_VERSION);
		return -EPROTO;
	}
	while (v < JOURNAL_VERSION) {
		char rel[64], *sql = NULL, *bump;

		if (v == 0)
			snprintf(rel, sizeof(rel), "sql/schema.sql");
		else
			snprintf(rel, sizeof(rel), "sql/migrate-%d.sql", v + 1);
		err = util_read_data_file(rel, &sql, NULL);
		if (err < 0) {
			*cause = xasprintf("%s/%s: %s", util_datadir(), rel,
			    strerror(-err));
			return err;
		}
		bump = xasprintf("PRAGMA user_version = %d;", v + 1);
		if ((err = journal_exec(j, "BEGIN IMMEDIATE", cause)) == 0 &&
		    (err = journal_exec(j, sql, cause)) == 0 &&
		    (err = journal_exec(j, bump, cause)) == 0)
			err = journal_exec(j, "COMMIT", cause);
		free(sql);
		free(bump);
		if (err < 0) {
			char *inner = *cause;

			journal_exec(j, "ROLLBACK", NULL);
			*cause = xasprintf("%s: migrating to version %d (%s): %s",
			    path, v + 1, rel, inner ? inner : "failed");
			free(inner);
			return err;
		}
		log_info("journal", "%s: schema now at version %d", path, v + 1);
		v++;
	}
	return 0;
}

/* sql/session.sql: the TEMP tables of this connection. */
static int
journal_session(struct journal *j, char **cause)
{
	char *sql = NULL;
	int err = util_read_data_file("sql/session.sql", &sql, NULL);

	if (err < 0) {
		*cause = xasprintf("%s/sql/session.sql: %s", util_datadir(), strerror(-err));
		return err;
	}
	err = journal_exec(j, sql, cause);
	free(sql);
	return err;
}

/* Prepares every named statement of sql/queries.sql. */
static int
journal_prepare(struct journal *j, char **cause)
{
	char *text = NULL, *p;
	int err;

	err = util_read_data_file("sql/queries.sql", &text, NULL);
	if (err < 0) {
		*cause = xasprintf("%s/sql/queries.sql: %s", util_datadir(),
		    strerror(-err));
		return err;
	}
	for (p = strstr(text, "-- name: "); p != NULL; ) {
		char *name = p + 9, *end = strchr(name, '\n'), *next;
		size_t nlen;
		int q;

		if (end == NULL)
			break;
		nlen = (size_t)(end - name);
		next = strstr(end, "\n-- name: ");
		if (next != NULL) {
			*next = '\0';
			next++;
		}
		for (q = 0; q < JQ_COUNT; q++) {
			if (strlen(journal_query_names[q]) == nlen &&
			    memcmp(journal_query_names[q], name, nlen) == 0)
				break;
		}
		if (q < JQ_COUNT && j->stmt[q] == NULL) {
			int rc = sqlite3_prepare_v3(j->db, end + 1, -1,
			    SQLITE_PREPARE_PERSISTENT, &j->stmt[q], NULL);

			if (rc != SQLITE_OK) {
				*cause = xasprintf("sql/queries.sql: %s: %s",
				    journal_query_names[q], sqlite3_errmsg(j->db));
				free(text);
				return journal_err(rc);
			}
		}
		p = next;
	}
	free(text);
	for (int q = 0; q < JQ_COUNT; q++) {
		if (j->stmt[q] == NULL) {
			*cause = xasprintf("sql/queries.sql: statement '%s' is missing",
			    journal_query_names[q]);
			return -ENOENT;
		}
	}
	if (sqlite3_prepare_v3(j->db, "BEGIN IMMEDIATE", -1,
	    SQLITE_PREPARE_PERSISTENT, &j->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(j->db, "BEGIN DEFERRED", -1,
	    SQLITE_PREPARE_PERSISTENT, &j->begin_read, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(j->db, "COMMIT", -1,
	    SQLITE_PREPARE_PERSISTENT, &j->commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(j->db, "ROLLBACK", -1,
	    SQLITE_PREPARE_PERSISTENT, &j->rollback, NULL) != SQLITE_OK) {
		*cause = xasprintf("%s", sqlite3_errmsg(j->db));
		return -EIO;
	}
	return 0;
}

/* Process-wide SQLite settings, before the first connection: no memory
 * statistics (a mutex and bookkeeping on every malloc of a hot path). */
static void
journal_global_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void *
journal_ckpt_main(void *arg)
{
	struct journal_ckpt *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->state != JOURNAL_CKPT_WORKING && c->state != JOURNAL_CKPT_STOP)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->state == JOURNAL_CKPT_STOP)
			break;
		pthread_mutex_unlock(&c->mu);
		for (int pass = 0; pass < JOURNAL_CHECKPOINT_PASSES; pass++) {
			int frames = 0, copied = 0;
			/* PASSIVE: never waits for the writer, never blocks it. */
			int rc = sqlite3_wal_checkpoint_v2(c->db, NULL,
			    SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);

			if (rc != SQLITE_OK) {
				log_warn("journal", "checkpoint: %s", sqlite3_errmsg(c->db));
				break;
			}
			if (copied >= frames)
				break;
		}
		pthread_mutex_lock(&c->mu);
		c->passes++;
		if (c->state == JOURNAL_CKPT_WORKING)
			c->state = JOURNAL_CKPT_DONE;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* After every commit of the writer, on its thread; frames: the WAL's size. */
static int
journal_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct journal_ckpt *c = arg;
	enum journal_ckpt_state state;

	if (frames < JOURNAL_CHECKPOINT_FRAMES)
		return SQLITE_OK;
	pthread_mutex_lock(&c->mu);
	state = c->state;
	if (state == JOURNAL_CKPT_IDLE) {
		c->state = JOURNAL_CKPT_WORKING;
		pthread_cond_signal(&c->cv);
	} else if (state == JOURNAL_CKPT_DONE) {
		c->state = JOURNAL_CKPT_IDLE;
	}
	pthread_mutex_unlock(&c->mu);
	/* The tail the thread left, or a thread far behind: copied here, so
	 * the next transaction starts the WAL over.  A checkpoint running on
	 * the thread makes this one return SQLITE_BUSY at once: harmless. */
	if (state == JOURNAL_CKPT_DONE ||
	    (state == JOURNAL_CKPT_WORKING && frames >= JOURNAL_CHECKPOINT_FRAMES_MAX))
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

static void
journal_ckpt_free(struct journal_ckpt *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->state = JOURNAL_CKPT_STOP;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	sqlite3_close(c->db);
	free(c);
}

/* Opens the checkpointer's connection and starts its thread. */
static int
journal_ckpt_start(struct journal *j, const char *path, const char *sync, char **cause)
{
	struct journal_ckpt *c = xcalloc(1, sizeof(*c));
	char *pragma = xasprintf("PRAGMA synchronous = %s;", sync);
	int rc, err;

	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("%s: the checkpointer: %s", path, c->db ?
		    sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		err = journal_err(rc);
		goto fail;
	}
	if ((err = -pthread_create(&c->thread, NULL, journal_ckpt_main, c)) < 0) {
		*cause = xasprintf("%s: the checkpointer: %s", path, strerror(-err));
		goto fail;
	}
	free(pragma);
	j->ckpt = c;
	/* From now on checkpoints are ours: the thread's, then the tail here. */
	sqlite3_wal_hook(j->db, journal_wal_hook, c);
	return 0;
fail:
	free(pragma);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	sqlite3_close(c->db);
	free(c);
	return err;
}

int64_t
journal_checkpoints(struct journal *j)
{
	int64_t n = 0;

	if (j != NULL && j->ckpt != NULL) {
		pthread_mutex_lock(&j->ckpt->mu);
		n = j->ckpt->passes;
		pthread_mutex_unlock(&j->ckpt->mu);
	}
	return n;
}

/*
 * The journal holds customer ids, amounts and every payload: it is created
 * 0600 whatever the umask (SQLite gives the -wal and -shm the mode of the
 * database file), and a journal, -wal or -shm that users other than its
 * owner (and group) may write is refused: they could rewrite the history
 * orderd replays.  One that every user may read is made private, when we
 * may, and said so.  ":memory:" and the like have no files.
 */
static int
journal_check_files(const char *path, char **cause)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	int fd;

	if (path[0] == '\0' || path[0] == ':' || strncmp(path, "file:", 5) == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(suffix); i++) {
		char *f = xasprintf("%s%s", path, suffix[i]);
		struct stat st;
		mode_t m;

		if (stat(f, &st) < 0) {
			free(f);
			continue;	/* no -wal yet; a missing journal is sqlite's to report */
		}
		m = st.st_mode & 07777;
		if (m & (S_IWGRP | S_IWOTH)) {
			*cause = xasprintf("%s: other users may write it (mode %04o): chmod "
			    "go-w %s", f, (unsigned)m, f);
			free(f);
			return -EPERM;
		}
		if ((m & S_IRWXO) && chmod(f, m & ~(mode_t)S_IRWXO) == 0)
			log_warn("journal", "%s could be read by every user: mode %04o -> %04o", f,
			    (unsigned)m, (unsigned)(m & ~(mode_t)S_IRWXO));
		else if (m & S_IRWXO)
			log_warn("journal", "%s can be read by every user (mode %04o): chmod o-rwx "
			    "it", f, (unsigned)m);
		free(f);
	}
	return 0;
}

int
journal_open(struct journal **out, const char *path,
    const struct journal_options *opt, char **cause)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char *pragmas = NULL;
	int rc, err;

	*out = NULL;
	*cause = NULL;
	journal_global_init();
	if ((err = journal_check_files(path, cause)) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("%s: %s", path, j->db ?
		    sqlite3_errmsg(j->db) : sqlite3_errstr(rc));
		err = journal_err(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(j->db, 1);
	sqlite3_busy_timeout(j->db, opt && opt->busy_timeout_ms > 0 ?
	    opt->busy_timeout_ms : 5000);
	/* WAL lets orderctl and the sqlite3 shell read while orderd writes;
	 * FULL makes every commit durable before Kafka offsets move. */
	pragmas = xasprintf("PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = %s;"
	    "PRAGMA foreign_keys = ON;"
	    /* 8 MiB of page cache keeps the hot index pages of a busy journal. */
	    "PRAGMA cache_size = -8192;"
	    /* SQLite's own checkpoints, unless the checkpointer takes over. */
	    "PRAGMA wal_autocheckpoint = %d;"
	    "PRAGMA journal_size_limit = 67108864;"
	    "PRAGMA temp_store = MEMORY;",
	    opt == NULL || opt->synchronous_full ? "FULL" : "NORMAL",
	    JOURNAL_CHECKPOINT_FRAMES);
	if ((err = journal_exec(j, pragmas, cause)) < 0) {
		char *inner = *cause;

		*cause = xasprintf("%s: %s", path, inner);
		free(inner);
		goto fail;
	}
	rc = sqlite3_create_function(j->db, "orderd_state_id", 3,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, journal_state_id_fn, NULL, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("%s: %s", path, sqlite3_errmsg(j->db));
		err = journal_err(rc) ? journal_err(rc) : -EIO;
		goto fail;
	}
	if ((err = journal_migrate(j, path, cause)) < 0)
		goto fail;
	if ((err = journal_session(j, cause)) < 0)
		goto fail;
	if ((err = journal_prepare(j, cause)) < 0)
		goto fail;
	if (opt != NULL && opt->checkpoint_thread &&
	    (err = journal_ckpt_start(j, path, opt->synchronous_full ? "FULL" : "NORMAL",
	    cause)) < 0)
		goto fail;
	free(pragmas);
	*out = j;
	return 0;
fail:
	free(pragmas);
	journal_free(j);
	return err;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	/* The thread first: closing the last connection checkpoints the rest. */
	journal_ckpt_free(j->ckpt);
	for (int q = 0; q < JQ_COUNT; q++)
		sqlite3_finalize(j->stmt[q]);
	for (int i = 0; i < j->nreports; i++) {
		sqlite3_finalize(j->reports[i]->st);
		free(j->reports[i]->name);
		for (int c = 0; c < j->reports[i]->ncols; c++)
			free(j->reports[i]->cols[c]);
		free(j->reports[i]->cols);
		free(j->reports[i]);
	}
	free(j->reports);
	free(j->reports_sql);
	sqlite3_finalize(j->begin);
	sqlite3_finalize(j->begin_read);
	sqlite3_finalize(j->commit);
	sqlite3_finalize(j->rollback);
	sqlite3_close(j->db);
	free(j);
}

/* Runs a statement that returns no rows and resets it. */
static int
journal_run(struct journal *j, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return journal_err(rc) ? journal_err(rc) : -EIO;
	return 0;
}

/* journal_run of a statement that must change exactly one row: -ENOENT
 * when it changed none (the order has no row). */
static int
journal_run_one(struct journal *j, sqlite3_stmt *st)
{
	int err = journal_run(j, st);

	if (err < 0)
		return err;
	return sqlite3_changes(j->db) == 1 ? 0 : -ENOENT;
}

static int
journal_begin_with(struct journal *j, sqlite3_stmt *begin)
{
	int err = journal_run(j, begin);

	if (err == 0)
		j->in_tx = true;
	return err;
}

int
journal_begin(struct journal *j)
{
	return journal_begin_with(j, j->begin);
}

int
journal_begin_read(struct journal *j)
{
	return journal_begin_with(j, j->begin_read);
}

int
journal_commit(struct journal *j)
{
	int err = journal_run(j, j->commit);

	if (err == 0)
		j->in_tx = false;
	return err;
}

void
journal_rollback(struct journal *j)
{
	if (sqlite3_get_autocommit(j->db) == 0)
		journal_run(j, j->rollback);
	j->in_tx = false;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

int
journal_inbox_add(struct journal *j, const struct journal_event *ev)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_INSERT];

	bind_text(st, 1, ev->event_id);
	bind_text(st, 2, ev->topic);
	sqlite3_bind_int(st, 3, ev->partition);
	sqlite3_bind_int64(st, 4, ev->offset);
	bind_text(st, 5, ev->type);
	bind_text(st, 6, ev->order_id);
	bind_text(st, 7, ev->status);
	sqlite3_bind_int64(st, 8, ev->received_at);
	bind_text(st, 9, ev->traceparent);
	bind_blob(st, 10, ev->payload ? ev->payload : "", ev->payload_len);
	return journal_run(j, st);
}

int
journal_inbox_set_status(struct journal *j, const char *order_id,
    const char *event_id, const char *status, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_SET_STATUS];

	bind_text(st, 1, event_id);
	bind_text(st, 2, status);
	sqlite3_bind_int64(st, 3, now);
	bind_text(st, 4, order_id);
	return journal_run(j, st);
}

int
journal_outbox_add(struct journal *j, struct journal_outbox_row *row)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_INSERT];
	int err;

	bind_text(st, 1, row->topic);
	bind_blob(st, 2, row->key, row->key_len);
	bind_text(st, 3, row->event_id);
	bind_text(st, 4, row->order_id);
	bind_text(st, 5, row->type);
	bind_text(st, 6, row->headers ? row->headers : "{}");
	bind_blob(st, 7, row->payload ? row->payload : "", row->payload_len);
	sqlite3_bind_int64(st, 8, row->created_at);
	if (row->partitioned)
		sqlite3_bind_int(st, 9, row->partition);
	else
		sqlite3_bind_null(st, 9);
	err = journal_run(j, st);
	if (err == 0)
		row->id = sqlite3_last_insert_rowid(j->db);
	return err;
}

int
journal_outbox_pending(struct journal *j, int64_t after_id, int limit,
    int (*fn)(const struct journal_outbox_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_PENDING];
	int n = 0, rc;

	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_outbox_row row = {
			.id = sqlite3_column_int64(st, 0),
			.topic = (const char *)sqlite3_column_text(st, 1),
			.key = sqlite3_column_blob(st, 2),
			.key_len = (size_t)sqlite3_column_bytes(st, 2),
			.event_id = (const char *)sqlite3_column_text(st, 3),
			.order_id = (const char *)sqlite3_column_text(st, 4),
			.type = (const char *)sqlite3_column_text(st, 5),
			.headers = (const char *)sqlite3_column_text(st, 6),
			.payload = sqlite3_column_blob(st, 7),
			.payload_len = (size_t)sqlite3_column_bytes(st, 7),
			.created_at = sqlite3_column_int64(st, 8),
			.attempts = sqlite3_column_int(st, 9),
			.partitioned = sqlite3_column_type(st, 10) != SQLITE_NULL,
			.partition = sqlite3_column_int(st, 10),
		};

		n++;
		if (fn(&row, arg) != 0)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_err(rc) ? journal_err(rc) : -EIO;
	return n;
}

int
journal_outbox_published(struct journal *j, int64_t id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_PUBLISHED];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

int
journal_outbox_failed(struct journal *j, int64_t id, const char *error)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_FAILED];

	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, error);
	return journal_run(j, st);
}

int
journal_outbox_stats(struct journal *j, int64_t *pending, int64_t *published,
    int64_t *oldest_created)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_STATS];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int64(st, 0);
		*published = sqlite3_column_int64(st, 1);
		*oldest_created = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : (journal_err(rc) ? journal_err(rc) : -EIO);
}

int
journal_stock_adjustment_add(struct journal *j, const char *adjustment_id,
    const char *sku, int64_t qty, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_INSERT];

	bind_text(st, 1, adjustment_id);
	bind_text(st, 2, sku);
	sqlite3_bind_int64(st, 3, qty);
	sqlite3_bind_int64(st, 4, now);
	return journal_run(j, st);
}

int
journal_stock_adjustment_applied(struct journal *j, const char *adjustment_id,
    int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_APPLIED];

	bind_text(st, 1, adjustment_id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

/* Copies a text column into a fixed buffer ("" for NULL). */
static void
col_copy(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static int
journal_step_done(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_err(rc) ? journal_err(rc) : -EIO;
	return 0;
}

int
journal_order_get(struct journal *j, const char *order_id, struct journal_order *o)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_GET];
	int rc;

	memset(o, 0, sizeof(*o));
	bind_text(st, 1, order_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_copy(st, 0, o->state, sizeof(o->state));
		col_copy(st, 1, o->customer_id, sizeof(o->customer_id));
		o->amount_cents = sqlite3_column_int64(st, 2);
		col_copy(st, 3, o->currency, sizeof(o->currency));
		o->items = col_dup(st, 4);
		col_copy(st, 5, o->payment_id, sizeof(o->payment_id));
		col_copy(st, 6, o->reason, sizeof(o->reason));
		col_copy(st, 7, o->reason_sku, sizeof(o->reason_sku));
		col_copy(st, 8, o->traceparent, sizeof(o->traceparent));
		o->lines = col_dup(st, 9);
		o->partition = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 10);
		journal_step_done(st, rc);
		return 0;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : -ENOENT;
}

void
journal_order_release(struct journal_order *o)
{
	free(o->items);
	o->items = NULL;
	free(o->lines);
	o->lines = NULL;
}

int
journal_order_insert(struct journal *j, const char *order_id,
    const struct journal_order *o, const char *created_event_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_INSERT];

	bind_text(st, 1, order_id);
	bind_text(st, 2, o->state);
	bind_text(st, 3, o->customer_id);
	sqlite3_bind_int64(st, 4, o->amount_cents);
	bind_text(st, 5, o->currency);
	bind_text(st, 6, o->items ? o->items : "[]");
	bind_text(st, 7, created_event_id);
	bind_text(st, 8, o->traceparent[0] ? o->traceparent : NULL);
	sqlite3_bind_int64(st, 9, now);
	bind_text(st, 10, o->reason[0] ? o->reason : NULL);
	bind_text(st, 11, o->reason_sku[0] ? o->reason_sku : NULL);
	bind_text(st, 12, o->lines ? o->lines : "");
	if (o->partition >= 0)
		sqlite3_bind_int(st, 13, o->partition);
	else
		sqlite3_bind_null(st, 13);
	return journal_run(j, st);
}

int
journal_order_update(struct journal *j, const char *order_id, const char *state,
    const char *payment_id, const char *reason, const char *reason_sku, int64_t now,
    const int64_t *epoch)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_UPDATE];

	bind_text(st, 1, order_id);
	bind_text(st, 2, state);
	bind_text(st, 3, payment_id);
	bind_text(st, 4, reason && reason[0] ? reason : NULL);
	bind_text(st, 5, reason_sku && reason_sku[0] ? reason_sku : NULL);
	sqlite3_bind_int64(st, 6, now);
	if (epoch != NULL)
		sqlite3_bind_int64(st, 7, *epoch);
	return journal_run_one(j, st);
}

int
journal_order_in_flight(struct journal *j, const char *order_id)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_IN_FLIGHT];
	int rc, v = 0;

	bind_text(st, 1, order_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : v;
}

int
journal_step_add(struct journal *j, const char *order_id, const char *kind,
    const char *sku, int64_t qty, const char *event_id, int64_t now, int64_t *id)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_INSERT];
	int err;

	bind_text(st, 1, order_id);
	bind_text(st, 2, kind);
	bind_text(st, 3, sku);
	sqlite3_bind_int64(st, 4, qty);
	bind_text(st, 5, event_id);
	sqlite3_bind_int64(st, 6, now);
	err = journal_run(j, st);
	if (err == 0)
		*id = sqlite3_last_insert_rowid(j->db);
	return err;
}

int
journal_step_result(struct journal *j, int64_t id, const char *result, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_RESULT];

	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, result);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}

int
journal_steps_in_flight(struct journal *j,
    int (*fn)(const struct journal_step *step, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_STEPS_IN_FLIGHT];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_step step = {
			.id = sqlite3_column_int64(st, 0),
			.order_id = (const char *)sqlite3_column_text(st, 1),
			.kind = (const char *)sqlite3_column_text(st, 2),
			.sku = (const char *)sqlite3_column_text(st, 3),
			.qty = sqlite3_column_int64(st, 4),
			.event_id = (const char *)sqlite3_column_text(st, 5),
			.traceparent = (const char *)sqlite3_column_text(st, 6),
		};

		n++;
		if (fn(&step, arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

int
journal_deadline_set(struct journal *j, const char *order_id, int64_t due_at)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_SET];

	bind_text(st, 1, order_id);
	sqlite3_bind_int64(st, 2, due_at);
	return journal_run(j, st);
}

int
journal_deadline_clear(struct journal *j, const char *order_id)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_CLEAR];

	bind_text(st, 1, order_id);
	return journal_run(j, st);
}

int
journal_deadline_fired(struct journal *j, const char *order_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINE_FIRED];

	bind_text(st, 1, order_id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

int
journal_deadlines_due(struct journal *j, int64_t now, int limit,
    char (*ids)[JOURNAL_ORDER_ID_MAX + 1])
{
	sqlite3_stmt *st = j->stmt[JQ_DEADLINES_DUE];
	int rc, n = 0;

	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		col_copy(st, 0, ids[n++], JOURNAL_ORDER_ID_MAX + 1);
	if (n == limit)
		rc = SQLITE_DONE;
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

int
journal_dlq_add(struct journal *j, const char *topic, int32_t partition,
    int64_t offset, const void *key, size_t key_len, const char *error,
    const void *payload, size_t len, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_DLQ_INSERT];

	bind_text(st, 1, topic);
	sqlite3_bind_int(st, 2, partition);
	sqlite3_bind_int64(st, 3, offset);
	bind_blob(st, 4, key, key_len);
	bind_text(st, 5, error);
	bind_blob(st, 6, payload ? payload : "", len);
	sqlite3_bind_int64(st, 7, now);
	return journal_run(j, st);
}

int
journal_inbox_unapplied(struct journal *j, const char *order_id,
    struct journal_inbox_row **rows)
{
	sqlite3_stmt *st = j->stmt[JQ_INBOX_UNAPPLIED];
	struct journal_inbox_row *v = NULL;
	int rc, n = 0, cap = 0;

	*rows = NULL;
	bind_text(st, 1, order_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_inbox_row *r;

		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			v = xrealloc(v, (size_t)cap * sizeof(*v));
		}
		r = &v[n++];
		memset(r, 0, sizeof(*r));
		col_copy(st, 0, r->event_id, sizeof(r->event_id));
		r->topic = col_dup(st, 1);
		r->partition = sqlite3_column_int(st, 2);
		r->offset = sqlite3_column_int64(st, 3);
		col_copy(st, 4, r->type, sizeof(r->type));
		col_copy(st, 5, r->status, sizeof(r->status));
		r->received_at = sqlite3_column_int64(st, 6);
		r->traceparent = col_dup(st, 7);
		r->payload_len = (size_t)sqlite3_column_bytes(st, 8);
		r->payload = xmalloc(r->payload_len + 1);
		memcpy(r->payload, sqlite3_column_blob(st, 8), r->payload_len);
		r->payload[r->payload_len] = '\0';
	}
	rc = journal_step_done(st, rc);
	if (rc < 0) {
		journal_inbox_rows_free(v, n);
		return rc;
	}
	*rows = v;
	return n;
}

void
journal_inbox_rows_free(struct journal_inbox_row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		free(rows[i].topic);
		free(rows[i].traceparent);
		free(rows[i].payload);
	}
	free(rows);
}

int
journal_stock_adjustments_unapplied(struct journal *j,
    int (*fn)(const char *adjustment_id, const char *sku, int64_t qty, void *arg),
    void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENTS_UNAPPLIED];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_int64(st, 2), arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

/* Finds "-- name: NAME" in text; returns the statement text after it (up to
 * the next name line) as a malloc'd string, or NULL. */
static char *
journal_named_sql(const char *text, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = text;

	while ((p = strstr(p, "-- name: ")) != NULL) {
		const char *n = p + 9, *eol = strchr(n, '\n'), *next;

		if (eol == NULL)
			return NULL;
		if ((size_t)(eol - n) == nlen && memcmp(n, name, nlen) == 0) {
			next = strstr(eol, "\n-- name: ");
			return next ? xstrndup(eol + 1, (size_t)(next - eol - 1)) :
			    xstrdup(eol + 1);
		}
		p = eol;
	}
	return NULL;
}

/* The index of column col of the row's report, or -1 (noted in *missing). */
static int
journal_row_index(const struct journal_row *r, const char *col)
{
	for (int i = 0; i < r->rep->ncols; i++)
		if (strcmp(r->rep->cols[i], col) == 0)
			return i;
	if (*r->missing == NULL) {
		*r->missing = col;
		log_error("journal", "sql/reports.sql: report %s has no column %s",
		    r->rep->name, col);
	}
	return -1;
}

enum journal_type
journal_row_type(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	if (i < 0)
		return JOURNAL_NULL;
	switch (sqlite3_column_type(r->st, i)) {
	case SQLITE_NULL:
		return JOURNAL_NULL;
	case SQLITE_INTEGER:
		return JOURNAL_INTEGER;
	default:
		return JOURNAL_TEXT;
	}
}

int64_t
journal_row_int(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	return i < 0 ? 0 : sqlite3_column_int64(r->st, i);
}

const char *
journal_row_text(const struct journal_row *r, const char *col)
{
	int i = journal_row_index(r, col);

	return i < 0 ? NULL : (const char *)sqlite3_column_text(r->st, i);
}

int
journal_row_columns(const struct journal_row *r)
{
	return r->rep->ncols;
}

const char *
journal_row_column(const struct journal_row *r, int i)
{
	return i >= 0 && i < r->rep->ncols ? r->rep->cols[i] : NULL;
}

int
journal_report(struct journal *j, const char *name, const char *const *params,
    int nparams, int (*row)(const struct journal_row *r, void *arg), void *arg)
{
	struct journal_report_stmt *rep = NULL;
	const char *missing = NULL;
	struct journal_row r;
	sqlite3_stmt *st;
	int rc, n = 0;

	for (int i = 0; i < j->nreports; i++)
		if (strcmp(j->reports[i]->name, name) == 0)
			rep = j->reports[i];
	if (rep == NULL) {
		char *sql;
		const char *tail;
		int err;

		if (j->reports_sql == NULL &&
		    (err = util_read_data_file("sql/reports.sql", &j->reports_sql, NULL)) < 0)
			return err;
		sql = journal_named_sql(j->reports_sql, name);
		if (sql == NULL)
			return -ENOENT;
		/* A report of several statements (DDL) runs whole, once. */
		rc = sqlite3_prepare_v2(j->db, sql, -1, &st, &tail);
		if (rc == SQLITE_OK && tail != NULL && strspn(tail, " \t\r\n") != strlen(tail)) {
			sqlite3_finalize(st);
			rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
			free(sql);
			return rc == SQLITE_OK ? 0 : journal_err(rc);
		}
		free(sql);
		if (rc != SQLITE_OK)
			return journal_err(rc) ? journal_err(rc) : -EIO;
		j->reports = xrealloc(j->reports, (size_t)(j->nreports + 1) * sizeof(*j->reports));
		rep = j->reports[j->nreports++] = xcalloc(1, sizeof(*rep));
		rep->name = xstrdup(name);
		rep->st = st;
		/* Once per statement: the rows then find a name among these. */
		rep->ncols = sqlite3_column_count(st);
		rep->cols = xcalloc((size_t)rep->ncols + 1, sizeof(*rep->cols));
		for (int i = 0; i < rep->ncols; i++)
			rep->cols[i] = xstrdup(sqlite3_column_name(st, i) ?
			    sqlite3_column_name(st, i) : "");
	}
	st = rep->st;
	r = (struct journal_row){ .st = st, .rep = rep, .missing = &missing };
	for (int i = 0; i < nparams; i++)
		bind_text(st, i + 1, params[i]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (row != NULL && row(&r, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
		if (missing != NULL)
			break;
	}
	rc = journal_step_done(st, rc);
	if (missing != NULL)
		return -EINVAL;
	return rc < 0 ? rc : n;
}

int
journal_orders_live(struct journal *j, int64_t *new_count, int64_t *reserved)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDERS_LIVE];
	int rc;

	*new_count = *reserved = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);

		if (state != NULL && strcmp(state, "NEW") == 0)
			*new_count = sqlite3_column_int64(st, 1);
		else if (state != NULL && strcmp(state, "RESERVED") == 0)
			*reserved = sqlite3_column_int64(st, 1);
	}
	return journal_step_done(st, rc);
}

int
journal_outbox_backlog(struct journal *j, int64_t cap, int64_t *pending,
    int64_t *oldest_created)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_BACKLOG];
	int rc;

	*pending = *oldest_created = 0;
	sqlite3_bind_int64(st, 1, cap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int64(st, 0);
		*oldest_created = sqlite3_column_int64(st, 1);
		rc = sqlite3_step(st);
	}
	return journal_step_done(st, rc);
}

int
journal_inbox_prune(struct journal *j, int64_t cutoff, int limit)
{
	sqlite3_stmt *st = j->stmt[JQ_RETENTION_INBOX];
	int err;

	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, limit);
	if ((err = journal_run(j, st)) < 0)
		return err;
	return sqlite3_changes(j->db);
}

int
journal_outbox_prune(struct journal *j, int64_t cutoff, int limit,
    int64_t *after_id, bool *done)
{
	sqlite3_stmt *st = j->stmt[JQ_RETENTION_OUTBOX_WINDOW];
	int64_t count = 0, last = *after_id;
	bool young = false;
	int rc, err;

	sqlite3_bind_int64(st, 1, *after_id);
	sqlite3_bind_int64(st, 2, cutoff);
	sqlite3_bind_int(st, 3, limit);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 0);
		last = count > 0 ? sqlite3_column_int64(st, 1) : *after_id;
		young = sqlite3_column_int(st, 2) != 0;
	}
	if ((err = journal_step_done(st, rc)) < 0)
		return err;
	*done = count < limit || young;
	if (count == 0)
		return 0;
	st = j->stmt[JQ_RETENTION_OUTBOX];
	sqlite3_bind_int64(st, 1, *after_id);
	sqlite3_bind_int64(st, 2, cutoff);
	sqlite3_bind_int64(st, 3, last);
	if ((err = journal_run(j, st)) < 0)
		return err;
	*after_id = last;
	return sqlite3_changes(j->db);
}

int
journal_stock_adjustment_latest_applied(struct journal *j, char *sku, size_t len)
{
	sqlite3_stmt *st = j->stmt[JQ_STOCK_ADJUSTMENT_LATEST_APPLIED];
	int rc = sqlite3_step(st), found = rc == SQLITE_ROW;

	if (found)
		col_copy(st, 0, sku, len);
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : found;
}

int
journal_step_results(struct journal *j, int64_t first_id, int64_t last_id,
    const char *result, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_STEP_RESULTS];

	sqlite3_bind_int64(st, 1, first_id);
	sqlite3_bind_int64(st, 2, last_id);
	bind_text(st, 3, result);
	sqlite3_bind_int64(st, 4, now);
	return journal_run(j, st);
}

int
journal_orders_with_unapplied_events(struct journal *j,
    int (*fn)(const char *order_id, void *arg), void *arg)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDERS_WITH_UNAPPLIED_EVENTS];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn((const char *)sqlite3_column_text(st, 0), arg) != 0)
			break;
	}
	rc = journal_step_done(st, rc);
	return rc < 0 ? rc : n;
}

/* One integer from a statement of one row; *out untouched when none. */
static int
journal_scalar(sqlite3_stmt *st, int64_t *out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	return journal_step_done(st, rc);
}

int
journal_owned_set(struct journal *j, const int32_t *partitions, const int64_t *epochs, int n)
{
	int err = journal_run(j, j->stmt[JQ_OWNED_CLEAR]);

	for (int i = 0; i < n && err == 0; i++) {
		sqlite3_stmt *st = j->stmt[JQ_OWNED_ADD];

		sqlite3_bind_int(st, 1, partitions[i]);
		sqlite3_bind_int64(st, 2, epochs[i]);
		err = journal_run(j, st);
	}
	return err;
}

int
journal_partition_epoch(struct journal *j, int32_t partition, int64_t *epoch)
{
	sqlite3_stmt *st = j->stmt[JQ_PARTITION_EPOCH];

	*epoch = 0;
	sqlite3_bind_int(st, 1, partition);
	return journal_scalar(st, epoch);
}

int
journal_order_bump(struct journal *j, const char *order_id)
{
	sqlite3_stmt *st = j->stmt[JQ_ORDER_BUMP];

	bind_text(st, 1, order_id);
	return journal_run_one(j, st);
}

int
journal_changelog_add(struct journal *j, const char *order_id, const char *topic,
    int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_CHANGELOG_INSERT];

	bind_text(st, 1, order_id);
	bind_text(st, 2, topic);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}

int
journal_parked_count(struct journal *j, const char *order_id, int64_t *n)
{
	sqlite3_stmt *st = j->stmt[JQ_PARKED_COUNT];

	*n = 0;
	bind_text(st, 1, order_id);
	return journal_scalar(st, n);
}

int
journal_changelog_add_parked(struct journal *j, const char *order_id, const char *topic,
    const char *event_id, int64_t now, int32_t partition, int64_t epoch)
{
	sqlite3_stmt *st = j->stmt[JQ_CHANGELOG_INSERT_PARKED];

	bind_text(st, 1, order_id);
	bind_text(st, 2, topic);
	bind_text(st, 3, event_id);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, partition);
	sqlite3_bind_int64(st, 6, epoch);
	return journal_run(j, st);
}

/* Runs a restore statement bound to the record (and maybe more). */
static int
journal_restore_run(struct journal *j, enum journal_query q, const char *record,
    const char *topic, int64_t now)
{
	sqlite3_stmt *st = j->stmt[q];

	bind_text(st, 1, record);
	if (q == JQ_RESTORE_EVENTS) {
		bind_text(st, 2, topic);
		sqlite3_bind_int64(st, 3, now);
	}
	return journal_run(j, st);
}

static int
journal_supersede(struct journal *j, enum journal_query q, const char *order_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[q];

	bind_text(st, 1, order_id);
	sqlite3_bind_int64(st, 2, now);
	return journal_run(j, st);
}

int
journal_restore(struct journal *j, const char *record, const char *order_id,
    bool parked_only, const char *topic, int64_t now)
{
	int64_t newer = 0;
	int err;

	if (parked_only) {
		sqlite3_stmt *st = j->stmt[JQ_RESTORE_PARKED_NEWER];

		bind_text(st, 1, record);
		if ((err = journal_scalar(st, &newer)) < 0)
			return err;
	} else {
		if ((err = journal_restore_run(j, JQ_RESTORE_ORDER, record, topic, now)) < 0)
			return err;
		newer = sqlite3_changes(j->db) > 0;
	}
	if (!newer)
		return 0;
	if ((err = journal_restore_run(j, JQ_RESTORE_FORGET_EVENTS, record, topic, now)) < 0 ||
	    (err = journal_restore_run(j, JQ_RESTORE_EVENTS, record, topic, now)) < 0 ||
	    (err = journal_restore_run(j, JQ_RESTORE_PARKED, record, topic, now)) < 0 ||
	    (err = journal_restore_run(j, JQ_RESTORE_DEADLINE, record, topic, now)) < 0 ||
	    (err = journal_restore_run(j, JQ_RESTORE_NO_DEADLINE, record, topic, now)) < 0 ||
	    (err = journal_supersede(j, JQ_SUPERSEDE_ORDER, order_id, now)) < 0 ||
	    (err = journal_supersede(j, JQ_SUPERSEDE_ORDER_STEPS, order_id, now)) < 0)
		return err;
	return 1;
}

int
journal_supersede_unowned(struct journal *j, int64_t now, int64_t *rows, int64_t *steps)
{
	sqlite3_stmt *st = j->stmt[JQ_SUPERSEDE_UNOWNED];
	int err;

	sqlite3_bind_int64(st, 1, now);
	if ((err = journal_run(j, st)) < 0)
		return err;
	*rows = sqlite3_changes(j->db);
	st = j->stmt[JQ_SUPERSEDE_UNOWNED_STEPS];
	sqlite3_bind_int64(st, 1, now);
	if ((err = journal_run(j, st)) < 0)
		return err;
	*steps = sqlite3_changes(j->db);
	return 0;
}

int
journal_outbox_max_id(struct journal *j, int64_t *id)
{
	*id = 0;
	return journal_scalar(j->stmt[JQ_OUTBOX_MAX_ID], id);
}

int
journal_outbox_published_range(struct journal *j, int64_t first, int64_t last, int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_OUTBOX_PUBLISHED_RANGE];

	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}
