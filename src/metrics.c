/* metrics.c: fixed-bucket latency histograms (Prometheus-style) for orderd's hot paths. */
#include "autoconfig.h"

#include "metrics.h"

const int64_t metrics_bucket_us[METRICS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 7500000, 10000000,
};

void
metrics_observe(struct metrics_hist *h, int64_t us)
{
	int i = 0;

	if (us < 0)
		us = 0;
	/* A linear scan: 18 compares, and most observations end early. */
	while (i < METRICS_BUCKETS && us > metrics_bucket_us[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum_us += us;
}

int64_t
metrics_quantile(const struct metrics_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	want = (uint64_t)(q * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (int i = 0; i <= METRICS_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen > want)
			return i < METRICS_BUCKETS ? metrics_bucket_us[i] :
			    metrics_bucket_us[METRICS_BUCKETS - 1];
	}
	return metrics_bucket_us[METRICS_BUCKETS - 1];
}
