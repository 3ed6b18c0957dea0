/* journal_open.c: opening a journal and closing it: its files' modes, the pragmas, the migrations to JOURNAL_VERSION, the session's TEMP tables and the statements of sql/queries.sql, prepared once. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal_int.h"
#include "log.h"
#include "util.h"

static const char *const journal_query_names[JQ_COUNT] = {
#define X(id, name) name,
	JOURNAL_QUERIES(X)
#undef X
};

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

		/* Retention gives free pages back with PRAGMA incremental_vacuum.
		 * In WAL mode the setting takes a VACUUM, which costs nothing on
		 * the empty file. */
		if (v == 0 && (err = journal_exec(j, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
		    cause)) < 0)
			return err;
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
	j->busy_timeout_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000;
	sqlite3_busy_timeout(j->db, j->busy_timeout_ms);
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
	if ((err = journal_changelog_init(j)) < 0) {
		*cause = xasprintf("%s: %s", path, sqlite3_errmsg(j->db));
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
