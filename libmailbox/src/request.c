/*
 * request.c: request/reply on top of the mailboxes (mbx_request, mbx_reply; see
 * mailbox.h and docs/api.md, "Request and reply").
 *
 * A request is a message of kind CELL_REQUEST whose corr is an id the requester chose
 * (one more than its last); the reply is a message of kind CELL_REPLY with the same corr,
 * sent straight to the requester's slot and generation as the request's cell recorded
 * them (no name lookup, and a requester gone is MBX_EGONE, not someone else's message).
 * mbx_request waits with ring_find: it takes the reply wherever it is in the mailbox and
 * leaves everything else in place and in order for the next mbx_recv. While it waits it
 * watches the responder's slot: when that changes hands (the responder died, closed or
 * left), the requester gets MBX_EGONE within a wait slice, not at the end of its time.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "envelope.h"
#include "ring.h"

bool request_abandoned(const mbx_client *c, uint64_t id)
{
    for (unsigned i = 0; i < sizeof c->abandoned / sizeof c->abandoned[0]; i++)
        if (c->abandoned[i] == id && id != 0)
            return true;
    return false;
}

static void abandon(mbx_client *c, uint64_t id)
{
    c->abandoned[c->abandoned_next] = id;
    c->abandoned_next = (c->abandoned_next + 1) % (sizeof c->abandoned / sizeof c->abandoned[0]);
}

mbx_err mbx_request_send(mbx_client *c, const char *to, const char *json, size_t len,
                         int timeout_ms, uint64_t *id)
{
    if (c == NULL || to == NULL || id == NULL || c->send_only)
        return MBX_EINVAL; /* a reply needs a mailbox */
    uint64_t mine = atomic_fetch_add(&c->next_request, 1) + 1;
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    send_route r = {.to = to, .kind = CELL_REQUEST, .corr = mine};
    mbx_err err = messaging_send(c, &r, json, len, &so);
    if (err == MBX_OK)
        *id = mine;
    return err;
}

typedef struct awaited {
    const mbx_client *c;
    uint64_t id;
    uint32_t responder_slot;
    uint32_t responder_generation;
} awaited;

static bool is_the_reply(uint32_t kind, uint64_t corr, void *arg)
{
    const awaited *w = arg;
    return (kind & ~CELL_TAKEN) == CELL_REPLY && corr == w->id;
}

/* The responder still holds the slot the request went to (or its mailbox lingers); always
 * so when the request's slot is not known (mbx_recv_reply). */
static mbx_err responder_there(void *arg)
{
    const awaited *w = arg;
    if (w->responder_slot >= w->c->view.slots)
        return MBX_OK;
    seg_dir_entry *e = segment_dir(&w->c->view, w->responder_slot);
    if (atomic_load(&e->state) == SLOT_ACTIVE &&
        atomic_load(&e->generation) == w->responder_generation)
        return MBX_OK;
    return MBX_EGONE;
}

static mbx_err reply_room(const mbx_client *c, mbx_message *reply)
{
    size_t need = (size_t)c->view.max_message + 1;
    if (reply->cap < need) {
        char *body = realloc(reply->body, need);
        if (body == NULL)
            return MBX_ENOMEM;
        reply->body = body;
        reply->cap = need;
    }
    return MBX_OK;
}

/* Waits for w's reply until deadline (timeout_ms: the caller's, for its sign); on a
 * failure the request is given up when `give_up` says so. */
static mbx_err wait_reply(mbx_client *c, awaited *w, mbx_message *reply, int timeout_ms,
                          int64_t deadline, bool give_up)
{
    if (atomic_flag_test_and_set(&c->receiving)) {
        if (give_up)
            abandon(c, w->id);
        return MBX_EINVAL; /* another thread receives on this client */
    }
    int left_ms = timeout_ms;
    if (timeout_ms > 0) {
        int64_t left = deadline - plat_now_ns();
        left_ms = left > 0 ? (int)((left + 999999) / 1000000) : 0;
    }
    ring_incoming in = {.body = reply->body};
    mbx_err err = ring_find(&c->view, c->slot, c->generation, &in, left_ms, is_the_reply,
                            responder_there, w, &c->spin, &c->interrupted);
    bool compact = false;
    if (err == MBX_OK && (envelope_validate(reply->body, in.len, &compact) != MBX_OK || !compact))
        err = MBX_ECORRUPT;
    if (err != MBX_OK && give_up)
        abandon(c, w->id); /* a reply that comes after this is dropped and counted */
    atomic_flag_clear(&c->receiving);
    if (err == MBX_ESHUTDOWN)
        err = client_confirm_shutdown(c);
    if (err != MBX_OK)
        return err;
    reply->len = in.len;
    memcpy(reply->from, in.from, sizeof reply->from);
    memcpy(reply->to, c->name, sizeof reply->to);
    reply->seq = in.seq;
    reply->ts_us = in.ts_us;
    reply->kind = CELL_REPLY;
    reply->corr = w->id;
    reply->missed = 0;
    reply->topic[0] = '\0';
    reply->from_slot = in.from_slot;
    reply->from_generation = in.from_generation;
    reply->peeked = false;
    return MBX_OK;
}

mbx_err mbx_recv_reply(mbx_client *c, uint64_t id, mbx_message *reply, int timeout_ms)
{
    if (c == NULL || reply == NULL || c->send_only || id == 0 || id > atomic_load(&c->next_request))
        return MBX_EINVAL;
    mbx_err err = reply_room(c, reply);
    if (err != MBX_OK)
        return err;
    awaited w = {.c = c, .id = id, .responder_slot = UINT32_MAX};
    return wait_reply(c, &w, reply, timeout_ms, plat_deadline(timeout_ms), false);
}

mbx_err mbx_request(mbx_client *c, const char *to, const char *json, size_t len, mbx_message *reply,
                    int timeout_ms)
{
    if (c == NULL || to == NULL || reply == NULL || c->send_only)
        return MBX_EINVAL;
    mbx_err err = reply_room(c, reply);
    if (err != MBX_OK)
        return err;
    int64_t deadline = plat_deadline(timeout_ms);
    awaited w = {.c = c, .id = atomic_fetch_add(&c->next_request, 1) + 1};
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    send_route r = {.to = to,
                    .kind = CELL_REQUEST,
                    .corr = w.id,
                    .slot_out = &w.responder_slot,
                    .generation_out = &w.responder_generation};
    err = messaging_send(c, &r, json, len, &so);
    if (err != MBX_OK)
        return err;
    return wait_reply(c, &w, reply, timeout_ms, deadline, true);
}

mbx_err mbx_reply(mbx_client *c, const mbx_message *request, const char *json, size_t len,
                  int timeout_ms)
{
    if (c == NULL || request == NULL || request->kind != CELL_REQUEST)
        return MBX_EINVAL;
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    /* Straight back to where the request came from: the slot and generation are checked
     * under the recipient's lock like any other (a requester gone: MBX_EGONE). */
    send_route r = {.slot = request->from_slot,
                    .generation = request->from_generation,
                    .kind = CELL_REPLY,
                    .corr = request->corr};
    if (r.slot >= c->view.slots)
        return MBX_EGONE; /* not a slot of this namespace: nobody to answer */
    mbx_err err = messaging_send(c, &r, json, len, &so);
    if (err == MBX_ENORECIPIENT || err == MBX_EGONE) {
        /* Its requester went away (killed while it waited, say): the reply is discarded
         * and counted with the namespace's other messages whose recipient went away. */
        atomic_fetch_add_explicit(&segment_header(&c->view)->discarded, 1, memory_order_relaxed);
        err = MBX_EGONE;
    }
    return err;
}

mbx_kind mbx_message_kind(const mbx_message *msg)
{
    return msg->kind == CELL_REQUEST ? MBX_KIND_REQUEST
           : msg->kind == CELL_REPLY ? MBX_KIND_REPLY
           : msg->kind == CELL_TOPIC ? MBX_KIND_PUBLICATION
                                     : MBX_KIND_PLAIN;
}

uint64_t mbx_message_correlation(const mbx_message *msg)
{
    return msg->corr;
}
