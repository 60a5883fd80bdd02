/* bench_stats.h: percentiles of a set of measurements. */
#ifndef MBX_BENCH_STATS_H
#define MBX_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_percentiles {
    double p50, p99, p999, max, mean; /* in the unit of the samples */
} bench_percentiles;

/* Sorts samples[0..n) in place and fills *out; n must be at least 1. */
void bench_percentiles_of(int64_t *samples, size_t n, double scale, bench_percentiles *out);

#endif
