/* status_figures.h: made-up figures of the engine, the relay and the HTTP server, for status.c to render in the tests. */
#ifndef ORDERD_STATUS_FIGURES_H
#define ORDERD_STATUS_FIGURES_H

#include "engine.h"
#include "http.h"
#include "relay.h"
#include "status.h"

/* What a status_input points at: a test changes these after
 * status_figures_fill to see what the rendering makes of it. */
struct status_figures {
	struct engine_stats engine;
	struct relay_snapshot relay;
	struct http_stats http;
	struct engine_lag lag[2];
};

/* Fills f with the same figures every time and *in with them (in points
 * into f, which must outlive its use), the journal's and the process's too. */
void status_figures_fill(struct status_figures *f, struct status_input *in);

#endif
