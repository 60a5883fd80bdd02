/*
 * wake.h: the wake handle of a mailbox's owner, for event loops (mbx_wait_handle()).
 *
 * A word in the mailbox header says whether senders must signal the owner's handle:
 *   WAKE_IDLE      no handle in use: senders do nothing (the blocking path's speed);
 *   WAKE_ARMED     the owner found its mailbox empty and waits on the handle: the first
 *                  sender to publish moves the word to NOTIFIED and signals, once;
 *   WAKE_NOTIFIED  signalled; senders do nothing until the owner arms again.
 * The owner arms (client_wake_arm) after every receive that ends without a message for
 * its caller (the mailbox empty, or no reply among what it holds) and after a reply taken
 * out of order: it makes the handle quiet (unless nothing can have signalled it since it
 * last did: wake.c), stores ARMED, then compares tail with how far
 * that receive looked; what came in between is seen there (and the owner signals itself),
 * or its sender sees ARMED (the owner's store and load are sequentially consistent; the
 * sender stores tail, then a sequentially consistent fence, then loads the word). So the handle is
 * readable while anything arrived since the caller last looked, and quiet after a look that found
 * nothing new: no missed wake-up for an edge-triggered loop, no empty wake-up storm for a
 * level-triggered one.
 */
#ifndef MBX_WAKE_H
#define MBX_WAKE_H

#include "segment.h"

enum wake_state { WAKE_IDLE = 0, WAKE_ARMED = 1, WAKE_NOTIFIED = 2 };

/* Sender side, after publishing a message (and broker side, at shutdown or eviction). */
static inline void wake_notify(const seg_view *v, seg_mailbox *mb)
{
    if (atomic_load(&mb->rx_wake) != WAKE_ARMED)
        return;
    uint32_t armed = WAKE_ARMED;
    if (atomic_compare_exchange_strong(&mb->rx_wake, &armed, WAKE_NOTIFIED))
        plat_wake_signal(&v->wake_place, &mb->wake);
}

/* Whoever hands the mailbox to another owner: signals the old owner's handle one last
 * time (it must look: eviction or shutdown) and forgets it. */
void wake_reset(const seg_view *v, seg_mailbox *mb);

#endif
