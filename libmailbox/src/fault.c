/* fault.c: see fault.h. Only built with MBX_FAULT_INJECTION. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "platform/platform.h"

/* The armed point, parsed once per process: a forked child parses its own environment
 * again (see the atfork handler), so a test can arm a point in one child only. */
static char armed[64];
static _Atomic long countdown;
static atomic_int parsed; /* 0: not yet, 1: being parsed, 2: done */

static void parse(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&parsed, &expected, 1)) {
        while (atomic_load(&parsed) != 2) /* another thread is parsing: a few microseconds */
            plat_yield();
        return;
    }
    const char *spec = getenv("MBX_FAULT");
    armed[0] = '\0';
    atomic_store(&countdown, 1);
    if (spec != NULL) {
        snprintf(armed, sizeof armed, "%s", spec);
        char *colon = strchr(armed, ':');
        if (colon != NULL) {
            *colon = '\0';
            atomic_store(&countdown, strtol(colon + 1, NULL, 10));
        }
    }
    atomic_store(&parsed, 2);
}

static void forget_in_child(void)
{
    atomic_store(&parsed, 0);
}

__attribute__((constructor)) static void register_atfork(void)
{
    plat_at_fork_child(forget_in_child);
}

void fault_point(const char *name)
{
    if (atomic_load(&parsed) != 2)
        parse();
    if (armed[0] == '\0' || strcmp(armed, name) != 0)
        return;
    if (atomic_fetch_sub(&countdown, 1) == 1)
        plat_kill_self();
}

bool fault_no_wait_slice(void)
{
    const char *v = getenv("MBX_TEST_NO_WAIT_SLICE");
    return v != NULL && strcmp(v, "1") == 0;
}
