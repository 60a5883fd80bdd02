/* monotonic.h: a clock for the tools' own timeouts, which the wall clock cannot move. */
#ifndef MBX_MONOTONIC_H
#define MBX_MONOTONIC_H

/* Milliseconds on a monotonic clock (from an arbitrary start). */
long long monotonic_ms(void);

#endif
