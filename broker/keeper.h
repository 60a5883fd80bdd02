/*
 * keeper.h: keeping the segment while no broker runs, so that a broker killed and started
 * again adopts the namespace without losing a message.
 *
 * POSIX (keeper_posix.c): the segment is an anonymous sealed memfd with no name, so a
 * small process forked by the broker that created it, the keeper, holds it. The keeper
 * listens on "<ns>.keep" in the broker's runtime directory, for the broker's user only;
 * a starting broker (which holds the namespace's liveness lock) connects there, receives
 * the segment, and stays connected: the keeper learns of that broker's death by end of
 * file, and of a clean shutdown by a "bye". With no broker, it keeps the segment while
 * anything in it could still be wanted (a live client, a lingering mailbox, a retained
 * message) and exits once nothing is. Windows (keeper_win32.c): the named section lives while any
 * process holds a handle, and a starting broker opens it by name; there is no keeper.
 */
#ifndef BROKER_KEEPER_H
#define BROKER_KEEPER_H

#include "platform/platform.h"
#include "segment.h"

/* A starting broker: takes the segment a keeper holds (or, on Windows, the named one),
 * mapped into *shm. MBX_ENOBROKER when there is none; MBX_EPERM when the keeper is not
 * of this user. */
mbx_err keeper_adopt(const char *ns, plat_shm *shm);

/* After creating and initialising the segment: starts its keeper. 0, or -1 (with a
 * message on stderr). */
int keeper_start(const char *ns, const plat_shm *shm);

/* A clean shutdown (or --fresh discarding an adopted segment): tells the keeper that the
 * segment is not wanted any more; it exits. */
void keeper_release(const char *ns);

#endif
