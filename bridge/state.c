/*
 * state.c: the bridge's state, for `mbx list` (a request {"state":true} to
 * bridge.<node>; docs/bridge.md). Main thread.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bridge.h"

static char *state_json(bridge *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "node", b->cfg.node);
    cJSON_AddStringToObject(o, "cluster", b->cfg.cluster);
    cJSON_AddStringToObject(o, "mode", b->cfg.durable ? "durable" : "core");
    cJSON *nats = cJSON_AddObjectToObject(o, "nats");
    bool up = atomic_load(&b->connected);
    cJSON_AddBoolToObject(nats, "connected", up);
    char url[256] = "";
    if (up && natsConnection_GetConnectedUrl(b->nc, url, sizeof url) == NATS_OK)
        cJSON_AddStringToObject(nats, "server", url);
    int nodes;
    int local = directory_counts(b, &nodes);
    cJSON_AddNumberToObject(o, "nodes", nodes);
    cJSON_AddNumberToObject(o, "local", local);
    cJSON_AddNumberToObject(o, "remote", outbound_proxies(b));
    cJSON_AddNumberToObject(o, "queued", (double)outbound_in_flight(b));
    cJSON_AddNumberToObject(o, "forwarded", (double)atomic_load(&b->count.forwarded));
    cJSON_AddNumberToObject(o, "delivered", (double)atomic_load(&b->count.delivered));
    cJSON_AddNumberToObject(o, "dropped", (double)atomic_load(&b->count.dropped));
    cJSON_AddNumberToObject(o, "redelivered", (double)atomic_load(&b->count.redelivered));
    cJSON_AddNumberToObject(o, "conflicts", (double)atomic_load(&b->count.conflicts));
    cJSON *watches = cJSON_AddObjectToObject(o, "answer_watches");
    cJSON_AddNumberToObject(watches, "delivery", (double)atomic_load(&b->watches_delivery));
    cJSON_AddNumberToObject(watches, "main", (double)atomic_load(&b->watches_main));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void state_answer(bridge *b, mbx_message *request)
{
    size_t len;
    const char *body = mbx_message_body(request, &len);
    cJSON *q = cJSON_ParseWithLength(body, len);
    bool asks = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "state"));
    cJSON_Delete(q);
    char *text = asks ? state_json(b) : NULL;
    static const char unknown[] = "{\"error\":\"ask {\\\"state\\\":true}\"}";
    const char *answer = text != NULL ? text : unknown;
    mbx_reply(b->ctl, request, answer, strlen(answer), 1000);
    free(text);
}
