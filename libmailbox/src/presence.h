/*
 * presence.h: waiting for a name to be there (docs/api.md, "Waiting for a peer").
 *
 * The broker adds one to the header's dir_changes at every change of the directory (a
 * client registered, left, lingers, was taken over) and posts dir_sem once per waiter
 * announced in dir_waiters. A waiter announces itself, re-reads the counter, and sleeps
 * only if nothing changed since it looked at the directory: a change is never missed, and
 * nobody polls.
 */
#ifndef MBX_PRESENCE_H
#define MBX_PRESENCE_H

#include "segment.h"

/* Broker side: the directory changed; wakes whoever waits for a name. */
void presence_changed(const seg_view *v);

/* Waits until `name` is an active entry (a connected client, or a lingering mailbox: a
 * send to it would be accepted) or the deadline. MBX_OK, MBX_ETIMEDOUT, MBX_ESHUTDOWN
 * when the namespace closes meanwhile, MBX_ECORRUPT for a state no broker writes. */
mbx_err presence_wait(const seg_view *v, const char *name, int64_t deadline_ns);

#endif
