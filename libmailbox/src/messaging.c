/* messaging.c: mbx_send() and mbx_recv(), the data path. The broker takes no part. */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "envelope.h"
#include "group.h"
#include "monitor.h"
#include "names.h"
#include "presence.h"
#include "ring.h"
#include "topics.h"

/* Whether `to` (len bytes, at most MBX_NAME_MAX) is the name in the client's one-entry
 * lookup cache; *slot: where it was found. Only names that passed mbx_check_name() are
 * cached, so a hit is also that check passed. */
static bool lookup_cached(mbx_client *c, const char *to, size_t len, uint32_t *slot)
{
    bool hit = false;
    while (atomic_flag_test_and_set_explicit(&c->lookup_lock, memory_order_acquire))
        ;
    if (c->lookup_valid && memcmp(c->lookup_name, to, len + 1) == 0) {
        *slot = c->lookup_slot;
        hit = true;
    }
    atomic_flag_clear_explicit(&c->lookup_lock, memory_order_release);
    return hit;
}

/* Finds the recipient's slot and generation, starting from the lookup cache's slot when
 * the caller found it there (cached: a hint, checked against the directory entry; a
 * group's name is looked up at every send, for the load to spread). */
static mbx_err find_recipient(mbx_client *c, const char *to, const uint32_t *cached, uint32_t *slot,
                              uint32_t *gen, bool *group)
{
    *group = false;
    size_t len = strlen(to);
    if (cached != NULL && segment_entry_is(&c->view, *cached, to, len, gen) &&
        (atomic_load(&segment_dir(&c->view, *cached)->flags) & DIR_GROUP) == 0) {
        *slot = *cached;
        return MBX_OK;
    }
    mbx_err err = segment_find(&c->view, to, slot, gen);
    if (err == MBX_OK && (atomic_load(&segment_dir(&c->view, *slot)->flags) & DIR_GROUP) != 0) {
        *group = true;
        return group_pick(&c->view, to, len, UINT32_MAX, slot, gen);
    }
    if (err == MBX_OK) {
        while (atomic_flag_test_and_set_explicit(&c->lookup_lock, memory_order_acquire))
            ;
        memcpy(c->lookup_name, to, len + 1);
        c->lookup_slot = *slot;
        c->lookup_valid = true;
        atomic_flag_clear_explicit(&c->lookup_lock, memory_order_release);
    }
    return err;
}

/* Bodies up to this size are compacted on the stack; larger ones on the heap. */
#define STACK_COMPACT_MAX 2048

void mbx_send_options_init(mbx_send_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
}

mbx_err mbx_send(mbx_client *c, const char *to, const char *json, size_t len, int timeout_ms)
{
    mbx_send_options opts = {.timeout_ms = timeout_ms, .trusted = 0};
    return mbx_send_ex(c, to, json, len, &opts);
}

bool messaging_labels_valid(const char *node, const char *from)
{
    /* A sender's name other than the client's own is a bridge's, for a message from
     * another node: never without the node (docs/bridge.md). */
    if (from != NULL && (node == NULL || mbx_check_name(from) != MBX_OK))
        return false;
    return node == NULL || mbx_check_name(node) == MBX_OK;
}

mbx_err messaging_prepare(const mbx_client *c, const char *json, size_t len, bool trusted,
                          char *stack, size_t stack_cap, char **heap, const char **body,
                          size_t *body_len)
{
    *heap = NULL;
    *body = json;
    *body_len = len;
    /* Size first, so a huge input is refused without being parsed. */
    if (len > c->view.max_message)
        return MBX_ETOOLARGE;
    bool compact = true;
    mbx_err err = MBX_OK;
    if (!trusted)
        err = envelope_validate(json, len, &compact);
    else if (len == 0 || memchr(json, '\0', len) != NULL)
        err = MBX_EINVALJSON; /* receivers rely on this much even from the trusted */
    if (err != MBX_OK || compact)
        return err;
    char *buf = stack;
    if (len > stack_cap) {
        buf = *heap = malloc(len);
        if (buf == NULL)
            return MBX_ENOMEM;
    }
    *body_len = envelope_compact(json, len, buf);
    *body = buf;
    return MBX_OK;
}

/* Finds where a message to the name `to` goes, waiting for it to appear when the sender
 * asked to (wait_ms). */
static mbx_err route_by_name(mbx_client *c, const char *to, const uint32_t *cached,
                             const mbx_send_options *opts, uint32_t *slot, uint32_t *gen,
                             bool *group)
{
    mbx_err err = find_recipient(c, to, cached, slot, gen, group);
    if (err == MBX_ENORECIPIENT && opts->wait_ms > 0) {
        /* Not there yet: wait for it on the directory's change signal, then look again. */
        err = presence_wait(&c->view, to, plat_deadline(opts->wait_ms));
        if (err == MBX_OK)
            err = find_recipient(c, to, NULL, slot, gen, group);
        else if (err == MBX_ETIMEDOUT)
            err = MBX_ENORECIPIENT;
    }
    return err;
}

/* Puts the prepared body into (slot, gen) as r says. */
static mbx_err put(mbx_client *c, const send_route *r, uint32_t slot, uint32_t gen,
                   const char *body, size_t body_len, const mbx_send_options *opts)
{
    if (r->routed != NULL)
        r->routed(c, r->corr, slot, gen);
    ring_outgoing msg = {
        .body = body,
        .len = (uint32_t)body_len,
        .from_slot = c->slot, /* send-only: UINT32_MAX, nobody to reply to */
        .from_generation = c->generation,
        .from_name = opts->from != NULL ? opts->from : c->name,
        .node = opts->node,
        .ts_us = plat_wall_us(),
        .sender_cpu = plat_current_cpu(),
        .seq_source = &c->next_seq,
        .kind = r->kind,
        .corr = r->corr,
        .error = r->error,
        .once = opts->once,
    };
    /* A reply goes by slot: its requester's name is read before the put, as it may take
     * the reply and leave at once. Only while someone watches. */
    bool watched = monitor_attached(c);
    char name[MBX_NAME_MAX + 1];
    const char *to = r->to;
    if (watched && to == NULL)
        to = monitor_recipient(c, slot, gen, name);
    mbx_err err = ring_put(&c->view, slot, gen, &msg, opts->timeout_ms);
    if (err == MBX_REPEATED_INTERNAL)
        return MBX_OK; /* in already (a bridge's delivery after a crash): no new traffic */
    if (err == MBX_OK && watched)
        monitor_copy(c, &msg, to);
    return err;
}

/* How many members a send to a group tries when the ones it picks are leaving. */
#define SEND_CLOSED_TRIES 8

mbx_err messaging_send(mbx_client *c, const send_route *r, const char *json, size_t len,
                       const mbx_send_options *opts)
{
    mbx_send_options defaults;
    if (opts == NULL) {
        mbx_send_options_init(&defaults);
        opts = &defaults;
    }
    if (c == NULL || !client_ours(c) || json == NULL || (r->to == NULL && r->slot >= c->view.slots))
        return MBX_EINVAL;
    /* The name is checked, unless it is the one the last send to a name found: a stream
     * of sends to one peer neither checks its name again nor scans the directory. */
    uint32_t cached_slot;
    bool cached = false;
    if (r->to != NULL) {
        size_t to_len = strnlen(r->to, MBX_NAME_MAX + 1);
        cached = to_len <= MBX_NAME_MAX && lookup_cached(c, r->to, to_len, &cached_slot);
        if (!cached && mbx_check_name(r->to) != MBX_OK)
            return MBX_EINVAL;
    }
    if (!messaging_labels_valid(opts->node, opts->from) || (opts->once != 0 && opts->node == NULL))
        return MBX_EINVAL;
    if (c->monitor && r->kind == CELL_REQUEST)
        return MBX_EINVAL; /* its reply would never reach it: a monitor takes copies only */
    char stack[STACK_COMPACT_MAX];
    char *heap = NULL;
    const char *body;
    size_t body_len;
    mbx_err err = messaging_prepare(c, json, len, opts->trusted != 0, stack, sizeof stack, &heap,
                                    &body, &body_len);
    if (err != MBX_OK)
        return err;

    uint32_t slot = r->slot, gen = r->generation;
    /* A group member that closed its mailbox (it is leaving), or left since we picked it,
     * did not take the message: another member is chosen, a few times at most (each
     * refusal is a member gone for good, and a group is not refilled that fast). */
    for (int tries = 0; tries < SEND_CLOSED_TRIES; tries++) {
        bool group = false;
        err = r->to != NULL ? route_by_name(c, r->to, tries == 0 && cached ? &cached_slot : NULL,
                                            opts, &slot, &gen, &group)
                            : MBX_OK;
        if (err != MBX_OK)
            break;
        err = put(c, r, slot, gen, body, body_len, opts);
        bool not_taken =
            err == MBX_ECLOSED_INTERNAL || (group && (err == MBX_ENORECIPIENT || err == MBX_EGONE));
        if (!not_taken || r->to == NULL)
            break;
    }
    if (err == MBX_ECLOSED_INTERNAL)
        err = MBX_ENORECIPIENT; /* it takes no more messages: as good as gone */
    if (err == MBX_ENORECIPIENT && atomic_load(&segment_header(&c->view)->state) != SEG_READY)
        err = MBX_ESHUTDOWN;
    if (err == MBX_ESHUTDOWN)
        err = client_confirm_shutdown(c);
    if (err == MBX_OK) {
        client_count_sent(c);
        if (r->slot_out != NULL) {
            *r->slot_out = slot;
            *r->generation_out = gen;
        }
    }
    free(heap);
    return err;
}

mbx_err mbx_send_ex(mbx_client *c, const char *to, const char *json, size_t len,
                    const mbx_send_options *opts)
{
    if (to == NULL)
        return MBX_EINVAL;
    send_route r = {.to = to, .kind = CELL_PLAIN};
    return messaging_send(c, &r, json, len, opts);
}

mbx_message *mbx_message_new(void)
{
    return calloc(1, sizeof(mbx_message));
}

void mbx_message_free(mbx_message *msg)
{
    if (msg == NULL)
        return;
    free(msg->body);
    free(msg);
}

/* Whether a sender's name read from a record is valid: the last one found valid is
 * remembered (c->valid_from, under the receive flag), as a stream comes from one sender. */
static bool sender_name_valid(mbx_client *c, const char *from)
{
    if (c->valid_from[0] != '\0' && strcmp(from, c->valid_from) == 0)
        return true;
    if (!names_valid_bounded(from, MBX_NAME_MAX + 1))
        return false;
    memcpy(c->valid_from, from, strlen(from) + 1);
    return true;
}

bool client_incoming_valid(mbx_client *c, const ring_incoming *in)
{
    /* The pass over the body is bounded by the record's length. */
    bool compact = false;
    return sender_name_valid(c, in->from) &&
           (in->node[0] == '\0' || names_valid_bounded(in->node, sizeof in->node)) &&
           (in->error == 0 || in->kind == CELL_REPLY || in->kind == CELL_MONITOR) &&
           (in->kind != CELL_TOPIC || topics_valid_topic(in->topic, strlen(in->topic), true)) &&
           (in->kind != CELL_MONITOR || monitor_label_valid(in)) &&
           envelope_validate(in->body, in->len, &compact) == MBX_OK && compact;
}

/* Whether a message a receive took is one to hand to its caller: its kind's filter says
 * (client.h, client_receive_filters). */
static bool for_the_caller(mbx_client *c, const ring_incoming *in, const char *body, bool keep)
{
    if (c->monitor && in->kind != CELL_MONITOR)
        return false; /* a monitor takes copies only: what is sent to it is copied too */
    receive_filter f = in->kind < RECEIVE_KINDS ? client_receive_filters[in->kind] : NULL;
    return f == NULL || f(c, in, body, keep);
}

/* Fills msg from what a receive read (in); keep: a peek, which mbx_ack removes later. */
static void fill_message(const mbx_client *c, mbx_message *msg, const ring_incoming *in, bool keep)
{
    msg->len = in->len;
    memcpy(msg->from, in->from, sizeof msg->from);
    memcpy(msg->node, in->node, sizeof msg->node);
    msg->error = (uint32_t)request_far_error(in->error);
    memcpy(msg->to, c->name, sizeof msg->to);
    msg->seq = in->seq;
    msg->ts_us = in->ts_us;
    msg->kind = in->kind;
    msg->corr = in->kind == CELL_REQUEST || in->kind == CELL_REPLY ? in->corr : 0;
    msg->missed = in->kind == CELL_TOPIC ? in->corr : 0;
    msg->retained = in->kind == CELL_TOPIC && in->retained;
    memcpy(msg->topic, in->topic, sizeof msg->topic);
    msg->mirrored = 0;
    if (in->kind == CELL_MONITOR)
        monitor_fill(msg, in);
    msg->from_slot = in->from_slot;
    msg->from_generation = in->from_generation;
    msg->peeked = keep;
    if (keep) {
        msg->peek_slot = c->slot;
        msg->peek_generation = c->generation;
        msg->peek_position = in->position;
        msg->peek_next = in->next;
    }
}

/* interruptible: whether this receive takes a pending mbx_interrupt() (the follow-up
 * receives of a batch leave it for the next call). */
static mbx_err receive(mbx_client *c, mbx_message *msg, int timeout_ms, bool keep,
                       bool interruptible)
{
    if (c == NULL || msg == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    size_t need = (size_t)c->view.max_message + 1;
    if (msg->cap < need) {
        char *body = realloc(msg->body, need);
        if (body == NULL)
            return MBX_ENOMEM;
        msg->body = body;
        msg->cap = need;
    }
    if (atomic_flag_test_and_set(&c->receiving))
        return MBX_EINVAL;
    if (c->corrupt_pending) { /* what a batch met (mbx_recv_batch) is told now */
        c->corrupt_pending = false;
        atomic_flag_clear(&c->receiving);
        return MBX_ECORRUPT;
    }
    ring_incoming in = {.body = msg->body};
    _Atomic uint32_t *interrupt = interruptible ? &c->interrupted : NULL;
    mbx_err err;
    for (;;) {
        err =
            keep
                ? ring_peek(&c->view, c->slot, c->generation, &in, timeout_ms, &c->spin, interrupt)
                : ring_take(&c->view, c->slot, c->generation, &in, timeout_ms, &c->spin, interrupt);
        /* Checked again on this side, refused (and removed) as corrupt otherwise: a
         * receiver never hands out text that would break a line-per-message stream. */
        if (err == MBX_OK && !client_incoming_valid(c, &in)) {
            if (keep)
                (void)ring_commit(&c->view, c->slot, c->generation, in.position);
            err = MBX_ECORRUPT;
        }
        if (err != MBX_OK || for_the_caller(c, &in, msg->body, keep))
            break;
        if (keep)
            (void)ring_commit(&c->view, c->slot, c->generation, in.position);
        /* The receive starts over with its whole time: no clock read on every receive for
         * a case this rare. */
    }
    msg->peeked = false;
    if (err == MBX_OK) {
        atomic_store(&msg->replied, false); /* a new message: a request not answered yet */
        c->last_sender_cpu = in.sender_cpu;
    }
    if (err == MBX_ETIMEDOUT)
        client_wake_arm(c, in.scanned); /* the handle is quiet until the next arrival */
    atomic_flag_clear(&c->receiving);
    if (err == MBX_ESHUTDOWN)
        err = client_confirm_shutdown(c);
    if (err != MBX_OK)
        return err;
    fill_message(c, msg, &in, keep);
    return MBX_OK;
}

/* The kinds mbx_peek_after hands out as they are: the others (replies, requests given
 * back by a leaving member) need a receive's handling (client_receive_filters). */
static bool plain_kind(const mbx_client *c, uint32_t kind)
{
    if (c->monitor)
        return kind == CELL_MONITOR;
    return kind == CELL_PLAIN || kind == CELL_REQUEST || kind == CELL_TOPIC;
}

mbx_err mbx_peek_after(mbx_client *c, const mbx_message *prev, mbx_message *msg)
{
    if (c == NULL || c->send_only || !client_ours(c) || prev == NULL || msg == NULL ||
        !prev->peeked || prev->peek_slot != c->slot || prev->peek_generation != c->generation)
        return MBX_EINVAL;
    size_t need = (size_t)c->view.max_message + 1;
    if (msg->cap < need) {
        char *body = realloc(msg->body, need);
        if (body == NULL)
            return MBX_ENOMEM;
        msg->body = body;
        msg->cap = need;
    }
    if (atomic_flag_test_and_set(&c->receiving))
        return MBX_EINVAL;
    uint64_t after = prev->peek_next; /* read before msg is written: they may be one */
    ring_incoming in = {.body = msg->body};
    mbx_err err = ring_peek_at(&c->view, c->slot, c->generation, after, &in);
    if (err == MBX_OK && !client_incoming_valid(c, &in))
        err = MBX_ECORRUPT;
    if (err == MBX_OK && !plain_kind(c, in.kind))
        err = MBX_ETIMEDOUT; /* for mbx_peek, once what comes before it is acknowledged */
    else if (err == MBX_ETIMEDOUT)
        client_wake_arm(c, in.scanned);
    atomic_flag_clear(&c->receiving);
    if (err == MBX_ESHUTDOWN)
        err = client_confirm_shutdown(c);
    if (err != MBX_OK)
        return err;
    atomic_store(&msg->replied, false);
    fill_message(c, msg, &in, true);
    return MBX_OK;
}

mbx_err mbx_recv(mbx_client *c, mbx_message *msg, int timeout_ms)
{
    return receive(c, msg, timeout_ms, false, true);
}

mbx_err mbx_peek(mbx_client *c, mbx_message *msg, int timeout_ms)
{
    return receive(c, msg, timeout_ms, true, true);
}

mbx_err mbx_ack(mbx_client *c, const mbx_message *msg)
{
    if (c == NULL || c->send_only || !client_ours(c) || msg == NULL || !msg->peeked ||
        msg->peek_slot != c->slot || msg->peek_generation != c->generation)
        return MBX_EINVAL;
    if (atomic_flag_test_and_set(&c->receiving))
        return MBX_EINVAL;
    mbx_err err = ring_commit(&c->view, c->slot, c->generation, msg->peek_position);
    if (err == MBX_OK && msg->kind == CELL_REPLY)
        outstanding_remove(&c->requests, msg->corr); /* answered, now that it is taken */
    atomic_flag_clear(&c->receiving);
    return err;
}

mbx_err mbx_interrupt(mbx_client *c)
{
    if (c == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    /* Async-signal-safe: an atomic store, then a semaphore post (one futex call). The
     * word first: the receiver looks at it after announcing that it sleeps. */
    atomic_store(&c->interrupted, 1);
    plat_sem_post(&segment_mailbox(&c->view, c->slot)->items);
    return MBX_OK;
}

mbx_err mbx_recv_batch(mbx_client *c, mbx_message **msgs, size_t n, size_t *got, int timeout_ms)
{
    if (got == NULL || msgs == NULL || n == 0)
        return MBX_EINVAL;
    *got = 0;
    mbx_err err = mbx_recv(c, msgs[0], timeout_ms);
    if (err != MBX_OK)
        return err;
    for (*got = 1; *got < n; (*got)++) {
        err = receive(c, msgs[*got], 0, false, false);
        if (err == MBX_ECORRUPT)
            c->corrupt_pending = true; /* removed already: the next call reports it */
        if (err != MBX_OK)
            break;
    }
    return MBX_OK;
}

const char *mbx_message_body(const mbx_message *msg, size_t *len)
{
    if (len != NULL)
        *len = msg->len;
    return msg->body != NULL ? msg->body : "";
}

const char *mbx_message_from(const mbx_message *msg)
{
    return msg->from;
}

const char *mbx_message_to(const mbx_message *msg)
{
    return msg->to;
}

uint64_t mbx_message_seq(const mbx_message *msg)
{
    return msg->seq;
}

int64_t mbx_message_ts_us(const mbx_message *msg)
{
    return msg->ts_us;
}

void mbx_message_fields_get(const mbx_message *msg, mbx_message_fields *out)
{
    memset(out, 0, sizeof *out);
    out->body = msg->body != NULL ? msg->body : "";
    out->len = msg->len;
    out->from = msg->from;
    out->to = msg->to;
    out->seq = msg->seq;
    out->ts_us = msg->ts_us;
    out->kind = (int)mbx_message_kind(msg);
    out->correlation = mbx_message_correlation(msg);
    out->topic = mbx_message_topic(msg);
    out->missed = mbx_message_missed(msg);
    out->node = mbx_message_node(msg);
    out->retained = mbx_message_retained(msg);
    out->monitored = mbx_message_monitored(msg);
}

const char *mbx_message_node(const mbx_message *msg)
{
    return msg != NULL && msg->node[0] != '\0' ? msg->node : NULL;
}

mbx_err mbx_message_error(const mbx_message *msg)
{
    return msg != NULL && mbx_message_kind(msg) == MBX_KIND_REPLY ? (mbx_err)msg->error : MBX_OK;
}

char *mbx_message_envelope_json(const mbx_message *msg)
{
    if (msg == NULL || msg->body == NULL || msg->len == 0)
        return NULL;
    uint32_t kind = msg->kind == CELL_MONITOR ? msg->mirrored : msg->kind;
    return envelope_to_json(msg->from, mbx_message_node(msg), msg->to, msg->seq, msg->ts_us, kind,
                            msg->corr, mbx_message_topic(msg), msg->missed, msg->body, msg->len);
}

void mbx_free(void *ptr)
{
    free(ptr);
}
