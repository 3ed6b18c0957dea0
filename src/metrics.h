/* metrics.h: latency histograms with fixed buckets, cheap enough to record on every step. */
#ifndef ORDERD_METRICS_H
#define ORDERD_METRICS_H

#include <stdint.h>

/* Upper bounds in microseconds: 50 us .. 10 s, then +Inf. */
#define METRICS_BUCKETS 18
extern const int64_t metrics_bucket_us[METRICS_BUCKETS];

struct metrics_hist {
	uint64_t buckets[METRICS_BUCKETS + 1];	/* not cumulative; last is +Inf */
	uint64_t count;
	int64_t sum_us;
};

/* Records one observation of us microseconds. */
void metrics_observe(struct metrics_hist *h, int64_t us);
/* The q-quantile (0..1) estimated from the buckets, in microseconds. */
int64_t metrics_quantile(const struct metrics_hist *h, double q);

#endif
