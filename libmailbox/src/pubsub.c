/*
 * pubsub.c: topics: mbx_subscribe(), mbx_unsubscribe(), mbx_publish(). The subscription
 * table and the retained messages live in the namespace's segment (subs.c); a publisher
 * copies each publication straight into its subscribers' mailboxes, as a send does. The
 * broker takes no part, except to clear the entries of clients that are gone and to
 * publish its own $mbx.client.* events.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "monitor.h"
#include "ring.h"
#include "subs.h"
#include "topics.h"

/* Bodies up to this size are compacted on the stack; larger ones on the heap. */
#define PUBSUB_STACK_MAX 2048

static void lock_patterns(mbx_client *c)
{
    while (atomic_flag_test_and_set_explicit(&c->patterns_lock, memory_order_acquire))
        ;
}

static void unlock_patterns(mbx_client *c)
{
    atomic_flag_clear_explicit(&c->patterns_lock, memory_order_release);
}

/* Index of pattern in c->patterns, or -1 (patterns_lock held). */
static int find_pattern(const mbx_client *c, const char *pattern, size_t len)
{
    for (uint32_t i = 0; i < c->npatterns; i++)
        if (c->patterns[i].len == len && memcmp(c->patterns[i].text, pattern, len) == 0)
            return (int)i;
    return -1;
}

static void forget_pattern(mbx_client *c, const char *pattern, size_t len)
{
    lock_patterns(c);
    int i = find_pattern(c, pattern, len);
    if (i >= 0)
        c->patterns[i] = c->patterns[--c->npatterns];
    unlock_patterns(c);
}

static bool pubsub_wanted(mbx_client *c, const char *topic)
{
    size_t tlen = strlen(topic);
    bool wanted = false;
    lock_patterns(c);
    for (uint32_t i = 0; i < c->npatterns && !wanted; i++)
        wanted = topics_match(c->patterns[i].text, c->patterns[i].len, topic, tlen);
    unlock_patterns(c);
    return wanted;
}

bool pubsub_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep)
{
    (void)body;
    (void)keep;
    /* Any member can write the subscription table, and we may have unsubscribed since. */
    return pubsub_wanted(c, in->topic);
}

void pubsub_close(mbx_client *c)
{
    subs_scratch_free(&c->pub_scratch);
}

void mbx_subscribe_options_init(mbx_subscribe_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->policy = MBX_SUB_DROP;
}

void mbx_publish_options_init(mbx_publish_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
}

/* A retained message, appended to the new subscriber's own mailbox (held: see
 * mbx_subscribe) as its publisher sent it (a full mailbox misses it, counted as any
 * dropped publication). */
typedef struct retained_delivery {
    mbx_client *c;
    ring_batch *batch;
    uint32_t delivered;
} retained_delivery;

static void deliver_retained(const subs_retained *r, void *arg)
{
    retained_delivery *d = arg;
    mbx_client *c = d->c;
    ring_outgoing msg = {
        .body = r->body,
        .len = (uint32_t)r->len,
        .from_slot = UINT32_MAX, /* the publisher may be long gone: no reply */
        .from_generation = 0,
        .from_name = r->from,
        .node = r->node[0] != '\0' ? r->node : NULL,
        .ts_us = r->ts_us,
        .sender_cpu = -1,
        .seq = r->seq,
        .kind = CELL_TOPIC,
        .topic = r->topic,
        .topic_len = (uint32_t)r->topic_len,
        .retained = true,
    };
    mbx_err err = ring_append(&c->view, d->batch, &msg);
    if (err == MBX_OK)
        d->delivered++;
    else if (err == MBX_EFULL)
        subs_count_drop(&c->view, c->slot);
}

static int lock_timeout(const mbx_client *c)
{
    return c->timeout_ms < 0 ? 5000 : c->timeout_ms;
}

mbx_err mbx_subscribe(mbx_client *c, const char *pattern, const mbx_subscribe_options *opts)
{
    mbx_subscribe_options defaults;
    if (opts == NULL) {
        mbx_subscribe_options_init(&defaults);
        opts = &defaults;
    }
    /* A monitor takes copies only: what it subscribed to would be dropped unseen. */
    if (c == NULL || pattern == NULL || c->send_only || c->monitor || !client_ours(c))
        return MBX_EINVAL;
    size_t len = strnlen(pattern, MBX_TOPIC_MAX + 1);
    if (!topics_valid_pattern(pattern, len) ||
        (opts->policy != MBX_SUB_DROP && opts->policy != MBX_SUB_BLOCK))
        return MBX_EINVAL;
    char *buf = malloc((size_t)c->view.max_message + 1);
    if (buf == NULL)
        return MBX_ENOMEM;
    /* Our own mailbox first, then the namespace's topics lock: the retained messages go in
     * while we hold both. Nothing waits while holding a lock another may need: the topics
     * lock is only tried while we hold our mailbox's (a sender stopped inside our mailbox
     * lock delays only us), and when it is busy we let our mailbox go, wait for the topics
     * lock to come free, and start again. */
    int64_t deadline = plat_deadline(lock_timeout(c));
    ring_batch batch;
    plat_lock_token tok;
    mbx_err err;
    for (;;) {
        err = ring_hold(&c->view, c->slot, c->generation, deadline, &batch);
        if (err == MBX_ESHUTDOWN)
            err = client_confirm_shutdown(c);
        if (err != MBX_OK)
            break;
        err = subs_lock(&c->view, 0, &tok);
        if (err == MBX_OK)
            break;
        ring_release(&c->view, &batch);
        int64_t left_ns = deadline - plat_now_ns();
        if (err != MBX_ETIMEDOUT || left_ns <= 0)
            break;
        err = subs_lock(&c->view, (int)(left_ns / 1000000), &tok); /* until it is free */
        if (err != MBX_OK)
            break;
        subs_unlock(&c->view, &tok);
    }
    if (err != MBX_OK) {
        free(buf);
        return err;
    }
    /* Ours first: what the table then sends us (retained messages included) is wanted. */
    bool added = false;
    lock_patterns(c);
    if (find_pattern(c, pattern, len) < 0) {
        if (c->npatterns < MBX_SUBSCRIPTIONS_PER_CLIENT) {
            client_pattern *p = &c->patterns[c->npatterns++];
            memcpy(p->text, pattern, len);
            p->text[len] = '\0';
            p->len = (uint32_t)len;
            added = true;
        } else {
            err = MBX_ENOSLOTS;
        }
    }
    unlock_patterns(c);
    bool was_there = !added && err == MBX_OK;
    /* The retained messages go in before the subscription is in the table, so that no
     * live publication can overtake them: while we hold the lock none is retained. */
    if (err == MBX_OK && added) {
        retained_delivery d = {.c = c, .batch = &batch};
        subs_each_retained(&c->view, pattern, len, buf, deliver_retained, &d);
    }
    if (err == MBX_OK)
        err = subs_add(&c->view, c->slot, c->generation, pattern, len, (uint32_t)opts->policy);
    subs_unlock(&c->view, &tok);
    ring_release(&c->view, &batch);
    if (err != MBX_OK && !was_there)
        forget_pattern(c, pattern, len);
    free(buf);
    return err;
}

mbx_err mbx_unsubscribe(mbx_client *c, const char *pattern)
{
    if (c == NULL || pattern == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    size_t len = strnlen(pattern, MBX_TOPIC_MAX + 1);
    if (!topics_valid_pattern(pattern, len))
        return MBX_EINVAL;
    lock_patterns(c);
    bool ours = find_pattern(c, pattern, len) >= 0;
    unlock_patterns(c);
    if (!ours)
        return MBX_EINVAL;
    /* Forgotten first: from here on nothing only this pattern selects is handed out. */
    forget_pattern(c, pattern, len);
    plat_lock_token tok;
    mbx_err err = subs_lock(&c->view, lock_timeout(c), &tok);
    if (err != MBX_OK)
        return err; /* the entry stays until we leave; what it brings is dropped */
    (void)subs_remove(&c->view, c->slot, c->generation, pattern, len);
    subs_unlock(&c->view, &tok);
    return MBX_OK;
}

/* The subscribers of topic: from the client's cache while the table has not changed,
 * else matched afresh (into the cache, or into own when another thread holds it). */
typedef struct match_set {
    const subs_target *targets;
    uint32_t n;
    bool cached;      /* pub_lock held */
    subs_scratch own; /* matched afresh: freed by match_done */
} match_set;

static mbx_err match(mbx_client *c, const char *topic, size_t tlen, match_set *m)
{
    memset(m, 0, sizeof *m);
    const seg_view *v = &c->view;
    uint32_t version =
        atomic_load_explicit(&segment_header(v)->topics_version, memory_order_acquire);
    if (!atomic_flag_test_and_set_explicit(&c->pub_lock, memory_order_acquire)) {
        mbx_err err = c->pub_scratch.targets != NULL
                          ? MBX_OK
                          : subs_scratch_init(&c->pub_scratch, c->view.slots);
        if (err != MBX_OK) {
            atomic_flag_clear_explicit(&c->pub_lock, memory_order_release);
            return err;
        }
        if (!c->pub_valid || c->pub_version != version || c->pub_topic_len != tlen ||
            memcmp(c->pub_topic, topic, tlen) != 0) {
            c->pub_n = subs_match(v, topic, tlen, c->pub_scratch.targets, c->pub_scratch.where);
            c->pub_version = version;
            memcpy(c->pub_topic, topic, tlen);
            c->pub_topic_len = (uint32_t)tlen;
            c->pub_valid = true;
        }
        m->targets = c->pub_scratch.targets;
        m->n = c->pub_n;
        m->cached = true;
        return MBX_OK;
    }
    mbx_err err = subs_scratch_init(&m->own, v->slots);
    if (err != MBX_OK)
        return err;
    m->n = subs_match(v, topic, tlen, m->own.targets, m->own.where);
    m->targets = m->own.targets;
    return MBX_OK;
}

static void match_done(mbx_client *c, match_set *m)
{
    if (m->cached)
        atomic_flag_clear_explicit(&c->pub_lock, memory_order_release);
    subs_scratch_free(&m->own);
}

/* One copy to one subscriber. A subscriber gone meanwhile is no error. */
static mbx_err deliver(mbx_client *c, const subs_target *t, const ring_outgoing *msg,
                       int timeout_ms, mbx_publish_result *res)
{
    mbx_err err = ring_put(&c->view, t->slot, t->generation, msg, timeout_ms);
    if (err == MBX_OK) {
        res->delivered++;
        return MBX_OK;
    }
    if (err == MBX_ENORECIPIENT || err == MBX_EGONE)
        return MBX_OK;
    if ((err == MBX_EFULL || err == MBX_ETIMEDOUT) && t->policy == MBX_SUB_DROP) {
        subs_count_drop(&c->view, t->slot);
        res->dropped++;
        return MBX_OK;
    }
    if (err == MBX_EFULL || err == MBX_ETIMEDOUT) {
        if (res->full[0] == '\0' && !segment_read_entry(&c->view, t->slot, res->full, NULL, NULL))
            res->full[0] = '\0';
        return MBX_EFULL;
    }
    return err;
}

mbx_err mbx_publish(mbx_client *c, const char *topic, const char *json, size_t len,
                    const mbx_publish_options *opts)
{
    mbx_publish_options defaults;
    if (opts == NULL) {
        mbx_publish_options_init(&defaults);
        opts = &defaults;
    }
    mbx_publish_result scratch;
    mbx_publish_result *res = opts->result != NULL ? opts->result : &scratch;
    memset(res, 0, sizeof *res);
    if (c == NULL || topic == NULL || json == NULL || !client_ours(c) ||
        !messaging_labels_valid(opts->node, opts->from))
        return MBX_EINVAL;
    size_t tlen = strnlen(topic, MBX_TOPIC_MAX + 1);
    if (!topics_valid_topic(topic, tlen, false))
        return MBX_EINVAL;
    char stack[PUBSUB_STACK_MAX];
    char *heap = NULL;
    const char *body;
    size_t body_len;
    mbx_err err = messaging_prepare(c, json, len, opts->trusted != 0, stack, sizeof stack, &heap,
                                    &body, &body_len);
    if (err == MBX_OK && tlen > c->view.max_message - body_len)
        err = MBX_ETOOLARGE;
    if (err != MBX_OK) {
        free(heap);
        return err;
    }
    int64_t deadline = plat_deadline(opts->timeout_ms);
    ring_outgoing msg = {
        .body = body,
        .len = (uint32_t)body_len,
        .from_slot = c->slot,
        .from_generation = c->generation,
        .from_name = opts->from != NULL ? opts->from : c->name,
        .node = opts->node,
        .ts_us = plat_wall_us(),
        .sender_cpu = plat_current_cpu(),
        .seq = atomic_fetch_add_explicit(&c->next_seq, 1, memory_order_relaxed) + 1,
        .kind = CELL_TOPIC,
        .topic = topic,
        .topic_len = (uint32_t)tlen,
        .retained = opts->retain != 0,
    };
    if (opts->retain) {
        /* Stored before it is delivered: a subscription made meanwhile either is in the
         * table when we match (and gets it from us) or finds it stored. */
        plat_lock_token tok;
        err = subs_lock(&c->view, opts->timeout_ms, &tok);
        if (err == MBX_OK) {
            subs_retain(&c->view, topic, tlen, body, body_len, msg.from_name, opts->node, msg.seq,
                        msg.ts_us);
            subs_unlock(&c->view, &tok);
        }
    }
    match_set m;
    if (err == MBX_OK)
        err = match(c, topic, tlen, &m);
    if (err != MBX_OK) {
        free(heap);
        return err;
    }
    /* Those who never wait first: a full block-policy mailbox cannot delay them. Every
     * subscriber gets its copy whatever another one's fails with; the first failure
     * other than a full mailbox is reported, else MBX_EFULL. A signal that ends one wait
     * (option `signals`) ends the waiting: the others get their copy only if they have
     * room at once. */
    mbx_err first = MBX_OK;
    bool full = false, signalled = false;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < m.n; i++) {
            if (m.targets[i].policy != (pass == 0 ? MBX_SUB_DROP : MBX_SUB_BLOCK))
                continue;
            int wait_ms = 0;
            if (signalled) {
                wait_ms = 0;
            } else if (pass == 1 && opts->timeout_ms < 0) {
                wait_ms = -1;
            } else if (pass == 1) {
                int64_t left_ns = deadline - plat_now_ns();
                wait_ms = left_ns <= 0 ? 0 : (int)(left_ns / 1000000);
            }
            mbx_err e = deliver(c, &m.targets[i], &msg, wait_ms, res);
            full |= e == MBX_EFULL;
            signalled |= e == MBX_ESIGNAL;
            if (e != MBX_OK && e != MBX_EFULL && first == MBX_OK)
                first = e;
        }
    }
    if (first == MBX_OK && full)
        first = MBX_EFULL;
    if (monitor_attached(c))
        monitor_copy(c, &msg, ""); /* once, whoever subscribes */
    match_done(c, &m);
    free(heap);
    if (first == MBX_ESHUTDOWN)
        first = client_confirm_shutdown(c);
    client_count_sent(c);
    return first;
}

/* A publication as its subscriber or a monitor got it. */
static bool publication(const mbx_message *msg)
{
    return msg != NULL &&
           (msg->kind == CELL_TOPIC || (msg->kind == CELL_MONITOR && msg->mirrored == CELL_TOPIC));
}

const char *mbx_message_topic(const mbx_message *msg)
{
    return publication(msg) ? msg->topic : NULL;
}

uint64_t mbx_message_missed(const mbx_message *msg)
{
    return msg != NULL && (msg->kind == CELL_TOPIC || msg->kind == CELL_MONITOR) ? msg->missed : 0;
}

int mbx_message_retained(const mbx_message *msg)
{
    return publication(msg) && msg->retained;
}
