/* engine_fixture.h: a struct engine with a real journal in a temp dir and no Kafka, Redis or relay, for the unit tests of the engine's files. */
#ifndef ORDERD_ENGINE_FIXTURE_H
#define ORDERD_ENGINE_FIXTURE_H

#include <stdint.h>

#include "engine_int.h"

/* A new engine: its own loop (never run by the fixture; steps.c's timers
 * are initialised, for a test that runs it), the built-in configuration
 * (cf->topic_state "orderd.state"), a new journal in a new temp dir, no
 * partitions owned, e->relay and e->consumer NULL (nothing is produced or
 * stored).  ef_free frees it all and removes the directory. */
struct engine *ef_new(void);
void ef_free(struct engine *e);

/* Gives e the n partitions parts with their epochs, in memory and in the
 * journal's owned table (its own transaction). */
void ef_own(struct engine *e, const int32_t *parts, const int64_t *epochs, int n);
/* Inserts the order (state NEW, one line "sku-1 1") of partition. */
void ef_order(struct engine *e, const char *order_id, int32_t partition);
/* Steps in flight for the order (a flight of one step, as steps_flight_new
 * makes it), and their end (the flight out of the map, freed). */
void ef_fly(struct engine *e, const char *order_id);
void ef_land(struct engine *e, const char *order_id);
/* Adds an unpublished output row of type for the order; returns its id. */
int64_t ef_output(struct engine *e, const char *order_id, const char *type);
/* One integer from the journal (the engine's connection), or -1 without a row. */
int64_t ef_sql(struct engine *e, const char *sql);
/* ef_sql of a query made with printf's format. */
int64_t ef_sqlf(struct engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
