/*
 * shm_wait.h: the one way to sleep until a word in shared memory changes.
 *
 * Every wait of the library on shared state (an owner for a message, a requester for
 * its reply, a sender for space, anyone for a name to appear) is the same protocol,
 * written and argued once here:
 *   1. announce: set a flag (the one owner) or add one to a count (any number of
 *      waiters) that the changing side reads after its change;
 *   2. look again at the word: if it moved since the caller looked (or an interrupt is
 *      pending), do not sleep;
 *   3. sleep on the semaphore until `until` (a slice of the caller's deadline: a post can
 *      be lost to a poster killed between its change and its post);
 *   4. retract the announcement (a count never goes below zero: whoever resets it for a
 *      new owner may have zeroed it meanwhile).
 * The changing side stores the word, then loads the announcement, with a sequentially
 * consistent fence or operations in between (1 and 2 are sequentially consistent; a
 * sender publishing a message stores `tail` with release order, unlocks, then fences:
 * ring_send.c), and posts once per announced sleeper. So either the waiter sees the
 * change in 2, or the changer sees the announcement and posts: no lost wake-up. A wake-up is a
 * hint: callers look at their state again after every return.
 */
#ifndef MBX_SHM_WAIT_H
#define MBX_SHM_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"

/* Longest single sleep: waits longer than that are taken in slices, the caller re-checking
 * the namespace's state between them. */
#define SHM_WAIT_SLICE_NS (250LL * 1000 * 1000)

typedef struct shm_wait {
    plat_sem *sem;                  /* posted by the changer, once per announced sleeper */
    _Atomic uint32_t *sleepers;     /* the announcement */
    bool counted;                   /* sleepers is a count (else a flag for the one owner) */
    const _Atomic uint64_t *word;   /* the word watched (or word32), and the value the */
    const _Atomic uint32_t *word32; /* caller saw: sleep only while it still holds it */
    uint64_t seen;
    _Atomic uint32_t *interrupt; /* may be NULL; once set, no sleep */
    plat_signal_hold *hold;      /* signals held off since the caller began to look (a
                                    client with the `signals` option), or NULL: one that
                                    came means no sleep, MBX_ESIGNAL; the sleep itself
                                    lets them through */
} shm_wait;

/* Steps 1-4 above, once. MBX_ESIGNAL when a signal handler ran during the sleep (the
 * caller stops there if its client asked to: seg_view.stop_on_signal), else MBX_OK. */
mbx_err shm_wait_once(const shm_wait *w, int64_t until_ns);

/* When a sleep that began at now should end: at the deadline, or one SHM_WAIT_SLICE_NS
 * later, whichever is first. Test builds let MBX_TEST_NO_WAIT_SLICE=1 remove the slice,
 * so that a lost wake-up hangs the test instead of hiding behind one slice. */
int64_t shm_sleep_until(int64_t deadline_ns, int64_t now_ns);

/* Whether sleeps may be cut into slices at all (false under MBX_TEST_NO_WAIT_SLICE=1). */
bool shm_slices(void);

#endif
