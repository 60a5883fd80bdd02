/* monotonic_posix.c: see monotonic.h. */
#include <time.h>

#include "monotonic.h"

long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
