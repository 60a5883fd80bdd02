/*
 * monitor.h: copies of what is sent, for the namespace's monitors (`mbx monitor`).
 *
 * A monitor is a client the broker admitted as one (mbx_connect_options.monitor: the
 * namespace's owner only) and listed in the segment header's monitor table (segment.h).
 * Every send, request, reply and publication that succeeded is copied, once, into each
 * monitor's mailbox as a CELL_MONITOR record: the kind it was sent as, its sender, its
 * recipient (or topic), its correlation and its body.
 *
 * The copy never slows the sender down: it waits for no space (a full monitor misses the
 * copy, counted as its `dropped` and told with its next copy, as a subscriber's drop
 * policy) and for the lock only a few polls (another sender copying one message). With
 * no monitor attached a send pays one load of a header word that only changes when a
 * monitor comes or goes, and one branch.
 *
 * Everything read from the table is checked like any shared word: the slot in range,
 * its directory entry flagged DIR_MONITOR, the generation checked under the mailbox's
 * lock by the put itself. A member that forged the table could at worst send copies to
 * a mailbox whose owner drops them (only a monitor takes CELL_MONITOR records), which it
 * could do by writing records there itself.
 */
#ifndef MBX_MONITOR_H
#define MBX_MONITOR_H

#include "client.h"
#include "ring.h"

/* Puts a copy of `sent`, which was sent to `to` (a name; NULL: the name of slot to_slot)
 * or published (CELL_TOPIC: its topic), into every monitor's mailbox. */
void monitor_copy(const mbx_client *c, const ring_outgoing *sent, const char *to, uint32_t to_slot);

/* monitor_copy when a monitor is attached: otherwise one load and one branch. */
static inline void monitor_sent(const mbx_client *c, const ring_outgoing *sent, const char *to,
                                uint32_t to_slot)
{
    if (__builtin_expect(
            atomic_load_explicit(&segment_header(&c->view)->monitors, memory_order_relaxed) != 0,
            0))
        monitor_copy(c, sent, to, to_slot);
}

/* Whether a CELL_MONITOR record's own fields are fit to hand out: a kind it could have
 * been sent as, and a valid topic (a publication's) or recipient name (or none). */
bool monitor_label_valid(const ring_incoming *in);

/* Fills the monitor's view of a copy into msg (the rest as for any message). */
void monitor_fill(mbx_message *msg, const ring_incoming *in);

#endif
