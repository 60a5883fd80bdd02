/*
 * fault.h: fault-injection points for crash tests, compiled out of release builds.
 *
 * FAULT_POINT("name") kills the calling process with SIGKILL, at that instruction, when
 * the environment variable MBX_FAULT names the point: "name" fires on the first pass,
 * "name:N" on the N-th. Points exist only where a crash is interesting: between lock and
 * unlock, in the middle of a copy, in the middle of registration. Tests fire them while
 * other processes run and then check that the namespace goes on.
 */
#ifndef MBX_FAULT_H
#define MBX_FAULT_H

#ifdef MBX_FAULT_INJECTION
#include <stdbool.h>
void fault_point(const char *name);
/* True when the environment asks sleeps on semaphores to last until their deadline, not
 * one 250 ms slice (MBX_TEST_NO_WAIT_SLICE=1): tests of wake-ups then fail when the
 * wake-up is missing, instead of passing one slice later. Read at every sleep. */
bool fault_no_wait_slice(void);
#define FAULT_POINT(name) fault_point(name)
#else
#define FAULT_POINT(name) ((void)0)
#endif

#endif
