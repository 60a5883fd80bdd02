/* bench_stats.c: see bench_stats.h. Nearest-rank percentiles. */
#include <stdlib.h>

#include "bench_stats.h"

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double rank(const int64_t *sorted, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return (double)sorted[i < n ? i : n - 1];
}

void bench_percentiles_of(int64_t *samples, size_t n, double scale, bench_percentiles *out)
{
    qsort(samples, n, sizeof *samples, compare);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)samples[i];
    out->p50 = rank(samples, n, 0.50) * scale;
    out->p99 = rank(samples, n, 0.99) * scale;
    out->p999 = rank(samples, n, 0.999) * scale;
    out->max = (double)samples[n - 1] * scale;
    out->mean = sum / (double)n * scale;
}
