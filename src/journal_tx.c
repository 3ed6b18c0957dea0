/* journal_tx.c: running the journal's statements and transactions: SQLite's codes as errnos, one writer at a time per connection, and the one policy for a write that failed. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "journal_int.h"
#include "log.h"

int
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

int
journal_run(struct journal *j, sqlite3_stmt *st)
{
	(void)j;
	return journal_step_done(st, sqlite3_step(st));
}

int
journal_run_one(struct journal *j, sqlite3_stmt *st)
{
	int err = journal_run(j, st);

	if (err < 0)
		return err;
	return sqlite3_changes(j->db) == 1 ? 0 : -ENOENT;
}

static int
journal_begin_with(struct journal *j, sqlite3_stmt *begin, const char *who)
{
	int err;

	if (j->tx_owner != NULL) {
		log_error("journal", "%s may not begin a transaction while %s's is open "
		    "(one writer at a time)", who, j->tx_owner);
		return -EDEADLK;
	}
	if ((err = journal_run(j, begin)) == 0)
		j->tx_owner = who;
	return err;
}

int
journal_begin(struct journal *j, const char *who)
{
	return journal_begin_with(j, j->begin, who);
}

int
journal_begin_read(struct journal *j, const char *who)
{
	return journal_begin_with(j, j->begin_read, who);
}

const char *
journal_tx_owner(const struct journal *j)
{
	return j->tx_owner;
}

int
journal_commit(struct journal *j)
{
	int err = journal_run(j, j->commit);

	if (err == 0)
		j->tx_owner = NULL;
	return err;
}

void
journal_rollback(struct journal *j)
{
	if (sqlite3_get_autocommit(j->db) == 0)
		journal_run(j, j->rollback);
	j->tx_owner = NULL;
}

void
journal_fatal(struct journal *j, const char *who, const char *what, int err)
{
	char msg[512];

	/* The message first: the rollback would replace it. */
	snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(j->db));
	journal_rollback(j);
	if (err == -EBUSY)
		log_fatal(who, "journal: %s: another process held the journal's write "
		    "lock for more than %d ms (a sqlite3 shell inside BEGIN, or a "
		    "long orderctl command?): stopping; nothing is lost, start orderd "
		    "again once it lets go", what, j->busy_timeout_ms);
	log_fatal(who, "journal: %s: %s (%s)", what, strerror(-err), msg);
}

void
journal_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int
journal_step_done(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_err(rc) ? journal_err(rc) : -EIO;
	return 0;
}

int
journal_scalar(sqlite3_stmt *st, int64_t *out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	return journal_step_done(st, rc);
}

int
journal_changes(struct journal *j, sqlite3_stmt *st)
{
	int err = journal_run(j, st);

	return err < 0 ? err : sqlite3_changes(j->db);
}
