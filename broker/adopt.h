/*
 * adopt.h: taking over a namespace whose broker died.
 *
 * The segment is validated like anything else read from shared memory; then every slot is
 * judged: a client whose process still lives (same pid and start time, so a recycled pid
 * does not pass) keeps its slot and its waiting messages; the slot of one that is gone is
 * freed, its messages counted as discarded. Generations continue from where they were.
 */
#ifndef BROKER_ADOPT_H
#define BROKER_ADOPT_H

#include <stdint.h>

#include "registry.h"

typedef struct adopt_report {
    uint32_t kept;          /* live clients that keep their slot */
    uint32_t freed;         /* slots of clients that are gone */
    uint32_t lingering;     /* mailboxes of gone clients kept for their linger time */
    uint32_t repaired;      /* entries or mailboxes found inconsistent and mended */
    uint32_t dirty;         /* free mailboxes a live sender still locks: emptied later */
    uint64_t messages_kept; /* messages waiting in the kept mailboxes */
    uint64_t discarded;     /* messages dropped with the clients that are gone */
} adopt_report;

/*
 * Rebuilds reg from the segment's directory (reg freshly initialised on that segment).
 * Kept clients get a death watch in rec->watch; their control channel is gone, so
 * rec->chan stays PLAT_NO_HANDLE.
 */
void adopt_clients(registry *reg, adopt_report *report);

#endif
