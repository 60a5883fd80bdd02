/*
 * registry.h: the broker's side of the slot table. The broker is the only writer of the
 * directory; it keeps a private, trusted record per slot (names, channel, death watch)
 * and never takes a decision from what shared memory says.
 */
#ifndef BROKER_REGISTRY_H
#define BROKER_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"
#include "segment.h"

typedef struct client_rec {
    bool active;
    plat_handle chan;  /* the client's control connection */
    plat_handle watch; /* readable when the client process exits */
    int64_t pid;
    uint64_t start_time; /* pid's, as written into the entry: the scrub restores it from
                            here, with no look into /proc per entry */
    uint32_t generation;
    uint32_t linger_ms;          /* how long the mailbox outlives its client */
    bool lingering;              /* the client is gone; the mailbox waits (pid is 0) */
    bool dirty;                  /* free, but the mailbox is not emptied yet: not claimable */
    bool group;                  /* one of the members serving this name */
    uint8_t monitor;             /* a monitor: its entry in the header's table plus one
                                    (monitors.h), else 0 */
    char node[MBX_NAME_MAX + 1]; /* a remote name: the node serving it (else "") */
    int64_t linger_until_ns;     /* monotonic deadline while lingering */
    char name[MBX_NAME_MAX + 1];
} client_rec;

typedef struct registry {
    const seg_view *view;
    client_rec *recs; /* one per slot */
    uint32_t active;
    uint64_t anon_counter;
    uint32_t dirty_cursor; /* where registry_retry_dirty() goes on */
} registry;

mbx_err registry_init(registry *reg, const seg_view *view);
void registry_destroy(registry *reg);

/* The active slot named `name`, or -1. */
int64_t registry_find(const registry *reg, const char *name);

/*
 * Gives a free slot to process pid under `wanted` (or a generated unique name when wanted
 * is empty), writing its directory entry. The caller has checked the name is free.
 * Errors: MBX_ENOSLOTS.
 */
mbx_err registry_claim(registry *reg, const char *wanted, int64_t pid, uint32_t linger_ms,
                       bool group, const char *node, bool monitor, uint32_t *slot);

/* The client of slot is gone but asked its mailbox to outlive it: keeps the slot, its
 * messages and its generation (senders go on delivering), for rec->linger_ms. */
void registry_linger(registry *reg, uint32_t slot, int64_t until_ns);

/* A new client of the same name takes over a lingering mailbox, messages and all. It
 * stands for the same node (the caller checked): the entry's node does not change while
 * senders may be reaching the mailbox. */
void registry_take_over(registry *reg, uint32_t slot, int64_t pid, uint32_t linger_ms);

/*
 * Adoption: records slot as held by a live client found in the segment, with its name and
 * (even) generation. The caller then opens the watch.
 */
void registry_adopt(registry *reg, uint32_t slot, const char *name, int64_t pid, uint32_t gen);

/* Adoption: the generation a free slot continues from, so a new owner never gets one that
 * an earlier owner had. */
void registry_set_generation(registry *reg, uint32_t slot, uint32_t gen);

/* Frees a slot: bumps its generation (the name is free at once), drops (and counts) its
 * waiting messages, and wakes its waiters. The mailbox is emptied under its lock; while
 * a live sender keeps that lock (stopped mid-copy), the slot stays dirty: out of use
 * until registry_retry_dirty() empties it, so nothing addressed to the old owner ever
 * lands in the next one's mailbox. Returns the number of messages discarded. The caller
 * closes the record's handles. */
uint64_t registry_release(registry *reg, uint32_t slot);

/* Marks a free slot whose mailbox must be emptied before anyone may claim it. */
void registry_mark_dirty(registry *reg, uint32_t slot);

/*
 * Tries again to empty dirty slots, without waiting for any lock, for at most
 * REGISTRY_DIRTY_BUDGET_NS; the next call goes on where this one stopped, so every dirty
 * slot gets its turn. Each try costs a bounded spin and one look at the lock's holder;
 * a member can make every free slot dirty (point their lock words at a live thread), and
 * the budget keeps the sum of the tries out of the broker's event loop latency. Returns
 * how many stay dirty, *dropped the messages discarded now.
 */
uint32_t registry_retry_dirty(registry *reg, uint64_t *dropped);
#define REGISTRY_DIRTY_BUDGET_NS (2LL * 1000 * 1000)

#endif
