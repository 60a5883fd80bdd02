/* fault.c: see fault.h. Only built with MBX_FAULT_INJECTION. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

/* The armed point, parsed once per process: a forked child parses its own environment
 * again (see the atfork handler), so a test can arm a point in one child only. */
static char armed[64];
static _Atomic long countdown;
static atomic_int parsed; /* 0: not yet, 1: done */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

static void parse(void)
{
    pthread_mutex_lock(&parse_lock);
    if (!atomic_load(&parsed)) {
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
        atomic_store(&parsed, 1);
    }
    pthread_mutex_unlock(&parse_lock);
}

static void forget_in_child(void)
{
    atomic_store(&parsed, 0);
}

__attribute__((constructor)) static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_in_child);
}

void fault_point(const char *name)
{
    if (!atomic_load(&parsed))
        parse();
    if (armed[0] == '\0' || strcmp(armed, name) != 0)
        return;
    if (atomic_fetch_sub(&countdown, 1) == 1)
        raise(SIGKILL);
}
