/* journal_changelog.c: the journal's side of several instances: changelog records of orders, restoring them, and the partitions owned. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "event.h"
#include "journal_int.h"

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

int
journal_changelog_init(struct journal *j)
{
	int rc = sqlite3_create_function(j->db, "orderd_state_id", 3,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, journal_state_id_fn, NULL, NULL);

	return rc == SQLITE_OK ? 0 : journal_err(rc) ? journal_err(rc) : -EIO;
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

	journal_bind_text(st, 1, order_id);
	return journal_run_one(j, st);
}

int
journal_changelog_add(struct journal *j, const char *order_id, const char *topic,
    int64_t now)
{
	sqlite3_stmt *st = j->stmt[JQ_CHANGELOG_INSERT];

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, topic);
	sqlite3_bind_int64(st, 3, now);
	return journal_run(j, st);
}

int
journal_parked_version(struct journal *j, const char *order_id, int64_t *n)
{
	sqlite3_stmt *st = j->stmt[JQ_PARKED_VERSION];

	*n = 0;
	journal_bind_text(st, 1, order_id);
	return journal_scalar(st, n);
}

int
journal_changelog_add_parked(struct journal *j, const char *order_id, const char *topic,
    const char *event_id, int64_t now, int32_t partition, int64_t epoch, int64_t version)
{
	sqlite3_stmt *st = j->stmt[JQ_CHANGELOG_INSERT_PARKED];

	journal_bind_text(st, 1, order_id);
	journal_bind_text(st, 2, topic);
	journal_bind_text(st, 3, event_id);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, partition);
	sqlite3_bind_int64(st, 6, epoch);
	sqlite3_bind_int64(st, 7, version);
	return journal_run(j, st);
}

/* Runs a restore statement bound to the record (and maybe more). */
static int
journal_restore_run(struct journal *j, enum journal_query q, const char *record,
    const char *topic, int64_t now)
{
	sqlite3_stmt *st = j->stmt[q];

	journal_bind_text(st, 1, record);
	if (q == JQ_RESTORE_EVENTS) {
		journal_bind_text(st, 2, topic);
		sqlite3_bind_int64(st, 3, now);
	}
	return journal_run(j, st);
}

static int
journal_supersede(struct journal *j, enum journal_query q, const char *order_id, int64_t now)
{
	sqlite3_stmt *st = j->stmt[q];

	journal_bind_text(st, 1, order_id);
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

		journal_bind_text(st, 1, record);
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
