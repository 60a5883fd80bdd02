/* affinity_linux.c: see affinity.h. */
#include <sched.h>

#include "affinity.h"

int affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

int affinity_pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return -1;
    /* The cpu-th CPU we are allowed on, so that "0" and "1" mean two distinct CPUs
     * wherever the benchmark runs. */
    for (int i = 0, seen = 0; i < CPU_SETSIZE; i++) {
        if (!CPU_ISSET(i, &allowed))
            continue;
        if (seen++ == cpu) {
            CPU_ZERO(&one);
            CPU_SET(i, &one);
            return sched_setaffinity(0, sizeof one, &one);
        }
    }
    return -1;
}
