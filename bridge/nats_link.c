/*
 * nats_link.c: the one connection to NATS. It is made in the background (a bridge starts
 * and serves local state before any server answers), reconnects forever with backoff
 * (100 ms doubling to 5 s, with jitter), and logs one line per change of state. Writes go
 * out at once (send-asap): a request crossing the bridge must not wait for cnats' flusher
 * (about a millisecond on Linux), and the bridge's own batching (it drains a mailbox in
 * one go) keeps system calls few under load. No echo: the bridge never hears its own
 * publications back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_SERVERS 16

static void log_server(natsConnection *nc, const char *what, log_level level)
{
    char url[256] = "";
    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK || url[0] == '\0')
        snprintf(url, sizeof url, "(unknown server)");
    bridge_log(level, "%s %s", what, url);
}

static void on_connected(natsConnection *nc, void *arg)
{
    bridge *b = arg;
    atomic_fetch_add(&b->conn_gen, 1); /* first: see bridge.h */
    atomic_store(&b->connected, true);
    log_server(nc, "connected to NATS at", LOG_INFO);
    events_post(b, EV_CONNECTED, 0, 0, NULL);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    bridge *b = arg;
    (void)nc;
    /* cnats calls this also after each failed attempt: log only the change. */
    if (atomic_exchange(&b->connected, false) && !atomic_load(&b->stopping)) {
        bridge_log(LOG_WARN, "lost NATS; reconnecting (local traffic goes on)");
        events_post(b, EV_DISCONNECTED, 0, 0, NULL);
    }
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
    (void)nc;
    (void)arg;
    if (err == NATS_SLOW_CONSUMER) {
        /* The subscription's pending limit is far above any window: this means a
         * sender that ignores windows. What was dropped is counted by cnats. */
        bridge_log(LOG_WARN, "NATS subscription %s: slow consumer, messages dropped",
                   sub != NULL ? natsSubscription_GetSubject(sub) : "?");
        return;
    }
    bridge_log(LOG_WARN, "NATS: %s", natsStatus_GetText(err));
}

static int64_t backoff(natsConnection *nc, int attempts, void *arg)
{
    (void)nc;
    (void)arg;
    int64_t ms = BACKOFF_MIN_MS;
    for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    return ms / 2 + rand() % (ms / 2 + 1); /* jitter: hosts that lost one server spread */
}

static natsStatus set_servers(natsOptions *o, const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL)
        return NATS_NO_MEMORY;
    const char *urls[MAX_SERVERS];
    int n = 0;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p != NULL && n < MAX_SERVERS;
         p = strtok_r(NULL, ",", &save))
        urls[n++] = p;
    natsStatus s = n > 0 ? natsOptions_SetServers(o, urls, n) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

static natsStatus set_auth(natsOptions *o, const bridge_config *cfg)
{
    natsStatus s = NATS_OK;
    const char *user = getenv("NATS_USER"), *password = getenv("NATS_PASSWORD");
    const char *token = getenv("NATS_TOKEN");
    if (s == NATS_OK && cfg->creds != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->creds, NULL);
    if (s == NATS_OK && user != NULL && user[0] != '\0')
        s = natsOptions_SetUserInfo(o, user, password != NULL ? password : "");
    if (s == NATS_OK && token != NULL && token[0] != '\0')
        s = natsOptions_SetToken(o, token);
    if (s == NATS_OK && (cfg->tls_ca != NULL || cfg->tls_cert != NULL))
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && cfg->tls_ca != NULL)
        s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca);
    if (s == NATS_OK && cfg->tls_cert != NULL)
        s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert, cfg->tls_key);
    return s;
}

natsStatus nats_link_connect(bridge *b)
{
    natsOptions *o = NULL;
    char name[160];
    snprintf(name, sizeof name, "mailbox-bridge %s/%s", b->cfg.cluster, b->cfg.node);
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, b->cfg.nats);
    if (s == NATS_OK)
        s = set_auth(o, &b->cfg);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoEcho(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, backoff, b);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 5000); /* a dead server is noticed in ~10 s */
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_connected, b);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, b);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, b);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&b->nc, o);
        if (s == NATS_NOT_YET_CONNECTED) {
            bridge_log(LOG_WARN, "no NATS server answers at %s yet; trying on", b->cfg.nats);
            s = NATS_OK;
        } else if (s == NATS_OK) {
            on_connected(b->nc, b); /* the callback is for connecting later */
        }
    }
    if (s != NATS_OK)
        bridge_log(LOG_ERROR, "NATS: %s (%s)", natsStatus_GetText(s), nats_GetLastError(NULL));
    natsOptions_Destroy(o);
    return s;
}

natsStatus nats_publish(bridge *b, const char *subject, const char *reply, const char *body,
                        size_t len, const char *const *headers)
{
    if ((headers == NULL || headers[0] == NULL) && reply == NULL)
        return natsConnection_Publish(b->nc, subject, body, (int)len);
    if (headers == NULL || headers[0] == NULL)
        return natsConnection_PublishRequest(b->nc, subject, reply, body, (int)len);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, reply, body, (int)len);
    for (int i = 0; s == NATS_OK && headers[i] != NULL; i += 2)
        if (headers[i + 1] != NULL)
            s = natsMsgHeader_Set(m, headers[i], headers[i + 1]);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(b->nc, m);
    msg_release(b, m);
    return s;
}

int nats_subscribe_for_run(bridge *b, const char *subject, natsMsgHandler cb)
{
    natsSubscription *sub = NULL;
    natsStatus s = b->n_subs < (int)(sizeof b->subs / sizeof b->subs[0])
                       ? natsConnection_Subscribe(&sub, b->nc, subject, cb, b)
                       : NATS_INSUFFICIENT_BUFFER;
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s != NATS_OK) {
        bridge_log(LOG_ERROR, "NATS subscribe %s: %s", subject, natsStatus_GetText(s));
        natsSubscription_Destroy(sub);
        return -1;
    }
    b->subs[b->n_subs++] = sub;
    return 0;
}

bool nats_link_close(bridge *b)
{
    inbound_flush_acks(b);
    natsConnection_FlushTimeout(b->nc, 1000);
    msg_release_close(b);
    for (int i = 0; i < b->n_subs; i++)
        natsSubscription_Destroy(b->subs[i]);
    b->n_subs = 0;
    natsConnection_Close(b->nc);
    natsConnection_Destroy(b->nc);
    /* Every cnats thread has ended (a delivery may have been sending with the control
     * client) before the caller closes the control client; b->nc stays as it was until
     * then (those threads read it). */
    bool ended = nats_CloseAndWait(5000) == NATS_OK;
    if (!ended)
        bridge_log(LOG_WARN, "NATS library: not every thread ended within 5 s");
    b->nc = NULL;
    return ended;
}

const char *nats_header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
        return NULL;
    return v;
}

void bridge_subject(const bridge *b, char *out, size_t cap, const char *kind, const char *rest)
{
    snprintf(out, cap, "%s%s.%s", b->prefix, kind, rest);
}
