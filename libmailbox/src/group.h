/*
 * group.h: service groups (several clients serving one name, mbx_connect_options.group):
 * which member a message goes to, and what a leaving member does with what it holds.
 *
 * Invariant: a request sent to a group is answered, or ends in MBX_EGONE only when a
 * member took it and left without answering. A member that leaves first closes its
 * mailbox to senders (ring_close: under the lock, so nothing arrives after), then hands
 * on everything unread: requests go back to their requesters as CELL_RETURNED records
 * (request.c sends them again to the group's name, with the same id), plain messages go
 * to a sibling that is still open, keeping their sender, sequence number and time.
 */
#ifndef MBX_GROUP_H
#define MBX_GROUP_H

#include <stdbool.h>

#include "segment.h"

/* The member of the group `name` (len bytes) a message should go to: the open one with
 * the fewest messages waiting, among those the one that took the fewest so far; not
 * `except` (UINT32_MAX: none). A name that turns out not to be a group gives its one
 * holder. MBX_ENORECIPIENT when none is left. */
mbx_err group_pick(const seg_view *v, const char *name, size_t len, uint32_t except, uint32_t *slot,
                   uint32_t *generation);

/*
 * The member (slot, generation) named `name` leaves: closes its mailbox to senders and
 * hands on what is unread, as above, each put waiting for space until deadline_ns (a
 * requester or sibling whose mailbox stays full loses that message: counted in the
 * namespace's discarded, and the requester gets MBX_EGONE when the member is gone).
 * Called by the member itself before it unregisters, and by the broker for a member that
 * died (never_wait: it takes no lock that is held and waits for no space, so a member
 * can never stall it; what cannot be handed on at once is discarded as before).
 * MBX_ETIMEDOUT when the mailbox could not be closed (its lock stayed held): nothing was
 * handed on.
 */
mbx_err group_handoff(const seg_view *v, uint32_t slot, uint32_t generation, const char *name,
                      int64_t deadline_ns, bool never_wait);

#endif
