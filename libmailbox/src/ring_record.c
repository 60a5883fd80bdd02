/* ring_record.c: records in a mailbox's byte ring: their size, framing, writing and
 * reading (segment.h has the layout; ring_internal.h the split). */
#include <string.h>

#include "fault.h"
#include "ring_internal.h"
#include "shared.h"

/* Bytes of the record that carries msg. */
uint32_t ring_record_size(const ring_outgoing *msg, size_t from_len)
{
    return (uint32_t)SEG_RECORD_SIZE(from_len + ring_node_len(msg) + msg->topic_len + msg->len);
}

/*
 * Frames the record at `at`, with `f` what lies between `at` and tail, and copies its
 * header into *hdr (once: the checks below hold for the copy, whatever a scribbler does to
 * the ring meanwhile). A size that is off the grid, runs past the ring's end or past tail
 * cannot be stepped over; a size that fits frames the record even when its content is
 * bad, so that one bad record costs one message.
 */
record_frame ring_frame_record(const seg_view *v, seg_mailbox *mb, uint64_t at, ring_fill f,
                               seg_record *hdr, uint64_t *next)
{
    shm_copy(hdr, segment_record(v, mb, at), sizeof *hdr);
    uint32_t to_end = v->ring_bytes - (pos_bytes(at) & (v->ring_bytes - 1));
    uint32_t size = hdr->size;
    if (size < SEG_RECORD_ALIGN || (size & (SEG_RECORD_ALIGN - 1)) != 0 || size > to_end ||
        size > f.bytes)
        return RECORD_LOST;
    if (hdr->kind == CELL_PAD) {
        /* A pad always runs to the ring's end and a record always follows it. */
        if (size != to_end || size == f.bytes)
            return RECORD_LOST;
        *next = pos_advance(at, 0, size);
        return RECORD_PAD;
    }
    if (f.records == 0)
        return RECORD_LOST;
    *next = pos_advance(at, 1, size);
    return RECORD_MESSAGE;
}

/* Writes the record for msg at `at` (room for `size` bytes checked by the caller). */
static void fill_record(const seg_view *v, seg_mailbox *mb, uint64_t at, uint32_t size,
                        const ring_outgoing *msg, size_t from_len)
{
    /* The read-modify-writes first, while nothing waits to be written: each is a full
     * barrier on x86, and after the first store to the record (a line the owner read a
     * lap ago, which must come back first) it would wait for that line. */
    uint64_t seq = msg->seq_source != NULL
                       ? atomic_fetch_add_explicit(msg->seq_source, 1, memory_order_relaxed) + 1
                       : msg->seq;
    uint64_t missed = msg->kind == CELL_TOPIC || msg->kind == CELL_MONITOR
                          ? atomic_exchange_explicit(&mb->missed, 0, memory_order_relaxed)
                          : 0;
    seg_record *cell = segment_record(v, mb, at);
    cell->size = size;
    cell->kind = msg->kind;
    cell->len = msg->len;
    cell->topic_len = 0;
    size_t node_len = ring_node_len(msg);
    cell->from_len = (uint8_t)from_len;
    cell->node_len = (uint8_t)node_len;
    cell->from_slot = msg->from_slot;
    cell->from_generation = msg->from_generation;
    cell->sender_cpu = msg->sender_cpu >= 0 ? (uint32_t)msg->sender_cpu + 1 : 0;
    cell->error = msg->kind == CELL_REPLY ? msg->error : 0;
    cell->seq = seq;
    cell->ts_us = msg->ts_us;
    cell->corr = msg->corr;
    cell->flags =
        (msg->kind == CELL_TOPIC || msg->kind == CELL_MONITOR) && msg->retained ? REC_RETAINED : 0;
    cell->missed = 0;
    char *p = (char *)cell + SEG_RECORD_HEADER;
    memcpy(p, msg->from_name, from_len);
    p += from_len;
    if (node_len != 0)
        memcpy(p, msg->node, node_len);
    p += node_len;
    if (msg->kind == CELL_TOPIC) {
        /* The publications this mailbox missed before this one: told with it. */
        cell->corr = missed;
        cell->topic_len = (uint16_t)msg->topic_len;
        memcpy(p, msg->topic, msg->topic_len);
        p += msg->topic_len;
    } else if (msg->kind == CELL_MONITOR) {
        /* As a publication's: what this monitor missed before this copy. */
        cell->missed = missed > UINT32_MAX ? UINT32_MAX : (uint32_t)missed;
        cell->flags |= (msg->mirrored << REC_KIND_SHIFT) & REC_KIND_MASK;
        cell->error = msg->error;
        cell->topic_len = (uint16_t)msg->topic_len;
        memcpy(p, msg->topic, msg->topic_len);
        p += msg->topic_len;
    }
    uint32_t half = msg->len / 2;
    memcpy(p, msg->body, half);
    FAULT_POINT("ring.put.copy"); /* half a message in the record */
    memcpy(p + half, msg->body + half, msg->len - half);
}

/* Writes msg at tail (and a pad before it when the ring's end is too close); returns the
 * tail that publishes it. The caller holds the lock and has checked there is room. */
uint64_t ring_append_record(const seg_view *v, seg_mailbox *mb, uint64_t tail, uint32_t pad,
                            uint32_t size, const ring_outgoing *msg, size_t from_len)
{
    if (pad != 0) {
        seg_record *filler = segment_record(v, mb, tail);
        memset(filler, 0, sizeof *filler);
        filler->size = pad;
        filler->kind = CELL_PAD;
        tail = pos_advance(tail, 0, pad);
    }
    fill_record(v, mb, tail, size, msg, from_len);
    return pos_advance(tail, 1, size);
}

/* Whether a record of `size` bytes fits at tail with f between head and tail; *pad: the
 * filler it needs first. A record never wraps: if the ring's end is too close, a pad fills
 * up to it and the record starts the ring again. The ring holds two of the largest
 * records, so an empty mailbox always has room, wherever its free space starts. */
bool ring_room_at(const seg_view *v, uint64_t tail, ring_fill f, uint32_t size, uint32_t *pad)
{
    uint32_t to_end = v->ring_bytes - (pos_bytes(tail) & (v->ring_bytes - 1));
    *pad = to_end < size ? to_end : 0;
    return f.records < v->depth && f.bytes + *pad + size <= v->ring_bytes;
}

/* Copies out the record framed at `at` (its header in *hdr), validating everything. */
mbx_err ring_read_record(const seg_view *v, seg_mailbox *mb, uint64_t at, const seg_record *hdr,
                         ring_incoming *out)
{
    uint32_t len = hdr->len;
    uint32_t kind = hdr->kind & ~CELL_TAKEN;
    bool has_topic = kind == CELL_TOPIC || kind == CELL_MONITOR;
    uint32_t topic_len = has_topic ? hdr->topic_len : 0;
    uint32_t from_len = hdr->from_len;
    uint32_t node_len = hdr->node_len;
    if (node_len > MBX_NAME_MAX ||
        (kind > CELL_TOPIC && kind != CELL_RETURNED && kind != CELL_MONITOR) || len == 0 ||
        len > v->max_message || topic_len > v->max_message - len || topic_len > MBX_TOPIC_MAX ||
        (kind == CELL_TOPIC && topic_len == 0) || from_len == 0 || from_len > MBX_NAME_MAX ||
        SEG_RECORD_SIZE(from_len + node_len + topic_len + len) > hdr->size)
        return MBX_ECORRUPT;
    /* The sender's name and the topic are copied as bytes within their bounds; what they
     * must look like (a valid name, a valid topic) is for the layer above to check
     * (client_incoming_valid): the ring knows no names or topics. */
    const char *p = (const char *)segment_record(v, mb, at) + SEG_RECORD_HEADER;
    memcpy(out->from, p, from_len);
    out->from[from_len] = '\0';
    p += from_len;
    memcpy(out->node, p, node_len);
    out->node[node_len] = '\0';
    p += node_len;
    out->topic[0] = '\0';
    if (has_topic) {
        memcpy(out->topic, p, topic_len);
        out->topic[topic_len] = '\0';
        p += topic_len;
    }
    memcpy(out->body, p, len);
    out->body[len] = '\0';
    /* A NUL inside would silently cut the text for every C reader. */
    if (memchr(out->body, '\0', len) != NULL)
        return MBX_ECORRUPT;
    out->len = len;
    out->seq = hdr->seq;
    out->ts_us = hdr->ts_us;
    out->kind = kind;
    out->corr = hdr->corr;
    out->error = kind == CELL_REPLY || kind == CELL_MONITOR ? hdr->error : 0;
    out->retained = has_topic && (hdr->flags & REC_RETAINED) != 0;
    out->mirrored = kind == CELL_MONITOR ? (hdr->flags & REC_KIND_MASK) >> REC_KIND_SHIFT : 0;
    out->missed = kind == CELL_MONITOR ? hdr->missed : 0;
    out->from_slot = hdr->from_slot;
    out->from_generation = hdr->from_generation;
    /* A hint from shared memory like any other: only a plausible CPU number is used. */
    uint32_t cpu = hdr->sender_cpu;
    out->sender_cpu = cpu >= 1 && cpu <= 65536 ? (int)(cpu - 1) : -1;
    return MBX_OK;
}
