/* events.c: see events.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "ring.h"

/* The name the broker's publications come from. */
#define EVENTS_FROM "mailboxd"

mbx_err events_init(events *ev, const seg_view *view)
{
    memset(ev, 0, sizeof *ev);
    ev->view = view;
    return subs_scratch_init(&ev->scratch, view->slots);
}

void events_destroy(events *ev)
{
    subs_scratch_free(&ev->scratch);
}

static void publish(events *ev, const char *topic, const char *body, size_t len)
{
    const seg_view *v = ev->view;
    size_t tlen = strlen(topic);
    uint32_t n = subs_match(v, topic, tlen, ev->scratch.targets, ev->scratch.where);
    if (n == 0)
        return;
    ring_outgoing msg = {
        .body = body,
        .len = (uint32_t)len,
        .from_slot = UINT32_MAX, /* nobody to reply to */
        .from_name = EVENTS_FROM,
        .ts_us = plat_wall_us(),
        .sender_cpu = -1,
        .seq = ++ev->seq,
        .kind = CELL_TOPIC,
        .topic = topic,
        .topic_len = (uint32_t)tlen,
        .never_wait = true,
    };
    for (uint32_t i = 0; i < n; i++) {
        const subs_target *t = &ev->scratch.targets[i];
        mbx_err err = ring_put(v, t->slot, t->generation, &msg, 0);
        if (err == MBX_EFULL || err == MBX_ETIMEDOUT)
            subs_count_drop(v, t->slot);
    }
}

/* The fields every presence event has: name and pid, then "group" and "node" when they
 * apply (names and nodes are checked names: nothing in them needs escaping). */
static int presence_fields(char *out, size_t cap, const char *name, int64_t pid, const char *node,
                           bool group)
{
    return snprintf(out, cap, "\"name\":\"%s\",\"pid\":%" PRId64 "%s%s%s%s", name, pid,
                    group ? ",\"group\":true" : "", node[0] != '\0' ? ",\"node\":\"" : "", node,
                    node[0] != '\0' ? "\"" : "");
}

void events_client_up(events *ev, const char *name, int64_t pid, const char *node, bool group)
{
    char fields[2 * MBX_NAME_MAX + 96], body[sizeof fields + 8];
    int n = presence_fields(fields, sizeof fields, name, pid, node, group);
    int len = snprintf(body, sizeof body, "{%s}", fields);
    if (n > 0 && len > 0 && (size_t)len < sizeof body)
        publish(ev, "$mbx.client.up", body, (size_t)len);
}

void events_client_down(events *ev, const char *name, int64_t pid, const char *node, bool group,
                        const char *reason)
{
    char fields[2 * MBX_NAME_MAX + 96], body[sizeof fields + 48];
    int n = presence_fields(fields, sizeof fields, name, pid, node, group);
    int len = snprintf(body, sizeof body, "{%s,\"reason\":\"%s\"}", fields, reason);
    if (n > 0 && len > 0 && (size_t)len < sizeof body)
        publish(ev, "$mbx.client.down", body, (size_t)len);
}

void events_purge(events *ev, uint32_t slot)
{
    plat_lock_token tok;
    if (subs_lock(ev->view, 0, &tok) != MBX_OK)
        return;
    (void)subs_purge(ev->view, slot);
    subs_unlock(ev->view, &tok);
}
