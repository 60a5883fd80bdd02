/*
 * outbound.c: from the proxies' mailboxes to NATS (main thread only).
 *
 * A proxy is a local client standing for a name served on another node
 * (mbx_connect_options.node): local clients send to it as to any name, and the bridge
 * takes what it holds and publishes it on mbx.<c>.n.<name>, where the node serving the
 * name listens.
 *
 * Plain messages go with a reply subject mbx.<c>.ack.<node>.<proxy id>; the receiving
 * bridge acknowledges them in batches once they are in the recipient's mailbox. A proxy
 * keeps at most BRIDGE_WINDOW of them unacknowledged: while its window is full, or NATS
 * is down, the bridge takes nothing from its mailbox, which fills, and local senders see
 * a full mailbox exactly as with a local recipient, while every other name flows. Core
 * NATS is at most once: a message NATS has no subscriber for comes back as "no
 * responders" and is counted as dropped, and so are messages never acknowledged within
 * ACK_TIMEOUT_MS (the far bridge died, or the connection broke with them on the way). A
 * far bridge waiting on a full mailbox says so every second ({"n":0}), so a recipient
 * that does not read keeps the window shut, however long: backpressure, not loss.
 *
 * After NATS comes back, a proxy waits until its node has been heard from again (its
 * bridge sends its directory once it is connected, so its subscriptions are back):
 * what waited in the mailbox is then forwarded, not lost for want of a listener.
 *
 * What a drain takes from one mailbox in one go goes out as one NATS message, without
 * headers: the format byte BATCH_FORMAT, then per message [u8 from_len][from][u32 len,
 * little-endian][body], at most BATCH_BYTES in all; the origin node is in the reply
 * subject. A busy name costs one publish per batch, not per message, while a lone message
 * still goes out at once. A request first sends the batch before it, so that order holds.
 *
 * Requests go with a reply subject mbx.<c>.rep.<node>.<token>; the request's message
 * object is kept until its answer comes back (mbx_reply_ex), NATS says nobody serves the
 * name (MBX_ENORECIPIENT), the far side tells an error (mbx_reply_error), or
 * BRIDGE_REQUEST_MAX_MS passes (the requester has given up long before).
 *
 * A message that already carries a node came in through a bridge: it is never sent out
 * again (no loops, whatever the directories say for a moment).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "outbound.h"

#define DRAIN_BATCH 256      /* messages taken from one proxy before looking at others */
#define ACK_TIMEOUT_MS 10000 /* no acknowledgement this long: the window's messages lost */
#define CONFLICT_RETRY_MS 2000
#define BATCH_BYTES (64 * 1024)
#define BATCH_FORMAT 1    /* the first byte of a batch: its format's version */
#define STREAM_MIN 16     /* a drain that took this many: a sender streams to the name */
#define STREAM_SPIN_US 50 /* how long a streaming name is watched after a drain */
#define STREAM_ROUNDS 64  /* drains in a row before the main loop looks at the rest */

typedef struct outbound_request {
    uint64_t token;
    uint64_t proxy_id;
    mbx_message *request;
    int64_t deadline_ns;
} outbound_request;

static proxy *find_proxy(bridge *b, const char *name)
{
    for (int i = 0; i < b->n_proxies; i++)
        if (strcmp(b->proxies[i]->name, name) == 0)
            return b->proxies[i];
    return NULL;
}

static proxy *proxy_by_id(bridge *b, uint64_t id)
{
    for (int i = 0; i < b->n_proxies; i++)
        if (b->proxies[i]->id == id)
            return b->proxies[i];
    return NULL;
}

/* Connects p's client; on a conflict (the name is served here) logs it once. */
static void proxy_connect(bridge *b, proxy *p, int64_t now)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = b->cfg.ns;
    o.client_name = p->name;
    o.node = p->node;
    o.group = p->group;
    o.timeout_ms = 2000;
    if (b->cfg.durable && !p->group)
        o.linger_ms = DURABLE_LINGER_MS; /* what it holds outlives this bridge */
    mbx_handle fd;
    mbx_err err = mbx_connect(&o, &p->c);
    if (err == MBX_OK && (err = mbx_wait_handle(p->c, &fd)) != MBX_OK) {
        mbx_close(p->c);
        p->c = NULL;
    }
    if (err != MBX_OK) {
        p->retry_ns = now + CONFLICT_RETRY_MS * 1000000LL;
        if (err == MBX_ENAMETAKEN && !p->conflict_told) {
            p->conflict_told = true;
            atomic_fetch_add(&b->count.conflicts, 1);
            bridge_log(LOG_WARN,
                       "name conflict: %s is served here and on node %s; it stays local on "
                       "both",
                       p->name, p->node);
        } else if (err != MBX_ENAMETAKEN) {
            bridge_log(LOG_DEBUG, "%s (node %s): %s", p->name, p->node, mbx_strerror(err));
        }
        return;
    }
    if (p->conflict_told)
        bridge_log(LOG_INFO, "name conflict over: %s now stands for node %s", p->name, p->node);
    p->conflict_told = false;
    p->fd = fd;
    p->in_flight = 0;
    p->progress_ns = now;
    bridge_log(LOG_DEBUG, "%s: served by node %s%s", p->name, p->node, p->group ? " (group)" : "");
}

void outbound_want(bridge *b, const char *name, const char *node, bool group, int64_t now)
{
    proxy *p = find_proxy(b, name);
    if (p == NULL) {
        if (b->n_proxies == b->cap_proxies) {
            int cap = b->cap_proxies != 0 ? b->cap_proxies * 2 : 16;
            proxy **grown = realloc(b->proxies, (size_t)cap * sizeof *grown);
            if (grown == NULL)
                return;
            b->proxies = grown;
            b->cap_proxies = cap;
        }
        p = calloc(1, sizeof *p);
        if (p == NULL || (p->msg = mbx_message_new()) == NULL) {
            free(p);
            return;
        }
        p->id = ++b->next_proxy_id;
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->node, sizeof p->node, "%s", node);
        p->group = group;
        p->fd = -1;
        b->proxies[b->n_proxies++] = p;
    }
    if (p->round == b->round + 1)
        return; /* served by several nodes (a group): one proxy stands for them all */
    p->round = b->round + 1;
    if (p->c == NULL && now >= p->retry_ns) {
        snprintf(p->node, sizeof p->node, "%s", node);
        p->group = group;
        proxy_connect(b, p, now);
    }
}

static void drop_requests_of(bridge *b, uint64_t proxy_id)
{
    for (int i = 0; i < b->n_out_reqs;)
        if (b->out_reqs[i].proxy_id == proxy_id) {
            mbx_message_free(b->out_reqs[i].request);
            b->out_reqs[i] = b->out_reqs[--b->n_out_reqs];
        } else {
            i++;
        }
}

static void proxy_free(bridge *b, proxy *p)
{
    /* Its requests' requesters hear MBX_EGONE from their library: the slot they went
     * to changes hands. Messages still in its mailbox are discarded (counted by the
     * broker); unacknowledged ones in flight may still arrive. */
    drop_requests_of(b, p->id);
    durable_forget(p);
    free(p->batch);
    if (p->c != NULL)
        bridge_log(LOG_DEBUG, "%s: no node serves it any more", p->name);
    mbx_close(p->c);
    mbx_message_free(p->msg);
    free(p);
}

void outbound_sweep(bridge *b, int64_t now)
{
    (void)now;
    b->round++;
    b->proxies_epoch++;
    for (int i = 0; i < b->n_proxies;)
        if (b->proxies[i]->round != b->round) {
            proxy_free(b, b->proxies[i]);
            b->proxies[i] = b->proxies[--b->n_proxies];
        } else {
            i++;
        }
}

void outbound_close_all(bridge *b)
{
    b->proxies_epoch++;
    for (int i = 0; i < b->n_proxies; i++)
        proxy_free(b, b->proxies[i]);
    b->n_proxies = 0;
    free(b->proxies);
    b->proxies = NULL;
    for (int i = 0; i < b->n_out_reqs; i++)
        mbx_message_free(b->out_reqs[i].request);
    free(b->out_reqs);
    b->out_reqs = NULL;
    b->n_out_reqs = 0;
}

int outbound_poll_fds(bridge *b, struct pollfd *fds, proxy **who, int cap, bool *more)
{
    int n = 0;
    if (!atomic_load(&b->connected))
        return 0;
    int64_t now = bridge_now_ns();
    for (int i = 0; i < b->n_proxies && n < cap; i++) {
        proxy *p = b->proxies[i];
        if (p->c == NULL)
            continue;
        if (b->cfg.durable ? !b->stream_ready || !durable_proxy_ready(p, now)
                           : p->in_flight >= BRIDGE_WINDOW || !directory_node_fresh(b, p->node))
            continue;
        fds[n] = (struct pollfd){.fd = p->fd, .events = POLLIN};
        who[n++] = p;
        if (p->more)
            *more = true;
    }
    return n;
}

static bool keep_request(bridge *b, proxy *p, uint64_t *token)
{
    if (b->n_out_reqs == b->cap_out_reqs) {
        int cap = b->cap_out_reqs != 0 ? b->cap_out_reqs * 2 : 64;
        outbound_request *grown = realloc(b->out_reqs, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return false;
        b->out_reqs = grown;
        b->cap_out_reqs = cap;
    }
    mbx_message *fresh = mbx_message_new();
    if (fresh == NULL)
        return false;
    *token = ++b->next_token;
    b->out_reqs[b->n_out_reqs++] = (outbound_request){
        .token = *token,
        .proxy_id = p->id,
        .request = p->msg,
        .deadline_ns = bridge_now_ns() + BRIDGE_REQUEST_MAX_MS * 1000000LL,
    };
    p->msg = fresh; /* the request's object stays with its entry until it is answered */
    return true;
}

/* Sends the batch p holds: one NATS message without headers (see the top of this file),
 * so that no message object is made and freed (cnats hands each freed one to its
 * collector thread: a wake-up per publish). */
static void batch_flush(bridge *b, proxy *p)
{
    if (p->batch_n == 0)
        return;
    char subject[256], reply[256];
    bridge_subject(b, subject, sizeof subject, "n", p->name);
    snprintf(reply, sizeof reply, "%sack.%s.%llu", b->prefix, b->cfg.node,
             (unsigned long long)p->id);
    if (nats_publish(b, subject, reply, p->batch, p->batch_len, NULL) == NATS_OK) {
        p->in_flight += p->batch_n;
        atomic_fetch_add(&b->count.forwarded, p->batch_n);
    } else {
        atomic_fetch_add(&b->count.dropped, p->batch_n);
    }
    p->batch_n = 0;
    p->batch_len = 0;
}

static void batch_add(bridge *b, proxy *p, const mbx_message *m)
{
    size_t len;
    const char *body = mbx_message_body(m, &len);
    const char *from = mbx_message_from(m);
    size_t flen = strlen(from);
    size_t need = 1 + flen + 4 + len;
    if (p->batch_n > 0 && p->batch_len + need > BATCH_BYTES)
        batch_flush(b, p);
    if (p->batch_len == 0)
        need++; /* the format byte */
    if (p->batch_len + need > p->batch_cap) {
        size_t cap = p->batch_len + need > BATCH_BYTES ? p->batch_len + need : BATCH_BYTES;
        char *grown = realloc(p->batch, cap);
        if (grown == NULL) {
            atomic_fetch_add(&b->count.dropped, 1);
            return;
        }
        p->batch = grown;
        p->batch_cap = cap;
    }
    unsigned char *w = (unsigned char *)p->batch + p->batch_len;
    if (p->batch_len == 0)
        *w++ = BATCH_FORMAT;
    w[0] = (unsigned char)flen;
    memcpy(w + 1, from, flen);
    w += 1 + flen;
    w[0] = (unsigned char)len;
    w[1] = (unsigned char)(len >> 8);
    w[2] = (unsigned char)(len >> 16);
    w[3] = (unsigned char)(len >> 24);
    memcpy(w + 4, body, len);
    p->batch_len += need;
    p->batch_n++;
}

/* Sends what p->msg holds (a plain message: into the batch, sent at the drain's end). */
static void forward(bridge *b, proxy *p)
{
    mbx_message *m = p->msg;
    mbx_kind kind = mbx_message_kind(m);
    size_t len;
    const char *body = mbx_message_body(m, &len);
    char subject[256], reply[256], id[24];
    bridge_subject(b, subject, sizeof subject, "n", p->name);
    if (mbx_message_node(m) != NULL || (kind != MBX_KIND_PLAIN && kind != MBX_KIND_REQUEST)) {
        /* Came in through a bridge, or is not for the far side (a stray reply). */
        atomic_fetch_add(&b->count.dropped, 1);
        if (kind == MBX_KIND_REQUEST)
            mbx_reply_error(p->c, m, MBX_ENORECIPIENT, 0);
        return;
    }
    if (kind == MBX_KIND_PLAIN) {
        batch_add(b, p, m);
        return;
    }
    batch_flush(b, p); /* what came before the request goes before it */
    uint64_t token;
    if (!keep_request(b, p, &token)) {
        mbx_reply_error(p->c, m, MBX_EGONE, 0);
        return;
    }
    snprintf(id, sizeof id, "%llu", (unsigned long long)token);
    snprintf(reply, sizeof reply, "%srep.%s.%s", b->prefix, b->cfg.node, id);
    const char *headers[] = {"Mbx-Kind", "request",   "Mbx-From", mbx_message_from(m),
                             "Mbx-Node", b->cfg.node, NULL};
    if (nats_publish(b, subject, reply, body, len, headers) == NATS_OK) {
        atomic_fetch_add(&b->count.forwarded, 1);
        return;
    }
    /* Not sent: the requester hears it now rather than at its timeout. */
    outbound_request *r = &b->out_reqs[b->n_out_reqs - 1];
    mbx_reply_error(p->c, r->request, MBX_EGONE, 0);
    mbx_message_free(r->request);
    b->n_out_reqs--;
    atomic_fetch_add(&b->count.dropped, 1);
}

/* Takes what p holds into its batch, up to DRAIN_BATCH or its window, and sends it;
 * returns how many, or -1 when p's client failed (closed then). Sets p->more unless a
 * receive found the mailbox empty: only that (or a busy poll that timed out) arms the
 * wake handle, so what is left otherwise may never signal it, and the main loop drains
 * p again without waiting for it. */
static int drain_once(bridge *b, proxy *p)
{
    int n = 0;
    bool empty = false;
    while (n < DRAIN_BATCH && p->in_flight + p->batch_n < BRIDGE_WINDOW &&
           atomic_load(&b->connected)) {
        mbx_err err = mbx_recv(p->c, p->msg, 0);
        if (err == MBX_ETIMEDOUT) {
            empty = true;
            break;
        }
        if (err == MBX_ECORRUPT) {
            atomic_fetch_add(&b->count.dropped, 1);
            continue;
        }
        if (err != MBX_OK) {
            /* Evicted, or the namespace shut down: the directory's next round makes it
             * again (or the main loop hears of the shutdown from the control client). */
            bridge_log(LOG_DEBUG, "%s: %s", p->name, mbx_strerror(err));
            batch_flush(b, p);
            mbx_close(p->c);
            p->c = NULL;
            p->more = false;
            return -1;
        }
        n++;
        forward(b, p);
    }
    p->more = !empty;
    if (n > 0)
        p->progress_ns = bridge_now_ns();
    batch_flush(b, p);
    return n;
}

void outbound_drain(bridge *b, proxy *p)
{
    if (p->c == NULL)
        return; /* failed in a drain since the main loop listed it (a delivery thread's) */
    if (b->cfg.durable) {
        durable_drain(b, p, forward);
        return;
    }
    /* A sender streaming to the name refills the mailbox within microseconds of a drain:
     * watching it a moment (STREAM_SPIN_US) catches the next messages without the two
     * wake-ups of a sender that found the mailbox full and a bridge asleep in poll. Only
     * after a drain that took many (STREAM_MIN) and found the mailbox empty: a lone
     * message, as in a conversation, gets no spin, and an idle bridge spends no CPU. */
    for (int rounds = 1;; rounds++) {
        int took = drain_once(b, p);
        if (took < STREAM_MIN || p->more || p->in_flight >= BRIDGE_WINDOW)
            return;
        if (mbx_busy_poll(p->c, STREAM_SPIN_US) != MBX_OK)
            return; /* nothing came: the handle is armed */
        if (rounds == STREAM_ROUNDS) {
            p->more = true; /* something came and the handle is not armed */
            return;
        }
    }
}

bool outbound_watch(bridge *b, const char *name, bool *more)
{
    proxy *p = find_proxy(b, name);
    *more = false;
    /* As outbound_poll_fds: only toward a node heard from since NATS came back. */
    if (p == NULL || p->c == NULL || b->cfg.durable || p->in_flight >= BRIDGE_WINDOW ||
        !atomic_load(&b->connected) || !directory_node_fresh(b, p->node))
        return true; /* not watched: no miss */
    if (mbx_busy_poll(p->c, WATCH_SPIN_US) != MBX_OK)
        return false;
    /* Once, without watching a stream (outbound_drain): a delivery thread may be here,
     * with its own name waiting; what is left, the main loop takes (*more). */
    if (drain_once(b, p) >= 0)
        *more = p->more;
    return true;
}

void outbound_on_ack(bridge *b, uint64_t id, uint64_t count, bool no_responders)
{
    proxy *p = proxy_by_id(b, id);
    if (p == NULL)
        return;
    if (count > p->in_flight)
        count = p->in_flight;
    p->in_flight -= count;
    p->progress_ns = bridge_now_ns();
    if (no_responders) {
        /* Nobody listens on the name (its node left, or its directory is stale). */
        atomic_fetch_add(&b->count.dropped, count);
    }
}

static outbound_request *take_request(bridge *b, uint64_t token, outbound_request *out)
{
    for (int i = 0; i < b->n_out_reqs; i++)
        if (b->out_reqs[i].token == token) {
            *out = b->out_reqs[i];
            b->out_reqs[i] = b->out_reqs[--b->n_out_reqs];
            return out;
        }
    return NULL;
}

/* The far side's error code, if it is one a requester may be told. */
static mbx_err far_error(const char *text)
{
    if (text == NULL)
        return MBX_OK;
    long code = strtol(text, NULL, 10);
    switch (code) {
    case MBX_ENORECIPIENT:
    case MBX_EGONE:
    case MBX_EFULL:
    case MBX_ETOOLARGE:
    case MBX_EINVALJSON:
    case MBX_EPERM:
    case MBX_ENOBROKER:
        return (mbx_err)code;
    default:
        return MBX_EGONE;
    }
}

void outbound_on_reply(bridge *b, uint64_t token, natsMsg *m)
{
    outbound_request r;
    if (take_request(b, token, &r) == NULL)
        return; /* expired, or its proxy is gone */
    proxy *p = proxy_by_id(b, r.proxy_id);
    if (p != NULL && p->c != NULL) {
        mbx_err err;
        if (natsMsg_IsNoResponders(m)) {
            err = mbx_reply_error(p->c, r.request, MBX_ENORECIPIENT, 1000);
        } else {
            mbx_err far = far_error(nats_header(m, "Mbx-Error"));
            const char *node = nats_header(m, "Mbx-Node");
            if (far != MBX_OK) {
                err = mbx_reply_error(p->c, r.request, far, 1000);
            } else {
                mbx_send_options so;
                mbx_send_options_init(&so);
                so.timeout_ms = 1000;
                so.node = node != NULL && mbx_check_name(node) == MBX_OK ? node : p->node;
                err = mbx_reply_ex(p->c, r.request, natsMsg_GetData(m),
                                   (size_t)natsMsg_GetDataLength(m), &so);
            }
        }
        if (err == MBX_OK)
            atomic_fetch_add(&b->count.delivered, 1);
        else
            atomic_fetch_add(&b->count.dropped, 1);
    }
    mbx_message_free(r.request);
}

void outbound_tick(bridge *b, int64_t now)
{
    for (int i = 0; i < b->n_proxies; i++) {
        proxy *p = b->proxies[i];
        if (p->in_flight != 0 && now - p->progress_ns > ACK_TIMEOUT_MS * 1000000LL) {
            bridge_log(LOG_WARN,
                       "%s: %llu messages to node %s were never acknowledged: counted "
                       "as dropped",
                       p->name, (unsigned long long)p->in_flight, p->node);
            atomic_fetch_add(&b->count.dropped, p->in_flight);
            p->in_flight = 0;
        }
    }
    for (int i = 0; i < b->n_out_reqs;)
        if (now > b->out_reqs[i].deadline_ns) {
            mbx_message_free(b->out_reqs[i].request);
            b->out_reqs[i] = b->out_reqs[--b->n_out_reqs];
        } else {
            i++;
        }
}

int outbound_proxies(bridge *b)
{
    int n = 0;
    for (int i = 0; i < b->n_proxies; i++)
        n += b->proxies[i]->c != NULL;
    return n;
}

uint64_t outbound_in_flight(bridge *b)
{
    uint64_t n = durable_held(b);
    for (int i = 0; i < b->n_proxies; i++)
        n += b->proxies[i]->in_flight;
    return n;
}

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    bridge *b = arg;
    const char *subject = natsMsg_GetSubject(m);
    const char *last = strrchr(subject, '.');
    uint64_t id = last != NULL ? strtoull(last + 1, NULL, 10) : 0;
    bool none = natsMsg_IsNoResponders(m);
    uint64_t count = 1;
    if (!none) {
        /* {"n":N}: how many of this proxy's messages the far side took */
        const char *data = natsMsg_GetData(m);
        const char *n = data != NULL ? strstr(data, "\"n\":") : NULL;
        count = n != NULL ? strtoull(n + 4, NULL, 10) : 0;
    }
    events_post(b, EV_ACK, id, count | (none ? 1ULL << 63 : 0), NULL);
    msg_release(b, m);
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    bridge *b = arg;
    const char *last = strrchr(natsMsg_GetSubject(m), '.');
    events_post(b, EV_REPLY, last != NULL ? strtoull(last + 1, NULL, 10) : 0, 0, m);
}

int outbound_start(bridge *b)
{
    char subject[256];
    snprintf(subject, sizeof subject, "%sack.%s.*", b->prefix, b->cfg.node);
    if (nats_subscribe_for_run(b, subject, on_ack) != 0)
        return -1;
    snprintf(subject, sizeof subject, "%srep.%s.*", b->prefix, b->cfg.node);
    return nats_subscribe_for_run(b, subject, on_reply);
}
