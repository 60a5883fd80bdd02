/*
 * mbx-validate-bench: what checking a message costs, per message, on this machine: the
 * library's check of a compact 120-byte JSON message (the send path, and the receiver's
 * bounded re-check), the check and compaction of the same message with white space, and
 * cJSON's parse of it for scale. Prints figures; asserts nothing (docs/performance.md,
 * "Validation").
 *
 * Usage: mbx-validate-bench [ITERATIONS]
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "json_check.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A typical 120-byte message: an object of a few fields, numbers, a short string. */
static const char compact[] = "{\"id\":123456,\"kind\":\"reading\",\"sensor\":\"kitchen-2\","
                              "\"values\":[21.5,48.25,1013.2],\"ok\":true,\"note\":\"aaaaaaaaaa\"}";
static const char spaced[] = "{ \"id\": 123456, \"kind\": \"reading\", \"sensor\": \"kitchen-2\", "
                             "\"values\": [21.5, 48.25, 1013], \"ok\": true }";

static volatile size_t sink; /* keeps the compiler from dropping the work */

static double per_message(long n, int which)
{
    char out[256];
    bool c;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        switch (which) {
        case 0:
            sink += json_check(compact, sizeof compact - 1, &c) && c;
            break;
        case 1:
            if (envelope_validate(spaced, sizeof spaced - 1, &c) == MBX_OK && !c)
                sink += envelope_compact(spaced, sizeof spaced - 1, out);
            break;
        default: {
            cJSON *j = cJSON_ParseWithLength(compact, sizeof compact - 1);
            sink += j != NULL;
            cJSON_Delete(j);
        }
        }
    }
    return (double)(now_ns() - t0) / (double)n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    const char *names[] = {"check, compact (send and receive path)",
                           "check + compaction, with white space", "cJSON parse (for scale)"};
    size_t sizes[] = {sizeof compact - 1, sizeof spaced - 1, sizeof compact - 1};
    printf("validation of one message, ns (median of 5 rounds of %ld)\n", n);
    for (int w = 0; w < 3; w++) {
        double r[5];
        for (int k = 0; k < 5; k++)
            r[k] = per_message(n, w);
        qsort(r, 5, sizeof *r, cmp);
        printf("  %-42s %4zu bytes %8.1f ns  %6.2f GB/s\n", names[w], sizes[w], r[2],
               (double)sizes[w] / r[2]);
    }
    return 0;
}
