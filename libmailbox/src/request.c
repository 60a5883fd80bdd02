/*
 * request.c: request/reply on top of the mailboxes (mbx_request, mbx_reply; see
 * mailbox.h and docs/api.md, "Request and reply").
 *
 * A request is a message of kind CELL_REQUEST whose corr is an id unique across every
 * run of the requester's name (a random base per connection, then one more each time);
 * the reply is a message of kind CELL_REPLY with the same corr, sent straight to the
 * requester's slot and generation as the request's record gave them (no name lookup, and
 * a requester gone is MBX_EGONE, not someone else's message).
 *
 * The requester keeps its outstanding requests in a table (outstanding.h) with the slot
 * and generation each went to: a reply is delivered only when it answers one of them and
 * comes from that responder; anything else (a reply meant for an earlier run of this
 * name, a second reply, a reply to a request given up) is dropped and counted
 * (late_replies). mbx_request waits with ring_find: it takes its reply wherever it is in
 * the mailbox and leaves everything else in place and in order for the next mbx_recv.
 * While it waits it watches the responder's slot: when that changes hands (the responder
 * died, closed or left), the requester gets MBX_EGONE within a wait slice, not at the end
 * of its time.
 *
 * A group member that leaves gives back the requests it had not taken (group.c) as
 * CELL_RETURNED records; the requester sends each again to the group's name, with the
 * same id, and goes on waiting: a request ends in MBX_EGONE only when a member took it
 * and left without answering.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "envelope.h"
#include "ring.h"

/* How long sending a returned request again may wait for space when a receive (not a
 * request's own wait, which has its deadline) found it. */
#define RESEND_TIMEOUT_MS 1000

static void note_route(mbx_client *c, uint64_t id, uint32_t slot, uint32_t generation)
{
    outstanding_route(&c->requests, id, slot, generation);
}

/* Sends request id (in the table already) to `to`; on a failure it leaves the table. */
static mbx_err send_request(mbx_client *c, const char *to, uint64_t id, const char *json,
                            size_t len, const mbx_send_options *so)
{
    send_route r = {.to = to, .kind = CELL_REQUEST, .corr = id, .routed = note_route};
    mbx_err err = messaging_send(c, &r, json, len, so);
    if (err != MBX_OK)
        outstanding_remove(&c->requests, id);
    return err;
}

/* Gives out a new id and enters it in the table. */
static mbx_err new_request(mbx_client *c, const char *to, uint64_t *id)
{
    if (mbx_check_name(to) != MBX_OK)
        return MBX_EINVAL;
    uint64_t mine;
    do /* 0 means "no request" everywhere */
        mine = atomic_fetch_add(&c->next_request, 1) + 1;
    while (mine == 0);
    mbx_err err = outstanding_add(&c->requests, mine, to);
    if (err == MBX_OK)
        *id = mine;
    return err;
}

mbx_err mbx_request_send(mbx_client *c, const char *to, const char *json, size_t len,
                         int timeout_ms, uint64_t *id)
{
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    return mbx_request_send_ex(c, to, json, len, &so, id);
}

mbx_err mbx_request_send_ex(mbx_client *c, const char *to, const char *json, size_t len,
                            const mbx_send_options *opts, uint64_t *id)
{
    mbx_send_options defaults;
    if (opts == NULL) {
        mbx_send_options_init(&defaults);
        opts = &defaults;
    }
    if (c == NULL || to == NULL || id == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL; /* a reply needs a mailbox */
    uint64_t mine;
    mbx_err err = new_request(c, to, &mine);
    if (err == MBX_OK)
        err = send_request(c, to, mine, json, len, opts);
    if (err == MBX_OK)
        *id = mine;
    return err;
}

mbx_err mbx_request_cancel(mbx_client *c, uint64_t id)
{
    outstanding_entry e;
    if (c == NULL || c->send_only || !client_ours(c) || !outstanding_get(&c->requests, id, &e))
        return MBX_EINVAL;
    outstanding_remove(&c->requests, id);
    return MBX_OK;
}

/* A returned request: sent again to its name (the member that gave it back no longer
 * takes any), with its id. The body came through shared memory: it is checked again. */
static mbx_err send_again(mbx_client *c, const outstanding_entry *e, const char *body, size_t len,
                          int timeout_ms)
{
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    send_route r = {.to = e->to, .kind = CELL_REQUEST, .corr = e->id, .routed = note_route};
    return messaging_send(c, &r, body, len, &so);
}

bool request_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep)
{
    uint32_t kind = in->kind, from_slot = in->from_slot, from_generation = in->from_generation;
    uint64_t corr = in->corr;
    size_t len = in->len;
    bool answer = !keep;
    outstanding_entry e;
    if (kind == CELL_REPLY && answer &&
        outstanding_answer(&c->requests, corr, from_slot, from_generation))
        return true;
    if (kind == CELL_REPLY && !answer && outstanding_get(&c->requests, corr, &e) &&
        e.slot == from_slot && e.generation == from_generation)
        return true;
    if (kind == CELL_RETURNED && outstanding_get(&c->requests, corr, &e) && e.slot == from_slot &&
        e.generation == from_generation) {
        mbx_err err = send_again(c, &e, body, len, RESEND_TIMEOUT_MS);
        if (err != MBX_OK)
            outstanding_fail(&c->requests, corr, err); /* mbx_recv_reply says why */
        return false;
    }
    atomic_fetch_add_explicit(&segment_mailbox(&c->view, c->slot)->late_replies, 1,
                              memory_order_relaxed);
    return false;
}

typedef struct awaited {
    mbx_client *c;
    outstanding_entry e; /* the request: its id, name and responder */
} awaited;

static ring_verdict is_the_answer(const seg_record *hdr, void *arg)
{
    const awaited *w = arg;
    if (hdr->kind != CELL_REPLY && hdr->kind != CELL_RETURNED)
        return RING_PASS;
    if (hdr->corr == w->e.id && hdr->from_slot == w->e.slot &&
        hdr->from_generation == w->e.generation)
        return RING_TAKE;
    /* An answer to no request that waits (given up, answered already, or forged): a
     * receive would drop it too. Ids are never reused and a request is in the table
     * before it is sent, so none can be early. */
    outstanding_entry e;
    if (outstanding_get(&w->c->requests, hdr->corr, &e))
        return RING_PASS; /* another thread's, or our own from an unexpected sender */
    atomic_fetch_add_explicit(&segment_mailbox(&w->c->view, w->c->slot)->late_replies, 1,
                              memory_order_relaxed);
    return RING_DROP;
}

/* The responder still holds the slot the request went to (or its mailbox lingers). */
static mbx_err responder_there(void *arg)
{
    const awaited *w = arg;
    if (w->e.slot >= w->c->view.slots)
        return MBX_EGONE;
    seg_dir_entry *e = segment_dir(&w->c->view, w->e.slot);
    if (atomic_load(&e->state) == SLOT_ACTIVE && atomic_load(&e->generation) == w->e.generation)
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

static int ms_left(int timeout_ms, int64_t deadline)
{
    if (timeout_ms <= 0)
        return timeout_ms;
    int64_t left = deadline - plat_now_ns();
    return left > 0 ? (int)((left + 999999) / 1000000) : 0;
}

static void fill_reply(const mbx_client *c, const awaited *w, const ring_incoming *in,
                       mbx_message *reply)
{
    reply->len = in->len;
    memcpy(reply->from, in->from, sizeof reply->from);
    memcpy(reply->node, in->node, sizeof reply->node);
    reply->error = (uint32_t)request_far_error(in->error);
    memcpy(reply->to, c->name, sizeof reply->to);
    reply->seq = in->seq;
    reply->ts_us = in->ts_us;
    reply->kind = CELL_REPLY;
    reply->corr = w->e.id;
    reply->missed = 0;
    reply->retained = false;
    reply->topic[0] = '\0';
    reply->from_slot = in->from_slot;
    reply->from_generation = in->from_generation;
    reply->peeked = false;
}

/*
 * Waits for the answer to w's request until deadline (timeout_ms: the caller's, for its
 * sign), sending it again each time a leaving member returns it. On MBX_OK the request is
 * answered; on any other end it is given up when `give_up` says so, or when it cannot be
 * answered any more (its responder gone, or sending it again failed).
 */
static mbx_err wait_reply(mbx_client *c, awaited *w, mbx_message *reply, int timeout_ms,
                          int64_t deadline, bool give_up)
{
    if (atomic_flag_test_and_set(&c->receiving)) {
        if (give_up)
            outstanding_remove(&c->requests, w->e.id);
        return MBX_EINVAL; /* another thread receives on this client */
    }
    ring_incoming in = {.body = reply->body};
    mbx_err err;
    bool lost = false; /* returned, and sending it again failed */
    for (;;) {
        err = ring_find(&c->view, c->slot, c->generation, &in, ms_left(timeout_ms, deadline),
                        is_the_answer, responder_there, w, &c->spin, &c->interrupted);
        if (err == MBX_OK && !client_incoming_valid(c, &in))
            err = MBX_ECORRUPT;
        if (err == MBX_OK && in.kind == CELL_REPLY) {
            /* Answered now, unless another thread gave it up (mbx_request_cancel) since
             * this wait began: then the reply is dropped, as the cancel promised. */
            if (!outstanding_answer(&c->requests, w->e.id, in.from_slot, in.from_generation)) {
                atomic_fetch_add_explicit(&segment_mailbox(&c->view, c->slot)->late_replies, 1,
                                          memory_order_relaxed);
                err = MBX_EINVAL;
            }
            break;
        }
        if (err != MBX_OK)
            break;
        /* Given back unread by a member that left: to another member, same id. A wait
         * of 0 (an event loop's look) still gives the new member a moment for room. */
        int resend_ms = ms_left(timeout_ms, deadline);
        if (resend_ms >= 0 && resend_ms < RESEND_TIMEOUT_MS)
            resend_ms = RESEND_TIMEOUT_MS;
        err = send_again(c, &w->e, reply->body, in.len, resend_ms);
        lost = err != MBX_OK;
        if (lost)
            break;
        if (!outstanding_get(&c->requests, w->e.id, &w->e)) {
            err = MBX_EINVAL; /* given up meanwhile by another thread */
            break;
        }
    }
    if (give_up || err == MBX_EGONE || lost)
        outstanding_remove(&c->requests, w->e.id); /* a reply after this is dropped */
    if (err == MBX_OK || err == MBX_ETIMEDOUT)
        client_wake_arm(c, in.scanned); /* news is what came after what this call looked at */
    atomic_flag_clear(&c->receiving);
    if (err == MBX_ESHUTDOWN)
        err = client_confirm_shutdown(c);
    if (err == MBX_OK)
        fill_reply(c, w, &in, reply);
    /* An answer that is an error (a bridge's, from the far side): the call's result. */
    if (err == MBX_OK && in.error != 0)
        err = request_far_error(in.error);
    return err;
}

mbx_err mbx_recv_reply(mbx_client *c, uint64_t id, mbx_message *reply, int timeout_ms)
{
    if (c == NULL || reply == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    awaited w = {.c = c};
    if (!outstanding_get(&c->requests, id, &w.e))
        return MBX_EINVAL; /* not a request of ours that waits for its reply */
    if (w.e.failed != MBX_OK) {
        outstanding_remove(&c->requests, id);
        return w.e.failed;
    }
    mbx_err err = reply_room(c, reply);
    if (err != MBX_OK)
        return err;
    return wait_reply(c, &w, reply, timeout_ms, plat_deadline(timeout_ms), false);
}

mbx_err mbx_request(mbx_client *c, const char *to, const char *json, size_t len, mbx_message *reply,
                    int timeout_ms)
{
    if (c == NULL || to == NULL || reply == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    mbx_err err = reply_room(c, reply);
    if (err != MBX_OK)
        return err;
    int64_t deadline = plat_deadline(timeout_ms);
    awaited w = {.c = c};
    err = new_request(c, to, &w.e.id);
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    if (err == MBX_OK)
        err = send_request(c, to, w.e.id, json, len, &so);
    if (err != MBX_OK)
        return err;
    if (!outstanding_get(&c->requests, w.e.id, &w.e))
        return MBX_EGONE; /* cannot happen: only this thread removes it */
    return wait_reply(c, &w, reply, timeout_ms, deadline, true);
}

/* Sends json back to request's requester, as an answer (error 0) or as the error it ends
 * with. */
static mbx_err answer(mbx_client *c, const mbx_message *request, const char *json, size_t len,
                      const mbx_send_options *opts, mbx_err error)
{
    if (c == NULL || request == NULL || request->kind != CELL_REQUEST || !client_ours(c))
        return MBX_EINVAL;
    if (opts->from != NULL || !messaging_labels_valid(opts->node, NULL))
        return MBX_EINVAL;
    if (request->from_slot >= c->view.slots)
        return MBX_EGONE; /* not a slot of this namespace: nobody to answer */
    /* A request is answered once. The message is the caller's (mbx_message_new), never a
     * const object: its flag may change under the const view the signature gives. */
    mbx_message *m = (mbx_message *)request;
    if (atomic_exchange(&m->replied, true))
        return MBX_EINVAL;
    /* Straight back to where the request came from: the slot and generation are checked
     * under the recipient's lock like any other (a requester gone: MBX_EGONE). */
    send_route r = {.slot = request->from_slot,
                    .generation = request->from_generation,
                    .kind = CELL_REPLY,
                    .corr = request->corr,
                    .error = (uint32_t)error};
    mbx_err err = messaging_send(c, &r, json, len, opts);
    if (err == MBX_ENORECIPIENT || err == MBX_EGONE) {
        /* Its requester went away (killed while it waited, say): the reply is discarded
         * and counted with the namespace's other messages whose recipient went away. */
        atomic_fetch_add_explicit(&segment_header(&c->view)->discarded, 1, memory_order_relaxed);
        err = MBX_EGONE;
    } else if (err != MBX_OK) {
        atomic_store(&m->replied, false); /* not sent (full, too large...): may try again */
    }
    return err;
}

mbx_err mbx_reply(mbx_client *c, const mbx_message *request, const char *json, size_t len,
                  int timeout_ms)
{
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    return answer(c, request, json, len, &so, MBX_OK);
}

mbx_err mbx_reply_ex(mbx_client *c, const mbx_message *request, const char *json, size_t len,
                     const mbx_send_options *opts)
{
    mbx_send_options defaults;
    if (opts == NULL) {
        mbx_send_options_init(&defaults);
        opts = &defaults;
    }
    return answer(c, request, json, len, opts, MBX_OK);
}

mbx_err request_far_error(uint32_t error)
{
    switch (error) {
    case MBX_OK:
    case MBX_ENORECIPIENT:
    case MBX_EGONE:
    case MBX_EFULL:
    case MBX_ETOOLARGE:
    case MBX_EINVALJSON:
    case MBX_EPERM:
    case MBX_ENOBROKER:
        return (mbx_err)error;
    default:
        /* Anything else would read as this client's or this namespace's own failure (or,
         * MBX_ETIMEDOUT, as "call again" for a request that is over): it ended there. */
        return MBX_EGONE;
    }
}

mbx_err mbx_reply_error(mbx_client *c, const mbx_message *request, mbx_err error, int timeout_ms)
{
    if (error == MBX_OK || request_far_error((uint32_t)error) != error)
        return MBX_EINVAL;
    /* The body says it too, for whoever prints replies without looking at the error. */
    char body[160];
    int len = snprintf(body, sizeof body, "{\"error\":\"%s\",\"code\":%d}", mbx_strerror(error),
                       (int)error);
    if (len <= 0 || (size_t)len >= sizeof body)
        return MBX_EINVAL;
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = timeout_ms;
    so.trusted = 1; /* our own text: the messages of mbx_strerror need no escaping */
    return answer(c, request, body, (size_t)len, &so, error);
}

mbx_kind mbx_message_kind(const mbx_message *msg)
{
    /* A monitor's copy is of the kind the original was sent as. */
    uint32_t kind = msg->kind == CELL_MONITOR ? msg->mirrored : msg->kind;
    return kind == CELL_REQUEST ? MBX_KIND_REQUEST
           : kind == CELL_REPLY ? MBX_KIND_REPLY
           : kind == CELL_TOPIC ? MBX_KIND_PUBLICATION
                                : MBX_KIND_PLAIN;
}

uint64_t mbx_message_correlation(const mbx_message *msg)
{
    return msg->corr;
}
