/*
 * ring_internal.h: what the ring's files share (not part of ring.h's contract). The ring
 * is split by concern: ring_record.c frames, writes and reads records; ring_send.c is the
 * senders' side (the lock, waiting for space, the owner's batch, closing to senders);
 * ring_recv.c the owner's (take, peek, find, commit, the adaptive spin); ring_admin.c
 * what anyone may ask of a mailbox and the broker's maintenance (emptying, waking).
 */
#ifndef MBX_RING_INTERNAL_H
#define MBX_RING_INTERNAL_H

#include <string.h>

#include "ring.h"

/* Bytes of the node name a record for msg carries (none for a message from here). */
static inline size_t ring_node_len(const ring_outgoing *msg)
{
    return msg->node != NULL ? strnlen(msg->node, MBX_NAME_MAX) : 0;
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Positions (seg_mailbox.head and .tail) pack a record count (high half) and a byte count
 * (low half), both wrapping; see segment.h. */
static inline uint32_t pos_records(uint64_t p)
{
    return (uint32_t)(p >> 32);
}

static inline uint32_t pos_bytes(uint64_t p)
{
    return (uint32_t)p;
}

static inline uint64_t pos_advance(uint64_t p, uint32_t records, uint32_t bytes)
{
    return (uint64_t)(pos_records(p) + records) << 32 | (uint32_t)(pos_bytes(p) + bytes);
}

/* What lies between head and tail. */
typedef struct ring_fill {
    uint32_t records;
    uint32_t bytes;
} ring_fill;

/* Fills *f; false when [head, tail) is no state the protocol can produce, which only a
 * scribble can: more records than the depth, more bytes than the ring, a position off the
 * record grid, or record and byte counts that disagree (every record, a pad included,
 * takes at least SEG_RECORD_ALIGN bytes; pads precede a record and count no record). */
static inline bool fill_between(const seg_view *v, uint64_t head, uint64_t tail, ring_fill *f)
{
    f->records = pos_records(tail) - pos_records(head);
    f->bytes = pos_bytes(tail) - pos_bytes(head);
    return f->records <= v->depth && f->bytes <= v->ring_bytes &&
           ((pos_bytes(head) | pos_bytes(tail)) & (SEG_RECORD_ALIGN - 1)) == 0 &&
           (f->records == 0) == (f->bytes == 0) &&
           (uint64_t)f->records * SEG_RECORD_ALIGN <= f->bytes;
}

/* At most half full, in records and in bytes: where sleeping senders are woken. */
static inline bool at_most_half(const seg_view *v, ring_fill f)
{
    return f.records <= v->depth / 2 && f.bytes <= v->ring_bytes / 2;
}

/* A deadline read from the clock only once somebody needs it: the fast paths never wait
 * and so never read the clock. */
typedef struct lazy_deadline {
    int timeout_ms;
    bool known;
    int64_t at;
} lazy_deadline;

static inline int64_t deadline_of(lazy_deadline *d)
{
    if (!d->known) {
        d->at = plat_deadline(d->timeout_ms);
        d->known = true;
    }
    return d->at;
}

/* MBX_OK while the namespace serves, MBX_ESHUTDOWN once it closes; any other value is
 * not one the broker writes. */
static inline mbx_err namespace_state(const seg_view *v)
{
    uint32_t state = atomic_load_explicit(&segment_header(v)->state, memory_order_acquire);
    if (state == SEG_READY)
        return MBX_OK;
    return state == SEG_CLOSING ? MBX_ESHUTDOWN : MBX_ECORRUPT;
}

static inline bool slot_is(const seg_view *v, uint32_t slot, uint32_t gen)
{
    seg_dir_entry *e = segment_dir(v, slot);
    return atomic_load_explicit(&e->state, memory_order_acquire) == SLOT_ACTIVE &&
           atomic_load_explicit(&e->generation, memory_order_acquire) == gen;
}

/* For the owner: MBX_OK while the slot is ours, MBX_ESHUTDOWN when the broker took it
 * back (it frees a slot by marking it free and adding 2 to the generation), MBX_ECORRUPT
 * for anything else. */
static inline mbx_err own_slot(const seg_view *v, uint32_t slot, uint32_t gen)
{
    if (slot_is(v, slot, gen))
        return MBX_OK;
    seg_dir_entry *e = segment_dir(v, slot);
    if (atomic_load(&e->state) == SLOT_FREE && atomic_load(&e->generation) == gen + 2)
        return MBX_ESHUTDOWN;
    return MBX_ECORRUPT;
}

/* What the record at a position turned out to be. */
typedef enum record_frame {
    RECORD_MESSAGE, /* a record (maybe a bad one) that ends at *next */
    RECORD_PAD,     /* filler up to the ring's end: *next is past it, no record counted */
    RECORD_LOST,    /* its size is impossible: where the records after it start is lost */
} record_frame;

/* ---- ring_record.c ---------------------------------------------------------------- */

/* Bytes of the record that carries msg. */
uint32_t ring_record_size(const ring_outgoing *msg, size_t from_len);

/* Frames the record at `at` (ring_record.c says how); its header copied once into *hdr. */
record_frame ring_frame_record(const seg_view *v, seg_mailbox *mb, uint64_t at, ring_fill f,
                               seg_record *hdr, uint64_t *next);

/* Writes msg at tail (a pad first when the ring's end is too close); returns the tail
 * that publishes it. The caller holds the lock and has checked there is room. */
uint64_t ring_append_record(const seg_view *v, seg_mailbox *mb, uint64_t tail, uint32_t pad,
                            uint32_t size, const ring_outgoing *msg, size_t from_len);

/* Whether a record of `size` bytes fits at tail with f between head and tail; *pad: the
 * filler it needs first. */
bool ring_room_at(const seg_view *v, uint64_t tail, ring_fill f, uint32_t size, uint32_t *pad);

/* Copies out the record framed at `at` (its header in *hdr), checking its framing. */
mbx_err ring_read_record(const seg_view *v, seg_mailbox *mb, uint64_t at, const seg_record *hdr,
                         ring_incoming *out);

/* ---- ring_send.c ---------------------------------------------------------------- */

/* Posts `space` once per sender asleep on it (a hint count, bounded against garbage). */
void ring_wake_senders(seg_mailbox *mb);

#endif /* MBX_RING_INTERNAL_H */
