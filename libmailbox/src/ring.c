/* ring.c: the mailbox queue; the protocol is described in ring.h. */
#include <string.h>

#include "fault.h"
#include "ring.h"
#include "shared.h"
#include "shm_wait.h"
#include "wake.h"

/* A lock is held for one copy; one held longer than this belongs to a stopped process
 * or is corrupt, and the caller gets an error instead of waiting on. */
#define RING_LOCK_GRACE_NS (1000LL * 1000 * 1000)

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Positions (seg_mailbox.head and .tail) pack a record count (high half) and a byte count
 * (low half), both wrapping; see segment.h. */
static uint32_t pos_records(uint64_t p)
{
    return (uint32_t)(p >> 32);
}

static uint32_t pos_bytes(uint64_t p)
{
    return (uint32_t)p;
}

static uint64_t pos_advance(uint64_t p, uint32_t records, uint32_t bytes)
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
static bool fill_between(const seg_view *v, uint64_t head, uint64_t tail, ring_fill *f)
{
    f->records = pos_records(tail) - pos_records(head);
    f->bytes = pos_bytes(tail) - pos_bytes(head);
    return f->records <= v->depth && f->bytes <= v->ring_bytes &&
           ((pos_bytes(head) | pos_bytes(tail)) & (SEG_RECORD_ALIGN - 1)) == 0 &&
           (f->records == 0) == (f->bytes == 0) &&
           (uint64_t)f->records * SEG_RECORD_ALIGN <= f->bytes;
}

/* At most half full, in records and in bytes: where sleeping senders are woken. */
static bool at_most_half(const seg_view *v, ring_fill f)
{
    return f.records <= v->depth / 2 && f.bytes <= v->ring_bytes / 2;
}

/* Bytes of the record that carries msg. */
static uint32_t record_size(const ring_outgoing *msg, size_t from_len)
{
    return (uint32_t)SEG_RECORD_SIZE(from_len + msg->topic_len + msg->len);
}

/* What the record at a position turned out to be. */
typedef enum record_frame {
    RECORD_MESSAGE, /* a record (maybe a bad one) that ends at *next */
    RECORD_PAD,     /* filler up to the ring's end: *next is past it, no record counted */
    RECORD_LOST,    /* its size is impossible: where the records after it start is lost */
} record_frame;

/*
 * Frames the record at `at`, with `f` what lies between `at` and tail, and copies its
 * header into *hdr (once: the checks below hold for the copy, whatever a scribbler does to
 * the ring meanwhile). A size that is off the grid, runs past the ring's end or past tail
 * cannot be stepped over; a size that fits frames the record even when its content is
 * bad, so that one bad record costs one message.
 */
static record_frame frame_record(const seg_view *v, seg_mailbox *mb, uint64_t at, ring_fill f,
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

/* True while a sender that waited long for space asks newcomers to queue (any value is a
 * hint: a scribbled one at worst makes newcomers wait for the sleepers, up to their own
 * deadlines, and the broker's scrub puts far-off values back). */
static bool someone_starves(seg_mailbox *mb)
{
    uint32_t until = atomic_load_explicit(&mb->tx_starving_until_ms, memory_order_relaxed);
    if (until == 0)
        return false;
    uint32_t now_ms = (uint32_t)(plat_now_ns() / 1000000);
    return (int32_t)(until - now_ms) > 0;
}

/* ring_find's longest sleep: how soon a requester notices its responder went. */
#define RING_FIND_SLICE_NS (200LL * 1000 * 1000)

/* A deadline read from the clock only once somebody needs it: the fast paths never wait
 * and so never read the clock. */
typedef struct lazy_deadline {
    int timeout_ms;
    bool known;
    int64_t at;
} lazy_deadline;

static int64_t deadline_of(lazy_deadline *d)
{
    if (!d->known) {
        d->at = plat_deadline(d->timeout_ms);
        d->known = true;
    }
    return d->at;
}

/* MBX_OK while the namespace serves, MBX_ESHUTDOWN once it closes; any other value is
 * not one the broker writes. */
static mbx_err namespace_state(const seg_view *v)
{
    uint32_t state = atomic_load_explicit(&segment_header(v)->state, memory_order_acquire);
    if (state == SEG_READY)
        return MBX_OK;
    return state == SEG_CLOSING ? MBX_ESHUTDOWN : MBX_ECORRUPT;
}

static bool slot_is(const seg_view *v, uint32_t slot, uint32_t gen)
{
    seg_dir_entry *e = segment_dir(v, slot);
    return atomic_load_explicit(&e->state, memory_order_acquire) == SLOT_ACTIVE &&
           atomic_load_explicit(&e->generation, memory_order_acquire) == gen;
}

/* For the owner: MBX_OK while the slot is ours, MBX_ESHUTDOWN when the broker took it
 * back (it frees a slot by marking it free and adding 2 to the generation), MBX_ECORRUPT
 * for anything else. */
static mbx_err own_slot(const seg_view *v, uint32_t slot, uint32_t gen)
{
    if (slot_is(v, slot, gen))
        return MBX_OK;
    seg_dir_entry *e = segment_dir(v, slot);
    if (atomic_load(&e->state) == SLOT_FREE && atomic_load(&e->generation) == gen + 2)
        return MBX_ESHUTDOWN;
    return MBX_ECORRUPT;
}

/*
 * Takes the mailbox lock for a send to (slot, gen). Waits in slices, re-checking between
 * them that the namespace still serves and the slot is still that recipient's, so that
 * a lock kept by a stopped holder never outlasts a shutdown or the recipient. Waits at
 * least RING_LOCK_GRACE_NS even for a caller that does not want to wait for space: a
 * lock is normally held for one copy.
 *
 * When the previous holder died holding it, what the lock guards is checked first:
 * `tail` is published by one store after the copy, so the dead holder left either the
 * old or the new tail and at worst a half-written cell past it, which no reader will
 * look at. Only the indices' relation can be wrong, and only through corruption; that
 * is reported, not guessed at.
 */
static mbx_err lock_mailbox(const seg_view *v, uint32_t slot, uint32_t gen, lazy_deadline *d,
                            bool never_wait, plat_lock_token *tok)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    plat_lock_rc rc = plat_mutex_trylock(&mb->lock, tok);
    if (rc == PLAT_LOCK_BUSY && never_wait)
        return MBX_ETIMEDOUT;
    if (rc != PLAT_LOCKED) {
        int64_t now = plat_now_ns();
        int64_t until = deadline_of(d);
        if (until < now + RING_LOCK_GRACE_NS)
            until = now + RING_LOCK_GRACE_NS;
        for (;;) {
            rc = plat_mutex_lock(&mb->lock, min64(until, now + SHM_WAIT_SLICE_NS), tok);
            if (rc != PLAT_LOCK_BUSY)
                break;
            mbx_err err = namespace_state(v);
            if (err != MBX_OK)
                return err;
            if (!slot_is(v, slot, gen))
                return MBX_EGONE;
            now = plat_now_ns();
            if (now >= until)
                return MBX_ETIMEDOUT;
        }
    }
    if (rc == PLAT_LOCK_BROKEN)
        return MBX_ECORRUPT;
    if (rc == PLAT_LOCK_OWNER_DIED) {
        ring_fill f;
        if (!fill_between(v, atomic_load(&mb->head), atomic_load(&mb->tail), &f)) {
            plat_mutex_unlock(&mb->lock, tok);
            return MBX_ECORRUPT;
        }
    }
    return MBX_OK;
}

/* Writes the record for msg at `at` (room for `size` bytes checked by the caller). */
static void fill_record(const seg_view *v, seg_mailbox *mb, uint64_t at, uint32_t size,
                        const ring_outgoing *msg, size_t from_len)
{
    seg_record *cell = segment_record(v, mb, at);
    cell->size = size;
    cell->kind = msg->kind;
    cell->len = msg->len;
    cell->topic_len = 0;
    cell->from_len = (uint8_t)from_len;
    cell->reserved0 = 0;
    cell->from_slot = msg->from_slot;
    cell->from_generation = msg->from_generation;
    cell->sender_cpu = msg->sender_cpu >= 0 ? (uint32_t)msg->sender_cpu + 1 : 0;
    cell->reserved1 = 0;
    cell->seq = msg->seq_source != NULL
                    ? atomic_fetch_add_explicit(msg->seq_source, 1, memory_order_relaxed) + 1
                    : msg->seq;
    cell->ts_us = msg->ts_us;
    cell->corr = msg->corr;
    cell->reserved2 = 0;
    char *p = (char *)cell + SEG_RECORD_HEADER;
    memcpy(p, msg->from_name, from_len);
    p += from_len;
    if (msg->kind == CELL_TOPIC) {
        /* The publications this mailbox missed before this one: told with it. */
        cell->corr = atomic_exchange_explicit(&mb->missed, 0, memory_order_relaxed);
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
static uint64_t append_record(const seg_view *v, seg_mailbox *mb, uint64_t tail, uint32_t pad,
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
static bool room_at(const seg_view *v, uint64_t tail, ring_fill f, uint32_t size, uint32_t *pad)
{
    uint32_t to_end = v->ring_bytes - (pos_bytes(tail) & (v->ring_bytes - 1));
    *pad = to_end < size ? to_end : 0;
    return f.records < v->depth && f.bytes + *pad + size <= v->ring_bytes;
}

/* Watches head for a move, yielding the CPU every few looks: on two CPUs shared by several
 * senders and the owner, a sender that only spun would take the CPU the owner needs to
 * drain (measured: 4 -> 1 fell from 3.3 to 1.9-2.6 M msgs/s spinning, rose to 5.0-5.6
 * yielding every 16 looks, against 2.6-3.3 sleeping at once). */
static void watch_for_space(seg_mailbox *mb, uint64_t head)
{
    for (int i = 1; i <= RING_SPACE_POLLS; i++) {
        if (atomic_load_explicit(&mb->head, memory_order_relaxed) != head)
            return;
        if (i % RING_SPACE_YIELD_EVERY == 0)
            plat_yield();
        else
            plat_cpu_relax();
    }
}

mbx_err ring_put(const seg_view *v, uint32_t slot, uint32_t gen, const ring_outgoing *msg,
                 int timeout_ms)
{
    lazy_deadline d = {.timeout_ms = timeout_ms};
    if (msg->len > v->max_message || msg->topic_len > v->max_message - msg->len)
        return MBX_ETOOLARGE;
    size_t from_len = strnlen(msg->from_name, MBX_NAME_MAX);
    uint32_t size = record_size(msg, from_len);
    seg_mailbox *mb = segment_mailbox(v, slot);
    bool waited = false;
    int64_t first_sleep_ns = 0; /* when we first slept for space, 0: not yet */
    int space_rounds = 0;       /* rounds spent watching a full mailbox for space */
    for (;;) {
        mbx_err err = namespace_state(v);
        if (err != MBX_OK)
            return err;
        plat_lock_token tok;
        err = lock_mailbox(v, slot, gen, &d, msg->never_wait, &tok);
        if (err != MBX_OK)
            return err;
        if (!slot_is(v, slot, gen)) {
            plat_mutex_unlock(&mb->lock, &tok);
            return waited ? MBX_EGONE : MBX_ENORECIPIENT;
        }
        if (atomic_load_explicit(&mb->closing, memory_order_relaxed) != 0) {
            plat_mutex_unlock(&mb->lock, &tok);
            return MBX_ECLOSED_INTERNAL;
        }
        uint64_t tail = atomic_load_explicit(&mb->tail, memory_order_relaxed);
        uint64_t head = atomic_load(&mb->head);
        ring_fill f;
        if (!fill_between(v, head, tail, &f)) {
            plat_mutex_unlock(&mb->lock, &tok);
            return MBX_ECORRUPT;
        }
        uint32_t pad;
        bool room = room_at(v, tail, f, size, &pad);
        /* Senders asleep on this mailbox are woken together when it drains to half. A
         * steady stream of newcomers can keep it above half, and a sleeper asleep past
         * its deadline (refused as full although the receiver drains all along). So a
         * sender that has waited RING_STARVE_MS says so, and while it does, a newcomer
         * that may wait queues behind the sleepers instead of taking the cells they wait
         * for. Only then: queueing costs wake-ups, and the common case never starves. */
        bool wait_turn = room && !at_most_half(v, f) && !waited && timeout_ms != 0 &&
                         someone_starves(mb) && plat_now_ns() < deadline_of(&d);
        if (room && !wait_turn) {
            FAULT_POINT("ring.put.locked");
            uint64_t next = append_record(v, mb, tail, pad, size, msg, from_len);
            atomic_store(&mb->tail, next); /* publish: the message exists from here */
            FAULT_POINT("ring.put.published");
            plat_mutex_unlock(&mb->lock, &tok);
            /* Looked at before it is written: the owner's line stays shared unless it
             * sleeps. Correct as a Dekker pair: tail was stored, and rx_sleeping is loaded,
             * sequentially consistent, as the owner stores rx_sleeping, then loads tail. */
            if (atomic_load(&mb->rx_sleeping) != 0 && atomic_exchange(&mb->rx_sleeping, 0) != 0)
                plat_sem_post(&mb->items);
            wake_notify(v, mb);
            return MBX_OK;
        }
        /* Full: the owner is most likely draining it. Watch head for a while, off the
         * lock, before paying for a sleep and a wake-up at half (ring.h, "Watching for
         * space"). Nothing is announced, so nothing waits on us; head is re-read under
         * the lock on the next round. */
        if (!room && timeout_ms != 0 && space_rounds < RING_SPACE_ROUNDS) {
            space_rounds++;
            plat_mutex_unlock(&mb->lock, &tok);
            watch_for_space(mb, head);
            continue;
        }
        /* Full (or our turn is behind the sleepers'). Sleep until head moves (shm_wait.h:
         * announced in tx_waiting, head looked at again). A wake-up is still ahead of us
         * when we sleep: head has not moved, so the mailbox has yet to drain to half or
         * to empty (consume wakes senders at both), and an empty one has room for any
         * record. */
        plat_mutex_unlock(&mb->lock, &tok);
        int64_t now = timeout_ms == 0 ? 0 : plat_now_ns();
        if (timeout_ms == 0 || now >= deadline_of(&d)) {
            if (atomic_load(&mb->head) != head)
                continue; /* it moved meanwhile: look again */
            if (wait_turn) { /* out of time while queueing: there is room, take it */
                waited = true;
                continue;
            }
            atomic_fetch_add_explicit(&mb->refused_full, 1, memory_order_relaxed);
            return MBX_EFULL;
        }
        /* Sleeps for space last at most RING_STARVE_MS: a sender that has waited that long
         * says it starves, and says it again every time, as the word expires. */
        int64_t until = shm_sleep_until(deadline_of(&d), now);
        if (first_sleep_ns == 0)
            first_sleep_ns = now;
        if (now - first_sleep_ns >= RING_STARVE_MS * 1000000LL)
            atomic_store_explicit(&mb->tx_starving_until_ms,
                                  (uint32_t)(now / 1000000 + 2 * RING_STARVE_MS) | 1u,
                                  memory_order_relaxed);
        if (shm_slices())
            until = min64(until, now + RING_STARVE_MS * 1000000LL);
        shm_wait space = {.sem = &mb->space,
                          .sleepers = &mb->tx_waiting,
                          .counted = true,
                          .word = &mb->head,
                          .seen = head};
        shm_wait_once(&space, until);
        waited = true;
    }
}

/* Posts `space` once per sender asleep on it (a hint count, bounded against garbage). */
static void wake_senders(seg_mailbox *mb)
{
    uint32_t waiting = atomic_load(&mb->tx_waiting);
    if (waiting > 4096)
        waiting = 4096;
    for (uint32_t i = 0; i < waiting; i++)
        plat_sem_post(&mb->space);
}

/* Copies out the record framed at `at` (its header in *hdr), validating everything. */
static mbx_err read_record(const seg_view *v, seg_mailbox *mb, uint64_t at, const seg_record *hdr,
                           ring_incoming *out)
{
    uint32_t len = hdr->len;
    uint32_t kind = hdr->kind & ~CELL_TAKEN;
    uint32_t topic_len = kind == CELL_TOPIC ? hdr->topic_len : 0;
    uint32_t from_len = hdr->from_len;
    if ((kind > CELL_TOPIC && kind != CELL_RETURNED) || len == 0 || len > v->max_message || topic_len > v->max_message - len ||
        topic_len > MBX_TOPIC_MAX || (kind == CELL_TOPIC && topic_len == 0) || from_len == 0 ||
        from_len > MBX_NAME_MAX || SEG_RECORD_SIZE(from_len + topic_len + len) > hdr->size)
        return MBX_ECORRUPT;
    /* The sender's name and the topic are copied as bytes within their bounds; what they
     * must look like (a valid name, a valid topic) is for the layer above to check
     * (client_incoming_valid): the ring knows no names or topics. */
    const char *p = (const char *)segment_record(v, mb, at) + SEG_RECORD_HEADER;
    memcpy(out->from, p, from_len);
    out->from[from_len] = '\0';
    p += from_len;
    out->topic[0] = '\0';
    if (kind == CELL_TOPIC) {
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
    out->from_slot = hdr->from_slot;
    out->from_generation = hdr->from_generation;
    /* A hint from shared memory like any other: only a plausible CPU number is used. */
    uint32_t cpu = hdr->sender_cpu;
    out->sender_cpu = cpu >= 1 && cpu <= 65536 ? (int)(cpu - 1) : -1;
    return MBX_OK;
}

/* Watches the mailbox for up to the spinner's budget; true when a message came. */
static bool spin_for_message(seg_mailbox *mb, uint64_t head, ring_spinner *sp, int64_t now,
                             int64_t deadline, _Atomic uint32_t *interrupt)
{
    if (sp->peer_here) {
        for (int i = 0; i < RING_YIELDS; i++) {
            plat_yield();
            if (atomic_load_explicit(&mb->tail, memory_order_acquire) != head)
                return true;
        }
        return false;
    }
    if (sp->budget_ns == 0)
        return false;
    int64_t until = min64(now + sp->budget_ns, deadline);
    for (;;) {
        if (interrupt != NULL && atomic_load_explicit(interrupt, memory_order_relaxed) != 0)
            return true; /* the caller's loop reports it */
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&mb->tail, memory_order_acquire) != head) {
                sp->budget_ns =
                    sp->budget_ns * 2 > RING_SPIN_MAX_NS ? RING_SPIN_MAX_NS : sp->budget_ns * 2;
                return true;
            }
            plat_cpu_relax();
        }
        if (plat_now_ns() >= until)
            break;
    }
    sp->budget_ns = sp->budget_ns / 2 < RING_SPIN_MIN_NS ? 0 : sp->budget_ns / 2;
    return false;
}

/* After a message that we had to wait for: what the wait says about spinning. */
static void spin_learn(ring_spinner *sp, const ring_incoming *in, int64_t slept_ns)
{
    int cpu = plat_current_cpu();
    sp->peer_here = in->sender_cpu >= 0 && in->sender_cpu == cpu;
    if (sp->peer_here)
        return;
    if (slept_ns > 0 && slept_ns < RING_SPIN_MAX_NS) {
        int64_t want = slept_ns + slept_ns / 2;
        if (want < RING_SPIN_MIN_NS)
            want = RING_SPIN_MIN_NS;
        sp->budget_ns = (uint32_t)(want > RING_SPIN_MAX_NS ? RING_SPIN_MAX_NS : want);
    }
}

/* Moves head to `next` (the consumer's side of a take): past a record, a pad, or up to
 * tail when the records' framing is lost. `good` counts a message received. */
static void consume(const seg_view *v, seg_mailbox *mb, uint64_t head, uint64_t next, bool good)
{
    uint64_t tail = atomic_load(&mb->tail);
    atomic_store(&mb->head, next);
    /* Senders asleep on a full mailbox are woken together when it has drained to half (in
     * records and bytes) and again when it is empty, not once per message taken. A sender
     * sleeps only if head has not moved since it found no room, so one of these crossings
     * is still ahead of it, and it is counted in tx_waiting by then. */
    ring_fill before, after;
    if (fill_between(v, head, tail, &before) && fill_between(v, next, tail, &after) &&
        ((!at_most_half(v, before) && at_most_half(v, after)) ||
         (after.records == 0 && before.records != 0)))
        wake_senders(mb);
    if (good)
        atomic_fetch_add_explicit(&mb->received, 1, memory_order_relaxed);
}

/* Head passed a record taken out of order: one fewer to discount (owner only; a
 * scribbled count is clamped where it is read). */
static void forget_taken(seg_mailbox *mb)
{
    uint32_t n = atomic_load_explicit(&mb->taken_ahead, memory_order_relaxed);
    if (n != 0)
        atomic_store_explicit(&mb->taken_ahead, n - 1, memory_order_relaxed);
}

static bool interrupted(_Atomic uint32_t *interrupt)
{
    return interrupt != NULL && atomic_load_explicit(interrupt, memory_order_relaxed) != 0 &&
           atomic_exchange(interrupt, 0) != 0;
}

static mbx_err take_or_peek(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                            int timeout_ms, ring_spinner *spin, bool keep,
                            _Atomic uint32_t *interrupt)
{
    lazy_deadline d = {.timeout_ms = timeout_ms};
    bool waited = false;
    int64_t slept_since = 0; /* when we last went to sleep, 0 if we did not */
    seg_mailbox *mb = segment_mailbox(v, slot);
    for (;;) {
        if (interrupted(interrupt))
            return MBX_EINTR;
        mbx_err err = own_slot(v, slot, gen);
        if (err != MBX_OK)
            return err;
        uint64_t head = atomic_load_explicit(&mb->head, memory_order_relaxed);
        uint64_t tail = atomic_load(&mb->tail);
        ring_fill f;
        if (!fill_between(v, head, tail, &f))
            return MBX_ECORRUPT;
        if (tail != head) {
            seg_record hdr;
            uint64_t next;
            switch (frame_record(v, mb, head, f, &hdr, &next)) {
            case RECORD_PAD:
                consume(v, mb, head, next, false);
                continue;
            case RECORD_LOST:
                /* Nothing says where the next record starts: what is left is dropped,
                 * so that a scribble costs messages, never a wedged mailbox. */
                consume(v, mb, head, tail, false);
                atomic_store_explicit(&mb->taken_ahead, 0, memory_order_relaxed);
                return MBX_ECORRUPT;
            case RECORD_MESSAGE:
                break;
            }
            if ((hdr.kind & CELL_TAKEN) != 0) {
                consume(v, mb, head, next, false); /* taken earlier, out of order (ring_find) */
                forget_taken(mb);
                continue;
            }
            err = read_record(v, mb, head, &hdr, out);
            out->position = head;
            /* A corrupt record is skipped so one bad message cannot wedge the mailbox. */
            if (err != MBX_OK || !keep)
                consume(v, mb, head, next, err == MBX_OK);
            if (err == MBX_OK && waited && spin != NULL)
                spin_learn(spin, out, slept_since != 0 ? plat_now_ns() - slept_since : 0);
            return err;
        }
        /* Empty: deliver everything before reporting a shutdown, lose nothing. */
        out->scanned = tail;
        err = namespace_state(v);
        if (err != MBX_OK)
            return err;
        if (timeout_ms == 0)
            return MBX_ETIMEDOUT;
        int64_t now = plat_now_ns();
        if (now >= deadline_of(&d))
            return MBX_ETIMEDOUT;
        waited = true;
        if (spin != NULL && spin_for_message(mb, head, spin, now, deadline_of(&d), interrupt))
            continue;
        slept_since = plat_now_ns();
        shm_wait message = {.sem = &mb->items,
                            .sleepers = &mb->rx_sleeping,
                            .word = &mb->tail,
                            .seen = head,
                            .interrupt = interrupt};
        shm_wait_once(&message, shm_sleep_until(deadline_of(&d), now));
    }
}

mbx_err ring_take(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt)
{
    return take_or_peek(v, slot, gen, out, timeout_ms, spin, false, interrupt);
}

mbx_err ring_peek(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt)
{
    return take_or_peek(v, slot, gen, out, timeout_ms, spin, true, interrupt);
}

mbx_err ring_find(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_match match, ring_still still, void *arg, ring_spinner *spin,
                  _Atomic uint32_t *interrupt)
{
    lazy_deadline d = {.timeout_ms = timeout_ms};
    seg_mailbox *mb = segment_mailbox(v, slot);
    uint64_t scanned = atomic_load_explicit(&mb->head, memory_order_relaxed);
    bool waited = false;
    int64_t slept_since = 0; /* when we last went to sleep, 0 if we did not */
    for (;;) {
        if (interrupted(interrupt))
            return MBX_EINTR;
        mbx_err err = own_slot(v, slot, gen);
        if (err != MBX_OK)
            return err;
        uint64_t head = atomic_load_explicit(&mb->head, memory_order_relaxed);
        uint64_t tail = atomic_load(&mb->tail);
        ring_fill f, left;
        if (!fill_between(v, head, tail, &f))
            return MBX_ECORRUPT;
        if (!fill_between(v, scanned, tail, &left) || left.bytes > f.bytes)
            scanned = head; /* head moved past what we had looked at */
        /* Look at what came since the last look. Only the owner writes records in
         * [head, tail), so marking one taken races with nobody. */
        while (scanned != tail) {
            seg_record hdr;
            uint64_t next;
            (void)fill_between(v, scanned, tail, &left); /* within [head, tail): valid */
            record_frame frame = frame_record(v, mb, scanned, left, &hdr, &next);
            if (frame == RECORD_LOST) {
                if (scanned != head)
                    break; /* the records before it are good: takes deliver them first */
                consume(v, mb, head, tail, false);
                atomic_store_explicit(&mb->taken_ahead, 0, memory_order_relaxed);
                return MBX_ECORRUPT;
            }
            uint64_t at = scanned;
            scanned = next;
            if (frame == RECORD_PAD || (hdr.kind & CELL_TAKEN) != 0 || !match(&hdr, arg))
                continue;
            err = read_record(v, mb, at, &hdr, out);
            out->position = at;
            out->scanned = next;
            segment_record(v, mb, at)->kind = hdr.kind | CELL_TAKEN;
            if (at == head) {
                consume(v, mb, head, next, err == MBX_OK);
            } else {
                atomic_store_explicit(&mb->taken_ahead,
                                      atomic_load_explicit(&mb->taken_ahead,
                                                           memory_order_relaxed) + 1,
                                      memory_order_relaxed);
                if (err == MBX_OK)
                    atomic_fetch_add_explicit(&mb->received, 1, memory_order_relaxed);
            }
            if (err == MBX_OK && waited && spin != NULL)
                spin_learn(spin, out, slept_since != 0 ? plat_now_ns() - slept_since : 0);
            return err;
        }
        out->scanned = scanned;
        err = namespace_state(v);
        if (err != MBX_OK)
            return err;
        err = still(arg);
        if (err != MBX_OK) {
            /* Gone, perhaps only after answering: a responder writes its reply (tail)
             * before it leaves (its slot's state), so a tail that moved since the look
             * above may hold the reply. Looked at once more; nothing new: gone. */
            if (atomic_load(&mb->tail) != tail)
                continue;
            return err;
        }
        int64_t now = plat_now_ns();
        if (timeout_ms == 0 || now >= deadline_of(&d))
            return MBX_ETIMEDOUT;
        /* A reply often comes within microseconds: watch for a while first, as a take does
         * (the same learned budget), then sleep. */
        waited = true;
        if (spin != NULL && spin_for_message(mb, tail, spin, now, deadline_of(&d), interrupt))
            continue;
        slept_since = plat_now_ns();
        /* Sleep until tail moves past what we looked at: the same wait as a take, in
         * slices short enough to notice a requester's peer going (still). */
        shm_wait reply = {.sem = &mb->items,
                          .sleepers = &mb->rx_sleeping,
                          .word = &mb->tail,
                          .seen = tail,
                          .interrupt = interrupt};
        shm_wait_once(&reply, min64(deadline_of(&d), now + RING_FIND_SLICE_NS));
    }
}

mbx_err ring_commit(const seg_view *v, uint32_t slot, uint32_t gen, uint64_t position)
{
    mbx_err err = own_slot(v, slot, gen);
    if (err != MBX_OK)
        return err;
    seg_mailbox *mb = segment_mailbox(v, slot);
    uint64_t head = atomic_load_explicit(&mb->head, memory_order_relaxed);
    uint64_t tail = atomic_load(&mb->tail);
    ring_fill f;
    if (!fill_between(v, head, tail, &f))
        return MBX_ECORRUPT;
    if (head != position || tail == head)
        return MBX_EINVAL;
    /* Framed again: the record's size may have been scribbled since the peek. */
    seg_record hdr;
    uint64_t next;
    if (frame_record(v, mb, head, f, &hdr, &next) != RECORD_MESSAGE) {
        consume(v, mb, head, tail, false);
        atomic_store_explicit(&mb->taken_ahead, 0, memory_order_relaxed);
        return MBX_ECORRUPT;
    }
    consume(v, mb, head, next, true);
    return MBX_OK;
}

mbx_err ring_hold(const seg_view *v, uint32_t slot, uint32_t gen, int64_t deadline_ns,
                  ring_batch *b)
{
    lazy_deadline d = {.known = true, .at = deadline_ns};
    mbx_err err = lock_mailbox(v, slot, gen, &d, false, &b->tok);
    if (err != MBX_OK)
        return err;
    err = own_slot(v, slot, gen);
    if (err != MBX_OK) {
        plat_mutex_unlock(&segment_mailbox(v, slot)->lock, &b->tok);
        return err;
    }
    b->slot = slot;
    b->gen = gen;
    b->tail = atomic_load_explicit(&segment_mailbox(v, slot)->tail, memory_order_relaxed);
    b->appended = false;
    return MBX_OK;
}

mbx_err ring_append(const seg_view *v, ring_batch *b, const ring_outgoing *msg)
{
    if (msg->len > v->max_message || msg->topic_len > v->max_message - msg->len)
        return MBX_ETOOLARGE;
    seg_mailbox *mb = segment_mailbox(v, b->slot);
    size_t from_len = strnlen(msg->from_name, MBX_NAME_MAX);
    uint32_t size = record_size(msg, from_len);
    ring_fill f;
    if (!fill_between(v, atomic_load(&mb->head), b->tail, &f))
        return MBX_ECORRUPT;
    uint32_t pad;
    if (!room_at(v, b->tail, f, size, &pad)) {
        atomic_fetch_add_explicit(&mb->refused_full, 1, memory_order_relaxed);
        return MBX_EFULL;
    }
    b->tail = append_record(v, mb, b->tail, pad, size, msg, from_len);
    b->appended = true;
    return MBX_OK;
}

void ring_release(const seg_view *v, ring_batch *b)
{
    seg_mailbox *mb = segment_mailbox(v, b->slot);
    if (b->appended)
        atomic_store(&mb->tail, b->tail); /* publish: the whole batch exists from here */
    plat_mutex_unlock(&mb->lock, &b->tok);
    if (!b->appended)
        return;
    /* Another thread of ours may be asleep in a receive, or an event loop armed. */
    if (atomic_load(&mb->rx_sleeping) != 0 && atomic_exchange(&mb->rx_sleeping, 0) != 0)
        plat_sem_post(&mb->items);
    wake_notify(v, mb);
}

mbx_err ring_close(const seg_view *v, uint32_t slot, uint32_t gen, int64_t deadline_ns)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    plat_lock_token tok;
    plat_lock_rc rc = plat_mutex_lock(&mb->lock, deadline_ns, &tok);
    if (rc == PLAT_LOCK_BUSY || rc == PLAT_LOCK_BROKEN)
        return MBX_ETIMEDOUT;
    mbx_err err = own_slot(v, slot, gen);
    if (err == MBX_OK)
        atomic_store(&mb->closing, 1);
    plat_mutex_unlock(&mb->lock, &tok);
    return err;
}

bool ring_open(const seg_view *v, uint32_t slot)
{
    return atomic_load_explicit(&segment_mailbox(v, slot)->closing, memory_order_relaxed) == 0;
}

/* Reads head and tail as one state: head is read again after tail, and a read that raced
 * with a take is retried (head then tail, taken apart, can span more than a full ring). */
static bool read_fill(const seg_view *v, seg_mailbox *mb, ring_fill *f)
{
    for (int tries = 0;; tries++) {
        uint64_t head = atomic_load(&mb->head);
        uint64_t tail = atomic_load(&mb->tail);
        bool ok = fill_between(v, head, tail, f);
        if (atomic_load(&mb->head) == head || tries == 8)
            return ok;
    }
}

uint64_t ring_waiting(const seg_view *v, uint32_t slot)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    ring_fill f;
    if (!read_fill(v, mb, &f))
        return 0;
    /* Less what the owner took out of order and head has not passed yet. */
    uint32_t taken = atomic_load_explicit(&mb->taken_ahead, memory_order_relaxed);
    return taken < f.records ? f.records - taken : 0;
}

bool ring_indices_valid(const seg_view *v, uint32_t slot)
{
    ring_fill f;
    return read_fill(v, segment_mailbox(v, slot), &f);
}

bool ring_empty(const seg_view *v, uint32_t slot, void (*under_lock)(void *arg), void *arg,
                uint64_t *dropped)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    plat_lock_token tok;
    *dropped = 0;
    plat_lock_rc rc = plat_mutex_try_take(&mb->lock, &tok);
    if (rc == PLAT_LOCK_BUSY || rc == PLAT_LOCK_BROKEN)
        return false;
    /* No sender is between its check of the slot and its publish now. Emptying moves
     * head up to tail: the old cells lie behind both for good, so nothing a late writer
     * left in them can ever be read as a message of the next owner. */
    uint64_t tail = atomic_load(&mb->tail);
    uint64_t head = atomic_load(&mb->head);
    ring_fill f;
    *dropped = fill_between(v, head, tail, &f) ? f.records : 0;
    /* A tail off the record grid (a scribble) is put back on it, with head. */
    tail &= ~(uint64_t)(SEG_RECORD_ALIGN - 1);
    atomic_store(&mb->tail, tail);
    atomic_store(&mb->head, tail);
    atomic_store(&mb->rx_sleeping, 0);
    atomic_store(&mb->closing, 0);
    atomic_store(&mb->taken_ahead, 0);
    /* Senders asleep for space are woken (they find the slot changed hands), then the count
     * starts again from zero: a sender killed while asleep left its announcement behind,
     * and the woken ones take theirs back without going below zero (shm_wait.h). */
    wake_senders(mb);
    atomic_store(&mb->tx_waiting, 0);
    wake_reset(v, mb); /* the old owner's handle looks one last time, then is forgotten */
    /* The namespace's totals keep what this mailbox counted (short-lived clients count). */
    seg_header *h = segment_header(v);
    atomic_fetch_add(&h->gone_sent, atomic_exchange(&mb->sent, 0));
    atomic_fetch_add(&h->gone_received, atomic_exchange(&mb->received, 0));
    atomic_fetch_add(&h->gone_refused_full, atomic_exchange(&mb->refused_full, 0));
    atomic_store(&mb->late_replies, 0);
    atomic_store(&mb->dropped, 0);
    atomic_store(&mb->missed, 0);
    plat_sem_drain(&mb->items);
    if (under_lock != NULL)
        under_lock(arg);
    plat_mutex_unlock(&mb->lock, &tok);
    return true;
}

void ring_wake_all(const seg_view *v, uint32_t slot)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    plat_wake_signal(&v->wake_place, &mb->wake); /* an owner in an event loop looks too */
    plat_sem_post(&mb->items);
    plat_sem_post(&mb->space);
    wake_senders(mb);
}
