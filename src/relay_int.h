/* relay_int.h: the relay's bookkeeping of the rows it produced (struct relay_window), shared by relay.c and relay_window.c and their unit test (tests/check_relay.c): nothing else includes it. */
#ifndef ORDERD_RELAY_INT_H
#define ORDERD_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ids produced and not yet acknowledged, ascending, the acknowledged ones
 * flagged until everything before them is. */
struct relay_fifo {
	int64_t *id;
	bool *ack;
	size_t head, len, cap;
};

/*
 * Which outbox rows the relay has read and produced, and what the broker
 * said of them: plain data, no I/O, so that tests/check_relay.c can drive
 * every order of delivery reports.  relay.c reads the rows, produces them
 * and marks them published; it asks this file what follows from a report.
 *
 * The rule after a failed delivery: the lowest failed id is kept
 * (rewind_to) and nothing is acknowledged through it; once no row is in
 * flight, the cursor goes back to just before it and every row from there
 * on that is still unpublished in the journal is read and produced again,
 * in id order (the same event ids make the repeats recognisable).  Rows
 * after it that were acknowledged are marked published all the same (the
 * broker has them): only those whose mark was not committed yet are
 * produced twice.
 */
struct relay_window {
	int64_t cursor;			/* the next page starts after it */
	int64_t high;			/* highest id read in this process */
	int64_t rewind_to;		/* lowest id whose delivery failed; 0: none */
	/* Rows up to this id are produced one at a time (0: none): one of
	 * them was refused for good, but in a batch with others (the broker
	 * refuses a batch as a whole), so which one is to blame is told only
	 * by producing each alone. */
	int64_t solo_through;
	/* Rows produced and not yet acknowledged: the outputs (produced in id
	 * order as they are read) and the changelog records (produced in id
	 * order as they are released), each ascending. */
	struct relay_fifo outputs, records;
};

/* What relay_window_rewind() decided. */
enum relay_rewind {
	RELAY_REWIND_NONE,		/* no delivery failed */
	RELAY_REWIND_WAIT,		/* one failed, but rows are still in flight */
	RELAY_REWIND_DONE,		/* the cursor went back: read again after it */
};

/* Row id was read: the next page starts after it. */
void relay_window_read(struct relay_window *w, int64_t id);
/* A page came back short: every unpublished row is read, so the rows
 * between the cursor and the highest ever read (skipped after a rewind:
 * the broker had them) are in too. */
void relay_window_caught_up(struct relay_window *w);
/* Row id was handed to the producer: an output as it is read, a changelog
 * record (record) as it is released. */
void relay_window_sent(struct relay_window *w, int64_t id, bool record);
/* The broker acknowledged row id; false when it was not in flight. */
bool relay_window_acked(struct relay_window *w, int64_t id);
/* The delivery of row id failed: it and every later row go again. */
void relay_window_failed(struct relay_window *w, int64_t id);
/* Row id is dead (refused for good, or failed too often): nothing waits
 * for it any more; it is out of the fifos and of the rewind. */
void relay_window_dead(struct relay_window *w, int64_t id);
/* A short page ended at id, the highest outbox id: every row up to it that
 * was not read is not the relay's to publish (published, superseded, dead,
 * dropped, or held behind a dead row of its order), so what is
 * acknowledged through may pass it. */
void relay_window_skip(struct relay_window *w, int64_t id);
/* Row id was refused for good while other rows were in flight: the rows
 * up to it are produced one at a time until the cursor passes it. */
void relay_window_solo(struct relay_window *w, int64_t id);
/* Whether row id is to be produced alone (relay_window_solo). */
bool relay_window_is_solo(const struct relay_window *w, int64_t id);
/* Whether the changelog record id may be produced: every output before it
 * is acknowledged (records in flight do not hold back the next ones). */
bool relay_window_releasable(const struct relay_window *w, int64_t id);
/*
 * Before reading rows: after a failed delivery, and once nothing is in
 * flight (in_flight: rows produced without a report yet; else a row
 * produced again could overtake one still on its way), the cursor goes
 * back to just before the lowest failed row and the fifos are emptied
 * (what stayed in them is that row and the rows after it, all read again):
 * RELAY_REWIND_DONE, and the caller drops the records it holds back too.
 */
enum relay_rewind relay_window_rewind(struct relay_window *w, int64_t in_flight);
/* Every row up to the returned id is acknowledged (or published, or
 * superseded, before this process read it).  pending_low: the lowest
 * changelog record read and not produced yet, or INT64_MAX. */
int64_t relay_window_acked_through(const struct relay_window *w, int64_t pending_low);
void relay_window_free(struct relay_window *w);

#endif
