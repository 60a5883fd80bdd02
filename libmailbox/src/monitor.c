/* monitor.c: a copy of each message sent, for the namespace's monitors (monitor.h). */
#include <string.h>

#include "monitor.h"
#include "names.h"
#include "topics.h"

const char *monitor_recipient(const mbx_client *c, uint32_t slot, uint32_t gen,
                              char name[MBX_NAME_MAX + 1])
{
    uint32_t now;
    if (slot < c->view.slots && segment_read_entry(&c->view, slot, name, &now, NULL) && now == gen)
        return name;
    name[0] = '\0'; /* gone already: nobody to name */
    return name;
}

void monitor_copy(const mbx_client *c, const ring_outgoing *sent, const char *to)
{
    const seg_view *v = &c->view;
    seg_header *h = segment_header(v);
    uint32_t in_use = atomic_load_explicit(&h->monitors, memory_order_acquire);
    ring_outgoing copy = *sent;
    copy.kind = CELL_MONITOR;
    copy.mirrored = sent->kind;
    copy.seq_source = NULL; /* a copy takes no number from its sender's count */
    copy.seq = 0;
    copy.once = 0;
    copy.never_wait = false;
    copy.copy = true;
    if (sent->kind != CELL_TOPIC) {
        size_t label_len = strnlen(to, MBX_NAME_MAX);
        copy.topic = to;
        copy.topic_len = label_len <= v->max_message - sent->len ? (uint32_t)label_len : 0;
    }
    for (uint32_t i = 0; i < SEG_MONITORS; i++) {
        if ((in_use & (1u << i)) == 0)
            continue;
        uint64_t word = atomic_load_explicit(&h->monitor[i], memory_order_acquire);
        uint32_t slot = (uint32_t)word, gen = (uint32_t)(word >> 32);
        if (slot >= v->slots || slot == c->slot ||
            (atomic_load(&segment_dir(v, slot)->flags) & DIR_MONITOR) == 0)
            continue;
        /* A copy that does not go in is counted by the put itself (ring.h, `copy`). */
        (void)ring_put(v, slot, gen, &copy, 0);
    }
}

bool monitor_label_valid(const ring_incoming *in)
{
    if (in->mirrored > CELL_TOPIC)
        return false;
    if (in->mirrored == CELL_TOPIC)
        return topics_valid_topic(in->topic, strlen(in->topic), true);
    return in->topic[0] == '\0' || names_valid_bounded(in->topic, MBX_NAME_MAX + 1);
}

void monitor_fill(mbx_message *msg, const ring_incoming *in)
{
    msg->mirrored = in->mirrored;
    msg->missed = in->missed;
    msg->retained = in->mirrored == CELL_TOPIC && in->retained;
    msg->corr = in->mirrored == CELL_REQUEST || in->mirrored == CELL_REPLY ? in->corr : 0;
    msg->error = in->mirrored == CELL_REPLY ? (uint32_t)request_far_error(in->error) : 0;
    if (in->mirrored != CELL_TOPIC) {
        memcpy(msg->to, in->topic, sizeof msg->to); /* the recipient, as the sender named it */
        msg->topic[0] = '\0';
    } else {
        msg->to[0] = '\0';
    }
    /* Nobody to answer: a monitor watches, it does not take part (mbx_reply refuses a
     * copy, whose kind is CELL_MONITOR). */
    msg->from_slot = UINT32_MAX;
    msg->from_generation = 0;
}

bool monitor_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep)
{
    (void)in;
    (void)body;
    (void)keep;
    return c->monitor;
}

int mbx_message_monitored(const mbx_message *msg)
{
    return msg != NULL && msg->kind == CELL_MONITOR;
}
