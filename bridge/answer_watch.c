/*
 * answer_watch.c: watching for the answer to a message just delivered (docs/bridge.md,
 * "Conversations").
 *
 * A request or a lone message that a delivery thread has just put into a local mailbox
 * is usually answered within microseconds: a request's reply comes to the control
 * client, a message back goes into the proxy of the name it came from. Watching that
 * mailbox a moment forwards the answer without the responder's system call to wake the
 * bridge and without the bridge's wake-up.
 *
 * Taking from those mailboxes is main-thread work. The delivery thread does the watch
 * itself while the main thread sleeps in poll (main_asleep) and main_mu can be taken
 * (bridge.h, "Threads"): then no thread at all is woken for the answer, and a round trip
 * through two bridges costs the wake-ups of cnats' own request plus the two clients'.
 * When the main thread is awake, the delivery thread asks it instead (events_watch) and
 * goes on: it never waits for main_mu, so a busy main thread never holds up a delivery,
 * and no lock order is needed; and it never takes main_mu from an awake main thread.
 * What it does under it is bounded and never waits: one drain of the proxy (no watching
 * a stream, outbound_watch), a few control messages (control_drain); whatever is left,
 * the main thread is woken for.
 *
 * A watch that saw nothing (a slow one-way feed of lone messages, a slow responder)
 * costs up to WATCH_SPIN_US of CPU: after one, the next 2^k - 1 are skipped (k misses in
 * a row, up to WATCH_BACKOFF_MAX); an answer seen resets it. With one CPU the spin would
 * only hold up the responder it waits for: no watch at all.
 */
#include <stdint.h>
#include <unistd.h>

#include "bridge.h"
#include "outbound.h"

#define WATCH_BACKOFF_MAX 6

/* Under main_mu. */
static int watch_misses, watch_skip;

static bool watch_wanted(void)
{
    static long cpus; /* under main_mu, as the rest */
    if (cpus == 0)
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus == 1)
        return false;
    if (watch_skip > 0) {
        watch_skip--;
        return false;
    }
    return true;
}

static void watch_done(bool answered)
{
    if (answered) {
        watch_misses = 0;
        return;
    }
    if (watch_misses < WATCH_BACKOFF_MAX)
        watch_misses++;
    watch_skip = (1 << watch_misses) - 1;
}

/* Under main_mu. true: the watched mailbox still holds what a drain left (its wake
 * handle is not armed), so the main thread must look at it without sleeping. */
static bool watch(bridge *b, int what, const char *name)
{
    if (!watch_wanted())
        return false;
    bool answered, more = false;
    if (what == WATCH_NAME) {
        answered = outbound_watch(b, name, &more);
    } else {
        answered = mbx_busy_poll(b->ctl, WATCH_SPIN_US) == MBX_OK;
        if (answered)
            control_drain(b, true);
        more = b->ctl_more || b->ctl_err != MBX_OK || b->ctl_parked != NULL;
    }
    watch_done(answered);
    return more;
}

void answer_watch(bridge *b, const char *name)
{
    if (!atomic_load(&b->main_asleep) || pthread_mutex_trylock(&b->main_mu) != 0) {
        events_watch(b, name); /* the main thread is awake: it watches */
        return;
    }
    atomic_fetch_add_explicit(&b->watches_delivery, 1, memory_order_relaxed);
    bool more = watch(b, name != NULL ? WATCH_NAME : WATCH_CONTROL, name);
    pthread_mutex_unlock(&b->main_mu);
    if (more)
        events_poke(b);
}

void answer_watch_asked(bridge *b)
{
    char name[MBX_NAME_MAX + 1];
    int what = events_take_watch(b, name);
    if (what == WATCH_NONE)
        return;
    atomic_fetch_add_explicit(&b->watches_main, 1, memory_order_relaxed);
    (void)watch(b, what, name); /* the main loop drains what is left just after */
}
