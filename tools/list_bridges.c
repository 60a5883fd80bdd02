/*
 * list_bridges.c: what `mbx list` shows of the namespace's mailbox-bridges. A bridge
 * serves the local name bridge.<node> and answers a request {"state":true} with its
 * state (docs/bridge.md): the NATS server it is connected to, what it forwarded,
 * delivered, holds unacknowledged (queued), dropped and redelivered. Each is asked with a
 * short timeout; one that does not answer (stopped, or a client that only took such a
 * name) is shown as unknown.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "list_bridges.h"

#define STATE_TIMEOUT_MS 500

static bool is_bridge(const mbx_client_info *ci)
{
    return !ci->remote && !ci->lingering && strncmp(ci->name, "bridge.", 7) == 0;
}

cJSON *list_bridges(const char *ns, const mbx_client_info *clients, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += is_bridge(&clients[i]);
    if (count == 0)
        return NULL;
    cJSON *all = cJSON_CreateArray();
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.timeout_ms = STATE_TIMEOUT_MS;
    mbx_client *asker = NULL;
    mbx_message *reply = mbx_message_new();
    if (reply != NULL && mbx_connect(&o, &asker) != MBX_OK)
        asker = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!is_bridge(&clients[i]))
            continue;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", clients[i].name);
        cJSON *state = NULL;
        static const char ask[] = "{\"state\":true}";
        if (asker != NULL && mbx_request(asker, clients[i].name, ask, sizeof ask - 1, reply,
                                         STATE_TIMEOUT_MS) == MBX_OK) {
            size_t len;
            const char *body = mbx_message_body(reply, &len);
            state = cJSON_ParseWithLength(body, len);
            if (!cJSON_IsObject(state) || !cJSON_IsString(cJSON_GetObjectItem(state, "node"))) {
                cJSON_Delete(state);
                state = NULL;
            }
        }
        cJSON_AddItemToObject(b, "state", state != NULL ? state : cJSON_CreateNull());
        cJSON_AddItemToArray(all, b);
    }
    mbx_close(asker);
    mbx_message_free(reply);
    return all;
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

void print_bridges(const cJSON *bridges)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, bridges)
    {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");
        const char *name = cJSON_GetObjectItemCaseSensitive(b, "name")->valuestring;
        if (!cJSON_IsObject(state)) {
            printf("bridge     %s: state unknown (no answer)\n", name);
            continue;
        }
        const cJSON *nats = cJSON_GetObjectItemCaseSensitive(state, "nats");
        const cJSON *server = cJSON_GetObjectItemCaseSensitive(nats, "server");
        bool up = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(nats, "connected"));
        printf("bridge     node %s, %s; %.0f other nodes; %.0f local names exported, %.0f remote "
               "names here\n",
               cJSON_GetObjectItemCaseSensitive(state, "node")->valuestring,
               up && cJSON_IsString(server) ? server->valuestring : "NATS not connected",
               number(state, "nodes"), number(state, "local"), number(state, "remote"));
        printf("           %.0f forwarded, %.0f delivered, %.0f queued, %.0f dropped, %.0f "
               "redelivered, %.0f name conflicts\n",
               number(state, "forwarded"), number(state, "delivered"), number(state, "queued"),
               number(state, "dropped"), number(state, "redelivered"), number(state, "conflicts"));
    }
}
