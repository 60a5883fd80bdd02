/*
 * pending.h: control connections accepted but not yet registered. A process that connects
 * and never sends must not hold the broker's file descriptors for ever: at most
 * PENDING_MAX wait at once, each for at most PENDING_TIMEOUT_NS.
 */
#ifndef BROKER_PENDING_H
#define BROKER_PENDING_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"

#define PENDING_MAX 256
#define PENDING_TIMEOUT_NS (5LL * 1000 * 1000 * 1000)

typedef struct pending_set {
    int count;
    struct {
        plat_handle handle;
        int64_t since_ns;
    } items[PENDING_MAX];
} pending_set;

/* Adds a connection accepted at now_ns; false when PENDING_MAX already wait. */
bool pending_add(pending_set *set, plat_handle h, int64_t now_ns);
/* Forgets a connection (registered, refused or closed). */
void pending_remove(pending_set *set, plat_handle h);
/* Takes out one connection that has waited past PENDING_TIMEOUT_NS; false when none. */
bool pending_take_expired(pending_set *set, int64_t now_ns, plat_handle *out);

#endif
