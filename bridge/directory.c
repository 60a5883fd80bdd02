/*
 * directory.c: which names live where (main thread only).
 *
 * Local side: the names this host exports, read from the namespace (mbx_inspect) whenever
 * a client comes or goes ($mbx.client.up/down reach the control client) and every few
 * seconds besides; each is served on NATS by a queue subscription (inbound.c), and every
 * change is announced on mbx.<c>.dir.<node> as {"node","instance","up":[...],"down":[...]}.
 * The whole list goes out at start, when a bridge says hello, and every
 * BRIDGE_SNAPSHOT_MS as {"node","instance","names":[{"name","group"}]}, so that a lost
 * event is repaired within one period.
 *
 * Remote side: the names each other node serves. Every remote name gets a proxy here
 * (outbound.c), a local client standing for it; a name this host already serves is a
 * conflict (the proxy is refused, MBX_ENAMETAKEN): both stay local, logged once and
 * counted. A node silent for BRIDGE_NODE_EXPIRY_MS, or saying bye, loses its names.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bridge.h"
#include "durable.h"
#include "outbound.h"

#define SCAN_EVERY_MS 2000      /* a safety net: presence events trigger scans at once */
#define RECONCILE_EVERY_MS 1000 /* retries names refused for a conflict */

struct export_name {
    char name[MBX_NAME_MAX + 1];
    bool group;
    natsSubscription *sub; /* requests (and plain messages in core mode) */
    durable_sub *dsub;     /* durable: plain messages, from the stream */
};

typedef struct remote_name {
    char name[MBX_NAME_MAX + 1];
    bool group;
} remote_name;

struct remote_node {
    char node[MBX_NAME_MAX + 1];
    uint64_t instance;
    int64_t heard_ns;
    /* The connection to NATS (bridge.conn_gen) it was last heard from on: on the present
     * one, its subscriptions are on the servers again (it sends its directory once it is
     * connected), so what we send its names now is not lost for want of a listener. */
    uint64_t heard_gen;
    remote_name *names;
    int n, cap;
};

/* ---- local names ------------------------------------------------------------------- */

typedef struct scan {
    const bridge *b;
    export_name *found;
    int n, cap;
    bool failed;
} scan;

static int visit_local(const mbx_client_info *info, void *arg)
{
    scan *s = arg;
    if (info->remote || strcmp(info->name, s->b->self) == 0 ||
        !bridge_name_bridged(&s->b->cfg, info->name))
        return 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->found[i].name, info->name) == 0)
            return 0; /* another member of the same group */
    if (s->n == s->cap) {
        int cap = s->cap != 0 ? s->cap * 2 : 64;
        export_name *grown = realloc(s->found, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            s->failed = true;
            return 1;
        }
        s->found = grown;
        s->cap = cap;
    }
    export_name *e = &s->found[s->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, info->name, sizeof e->name);
    e->group = info->group != 0;
    return 0;
}

static cJSON *name_json(const char *name, bool group)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "group", group);
    return o;
}

static cJSON *dir_message(const bridge *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "node", b->cfg.node);
    char inst[24];
    snprintf(inst, sizeof inst, "%llu", (unsigned long long)b->instance);
    cJSON_AddStringToObject(o, "instance", inst);
    cJSON_AddBoolToObject(o, "durable", b->cfg.durable);
    return o;
}

static void send_dir(bridge *b, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL || !atomic_load(&b->connected)) {
        free(text);
        return;
    }
    char subject[256];
    bridge_subject(b, subject, sizeof subject, "dir", b->cfg.node);
    if (nats_publish(b, subject, NULL, text, strlen(text), NULL) != NATS_OK)
        bridge_log(LOG_DEBUG, "directory not sent: %s", nats_GetLastError(NULL));
    free(text);
}

void directory_send_snapshot(bridge *b)
{
    cJSON *o = dir_message(b);
    cJSON *names = cJSON_AddArrayToObject(o, "names");
    for (int i = 0; i < b->n_exports; i++)
        cJSON_AddItemToArray(names, name_json(b->exports[i].name, b->exports[i].group));
    send_dir(b, o);
}

static void scan_local(bridge *b)
{
    scan s = {.b = b};
    mbx_namespace_info info;
    mbx_err err = mbx_inspect(b->cfg.ns, &info, visit_local, &s);
    if (err != MBX_OK || s.failed) {
        /* A broker restarting: the names stay as they were until the next scan. */
        bridge_log(LOG_DEBUG, "scan: %s", mbx_strerror(err));
        free(s.found);
        return;
    }
    cJSON *o = dir_message(b);
    cJSON *up = cJSON_AddArrayToObject(o, "up");
    cJSON *down = cJSON_AddArrayToObject(o, "down");
    bool changed = false;
    /* Gone (or changed from single to group, or back): unsubscribe. */
    for (int i = 0; i < b->n_exports;) {
        int j = 0;
        while (j < s.n && strcmp(s.found[j].name, b->exports[i].name) != 0)
            j++;
        if (j < s.n && s.found[j].group == b->exports[i].group) {
            s.found[j].sub = b->exports[i].sub; /* kept */
            s.found[j].dsub = b->exports[i].dsub;
            if (b->cfg.durable && s.found[j].dsub == NULL) /* the stream was not there */
                s.found[j].dsub = durable_subscribe_name(b, s.found[j].name, s.found[j].group);
            else if (b->cfg.durable && durable_stalled(s.found[j].dsub, bridge_now_ns())) {
                bridge_log(LOG_WARN, "durable subscription for %s stalled; made again",
                           s.found[j].name);
                durable_unsubscribe(s.found[j].dsub);
                s.found[j].dsub = durable_subscribe_name(b, s.found[j].name, s.found[j].group);
            }
            i++;
            continue;
        }
        inbound_unsubscribe_name(b, b->exports[i].sub);
        durable_unsubscribe(b->exports[i].dsub);
        cJSON_AddItemToArray(down, cJSON_CreateString(b->exports[i].name));
        changed = true;
        b->exports[i] = b->exports[--b->n_exports];
    }
    /* New: serve them. */
    for (int j = 0; j < s.n; j++) {
        int i = 0;
        while (i < b->n_exports && strcmp(b->exports[i].name, s.found[j].name) != 0)
            i++;
        if (i < b->n_exports)
            continue;
        s.found[j].sub = inbound_subscribe_name(b, s.found[j].name);
        if (b->cfg.durable)
            s.found[j].dsub = durable_subscribe_name(b, s.found[j].name, s.found[j].group);
        cJSON_AddItemToArray(up, name_json(s.found[j].name, s.found[j].group));
        changed = true;
    }
    free(b->exports);
    b->exports = s.found;
    b->n_exports = s.n;
    b->cap_exports = s.cap;
    if (changed)
        send_dir(b, o);
    else
        cJSON_Delete(o);
}

/* ---- remote names ------------------------------------------------------------------ */

static remote_node *find_node(bridge *b, const char *node)
{
    for (int i = 0; i < b->n_nodes; i++)
        if (strcmp(b->nodes[i].node, node) == 0)
            return &b->nodes[i];
    return NULL;
}

static remote_node *add_node(bridge *b, const char *node)
{
    if (b->n_nodes == b->cap_nodes) {
        int cap = b->cap_nodes != 0 ? b->cap_nodes * 2 : 8;
        remote_node *grown = realloc(b->nodes, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        b->nodes = grown;
        b->cap_nodes = cap;
    }
    remote_node *n = &b->nodes[b->n_nodes++];
    memset(n, 0, sizeof *n);
    snprintf(n->node, sizeof n->node, "%s", node);
    bridge_log(LOG_INFO, "node %s joined", node);
    return n;
}

static void drop_node(bridge *b, remote_node *n, const char *why)
{
    bridge_log(LOG_INFO, "node %s %s: its %d names leave", n->node, why, n->n);
    free(n->names);
    *n = b->nodes[--b->n_nodes];
}

static void node_remove_name(remote_node *n, const char *name)
{
    for (int i = 0; i < n->n; i++)
        if (strcmp(n->names[i].name, name) == 0) {
            n->names[i] = n->names[--n->n];
            return;
        }
}

static void node_add_name(remote_node *n, const char *name, bool group)
{
    for (int i = 0; i < n->n; i++)
        if (strcmp(n->names[i].name, name) == 0) {
            n->names[i].group = group;
            return;
        }
    if (n->n == n->cap) {
        int cap = n->cap != 0 ? n->cap * 2 : 16;
        remote_name *grown = realloc(n->names, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return; /* the next snapshot tries again */
        n->names = grown;
        n->cap = cap;
    }
    snprintf(n->names[n->n].name, sizeof n->names[n->n].name, "%s", name);
    n->names[n->n].group = group;
    n->n++;
}

/* A name as another bridge wrote it: checked like anything from the network. */
static bool read_name(const cJSON *item, const char **name, bool *group)
{
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(item, "name");
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(item, "group");
    if (!cJSON_IsString(nm) || mbx_check_name(nm->valuestring) != MBX_OK ||
        !bridge_name_bridged(&(bridge_config){.names = {">"}, .n_names = 1}, nm->valuestring))
        return false;
    *name = nm->valuestring;
    *group = cJSON_IsTrue(gr);
    return true;
}

/* Makes the proxies match the remote directory: one per remote name. */
static void reconcile(bridge *b, int64_t now)
{
    b->next_reconcile_ns = now + RECONCILE_EVERY_MS * 1000000LL;
    for (int i = 0; i < b->n_nodes; i++) {
        remote_node *n = &b->nodes[i];
        for (int j = 0; j < n->n; j++)
            outbound_want(b, n->names[j].name, n->node, n->names[j].group, now);
    }
    outbound_sweep(b, now);
}

void directory_on_message(bridge *b, natsMsg *m, uint64_t gen)
{
    cJSON *o = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(o, "node");
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(o, "instance");
    if (!cJSON_IsString(node) || mbx_check_name(node->valuestring) != MBX_OK ||
        strchr(node->valuestring, '.') != NULL || !cJSON_IsString(inst)) {
        bridge_log(LOG_DEBUG, "directory message refused: not ours");
        cJSON_Delete(o);
        return;
    }
    uint64_t instance = strtoull(inst->valuestring, NULL, 10);
    if (strcmp(node->valuestring, b->cfg.node) == 0) {
        if (instance != b->instance) {
            static uint64_t warned;
            if (warned != instance)
                bridge_log(LOG_ERROR,
                           "another bridge runs with the node name %s in cluster %s: "
                           "give each host its own --node",
                           b->cfg.node, b->cfg.cluster);
            warned = instance;
        }
        cJSON_Delete(o);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "durable")) != b->cfg.durable) {
        static bool told;
        if (!told)
            bridge_log(LOG_ERROR,
                       "node %s runs in %s mode, this one in %s: every bridge of a "
                       "cluster needs the same (--durable on all or none)",
                       node->valuestring, b->cfg.durable ? "core" : "durable",
                       b->cfg.durable ? "durable" : "core");
        told = true;
    }
    remote_node *n = find_node(b, node->valuestring);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "bye"))) {
        /* Durable: its names stay, and what is sent to them waits in the stream for its
         * bridge to come back. */
        if (n != NULL && !b->cfg.durable)
            drop_node(b, n, "left");
        cJSON_Delete(o);
        reconcile(b, bridge_now_ns());
        return;
    }
    if (n == NULL && (n = add_node(b, node->valuestring)) == NULL) {
        cJSON_Delete(o);
        return;
    }
    if (n->instance != instance && n->instance != 0)
        n->n = 0; /* its bridge restarted: what it served before is forgotten */
    n->instance = instance;
    n->heard_ns = bridge_now_ns();
    n->heard_gen = gen;
    const cJSON *item;
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "names");
    const char *name;
    bool group;
    if (cJSON_IsArray(names)) {
        n->n = 0;
        cJSON_ArrayForEach(item, names) if (read_name(item, &name, &group))
            node_add_name(n, name, group);
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "down"))
    {
        if (cJSON_IsString(item))
            node_remove_name(n, item->valuestring);
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "up"))
    {
        if (read_name(item, &name, &group))
            node_add_name(n, name, group);
    }
    cJSON_Delete(o);
    reconcile(b, bridge_now_ns());
}

void directory_start(bridge *b)
{
    b->local_dirty = true;
    directory_tick(b, bridge_now_ns());
}

void directory_tick(bridge *b, int64_t now)
{
    if (b->local_dirty || now >= b->next_scan_ns) {
        b->local_dirty = false;
        b->next_scan_ns = now + SCAN_EVERY_MS * 1000000LL;
        scan_local(b);
    }
    if (now >= b->next_snapshot_ns) {
        b->next_snapshot_ns = now + BRIDGE_SNAPSHOT_MS * 1000000LL;
        directory_send_snapshot(b);
    }
    for (int i = 0; i < b->n_nodes;)
        if (!b->cfg.durable && now - b->nodes[i].heard_ns > BRIDGE_NODE_EXPIRY_MS * 1000000LL)
            drop_node(b, &b->nodes[i], "is silent");
        else
            i++;
    if (now >= b->next_reconcile_ns)
        reconcile(b, now);
}

void directory_stop(bridge *b)
{
    cJSON *o = dir_message(b);
    cJSON_AddBoolToObject(o, "bye", true);
    send_dir(b, o);
    for (int i = 0; i < b->n_exports; i++) {
        inbound_unsubscribe_name(b, b->exports[i].sub);
        durable_unsubscribe(b->exports[i].dsub);
    }
    b->n_exports = 0;
}

bool directory_node_fresh(bridge *b, const char *node)
{
    remote_node *n = find_node(b, node);
    return n != NULL && n->heard_gen == atomic_load(&b->conn_gen);
}

int directory_counts(bridge *b, int *nodes)
{
    *nodes = b->n_nodes;
    return b->n_exports;
}
