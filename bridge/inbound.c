/*
 * inbound.c: from NATS into this namespace, for the names this host serves.
 *
 * Each exported name has its own queue subscription (queue group = the name, so that a
 * name served on several hosts, a service group, gets each message once), and cnats runs
 * each subscription's callback on a thread of its own: delivering into a full mailbox
 * waits there, holding up that name only, while the sender's window (outbound.c) bounds
 * how much queues up behind it.
 *
 * A plain message is delivered with mbx_send_ex, labelled with its sender's name and node,
 * then acknowledged to the sending bridge in batches ({"n":N} on the message's reply
 * subject): once ACK_BATCH are waiting, or by inbound_tick when the oldest has waited
 * ACK_DELAY_MS. An acknowledgement only reopens the sender's window (BRIDGE_WINDOW, well
 * above ACK_BATCH), so it need not be prompt, and one per message would double the
 * traffic and the wake-ups of a conversation (a ping-pong's round trip). A
 * request is sent on with mbx_request_send_ex from the control client; its reply comes
 * back to the control client (main thread: inbound_on_ctl_reply) and goes out on the
 * request's reply subject. A responder that dies is noticed by inbound_tick (mbx_recv_reply
 * says MBX_EGONE) and told to the far side as Mbx-Error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

#define ACK_BATCH (BRIDGE_WINDOW / 4)
#define ACK_DELAY_MS 20       /* at most this (plus a tick) before a lone message is acknowledged */
#define DELIVER_SLICE_MS 1000 /* a full mailbox is tried again until stopping */
#define REQUEST_SPACE_MS 5000 /* how long a request waits for space in a full mailbox */
/* cnats' own limits would drop messages of a name whose reader is slow; the senders'
 * windows bound the queue instead. */
#define PENDING_MSGS_MAX (16 * BRIDGE_WINDOW * 64)
#define PENDING_BYTES_MAX (512 * 1024 * 1024)

typedef struct inbound_request {
    uint64_t id; /* mbx_request_send_ex's id on the control client */
    char reply[256];
    int64_t deadline_ns;
} inbound_request;

/* One exported name's subscription: its callback thread delivers; the acknowledgement
 * state is shared with inbound_tick (main thread) under ack_mu. Listed in b->name_subs
 * (under b->mu; lock order b->mu, then ack_mu) from subscribing until its thread ends. */
typedef struct name_sub {
    bridge *b;
    char name[MBX_NAME_MAX + 1];
    pthread_mutex_t ack_mu;
    char ack_to[256]; /* the reply subject whose messages are not acknowledged yet */
    uint64_t unacked;
    int64_t unacked_since_ns; /* when the oldest of them was delivered */
    struct name_sub *next;
} name_sub;

/* Under ack_mu. */
static void ack_flush(name_sub *ns)
{
    if (ns->unacked == 0)
        return;
    char body[40];
    int n = snprintf(body, sizeof body, "{\"n\":%llu}", (unsigned long long)ns->unacked);
    nats_publish(ns->b, ns->ack_to, NULL, body, (size_t)n, NULL);
    ns->unacked = 0;
}

/* Under ack_mu: counts n messages of the sender whose acknowledgements go to reply. */
static void ack_count(name_sub *ns, const char *reply, uint64_t n)
{
    if (strcmp(reply, ns->ack_to) != 0) {
        ack_flush(ns);
        snprintf(ns->ack_to, sizeof ns->ack_to, "%s", reply);
    }
    if (ns->unacked == 0)
        ns->unacked_since_ns = bridge_now_ns();
    ns->unacked += n;
    if (ns->unacked >= ACK_BATCH)
        ack_flush(ns);
}

/* A label from another bridge: a name, or NULL when it is not one. */
static const char *label(natsMsg *m, const char *key)
{
    const char *v = nats_header(m, key);
    return v != NULL && mbx_check_name(v) == MBX_OK ? v : NULL;
}

static void reply_error(bridge *b, const char *subject, mbx_err err)
{
    char code[16];
    snprintf(code, sizeof code, "%d", (int)err);
    char body[96];
    int n =
        snprintf(body, sizeof body, "{\"error\":\"%s\",\"code\":%d}", mbx_strerror(err), (int)err);
    const char *headers[] = {"Mbx-Error", code, "Mbx-Node", b->cfg.node, NULL};
    nats_publish(b, subject, NULL, body, (size_t)n, headers);
}

static bool keep_request(bridge *b, uint64_t id, const char *reply)
{
    bool kept = false;
    pthread_mutex_lock(&b->mu);
    if (b->n_in_reqs == b->cap_in_reqs) {
        int cap = b->cap_in_reqs != 0 ? b->cap_in_reqs * 2 : 64;
        inbound_request *grown = realloc(b->in_reqs, (size_t)cap * sizeof *grown);
        if (grown != NULL) {
            b->in_reqs = grown;
            b->cap_in_reqs = cap;
        }
    }
    if (b->n_in_reqs < b->cap_in_reqs) {
        inbound_request *r = &b->in_reqs[b->n_in_reqs++];
        r->id = id;
        snprintf(r->reply, sizeof r->reply, "%s", reply);
        r->deadline_ns = bridge_now_ns() + BRIDGE_REQUEST_MAX_MS * 1000000LL;
        kept = true;
    }
    pthread_mutex_unlock(&b->mu);
    return kept;
}

static void deliver_request(name_sub *ns, natsMsg *m, const char *from, const char *node)
{
    bridge *b = ns->b;
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || strlen(reply) >= sizeof((inbound_request *)0)->reply)
        return; /* nobody to answer */
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = REQUEST_SPACE_MS;
    so.node = node;
    so.from = from;
    uint64_t id;
    mbx_err err = mbx_request_send_ex(b->ctl, ns->name, natsMsg_GetData(m),
                                      (size_t)natsMsg_GetDataLength(m), &so, &id);
    if (err != MBX_OK) {
        reply_error(b, reply, err);
        return;
    }
    atomic_fetch_add(&b->count.delivered, 1);
    if (!keep_request(b, id, reply)) {
        mbx_request_cancel(b->ctl, id);
        reply_error(b, reply, MBX_EGONE);
        return;
    }
    answer_watch(b, NULL); /* its reply comes to the control client */
}

/* Delivers one message (body[0..len)) from `from` on `node`, waiting while the mailbox
 * is full; then counts it for the acknowledgement to `reply` (NULL: none wanted). true:
 * delivered. */
static bool deliver_one(name_sub *ns, const char *reply, const char *from, const char *node,
                        const char *body, size_t len)
{
    bridge *b = ns->b;
    if (atomic_load(&b->stopping)) {
        /* Stopping: the rest of a batch is not waited for (at most once: counted). */
        atomic_fetch_add(&b->count.dropped, 1);
        return false;
    }
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = DELIVER_SLICE_MS;
    so.node = node;
    so.from = from;
    mbx_err err;
    for (;;) {
        err = mbx_send_ex(b->ctl, ns->name, body, len, &so);
        if (err != MBX_EFULL || atomic_load(&b->stopping))
            break;
        /* The recipient does not read: tell the sender we are alive and holding (an
         * acknowledgement of what went in, or of nothing), so that it keeps its window
         * shut rather than taking the silence for a loss. */
        if (reply != NULL) {
            pthread_mutex_lock(&ns->ack_mu);
            ack_count(ns, reply, 0);
            if (ns->unacked != 0)
                ack_flush(ns);
            else
                nats_publish(b, reply, NULL, "{\"n\":0}", 7, NULL);
            pthread_mutex_unlock(&ns->ack_mu);
        }
    }
    if (err == MBX_OK) {
        atomic_fetch_add(&b->count.delivered, 1);
    } else {
        atomic_fetch_add(&b->count.dropped, 1);
        bridge_log(LOG_DEBUG, "to %s from %s on %s: %s", ns->name, from, node, mbx_strerror(err));
    }
    if (reply != NULL) {
        pthread_mutex_lock(&ns->ack_mu);
        ack_count(ns, reply, 1);
        pthread_mutex_unlock(&ns->ack_mu);
    }
    return err == MBX_OK;
}

static const char *ack_subject(name_sub *ns, natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    return reply != NULL && strlen(reply) < sizeof ns->ack_to ? reply : NULL;
}

/* The origin node of a batch: in its reply subject, mbx.<c>.ack.<node>.<proxy id> (a
 * node name may hold dots; the id has none). NULL when the subject is not one. */
static const char *batch_node(name_sub *ns, const char *reply, char *node, size_t cap)
{
    size_t plen = strlen(ns->b->prefix);
    if (reply == NULL || strncmp(reply, ns->b->prefix, plen) != 0 ||
        strncmp(reply + plen, "ack.", 4) != 0)
        return NULL;
    const char *start = reply + plen + 4, *last = strrchr(start, '.');
    if (last == NULL || (size_t)(last - start) >= cap)
        return NULL;
    memcpy(node, start, (size_t)(last - start));
    node[last - start] = '\0';
    return mbx_check_name(node) == MBX_OK ? node : NULL;
}

/* A batch of plain messages (outbound.c): the format byte 1, then records of [u8 from_len]
 * [from][u32 len, little-endian][body], each delivered as a message of its own. A record
 * that does not parse ends the batch; what came before it was delivered. */
static void deliver_batch(name_sub *ns, natsMsg *m)
{
    const unsigned char *p = (const unsigned char *)natsMsg_GetData(m);
    const unsigned char *end = p + natsMsg_GetDataLength(m);
    const char *reply = ack_subject(ns, m);
    char node_buf[MBX_NAME_MAX + 1];
    const char *node = batch_node(ns, reply, node_buf, sizeof node_buf);
    if (node == NULL || strcmp(node, ns->b->cfg.node) == 0 || p == end || *p++ != 1) {
        bridge_log(LOG_DEBUG, "to %s: not a batch of another bridge's, dropped", ns->name);
        atomic_fetch_add(&ns->b->count.dropped, 1);
        return;
    }
    char from[MBX_NAME_MAX + 1];
    int records = 0;
    bool delivered = false;
    while (p < end) {
        if (p[0] == 0 || p[0] > MBX_NAME_MAX || end - p < 1 + p[0] + 4)
            break;
        size_t flen = p[0];
        memcpy(from, p + 1, flen);
        from[flen] = '\0';
        p += 1 + flen;
        uint32_t len =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
        if (mbx_check_name(from) != MBX_OK || (size_t)(end - p) < len)
            break;
        delivered = deliver_one(ns, reply, from, node, (const char *)p, len);
        records++;
        p += len;
    }
    /* A lone message is often one side of a conversation: its answer to `from` goes out
     * through from's proxy here, which is then watched a moment. (A stream comes in
     * batches of many, and its sender expects nothing back.) */
    if (records == 1 && delivered && p == end)
        answer_watch(ns->b, from);
    if (p != end) {
        /* Not acknowledged: the sender counts what it sent as dropped at its
         * acknowledgement timeout; how many did not parse is not known here. */
        bridge_log(LOG_WARN, "to %s from node %s: a malformed batch, the rest dropped", ns->name,
                   node);
        atomic_fetch_add(&ns->b->count.dropped, 1);
    }
}

static void on_name(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    name_sub *ns = arg;
    const char *kind = nats_header(m, "Mbx-Kind");
    if (kind == NULL && nats_header(m, "Mbx-Node") == NULL) {
        deliver_batch(ns, m); /* plain messages: no headers */
    } else if (kind == NULL) {
        /* Labelled but not a request: an older bridge's plain message, whose format
         * this one does not read (both ends must run the same version). */
        bridge_log(LOG_WARN, "to %s: a message in an older bridge's format, dropped", ns->name);
        atomic_fetch_add(&ns->b->count.dropped, 1);
    } else {
        const char *from = label(m, "Mbx-From"), *node = label(m, "Mbx-Node");
        if (strcmp(kind, "request") != 0 || from == NULL || node == NULL ||
            strcmp(node, ns->b->cfg.node) == 0) {
            bridge_log(LOG_DEBUG, "to %s: a message without a sender or node, dropped", ns->name);
            atomic_fetch_add(&ns->b->count.dropped, 1);
        } else {
            deliver_request(ns, m, from, node);
        }
    }
    msg_release(ns->b, m);
}

/* Under b->mu. */
static void unlist(bridge *b, name_sub *ns)
{
    for (name_sub **at = &b->name_subs; *at != NULL; at = &(*at)->next)
        if (*at == ns) {
            *at = ns->next;
            return;
        }
}

static void on_name_done(void *arg)
{
    /* The subscription's thread has ended: after this, nothing uses ns any more. */
    name_sub *ns = arg;
    bridge *b = ns->b;
    pthread_mutex_lock(&b->mu);
    unlist(b, ns);
    pthread_mutex_lock(&ns->ack_mu);
    ack_flush(ns);
    pthread_mutex_unlock(&ns->ack_mu);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_destroy(&ns->ack_mu);
    free(ns);
}

natsSubscription *inbound_subscribe_name(bridge *b, const char *name)
{
    name_sub *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return NULL;
    ns->b = b;
    snprintf(ns->name, sizeof ns->name, "%s", name);
    pthread_mutex_init(&ns->ack_mu, NULL);
    /* Listed before it can complete (on_name_done takes it out of the list). */
    pthread_mutex_lock(&b->mu);
    ns->next = b->name_subs;
    b->name_subs = ns;
    pthread_mutex_unlock(&b->mu);
    char subject[256];
    bridge_subject(b, subject, sizeof subject, "n", name);
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_QueueSubscribe(&sub, b->nc, subject, name, on_name, ns);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, on_name_done, ns);
    if (s != NATS_OK) {
        bridge_log(LOG_ERROR, "cannot serve %s on NATS: %s", name, natsStatus_GetText(s));
        if (sub != NULL)
            natsSubscription_Destroy(sub); /* never delivered: ns is still ours */
        pthread_mutex_lock(&b->mu);
        unlist(b, ns);
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_destroy(&ns->ack_mu);
        free(ns);
        return NULL;
    }
    natsSubscription_SetPendingLimits(sub, PENDING_MSGS_MAX, PENDING_BYTES_MAX);
    bridge_log(LOG_DEBUG, "serving %s to other nodes", name);
    return sub;
}

void inbound_unsubscribe_name(bridge *b, natsSubscription *sub)
{
    (void)b;
    if (sub == NULL)
        return;
    /* Messages already queued for it are still delivered (to a name that is gone now:
     * MBX_ENORECIPIENT, counted), then its thread ends and frees its state. */
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

static void send_reply(bridge *b, const char *subject, mbx_message *m)
{
    mbx_err far = mbx_message_error(m);
    if (far != MBX_OK) {
        reply_error(b, subject, far);
        return;
    }
    size_t len;
    const char *body = mbx_message_body(m, &len);
    const char *headers[] = {"Mbx-From", mbx_message_from(m), "Mbx-Node", b->cfg.node, NULL};
    if (nats_publish(b, subject, NULL, body, len, headers) == NATS_OK)
        atomic_fetch_add(&b->count.forwarded, 1);
    else
        atomic_fetch_add(&b->count.dropped, 1);
}

/* Takes request id's entry out of the table into reply (NUL-terminated subject). */
static bool take_request(bridge *b, uint64_t id, char *reply, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n_in_reqs; i++)
        if (b->in_reqs[i].id == id) {
            snprintf(reply, cap, "%s", b->in_reqs[i].reply);
            b->in_reqs[i] = b->in_reqs[--b->n_in_reqs];
            found = true;
            break;
        }
    pthread_mutex_unlock(&b->mu);
    return found;
}

bool inbound_on_ctl_reply(bridge *b, mbx_message *m, bool may_wait)
{
    char reply[256];
    /* The thread that sent the request enters it in the table right after the send: a
     * reply faster than that is taken up by inbound_tick, which asks the library for it
     * by id (mbx_recv_reply). Here the library has handed it over already, so an entry
     * not there yet is waited for a moment. */
    for (int tries = 0; tries < 100; tries++) {
        if (take_request(b, mbx_message_correlation(m), reply, sizeof reply)) {
            send_reply(b, reply, m);
            return true;
        }
        if (!may_wait)
            return false;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    atomic_fetch_add(&b->count.dropped, 1);
    return true;
}

/* Acknowledges what waited at least delay_ms. (It publishes under b->mu: a write held up
 * by a full socket holds up the callbacks that take b->mu meanwhile, as it would
 * hold up their own publishes.) */
static void acks_due(bridge *b, int64_t now, int64_t delay_ms)
{
    pthread_mutex_lock(&b->mu);
    for (name_sub *ns = b->name_subs; ns != NULL; ns = ns->next) {
        pthread_mutex_lock(&ns->ack_mu);
        if (ns->unacked != 0 && now - ns->unacked_since_ns >= delay_ms * 1000000LL)
            ack_flush(ns);
        pthread_mutex_unlock(&ns->ack_mu);
    }
    pthread_mutex_unlock(&b->mu);
}

void inbound_flush_acks(bridge *b)
{
    acks_due(b, bridge_now_ns(), 0);
}

void inbound_tick(bridge *b, int64_t now)
{
    enum { AT_ONCE = 256 };
    acks_due(b, now, ACK_DELAY_MS);
    uint64_t ids[AT_ONCE];
    int n = 0;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n_in_reqs && n < AT_ONCE; i++)
        ids[n++] = b->in_reqs[i].id;
    pthread_mutex_unlock(&b->mu);
    mbx_message *m = n > 0 ? mbx_message_new() : NULL;
    for (int i = 0; i < n && m != NULL; i++) {
        mbx_err err = mbx_recv_reply(b->ctl, ids[i], m, 0);
        char reply[256];
        if (err == MBX_ETIMEDOUT) {
            bool expired = false;
            pthread_mutex_lock(&b->mu);
            for (int j = 0; j < b->n_in_reqs; j++)
                if (b->in_reqs[j].id == ids[i])
                    expired = now > b->in_reqs[j].deadline_ns;
            pthread_mutex_unlock(&b->mu);
            if (!expired)
                continue;
            mbx_request_cancel(b->ctl, ids[i]);
            err = MBX_EGONE;
        }
        if (!take_request(b, ids[i], reply, sizeof reply))
            continue;
        if (err == MBX_OK)
            send_reply(b, reply, m);
        else if (err == MBX_EGONE || err == MBX_EINVAL)
            reply_error(b, reply, MBX_EGONE);
        else
            reply_error(b, reply, err);
    }
    mbx_message_free(m);
}

int inbound_start(bridge *b)
{
    (void)b;
    return 0;
}
