/*
 * control.c: what comes to the bridge's own client, bridge.<node> (main-thread work:
 * under main_mu, bridge.h "Threads"): local publications to export, replies to
 * requests delivered for other hosts, and `mbx list`'s state requests.
 */
#include "bridge.h"

#define CTL_BATCH 1024 /* control messages taken per round, so proxies get their turn */

void control_drain(bridge *b)
{
    if (b->ctl_err != MBX_OK)
        return; /* the run is ending: the main loop says why */
    /* Only a receive that finds the mailbox empty arms the wake handle: stopping at
     * CTL_BATCH, the main loop must look again without sleeping (ctl_more). */
    b->ctl_more = true;
    for (int n = 0; n < CTL_BATCH; n++) {
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
            inbound_on_ctl_reply(b, m);
            break;
        case MBX_KIND_REQUEST:
            state_answer(b, m);
            break;
        case MBX_KIND_PLAIN:
            break; /* nothing is sent to the bridge itself */
        }
    }
}
