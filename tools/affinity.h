/* affinity.h: pinning a benchmark process to one CPU (Linux: sched_setaffinity). */
#ifndef MBX_AFFINITY_H
#define MBX_AFFINITY_H

/* Pins the calling process to CPU cpu (counted among the CPUs it may use); a negative
 * cpu leaves it unpinned. Returns 0, or -1 when the CPU does not exist. */
int affinity_pin(int cpu);

/* How many CPUs this process may run on. */
int affinity_cpus(void);

#endif
