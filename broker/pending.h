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
#define PENDING_PER_UID 32

typedef struct pending_set {
    int count;
    struct {
        plat_handle handle;
        uint32_t uid;
        int64_t since_ns;
    } items[PENDING_MAX];
} pending_set;

typedef enum { PENDING_ADDED, PENDING_FULL, PENDING_UID_FULL } pending_result;

/* Adds a connection of user uid accepted at now_ns, unless PENDING_MAX already wait
 * (PENDING_FULL) or PENDING_PER_UID of that user do (PENDING_UID_FULL). */
pending_result pending_add(pending_set *set, plat_handle h, uint32_t uid, int64_t now_ns);
/* Forgets a connection (registered, refused or closed). */
void pending_remove(pending_set *set, plat_handle h);
/* Takes out one connection that has waited past PENDING_TIMEOUT_NS; false when none. */
bool pending_take_expired(pending_set *set, int64_t now_ns, plat_handle *out);

#endif
