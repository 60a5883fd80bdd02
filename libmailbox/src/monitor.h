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

/* Whether a monitor is attached: one load of a word that changes only when a monitor
 * comes or goes, so that a send pays that and one branch while nobody watches. */
static inline bool monitor_attached(const mbx_client *c)
{
    return __builtin_expect(
        atomic_load_explicit(&segment_header(&c->view)->monitors, memory_order_relaxed) != 0, 0);
}

/* The name of the client that holds slot as generation gen (a reply's requester), read
 * before the reply is put (it may take it and go at once); "" when it is gone. */
const char *monitor_recipient(const mbx_client *c, uint32_t slot, uint32_t gen,
                              char name[MBX_NAME_MAX + 1]);

/* Puts a copy of `sent`, which was sent to `to` (a name, "" for none; not read for a
 * publication: its topic goes), into every monitor's mailbox. A copy that does not go
 * in is counted as that monitor's miss. */
void monitor_copy(const mbx_client *c, const ring_outgoing *sent, const char *to);

/* Whether a CELL_MONITOR record's own fields are fit to hand out: a kind it could have
 * been sent as, and a valid topic (a publication's) or recipient name (or none). */
bool monitor_label_valid(const ring_incoming *in);

/* Fills the monitor's view of a copy into msg (the rest as for any message). */
void monitor_fill(mbx_message *msg, const ring_incoming *in);

#endif
