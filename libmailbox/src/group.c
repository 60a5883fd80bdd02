/* group.c: see group.h. */
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "platform/platform.h"
#include "ring.h"

/* The member a message would go to among one kind (local or remote) of members. */
typedef struct group_best {
    uint64_t waiting, taken;
    uint32_t slot, generation;
} group_best;

static void consider(group_best *best, uint64_t waiting, uint64_t taken, uint32_t slot,
                     uint32_t generation)
{
    if (waiting < best->waiting || (waiting == best->waiting && taken < best->taken))
        *best = (group_best){waiting, taken, slot, generation};
}

mbx_err group_pick(const seg_view *v, const char *name, size_t len, uint32_t except, uint32_t *slot,
                   uint32_t *generation)
{
    /* Members here first; a bridge's member (it stands for those on other nodes) only
     * when none is here, as NATS prefers a queue group's local subscribers. */
    group_best local = {UINT64_MAX, UINT64_MAX, 0, 0}, remote = local;
    for (uint32_t i = 0; i < v->slots; i++) {
        uint32_t g;
        if (i == except || !segment_entry_is(v, i, name, len, &g))
            continue;
        uint32_t flags = atomic_load(&segment_dir(v, i)->flags);
        if ((flags & DIR_GROUP) == 0) {
            *slot = i; /* not a group after all (it changed): the one holder */
            *generation = g;
            return MBX_OK;
        }
        if (!ring_open(v, i))
            continue; /* leaving: what it holds is being handed on */
        uint64_t waiting = ring_waiting(v, i);
        uint64_t taken =
            atomic_load_explicit(&segment_mailbox(v, i)->received, memory_order_relaxed);
        consider((flags & DIR_REMOTE) != 0 ? &remote : &local, waiting, taken, i, g);
    }
    const group_best *best = local.waiting != UINT64_MAX ? &local : &remote;
    if (best->waiting == UINT64_MAX)
        return MBX_ENORECIPIENT;
    *slot = best->slot;
    *generation = best->generation;
    return MBX_OK;
}

/* How many siblings a plain message is offered to when the ones picked are leaving too. */
#define HANDOFF_TRIES 8

static int ms_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - plat_now_ns();
    return left > 0 ? (int)((left + 999999) / 1000000) : 0;
}

/* One unread message of the leaving member, handed on: true when it reached someone. */
static bool hand_on(const seg_view *v, uint32_t slot, uint32_t generation, const char *name,
                    const ring_incoming *in, int64_t deadline_ns, bool never_wait)
{
    ring_outgoing out = {
        .body = in->body,
        .len = in->len,
        .ts_us = in->ts_us,
        .sender_cpu = -1,
        .seq = in->seq, /* seq_source NULL: the message keeps its sequence number */
        .corr = in->corr,
        .never_wait = never_wait,
    };
    uint32_t to_slot, to_generation;
    if (in->kind == CELL_REQUEST) {
        /* Back to its requester, from us: it matches the request to the member it went to. */
        to_slot = in->from_slot;
        to_generation = in->from_generation;
        out.kind = CELL_RETURNED;
        out.from_name = name;
        out.from_slot = slot;
        out.from_generation = generation;
    } else if (in->kind == CELL_PLAIN) {
        /* To a sibling, as if its sender had sent it there; another one when the sibling
         * picked is leaving too (closed, or gone, before the put), as a send does. */
        out.kind = CELL_PLAIN;
        out.from_name = in->from;
        out.node = in->node[0] != '\0' ? in->node : NULL;
        out.from_slot = in->from_slot;
        out.from_generation = in->from_generation;
        for (int tries = 0; tries < HANDOFF_TRIES; tries++) {
            if (group_pick(v, name, strlen(name), slot, &to_slot, &to_generation) != MBX_OK)
                return false;
            int timeout_ms = never_wait ? 0 : ms_until(deadline_ns);
            mbx_err err = ring_put(v, to_slot, to_generation, &out, timeout_ms);
            if (err == MBX_OK)
                return true;
            if (err != MBX_ECLOSED_INTERNAL && err != MBX_ENORECIPIENT && err != MBX_EGONE)
                return false;
        }
        return false;
    } else {
        return false; /* replies and publications were for the member itself */
    }
    if (to_slot >= v->slots)
        return false; /* a send-only requester: nobody to give it back to */
    int timeout_ms = never_wait ? 0 : ms_until(deadline_ns);
    return ring_put(v, to_slot, to_generation, &out, timeout_ms) == MBX_OK;
}

mbx_err group_handoff(const seg_view *v, uint32_t slot, uint32_t generation, const char *name,
                      int64_t deadline_ns, bool never_wait)
{
    mbx_err err = ring_close(v, slot, generation, deadline_ns);
    if (err != MBX_OK)
        return err;
    char *body = malloc((size_t)v->max_message + 1);
    if (body == NULL)
        return MBX_ENOMEM;
    uint64_t lost = 0;
    ring_incoming in = {.body = body};
    mbx_err taken;
    while ((taken = ring_take(v, slot, generation, &in, 0, NULL, NULL)) != MBX_ETIMEDOUT) {
        if (taken == MBX_ECORRUPT)
            continue; /* that record is dropped; the next ones are still good */
        if (taken != MBX_OK || !hand_on(v, slot, generation, name, &in, deadline_ns, never_wait))
            lost++;
        if (taken != MBX_OK)
            break; /* shutdown, or the slot is not ours any more */
    }
    free(body);
    atomic_fetch_add_explicit(&segment_header(v)->discarded, lost, memory_order_relaxed);
    return MBX_OK;
}
