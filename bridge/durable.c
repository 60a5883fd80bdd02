/*
 * durable.c: --durable, messages to names through a JetStream stream (docs/bridge.md,
 * "Guarantees").
 *
 * The stream MBX_<cluster> holds the subjects mbx.<c>.d.<name>, work-queue retention (a
 * message leaves it once a receiving bridge acknowledged it), file storage, replicated on
 * three servers when the cluster has three, kept at most DURABLE_MAX_AGE, duplicates told
 * apart for DURABLE_DUP_WINDOW by the Nats-Msg-Id the sender gives.
 *
 * Sending (main thread): a proxy's messages stay in its mailbox until JetStream has them.
 * The bridge peeks them in order (mbx_peek, then mbx_peek_after: up to DURABLE_WINDOW at
 * once), publishes each asynchronously with a Nats-Msg-Id made of this node, the name and
 * the message's sender, sequence number and time (the same message peeked again after a
 * crash gets the same id, and JetStream stores it once), and mbx_acks them oldest first
 * as JetStream acknowledges. A publish that fails or is not acknowledged within
 * DURABLE_PUB_TIMEOUT_MS is sent again, same id. Proxies linger (DURABLE_LINGER_MS): a
 * bridge killed leaves their mailboxes, with what they hold, to its successor, and local
 * senders go on sending to the names while it is away.
 *
 * Receiving (one cnats thread per name): a durable consumer per exported name (a work
 * queue: one consumer per subject; bridges serving the same name share it as a deliver
 * group), explicit acks. Each message is delivered with mbx_send_options.once = its
 * stream sequence: the recipient's mailbox keeps the highest, under its lock, so a
 * message delivered before a crash and redelivered after it is not put in twice. Then it
 * is acknowledged. A recipient that is full or away holds up only its name: the delivery
 * is retried, and JetStream is told the message is in progress meanwhile. Only then the
 * next: messages of one name are delivered in stream order, never around one that
 * waits. Group names (members on several hosts) are delivered without `once`: each host
 * has its own members' mailboxes, so there they are at least once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durable.h"
#include "outbound.h"

#define DURABLE_MAX_AGE_NS (24LL * 3600 * 1000000000LL)
#define DURABLE_DUP_WINDOW_NS (3600LL * 1000000000LL)
#define DURABLE_PUB_TIMEOUT_MS 5000
#define DURABLE_RETRY_MS 500
#define DURABLE_ACK_WAIT_NS (10LL * 1000000000LL)
#define DURABLE_PROGRESS_MS 3000 /* in-progress notes while a delivery waits */
/* One: JetStream redelivers an unacknowledged message only after the ack wait, while it
 * goes on delivering newer ones when more may be pending; the recipient's mark (`once`,
 * the highest stream sequence it took) would then take a redelivered older message for a
 * duplicate, and it would be lost (found by the 100,000-message kill test). With one
 * pending, a name's messages are delivered strictly in stream order. */
#define DURABLE_MAX_ACK_PENDING 1

typedef struct held {
    mbx_message *msg;
    char id[MBX_NAME_MAX * 3 + 64];
    bool done;       /* JetStream has it */
    int64_t sent_ns; /* last publish, for the timeout */
    bool failed;     /* to be sent again */
} held;

static jsCtx *js;

/* ---- names as JetStream names ---------------------------------------------------- */

/* A consumer or deliver-group name for a mailbox name: letters, digits and '-' as they
 * are, '_' as "__", '.' as "_d" (JetStream names have no '.'); distinct names stay
 * distinct. */
static void js_token(char *out, size_t cap, const char *name)
{
    size_t o = 0;
    for (const char *p = name; *p != '\0' && o + 3 < cap; p++) {
        if (*p == '.') {
            out[o++] = '_';
            out[o++] = 'd';
        } else if (*p == '_') {
            out[o++] = '_';
            out[o++] = '_';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void stream_name(const bridge *b, char *out, size_t cap)
{
    snprintf(out, cap, "MBX_%s", b->cfg.cluster);
}

/* ---- the stream ------------------------------------------------------------------- */

static int server_count(bridge *b)
{
    char **servers = NULL;
    int n = 0;
    if (natsConnection_GetServers(b->nc, &servers, &n) != NATS_OK)
        return 1;
    for (int i = 0; i < n; i++)
        free(servers[i]);
    free(servers);
    return n;
}

void durable_on_connected(bridge *b)
{
    /* Publishes on the way when the connection broke may be lost: sent again now (the
     * same ids: JetStream stores each once), not after their timeout. */
    for (int i = 0; i < b->n_proxies; i++) {
        proxy *p = b->proxies[i];
        for (int k = 0; k < p->n_held; k++)
            p->held[(p->held_first + k) % DURABLE_WINDOW].failed = true;
        p->retry_ns = 0;
    }
    char name[MBX_NAME_MAX + 8], subject[MBX_NAME_MAX + 16];
    stream_name(b, name, sizeof name);
    snprintf(subject, sizeof subject, "%sd.>", b->prefix);
    const char *subjects[] = {subject};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_WorkQueuePolicy;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = DURABLE_MAX_AGE_NS;
    cfg.Duplicates = DURABLE_DUP_WINDOW_NS;
    cfg.Discard = js_DiscardOld;
    cfg.Replicas = server_count(b) >= 3 ? 3 : 1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK && cfg.Replicas == 3 && jerr != JSStreamNameExistErr) {
        cfg.Replicas = 1; /* fewer servers than it looked: one copy rather than none */
        s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    }
    if (s == NATS_OK || jerr == JSStreamNameExistErr) {
        if (!b->stream_ready)
            bridge_log(LOG_INFO, "JetStream stream %s ready", name);
        b->stream_ready = true;
    } else {
        bridge_log(LOG_ERROR, "JetStream stream %s: %s (%d); messages to other nodes wait", name,
                   natsStatus_GetText(s), (int)jerr);
    }
    jsStreamInfo_Destroy(si);
}

/* ---- sending ------------------------------------------------------------------------ */

static void on_pub_ack(jsCtx *ctx, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    (void)ctx;
    (void)pae;
    /* The message comes back whole: its headers say which proxy and message. */
    events_post(arg, EV_JS_ACK, 0, pa != NULL ? 1 : 0, m);
}

int durable_start(bridge *b)
{
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 5000;
    o.PublishAsync.AckHandler = on_pub_ack;
    o.PublishAsync.AckHandlerClosure = b;
    o.PublishAsync.MaxPending = 64 * DURABLE_WINDOW;
    natsStatus s = natsConnection_JetStream(&js, b->nc, &o);
    if (s != NATS_OK)
        bridge_log(LOG_ERROR, "JetStream: %s", natsStatus_GetText(s));
    return s == NATS_OK ? 0 : -1;
}

void durable_stop(void)
{
    jsCtx_Destroy(js);
    js = NULL;
}

static held *held_at(proxy *p, int i)
{
    return &p->held[(p->held_first + i) % DURABLE_WINDOW];
}

static bool publish(bridge *b, proxy *p, held *h)
{
    size_t len;
    const char *body = mbx_message_body(h->msg, &len);
    char subject[256], pid[24];
    bridge_subject(b, subject, sizeof subject, "d", p->name);
    snprintf(pid, sizeof pid, "%llu", (unsigned long long)p->id);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Mbx-From", mbx_message_from(h->msg));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Mbx-Node", b->cfg.node);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Mbx-Proxy", pid);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = h->id;
    po.MaxWait = DURABLE_PUB_TIMEOUT_MS;
    if (s == NATS_OK)
        s = js_PublishMsgAsync(js, &m, &po);
    natsMsg_Destroy(m); /* NULL when the library took it */
    h->sent_ns = bridge_now_ns();
    h->failed = s != NATS_OK;
    return s == NATS_OK;
}

/* Removes from the mailbox what JetStream has, oldest first. */
static void release_done(bridge *b, proxy *p)
{
    while (p->n_held > 0 && held_at(p, 0)->done) {
        held *h = held_at(p, 0);
        mbx_err err = mbx_ack(p->c, h->msg);
        if (err != MBX_OK)
            bridge_log(LOG_WARN, "%s: acknowledging a forwarded message: %s", p->name,
                       mbx_strerror(err));
        atomic_fetch_add(&b->count.forwarded, 1);
        p->held_first = (p->held_first + 1) % DURABLE_WINDOW;
        p->n_held--;
    }
}

bool durable_proxy_ready(const proxy *p, int64_t now)
{
    return p->n_held < DURABLE_WINDOW && now >= p->retry_ns;
}

void durable_drain(bridge *b, proxy *p, void (*forward)(bridge *, proxy *))
{
    if (p->held == NULL && (p->held = calloc(DURABLE_WINDOW, sizeof *p->held)) == NULL)
        return;
    while (p->n_held < DURABLE_WINDOW && b->stream_ready && atomic_load(&b->connected)) {
        held *h = held_at(p, p->n_held);
        if (h->msg == NULL && (h->msg = mbx_message_new()) == NULL)
            return;
        mbx_err err = p->n_held == 0 ? mbx_peek(p->c, h->msg, 0)
                                     : mbx_peek_after(p->c, held_at(p, p->n_held - 1)->msg, h->msg);
        if (err == MBX_ETIMEDOUT)
            return;
        if (err == MBX_ECORRUPT) {
            if (p->n_held == 0)
                continue; /* mbx_peek removed it */
            return;       /* removed once what comes before it is acknowledged */
        }
        if (err != MBX_OK) {
            bridge_log(LOG_DEBUG, "%s: %s", p->name, mbx_strerror(err));
            return;
        }
        if (mbx_message_kind(h->msg) != MBX_KIND_PLAIN || mbx_message_node(h->msg) != NULL) {
            /* A request (live, through core NATS) or a stray: only at the head, after
             * everything before it is in the stream, so that order holds. */
            if (p->n_held != 0)
                return;
            mbx_message *keep = p->msg;
            p->msg = h->msg;
            h->msg = keep;
            mbx_ack(p->c, p->msg);
            forward(b, p);
            continue;
        }
        snprintf(h->id, sizeof h->id, "%s.%s.%s.%llu.%lld", b->cfg.node, p->name,
                 mbx_message_from(h->msg), (unsigned long long)mbx_message_seq(h->msg),
                 (long long)mbx_message_ts_us(h->msg));
        h->done = false;
        p->n_held++;
        if (!publish(b, p, h)) {
            p->retry_ns = bridge_now_ns() + DURABLE_RETRY_MS * 1000000LL;
            return;
        }
    }
}

void durable_on_pub_ack(bridge *b, natsMsg *m, bool ok)
{
    const char *pid = nats_header(m, "Mbx-Proxy");
    const char *id = nats_header(m, "Nats-Msg-Id");
    if (pid == NULL || id == NULL)
        return;
    uint64_t wanted = strtoull(pid, NULL, 10);
    for (int i = 0; i < b->n_proxies; i++) {
        proxy *p = b->proxies[i];
        if (p->id != wanted || p->c == NULL)
            continue;
        for (int k = 0; k < p->n_held; k++) {
            held *h = held_at(p, k);
            if (h->done || strcmp(h->id, id) != 0)
                continue;
            if (ok) {
                h->done = true;
            } else {
                h->failed = true; /* sent again by durable_tick */
                p->retry_ns = bridge_now_ns() + DURABLE_RETRY_MS * 1000000LL;
            }
            break;
        }
        release_done(b, p);
        return;
    }
}

void durable_tick(bridge *b, int64_t now)
{
    if (!b->stream_ready && atomic_load(&b->connected))
        durable_on_connected(b); /* a cluster that had no meta leader yet, say */
    for (int i = 0; i < b->n_proxies; i++) {
        proxy *p = b->proxies[i];
        if (p->c == NULL || now < p->retry_ns || !b->stream_ready || !atomic_load(&b->connected))
            continue;
        for (int k = 0; k < p->n_held; k++) {
            held *h = held_at(p, k);
            if (h->done)
                continue;
            if (h->failed || now - h->sent_ns > DURABLE_PUB_TIMEOUT_MS * 1000000LL) {
                atomic_fetch_add(&b->count.redelivered, 1);
                if (!publish(b, p, h)) {
                    p->retry_ns = now + DURABLE_RETRY_MS * 1000000LL;
                    break;
                }
            }
        }
    }
}

void durable_forget(proxy *p)
{
    /* Closing a proxy: what it held stays in its (lingering) mailbox, unacknowledged,
     * for the next proxy of the name (or a successor bridge) to send again. */
    if (p->held != NULL)
        for (int i = 0; i < DURABLE_WINDOW; i++)
            mbx_message_free(p->held[i].msg);
    free(p->held);
    p->held = NULL;
    p->n_held = 0;
    p->held_first = 0;
}

uint64_t durable_held(bridge *b)
{
    uint64_t n = 0;
    for (int i = 0; i < b->n_proxies; i++)
        n += (uint64_t)b->proxies[i]->n_held;
    return n;
}

/* ---- receiving ---------------------------------------------------------------------- */

struct durable_sub {
    bridge *b;
    natsSubscription *sub;
    char name[MBX_NAME_MAX + 1];
    bool group;
    _Atomic bool closing;
    char stream[MBX_NAME_MAX + 8];
    char consumer[2 * MBX_NAME_MAX + 16];
    /* When a message last came (or the subscription was made, or last judged): the
     * watchdog's clock (durable_stalled). */
    _Atomic int64_t heard_ns;
};

/* A subscription that delivered nothing this long while its consumer holds messages for
 * it is stalled (seen after a NATS server holding the stream's leader was killed and
 * restarted: the push consumer never delivered again) and is made again: three ack
 * waits, so a redelivery that is merely due never counts. */
#define DURABLE_STALL_NS (3 * DURABLE_ACK_WAIT_NS)

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void on_durable(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    durable_sub *ds = arg;
    bridge *b = ds->b;
    jsMsgMetaData *meta = NULL;
    const char *from = nats_header(m, "Mbx-From"), *node = nats_header(m, "Mbx-Node");
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK || from == NULL ||
        mbx_check_name(from) != MBX_OK || node == NULL || mbx_check_name(node) != MBX_OK ||
        strcmp(node, b->cfg.node) == 0) {
        natsMsg_Term(m, NULL); /* not ours to deliver, ever */
        atomic_fetch_add(&b->count.dropped, 1);
        jsMsgMetaData_Destroy(meta);
        natsMsg_Destroy(m);
        return;
    }
    atomic_store(&ds->heard_ns, bridge_now_ns());
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = 1000;
    so.node = node;
    so.from = from;
    so.once = ds->group ? 0 : meta->Sequence.Stream;
    int64_t progress = bridge_now_ns();
    for (;;) {
        mbx_err err = mbx_send_ex(b->ctl, ds->name, natsMsg_GetData(m),
                                  (size_t)natsMsg_GetDataLength(m), &so);
        if (err == MBX_OK) {
            natsMsg_Ack(m, NULL);
            atomic_fetch_add(&b->count.delivered, 1);
            if (meta->NumDelivered > 1)
                atomic_fetch_add(&b->count.redelivered, 1);
            break;
        }
        if (err == MBX_EINVALJSON || err == MBX_ETOOLARGE || err == MBX_EINVAL) {
            natsMsg_Term(m, NULL); /* it can never go in */
            atomic_fetch_add(&b->count.dropped, 1);
            break;
        }
        /* Full, away, or the namespace restarting: wait, holding up this name only. A
         * name that left for good ends the subscription; JetStream keeps the message. */
        if (atomic_load(&ds->closing) || atomic_load(&b->stopping))
            break;
        if (err != MBX_EFULL)
            sleep_ms(200);
        if (bridge_now_ns() - progress > DURABLE_PROGRESS_MS * 1000000LL) {
            natsMsg_InProgress(m, NULL);
            progress = bridge_now_ns();
            atomic_store(&ds->heard_ns, progress); /* busy delivering is not stalled */
        }
    }
    jsMsgMetaData_Destroy(meta);
    natsMsg_Destroy(m);
}

static void on_durable_done(void *arg)
{
    free(arg);
}

durable_sub *durable_subscribe_name(bridge *b, const char *name, bool group)
{
    if (!b->stream_ready)
        return NULL; /* tried again at the next scan */
    char token[2 * MBX_NAME_MAX + 8], consumer[2 * MBX_NAME_MAX + 16];
    char filter[256], deliver[300], stream[MBX_NAME_MAX + 8];
    js_token(token, sizeof token, name);
    snprintf(consumer, sizeof consumer, "n_%s", token);
    stream_name(b, stream, sizeof stream);
    bridge_subject(b, filter, sizeof filter, "d", name);
    snprintf(deliver, sizeof deliver, "%sdd.%s", b->prefix, token);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = consumer;
    cc.DeliverSubject = deliver;
    cc.DeliverGroup = consumer;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = DURABLE_ACK_WAIT_NS;
    cc.MaxAckPending = DURABLE_MAX_ACK_PENDING;
    cc.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && jerr != JSConsumerNameExistErr && jerr != JSConsumerExistingActiveErr) {
        bridge_log(LOG_WARN, "durable consumer for %s: %s (%d); tried again", name,
                   natsStatus_GetText(s), (int)jerr);
        return NULL;
    }
    durable_sub *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return NULL;
    ds->b = b;
    ds->group = group;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->stream, sizeof ds->stream, "%s", stream);
    snprintf(ds->consumer, sizeof ds->consumer, "%s", consumer);
    atomic_store(&ds->heard_ns, bridge_now_ns());
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = consumer;
    so.Queue = consumer;
    so.ManualAck = true;
    natsSubscription *sub = NULL;
    s = js_Subscribe(&sub, js, filter, on_durable, ds, NULL, &so, &jerr);
    ds->sub = sub;
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, on_durable_done, ds);
    if (s != NATS_OK) {
        bridge_log(LOG_WARN, "durable subscription for %s: %s (%d); tried again", name,
                   natsStatus_GetText(s), (int)jerr);
        natsSubscription_Destroy(sub);
        free(ds);
        return NULL;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    ds->sub = sub;
    bridge_log(LOG_DEBUG, "serving %s from the stream", name);
    return ds;
}

bool durable_stalled(durable_sub *ds, int64_t now)
{
    if (ds == NULL || now - atomic_load(&ds->heard_ns) < DURABLE_STALL_NS)
        return false;
    atomic_store(&ds->heard_ns, now); /* judged at most once per DURABLE_STALL_NS */
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_GetConsumerInfo(&ci, js, ds->stream, ds->consumer, NULL, &jerr) != NATS_OK)
        return false; /* NATS unreachable: a reconnect makes subscriptions again anyway */
    bool waiting = ci->NumPending > 0 || ci->NumAckPending > 0;
    jsConsumerInfo_Destroy(ci);
    return waiting;
}

void durable_unsubscribe(durable_sub *ds)
{
    if (ds == NULL)
        return;
    /* A delivery waiting for the name gives up; the consumer stays (it was made, not by
     * this subscription): what JetStream holds for the name waits for it to come back.
     * ds is freed by the subscription's thread when it ends. */
    natsSubscription *sub = ds->sub;
    atomic_store(&ds->closing, true);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}
