/* ring_recv.c: the owner's side of a mailbox: take, peek, find by correlation, commit,
 * and the adaptive spin before sleeping (ring.h has the protocol). */
#include <string.h>

#include "ring_internal.h"
#include "shm_wait.h"

/* ring_find's longest sleep: how soon a requester notices its responder went. */
#define RING_FIND_SLICE_NS (200LL * 1000 * 1000)

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
    atomic_store(&mb->head, next);
    /* Senders asleep on a full mailbox are woken together when it has drained to half (in
     * records and bytes) and again when it is empty, not once per message taken. A sender
     * sleeps only if head has not moved since it found no room, so one of these crossings
     * is still ahead of it, and it is counted in tx_waiting by then (a Dekker pair: it
     * adds itself, then loads head; we store head, then load the count). So tail, the
     * senders' line, is read again only while someone sleeps: a take of a receiver that
     * keeps up would otherwise take that line from the next sender once more. The tail
     * read here is at least the one the sleeper found no room against: its add (a
     * release) is what our load of the count (an acquire) read, and that tail was
     * published before the lock it took (ring_send.c). */
    if (atomic_load(&mb->tx_waiting) != 0) {
        uint64_t tail = atomic_load(&mb->tail);
        ring_fill before, after;
        if (fill_between(v, head, tail, &before) && fill_between(v, next, tail, &after) &&
            ((!at_most_half(v, before) && at_most_half(v, after)) ||
             (after.records == 0 && before.records != 0)))
            ring_wake_senders(mb);
    }
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

/* One more record taken ahead of head, out of order (owner only). */
static void taken_ahead_add(seg_mailbox *mb)
{
    atomic_store_explicit(&mb->taken_ahead,
                          atomic_load_explicit(&mb->taken_ahead, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static bool interrupted(_Atomic uint32_t *interrupt)
{
    return interrupt != NULL && atomic_load_explicit(interrupt, memory_order_relaxed) != 0 &&
           atomic_exchange(interrupt, 0) != 0;
}

static mbx_err take_or_peek(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                            int timeout_ms, ring_spinner *spin, bool keep,
                            _Atomic uint32_t *interrupt, plat_signal_hold *hold)
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
            switch (ring_frame_record(v, mb, head, f, &hdr, &next)) {
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
            err = ring_read_record(v, mb, head, &hdr, out);
            out->position = head;
            out->next = next;
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
        if (v->stop_on_signal)
            plat_signals_hold(hold); /* from here to the sleep (platform.h) */
        if (spin != NULL && spin_for_message(mb, head, spin, now, deadline_of(&d), interrupt))
            continue;
        slept_since = plat_now_ns();
        shm_wait message = {.sem = &mb->items,
                            .sleepers = &mb->rx_sleeping,
                            .word = &mb->tail,
                            .seen = head,
                            .interrupt = interrupt,
                            .hold = hold};
        if (shm_wait_once(&message, shm_sleep_until(deadline_of(&d), now)) == MBX_ESIGNAL &&
            v->stop_on_signal)
            return MBX_ESIGNAL;
    }
}

mbx_err ring_take(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt)
{
    plat_signal_hold hold = {.held = false};
    mbx_err err = take_or_peek(v, slot, gen, out, timeout_ms, spin, false, interrupt, &hold);
    plat_signals_release(&hold);
    return err;
}

mbx_err ring_peek(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt)
{
    plat_signal_hold hold = {.held = false};
    mbx_err err = take_or_peek(v, slot, gen, out, timeout_ms, spin, true, interrupt, &hold);
    plat_signals_release(&hold);
    return err;
}

static mbx_err find(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                    int timeout_ms, ring_match match, ring_still still, void *arg,
                    ring_spinner *spin, _Atomic uint32_t *interrupt, plat_signal_hold *hold)
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
            record_frame frame = ring_frame_record(v, mb, scanned, left, &hdr, &next);
            if (frame == RECORD_LOST) {
                if (scanned != head)
                    break; /* the records before it are good: takes deliver them first */
                consume(v, mb, head, tail, false);
                atomic_store_explicit(&mb->taken_ahead, 0, memory_order_relaxed);
                return MBX_ECORRUPT;
            }
            uint64_t at = scanned;
            scanned = next;
            if (frame == RECORD_PAD || (hdr.kind & CELL_TAKEN) != 0) {
                /* At head: passed for good, as a take does. Left there, a client that
                 * only makes requests kept a wrap's pad at its head, and after one lap
                 * of its ring every reply was refused as full. */
                if (at == head) {
                    consume(v, mb, head, next, false);
                    if (frame != RECORD_PAD)
                        forget_taken(mb);
                    head = next;
                }
                continue;
            }
            ring_verdict verdict = match(&hdr, arg);
            if (verdict == RING_PASS)
                continue;
            if (verdict == RING_DROP) {
                segment_record(v, mb, at)->kind = hdr.kind | CELL_TAKEN;
                if (at == head) {
                    consume(v, mb, head, next, false);
                    head = next;
                } else {
                    taken_ahead_add(mb);
                }
                continue;
            }
            err = ring_read_record(v, mb, at, &hdr, out);
            out->position = at;
            out->scanned = next;
            segment_record(v, mb, at)->kind = hdr.kind | CELL_TAKEN;
            if (at == head) {
                consume(v, mb, head, next, err == MBX_OK);
            } else {
                taken_ahead_add(mb);
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
        if (v->stop_on_signal)
            plat_signals_hold(hold); /* from here to the sleep (platform.h) */
        if (spin != NULL && spin_for_message(mb, tail, spin, now, deadline_of(&d), interrupt))
            continue;
        slept_since = plat_now_ns();
        /* Sleep until tail moves past what we looked at: the same wait as a take, in
         * slices short enough to notice a requester's peer going (still). */
        shm_wait reply = {.sem = &mb->items,
                          .sleepers = &mb->rx_sleeping,
                          .word = &mb->tail,
                          .seen = tail,
                          .interrupt = interrupt,
                          .hold = hold};
        if (shm_wait_once(&reply, min64(deadline_of(&d), now + RING_FIND_SLICE_NS)) ==
                MBX_ESIGNAL &&
            v->stop_on_signal)
            return MBX_ESIGNAL;
    }
}

mbx_err ring_find(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_match match, ring_still still, void *arg, ring_spinner *spin,
                  _Atomic uint32_t *interrupt)
{
    plat_signal_hold hold = {.held = false};
    mbx_err err = find(v, slot, gen, out, timeout_ms, match, still, arg, spin, interrupt, &hold);
    plat_signals_release(&hold);
    return err;
}

mbx_err ring_peek_at(const seg_view *v, uint32_t slot, uint32_t gen, uint64_t position,
                     ring_incoming *out)
{
    mbx_err err = own_slot(v, slot, gen);
    if (err != MBX_OK)
        return err;
    seg_mailbox *mb = segment_mailbox(v, slot);
    uint64_t head = atomic_load_explicit(&mb->head, memory_order_relaxed);
    uint64_t tail = atomic_load(&mb->tail);
    ring_fill all, before;
    if (!fill_between(v, head, tail, &all))
        return MBX_ECORRUPT;
    /* Between head and tail in both counts, or stale (acknowledged past, or not ours). */
    if (!fill_between(v, head, position, &before) || before.records > all.records ||
        before.bytes > all.bytes)
        return MBX_EINVAL;
    uint64_t at = position;
    for (;;) {
        ring_fill f;
        if (!fill_between(v, at, tail, &f))
            return MBX_ECORRUPT;
        if (at == tail) {
            out->scanned = tail;
            err = namespace_state(v);
            return err != MBX_OK ? err : MBX_ETIMEDOUT;
        }
        seg_record hdr;
        uint64_t next;
        switch (ring_frame_record(v, mb, at, f, &hdr, &next)) {
        case RECORD_PAD:
            at = next;
            continue;
        case RECORD_LOST:
            return MBX_ECORRUPT;
        case RECORD_MESSAGE:
            break;
        }
        if ((hdr.kind & CELL_TAKEN) != 0) {
            at = next;
            continue;
        }
        err = ring_read_record(v, mb, at, &hdr, out);
        out->position = at;
        out->next = next;
        return err;
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
    /* Framed again: the record's size may have been scribbled since the peek. Padding and
     * records taken out of order before it (a message mbx_peek_after handed out sits
     * behind them) are passed first, as a receive would. */
    for (;;) {
        if (tail == head)
            return MBX_EINVAL;
        seg_record hdr;
        uint64_t next;
        record_frame rf = ring_frame_record(v, mb, head, f, &hdr, &next);
        if (rf == RECORD_LOST) {
            consume(v, mb, head, tail, false);
            atomic_store_explicit(&mb->taken_ahead, 0, memory_order_relaxed);
            return MBX_ECORRUPT;
        }
        if (head == position && rf == RECORD_MESSAGE && (hdr.kind & CELL_TAKEN) == 0) {
            consume(v, mb, head, next, true);
            return MBX_OK;
        }
        if (rf == RECORD_MESSAGE && (hdr.kind & CELL_TAKEN) == 0)
            return MBX_EINVAL; /* a message before it: it is not the oldest */
        consume(v, mb, head, next, false);
        if (rf == RECORD_MESSAGE)
            forget_taken(mb);
        head = next;
        if (!fill_between(v, head, tail, &f))
            return MBX_ECORRUPT;
    }
}
