/* relay_window.c: the relay's bookkeeping of rows produced and acknowledged (the cursor, the fifos, the rewind after a failed delivery), on plain data. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "relay_int.h"
#include "util.h"

static void
relay_fifo_push(struct relay_fifo *q, int64_t id)
{
	if (q->head + q->len == q->cap) {
		if (q->head > 0) {
			memmove(q->id, q->id + q->head, q->len * sizeof(*q->id));
			memmove(q->ack, q->ack + q->head, q->len * sizeof(*q->ack));
			q->head = 0;
		}
		if (q->len == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 1024;
			q->id = xrealloc(q->id, q->cap * sizeof(*q->id));
			q->ack = xrealloc(q->ack, q->cap * sizeof(*q->ack));
		}
	}
	q->id[q->head + q->len] = id;
	q->ack[q->head + q->len] = false;
	q->len++;
}

/* Flags id acknowledged; false when it is not in q. */
static bool
relay_fifo_ack(struct relay_fifo *q, int64_t id)
{
	size_t lo = q->head, hi = q->head + q->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->id[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= q->head + q->len || q->id[lo] != id)
		return false;
	q->ack[lo] = true;
	while (q->len > 0 && q->ack[q->head]) {
		q->head++;
		q->len--;
	}
	if (q->len == 0)
		q->head = 0;
	return true;
}

/* The lowest id not acknowledged, or INT64_MAX. */
static int64_t
relay_fifo_low(const struct relay_fifo *q)
{
	return q->len > 0 ? q->id[q->head] : INT64_MAX;
}

void
relay_window_read(struct relay_window *w, int64_t id)
{
	w->cursor = id;
	if (id > w->high)
		w->high = id;
	/* Every row to be produced alone came before this one. */
	if (w->solo_through > 0 && id > w->solo_through)
		w->solo_through = 0;
}

void
relay_window_caught_up(struct relay_window *w)
{
	if (w->high > w->cursor)
		w->cursor = w->high;
}

void
relay_window_sent(struct relay_window *w, int64_t id, bool record)
{
	relay_fifo_push(record ? &w->records : &w->outputs, id);
}

bool
relay_window_acked(struct relay_window *w, int64_t id)
{
	return relay_fifo_ack(&w->outputs, id) || relay_fifo_ack(&w->records, id);
}

void
relay_window_failed(struct relay_window *w, int64_t id)
{
	if (w->rewind_to == 0 || id < w->rewind_to)
		w->rewind_to = id;
}

void
relay_window_dead(struct relay_window *w, int64_t id)
{
	/* As if acknowledged: what is acknowledged through passes it. */
	if (!relay_fifo_ack(&w->outputs, id))
		(void)relay_fifo_ack(&w->records, id);
	if (w->rewind_to == id)
		w->rewind_to = 0;
}

void
relay_window_skip(struct relay_window *w, int64_t id)
{
	if (id > w->cursor)
		w->cursor = id;
	if (id > w->high)
		w->high = id;
	if (w->solo_through > 0 && w->cursor >= w->solo_through)
		w->solo_through = 0;
}

void
relay_window_solo(struct relay_window *w, int64_t id)
{
	if (id > w->solo_through)
		w->solo_through = id;
}

bool
relay_window_is_solo(const struct relay_window *w, int64_t id)
{
	return id <= w->solo_through;
}

bool
relay_window_releasable(const struct relay_window *w, int64_t id)
{
	return relay_fifo_low(&w->outputs) > id;
}

enum relay_rewind
relay_window_rewind(struct relay_window *w, int64_t in_flight)
{
	if (w->rewind_to == 0)
		return RELAY_REWIND_NONE;
	if (in_flight > 0)
		return RELAY_REWIND_WAIT;
	w->cursor = w->rewind_to - 1;
	w->rewind_to = 0;
	/* Nothing is in flight: what stays in the fifos is the failed rows
	 * and the ones after them, all read and produced again now. */
	w->outputs.head = w->outputs.len = 0;
	w->records.head = w->records.len = 0;
	return RELAY_REWIND_DONE;
}

int64_t
relay_window_acked_through(const struct relay_window *w, int64_t pending_low)
{
	int64_t low = relay_fifo_low(&w->outputs);

	if (relay_fifo_low(&w->records) < low)
		low = relay_fifo_low(&w->records);
	if (pending_low < low)
		low = pending_low;
	if (w->rewind_to > 0 && w->rewind_to < low)
		low = w->rewind_to;
	/* Nothing in flight or waiting: every row read is in. */
	return low == INT64_MAX ? w->cursor : low - 1;
}

void
relay_window_free(struct relay_window *w)
{
	free(w->outputs.id);
	free(w->outputs.ack);
	free(w->records.id);
	free(w->records.ack);
	memset(w, 0, sizeof(*w));
}
