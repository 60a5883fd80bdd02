/*
 * scrub.h: the broker's periodic check of its segment against what it knows for sure.
 *
 * Any process of the namespace can write anywhere in the mapping. The broker keeps trusted
 * copies of everything it wrote (the header's fixed part, and every directory entry
 * through its registry) and, once a second, compares: what differs is logged and put
 * back; a mailbox whose indices are out of range is emptied (its messages counted as
 * discarded), because nothing in it can be trusted to be a message.
 */
#ifndef BROKER_SCRUB_H
#define BROKER_SCRUB_H

#include "registry.h"

typedef struct scrubber {
    registry *reg;
    unsigned char pristine_header[offsetof(seg_header, state)]; /* never changes */
    int64_t broker_pid;
    uint64_t broker_start_time;
    int64_t started_us;
    uint64_t epoch;
} scrubber;

/* Takes the trusted copies; call once the header is complete and ready. */
void scrub_init(scrubber *s, registry *reg);

/* Compares and repairs; returns how many things were repaired (each one logged). */
unsigned scrub_segment(scrubber *s);

#endif
