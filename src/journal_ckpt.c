/* journal_ckpt.c: the checkpoint thread of a journal: a connection of its own that copies the WAL back, so that the writer's loop never does. */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "journal_int.h"
#include "log.h"
#include "util.h"

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

void
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

int
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
