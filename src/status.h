/* status.h: orderd's GET /metrics (Prometheus text format 0.0.4) and GET /healthz, served from what the engine and the relay publish. */
#ifndef ORDERD_STATUS_H
#define ORDERD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "http.h"
#include "relay.h"

struct config;
struct status;

/* The Content-Type of /metrics. */
#define STATUS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/*
 * Everything one scrape shows, gathered before anything is written, so
 * rendering is a pure function (tests feed it made-up figures).
 */
struct status_input {
	const struct engine_stats *engine;	/* required */
	const struct relay_snapshot *relay;	/* NULL: shown as zeros */
	const struct http_stats *http;		/* NULL: shown as zeros */
	bool journal_ok;		/* the journal answered the queries below */
	const char *journal_error;	/* why not, when !journal_ok */
	int64_t orders_new, orders_reserved;	/* live sagas */
	int64_t outbox_pending;
	int64_t outbox_oldest_age_ms;	/* of the first unpublished row; 0 when none */
	int64_t outbox_dead;		/* dead rows in the journal */
	const struct engine_lag *lag;
	int nlag;
	bool process_ok;		/* /proc/self was readable */
	int64_t rss_bytes, virtual_bytes;
	double cpu_seconds, start_time_seconds;
	int64_t open_fds, max_fds;
};

/* Appends the exposition of in to out: one HELP and one TYPE line per
 * family, then its samples; histograms in seconds with cumulative buckets. */
void status_render_metrics(const struct status_input *in, struct http_buf *out);
/*
 * Appends "ok\n" and returns 200 when orderd is healthy; else one line per
 * reason ("redis: ...", "kafka: ...", "outbox: ...", "journal: ...") and
 * returns 503.  The outbox is unhealthy when its first unpublished row is
 * older than unhealthy_outbox_age_ms.
 */
int status_render_health(const struct status_input *in, int64_t unhealthy_outbox_age_ms,
    struct http_buf *out);

/*
 * Serves /metrics and /healthz on cf->http_listen (which must not be
 * empty) from the engine's published snapshot (engine_snapshot()), which
 * is all it reads of the engine and the relay.  cf and snap must outlive
 * the status (close it before the engine stops); cf is read on every
 * request, so a SIGHUP applies http.unhealthy_outbox_age_ms at once.
 * Returns 0 or a negative errno with *cause (caller frees) naming
 * http.listen.
 */
int status_new(struct status **out, uv_loop_t *loop, const struct config *cf,
    const struct engine_snapshot *snap, char **cause);
/* The port listened on. */
int status_port(const struct status *st);
/* Stops serving at once (no request reads the snapshot after this call);
 * st is freed when the server's handles are closed.  NULL is fine. */
void status_close(struct status *st);

#endif
