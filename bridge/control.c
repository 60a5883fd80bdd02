/*
 * control.c: what comes to the bridge's own client, bridge.<node> (main-thread work:
 * under main_mu, bridge.h "Threads"): local publications to export, replies to
 * requests delivered for other hosts, and `mbx list`'s state requests.
 */
#include "bridge.h"

#define CTL_BATCH 1024     /* control messages taken per round, so proxies get their turn */
#define CTL_DELIVERY_MAX 8 /* ... and by a delivery thread, whose own name waits meanwhile */

/* Main thread: what a delivery thread's drain left to it. */
static void take_parked(bridge *b)
{
    mbx_message *m = b->ctl_parked;
    b->ctl_parked = NULL;
    if (mbx_message_kind(m) == MBX_KIND_REPLY)
        (void)inbound_on_ctl_reply(b, m, true);
    else
        state_answer(b, m);
    mbx_message_free(m);
}

/* Parks b->ctl_msg for the main thread, if the place is free; false: it is not. */
static bool park(bridge *b)
{
    mbx_message *fresh = b->ctl_parked == NULL ? mbx_message_new() : NULL;
    if (fresh == NULL)
        return false;
    b->ctl_parked = b->ctl_msg;
    b->ctl_msg = fresh;
    return true;
}

void control_drain(bridge *b, bool delivery)
{
    if (b->ctl_err != MBX_OK)
        return; /* the run is ending: the main loop says why */
    if (!delivery && b->ctl_parked != NULL)
        take_parked(b);
    /* Only a receive that finds the mailbox empty arms the wake handle: stopping before,
     * the main loop must look again without sleeping (ctl_more). */
    b->ctl_more = true;
    for (int n = 0; n < (delivery ? CTL_DELIVERY_MAX : CTL_BATCH); n++) {
        if (delivery && b->ctl_parked != NULL)
            return; /* one parked at a time: the main thread goes on from here */
        mbx_err err = mbx_recv(b->ctl, b->ctl_msg, 0);
        if (err == MBX_ETIMEDOUT) {
            b->ctl_more = false;
            return;
        }
        if (err == MBX_ECORRUPT)
            continue;
        if (err != MBX_OK) {
            b->ctl_more = false;
            b->ctl_err = err;
            return;
        }
        mbx_message *m = b->ctl_msg;
        switch (mbx_message_kind(m)) {
        case MBX_KIND_PUBLICATION:
            topics_on_local(b, m);
            break;
        case MBX_KIND_REPLY:
            if (!inbound_on_ctl_reply(b, m, !delivery) && !park(b))
                (void)inbound_on_ctl_reply(b, m, true); /* no memory to park it: wait here */
            break;
        case MBX_KIND_REQUEST:
            /* Its answer may wait for room (mbx_reply): not on a delivery thread. */
            if (!delivery || !park(b))
                state_answer(b, m);
            break;
        case MBX_KIND_PLAIN:
            break; /* nothing is sent to the bridge itself */
        }
    }
}
