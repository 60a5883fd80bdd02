/*
 * topics.c: publications across hosts, and the subscriptions that carry the bridges' own
 * talk (directories, hello).
 *
 * Out: the control client subscribes locally to the exported patterns (drop policy: a
 * bridge never slows a local publisher; what it misses is counted by the namespace) and
 * publishes each local publication on mbx.<c>.t.<topic> with its sender, this node,
 * its sequence number and, when retained, Mbx-Retain. A publication that carries a node
 * came in through a bridge and is never sent out again: no loops, with any number of
 * bridges (and the connection does not echo).
 *
 * In: mbx.<c>.t.> is republished here with mbx_publish, labelled with the sender and its
 * node, retained when it was. Retained values: each bridge keeps the last retained
 * publication of each local topic and, when another bridge says hello (it started, or
 * came back), sends them to that bridge alone (mbx.<c>.r.<node>.<topic>); the receiver
 * skips a value it applied already (same node and identity), so subscribers do not get
 * it twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

/* A publication's identity across hosts: its sender, sequence number and time (a sender
 * that restarts counts from 1 again; its name or time differs). */
#define PUB_ID_MAX (MBX_NAME_MAX + 48)

typedef struct retained_entry {
    char topic[MBX_TOPIC_MAX + 1];
    char from[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1]; /* "" for ours; else the node a value we applied came from */
    char id[PUB_ID_MAX];         /* the publication's identity (pub_id) */
    char *body;                  /* ours only */
    size_t len;
} retained_entry;

static void pub_id(char *out, const char *from, uint64_t seq, int64_t ts_us)
{
    snprintf(out, PUB_ID_MAX, "%s/%llu/%lld", from, (unsigned long long)seq, (long long)ts_us);
}

static retained_entry *find_retained(bridge *b, const char *topic)
{
    for (int i = 0; i < b->n_retained; i++)
        if (strcmp(b->retained[i].topic, topic) == 0)
            return &b->retained[i];
    return NULL;
}

static retained_entry *add_retained(bridge *b, const char *topic)
{
    retained_entry *e = find_retained(b, topic);
    if (e != NULL)
        return e;
    if (b->n_retained == b->cap_retained) {
        int cap = b->cap_retained != 0 ? b->cap_retained * 2 : 32;
        retained_entry *grown = realloc(b->retained, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        b->retained = grown;
        b->cap_retained = cap;
    }
    e = &b->retained[b->n_retained++];
    memset(e, 0, sizeof *e);
    snprintf(e->topic, sizeof e->topic, "%s", topic);
    return e;
}

static void publish_topic(bridge *b, const char *subject, const char *from, const char *id,
                          const char *body, size_t len, bool retained)
{
    const char *headers[] = {"Mbx-From", from, "Mbx-Node",   b->cfg.node,
                             "Mbx-Id",   id,   "Mbx-Retain", retained ? "1" : NULL,
                             NULL};
    if (nats_publish(b, subject, NULL, body, len, headers) == NATS_OK)
        atomic_fetch_add(&b->count.forwarded, 1);
    else
        atomic_fetch_add(&b->count.dropped, 1);
}

void topics_on_local(bridge *b, mbx_message *m)
{
    const char *topic = mbx_message_topic(m);
    if (strncmp(topic, "$mbx.client.", 12) == 0) {
        b->local_dirty = true; /* someone came or went: the directory looks again */
        return;
    }
    if (mbx_message_node(m) != NULL || !bridge_topic_exported(&b->cfg, topic))
        return;
    size_t len;
    const char *body = mbx_message_body(m, &len);
    char id[PUB_ID_MAX];
    pub_id(id, mbx_message_from(m), mbx_message_seq(m), mbx_message_ts_us(m));
    if (mbx_message_retained(m)) {
        pthread_mutex_lock(&b->mu);
        retained_entry *e = add_retained(b, topic);
        char *copy = e != NULL ? malloc(len + 1) : NULL;
        if (copy != NULL) {
            memcpy(copy, body, len + 1);
            free(e->body);
            e->body = copy;
            e->len = len;
            e->node[0] = '\0';
            snprintf(e->id, sizeof e->id, "%s", id);
            snprintf(e->from, sizeof e->from, "%s", mbx_message_from(m));
        }
        pthread_mutex_unlock(&b->mu);
    }
    if (!atomic_load(&b->connected)) {
        atomic_fetch_add(&b->count.dropped, 1); /* at most once; retained ones go later */
        return;
    }
    char subject[MBX_TOPIC_MAX + 64];
    bridge_subject(b, subject, sizeof subject, "t", topic);
    publish_topic(b, subject, mbx_message_from(m), id, body, len, mbx_message_retained(m));
}

/* To the bridge of `node` alone: our retained values (after its hello). */
static void send_retained_to(bridge *b, const char *node)
{
    for (int i = 0; i < b->n_retained; i++) {
        retained_entry *e = &b->retained[i];
        if (e->body == NULL)
            continue; /* a value from elsewhere: its own node sends it */
        char subject[MBX_TOPIC_MAX + 160];
        snprintf(subject, sizeof subject, "%sr.%s.%s", b->prefix, node, e->topic);
        publish_topic(b, subject, e->from, e->id, e->body, e->len, true);
    }
}

/* A publication from another node, on `topic`. */
static void republish(bridge *b, natsMsg *m, const char *topic)
{
    const char *from = nats_header(m, "Mbx-From"), *node = nats_header(m, "Mbx-Node");
    const char *id = nats_header(m, "Mbx-Id");
    bool retained = nats_header(m, "Mbx-Retain") != NULL;
    if (from == NULL || mbx_check_name(from) != MBX_OK || node == NULL ||
        mbx_check_name(node) != MBX_OK || strcmp(node, b->cfg.node) == 0 ||
        mbx_check_topic(topic) != MBX_OK) {
        atomic_fetch_add(&b->count.dropped, 1);
        return;
    }
    if (id == NULL)
        id = "";
    if (retained) {
        pthread_mutex_lock(&b->mu);
        retained_entry *e = add_retained(b, topic);
        bool seen = e != NULL && e->body == NULL && id[0] != '\0' && strcmp(e->node, node) == 0 &&
                    strcmp(e->id, id) == 0;
        if (e != NULL && !seen) {
            free(e->body); /* a value of another node replaces ours, as it would here */
            e->body = NULL;
            snprintf(e->node, sizeof e->node, "%s", node);
            snprintf(e->id, sizeof e->id, "%s", id);
        }
        pthread_mutex_unlock(&b->mu);
        if (seen)
            return; /* applied already: its subscribers have it */
    }
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.node = node;
    po.from = from;
    po.retain = retained;
    po.timeout_ms = 1000;
    mbx_err err =
        mbx_publish(b->ctl, topic, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &po);
    if (err == MBX_OK)
        atomic_fetch_add(&b->count.delivered, 1);
    else
        atomic_fetch_add(&b->count.dropped, 1);
}

static void on_topic(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    bridge *b = arg;
    const char *subject = natsMsg_GetSubject(m);
    size_t skip = strlen(b->prefix) + 2; /* "t." */
    if (strlen(subject) > skip)
        republish(b, m, subject + skip);
    msg_release(b, m);
}

static void on_retained(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    bridge *b = arg;
    const char *subject = natsMsg_GetSubject(m);
    size_t skip = strlen(b->prefix) + 3 + strlen(b->cfg.node); /* "r.<node>." */
    if (strlen(subject) > skip)
        republish(b, m, subject + skip);
    msg_release(b, m);
}

static void on_directory(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    bridge *b = arg;
    events_post(b, EV_DIRECTORY, atomic_load(&b->conn_gen), 0, m);
}

static void on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    events_post(arg, EV_HELLO, 0, 0, m);
}

/* Main thread: another bridge said hello (its node in the body). */
void topics_on_hello(bridge *b, natsMsg *m)
{
    char node[MBX_NAME_MAX + 1];
    int len = natsMsg_GetDataLength(m);
    if (len <= 0 || len > MBX_NAME_MAX)
        return;
    memcpy(node, natsMsg_GetData(m), (size_t)len);
    node[len] = '\0';
    if (mbx_check_name(node) != MBX_OK || strchr(node, '.') != NULL ||
        strcmp(node, b->cfg.node) == 0)
        return;
    directory_send_snapshot(b);
    pthread_mutex_lock(&b->mu);
    send_retained_to(b, node);
    pthread_mutex_unlock(&b->mu);
}

void topics_say_hello(bridge *b)
{
    char subject[128];
    bridge_subject(b, subject, sizeof subject, "hello", "all");
    nats_publish(b, subject, NULL, b->cfg.node, strlen(b->cfg.node), NULL);
}

int topics_start_local(bridge *b)
{
    /* Locally: the exported patterns, and presence for the directory. */
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_DROP;
    for (int i = 0; i < b->cfg.n_topics; i++) {
        mbx_err err = mbx_subscribe(b->ctl, b->cfg.topics[i], &so);
        if (err != MBX_OK) {
            bridge_log(LOG_ERROR, "cannot subscribe to %s: %s", b->cfg.topics[i],
                       mbx_strerror(err));
            return -1;
        }
    }
    mbx_err err = mbx_subscribe(b->ctl, "$mbx.client.*", &so);
    if (err != MBX_OK) {
        bridge_log(LOG_ERROR, "cannot subscribe to presence: %s", mbx_strerror(err));
        return -1;
    }
    return 0;
}

int topics_start_nats(bridge *b)
{
    /* On NATS: publications, retained values sent to us, directories, hellos. */
    struct {
        const char *fmt;
        natsMsgHandler cb;
    } subs[] = {{"%st.>", on_topic},
                {"%sr.%s.>", on_retained},
                {"%sdir.*", on_directory},
                {"%shello.all", on_hello}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char subject[256];
        snprintf(subject, sizeof subject, subs[i].fmt, b->prefix, b->cfg.node);
        if (nats_subscribe_for_run(b, subject, subs[i].cb) != 0)
            return -1;
    }
    return 0;
}
