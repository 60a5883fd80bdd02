/* ring_send.c: the senders' side of a mailbox: the lock, waiting for space and for one's
 * turn, the owner's batch, closing to senders (ring.h has the protocol). */
#include <string.h>

#include "fault.h"
#include "ring_internal.h"
#include "shm_wait.h"
#include "wake.h"

/* A lock is held for one copy; one held longer than this belongs to a stopped process
 * or is corrupt, and the caller gets an error instead of waiting on. */
#define RING_LOCK_GRACE_NS (1000LL * 1000 * 1000)

/* True while a sender that waited long for space asks newcomers to queue (any value is a
 * hint: a scribbled one at worst makes newcomers wait for the sleepers, up to their own
 * deadlines, and the broker's scrub puts far-off values back). */
static bool someone_starves(seg_mailbox *mb)
{
    uint32_t until = atomic_load_explicit(&mb->tx_starving_until_ms, memory_order_relaxed);
    if (until == 0)
        return false;
    uint32_t now_ms = (uint32_t)(plat_now_ns() / 1000000);
    if ((int32_t)(until - now_ms) > 0)
        return true;
    /* Over: cleared, so that later sends read no clock for it (a starving sender says so
     * again every time it sleeps). */
    atomic_compare_exchange_strong(&mb->tx_starving_until_ms, &until, 0);
    return false;
}

/* How a sender waits for a mailbox's lock: as long as a holder normally keeps it (and at
 * least RING_LOCK_GRACE_NS), a few polls (a monitor's copy: its holder is another sender
 * copying one message), or not at all (the broker). */
typedef enum lock_wait { LOCK_WAIT, LOCK_BRIEFLY, LOCK_NEVER } lock_wait;

/* Polls a held lock RING_BRIEF_LOCK_POLLS times, yielding the CPU every few: on two CPUs
 * the holder may be a preempted sender that needs ours to finish its copy. */
static plat_lock_rc lock_briefly(plat_mutex *lock, plat_lock_token *tok)
{
    plat_lock_rc rc = PLAT_LOCK_BUSY;
    for (int i = 1; i <= RING_BRIEF_LOCK_POLLS && rc == PLAT_LOCK_BUSY; i++) {
        if (i % RING_SPACE_YIELD_EVERY == 0)
            plat_yield();
        else
            plat_cpu_relax();
        rc = plat_mutex_trylock(lock, tok);
    }
    return rc;
}

/* Whether a monitor's copy to mb, finding its lock held by `holder`, should not poll: a
 * copy gave up on that same holder less than RING_COPY_STALL_MS ago (a lock that changed
 * hands since is contention, which polling rides out). One load while not marked; a
 * clock read only while marked. */
static bool copies_stalled(seg_mailbox *mb, uint64_t holder)
{
    uint32_t until = atomic_load_explicit(&mb->copy_stall_until_ms, memory_order_relaxed);
    if (until == 0)
        return false;
    if (holder == 0 || holder != atomic_load_explicit(&mb->copy_stall_holder, memory_order_relaxed))
        return false;
    int32_t left = (int32_t)(until - (uint32_t)(plat_now_ns() / 1000000));
    if (left > 0 && left <= 2 * RING_COPY_STALL_MS)
        return true;
    /* Over (or garbage): polling again; the next copy that gives up marks it again. */
    atomic_compare_exchange_strong(&mb->copy_stall_until_ms, &until, 0);
    return false;
}

static void mark_copies_stalled(seg_mailbox *mb, uint64_t holder)
{
    uint32_t until = (uint32_t)(plat_now_ns() / 1000000 + RING_COPY_STALL_MS) | 1u;
    atomic_store_explicit(&mb->copy_stall_holder, holder, memory_order_relaxed);
    atomic_store_explicit(&mb->copy_stall_until_ms, until, memory_order_relaxed);
}

/* A monitor's copy that did not go in: counted as a drop-policy subscriber's publication
 * is, and told with the next copy that does (fill_record). */
static void count_missed_copy(seg_mailbox *mb)
{
    atomic_fetch_add_explicit(&mb->dropped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mb->missed, 1, memory_order_relaxed);
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
                            lock_wait how, plat_lock_token *tok)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    plat_lock_rc rc = plat_mutex_trylock(&mb->lock, tok);
    if (rc == PLAT_LOCK_BUSY && how == LOCK_BRIEFLY) {
        /* Polled a while, then its holder judged once: a sender killed in the middle of
         * its copy is taken over (repaired below), or no copy would ever go in again. */
        if (!copies_stalled(mb, plat_mutex_owner(&mb->lock))) {
            rc = lock_briefly(&mb->lock, tok);
            if (rc == PLAT_LOCK_BUSY)
                rc = plat_mutex_try_take(&mb->lock, tok);
            if (rc == PLAT_LOCK_BUSY) /* not renewed by the copies it turns away */
                mark_copies_stalled(mb, plat_mutex_owner(&mb->lock));
        }
    }
    if (rc == PLAT_LOCK_BUSY && how != LOCK_WAIT)
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

static mbx_err put(const seg_view *v, uint32_t slot, uint32_t gen, const ring_outgoing *msg,
                   int timeout_ms, plat_signal_hold *hold)
{
    lazy_deadline d = {.timeout_ms = timeout_ms};
    if (msg->len > v->max_message || msg->topic_len > v->max_message - msg->len)
        return MBX_ETOOLARGE;
    size_t from_len = strnlen(msg->from_name, MBX_NAME_MAX);
    uint32_t size = ring_record_size(msg, from_len);
    seg_mailbox *mb = segment_mailbox(v, slot);
    bool waited = false;
    int64_t first_sleep_ns = 0; /* when we first slept for space, 0: not yet */
    int space_rounds = 0;       /* rounds spent watching a full mailbox for space */
    for (;;) {
        mbx_err err = namespace_state(v);
        if (err != MBX_OK)
            return err;
        plat_lock_token tok;
        err = lock_mailbox(v, slot, gen, &d,
                           msg->never_wait ? LOCK_NEVER
                           : msg->copy     ? LOCK_BRIEFLY
                                           : LOCK_WAIT,
                           &tok);
        if (err == MBX_ETIMEDOUT && msg->copy && slot_is(v, slot, gen))
            count_missed_copy(mb); /* its owner is the monitor we meant */
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
        if (msg->once != 0 && msg->once <= atomic_load_explicit(&mb->once, memory_order_relaxed)) {
            plat_mutex_unlock(&mb->lock, &tok);
            return MBX_REPEATED_INTERNAL; /* in already: a delivery repeated after a crash */
        }
        uint64_t tail = atomic_load_explicit(&mb->tail, memory_order_relaxed);
        /* The senders' copy of head first (never ahead of it: the fill it gives is at
         * least the real one); the owner's own line, which it writes at every take, only
         * when that copy says too full, or when someone starves (the turn below needs the
         * true fill). */
        uint64_t head = atomic_load_explicit(&mb->head_cache, memory_order_relaxed);
        bool starving = !waited && timeout_ms != 0 && someone_starves(mb);
        ring_fill f;
        uint32_t pad = 0;
        bool room = fill_between(v, head, tail, &f) && ring_room_at(v, tail, f, size, &pad);
        if (!room || starving) {
            head = atomic_load(&mb->head);
            atomic_store_explicit(&mb->head_cache, head, memory_order_relaxed);
            if (!fill_between(v, head, tail, &f)) {
                plat_mutex_unlock(&mb->lock, &tok);
                return MBX_ECORRUPT;
            }
            room = ring_room_at(v, tail, f, size, &pad);
        }
        /* Senders asleep on this mailbox are woken together when it drains to half. A
         * steady stream of newcomers can keep it above half, and a sleeper asleep past
         * its deadline (refused as full although the receiver drains all along). So a
         * sender that has waited RING_STARVE_MS says so, and while it does, a newcomer
         * that may wait queues behind the sleepers instead of taking the cells they wait
         * for. Only then: queueing costs wake-ups, and the common case never starves. */
        bool wait_turn = room && !at_most_half(v, f) && starving && plat_now_ns() < deadline_of(&d);
        if (room && !wait_turn) {
            FAULT_POINT("ring.put.locked");
            uint64_t next = ring_append_record(v, mb, tail, pad, size, msg, from_len);
            if (msg->once != 0)
                atomic_store_explicit(&mb->once, msg->once, memory_order_relaxed);
            /* Publish: the message exists from here. A release store, not a sequentially
             * consistent one, which is an xchg on x86 that has to own tail's line, the line
             * the owner watches, to complete (77% of ring_put's samples in a profile). The
             * unlock's compare-and-swap still drains the store, but measured, the send is
             * 1.3x faster so, and a fence before the unlock instead cost 4-6%. */
            atomic_store_explicit(&mb->tail, next, memory_order_release);
            FAULT_POINT("ring.put.published");
            plat_mutex_unlock(&mb->lock, &tok);
            /* Looked at before it is written: the owner's line stays shared unless it
             * sleeps. Correct as a Dekker pair: tail was stored, a sequentially consistent
             * fence, then rx_sleeping (and rx_wake) loaded, as the owner stores
             * rx_sleeping, then loads tail, both sequentially consistent. */
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load(&mb->rx_sleeping) != 0 && atomic_exchange(&mb->rx_sleeping, 0) != 0)
                plat_sem_post(&mb->items);
            wake_notify(v, mb);
            return MBX_OK;
        }
        /* Full: the owner is most likely draining it. Watch head for a while, off the
         * lock, before paying for a sleep and a wake-up at half (ring.h, "Watching for
         * space"). Nothing is announced, so nothing waits on us; head is re-read under
         * the lock on the next round. */
        if (!room && msg->copy) {
            count_missed_copy(mb); /* under the lock: the slot is the monitor's */
            plat_mutex_unlock(&mb->lock, &tok);
            return MBX_EFULL;
        }
        if (!room && timeout_ms != 0 && v->stop_on_signal)
            plat_signals_hold(hold); /* from here to the sleep (platform.h) */
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
                continue;    /* it moved meanwhile: look again */
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
                          .seen = head,
                          .hold = hold};
        if (shm_wait_once(&space, until) == MBX_ESIGNAL && v->stop_on_signal)
            return MBX_ESIGNAL; /* nothing sent, and not refused as full either */
        waited = true;
    }
}

mbx_err ring_put(const seg_view *v, uint32_t slot, uint32_t gen, const ring_outgoing *msg,
                 int timeout_ms)
{
    plat_signal_hold hold = {.held = false};
    mbx_err err = put(v, slot, gen, msg, timeout_ms, &hold);
    plat_signals_release(&hold);
    return err;
}

/* Posts `space` once per sender asleep on it (a hint count, bounded against garbage). */
void ring_wake_senders(seg_mailbox *mb)
{
    uint32_t waiting = atomic_load(&mb->tx_waiting);
    if (waiting > 4096)
        waiting = 4096;
    for (uint32_t i = 0; i < waiting; i++)
        plat_sem_post(&mb->space);
}

mbx_err ring_hold(const seg_view *v, uint32_t slot, uint32_t gen, int64_t deadline_ns,
                  ring_batch *b)
{
    lazy_deadline d = {.known = true, .at = deadline_ns};
    mbx_err err = lock_mailbox(v, slot, gen, &d, LOCK_WAIT, &b->tok);
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
    uint32_t size = ring_record_size(msg, from_len);
    ring_fill f;
    uint64_t head = atomic_load(&mb->head);
    if (!fill_between(v, head, b->tail, &f))
        return MBX_ECORRUPT;
    /* The senders' copy of head keeps within a ring of tail whoever moves tail (segment.h,
     * head_cache): the owner's batches refresh it too. */
    atomic_store_explicit(&mb->head_cache, head, memory_order_relaxed);
    uint32_t pad;
    if (!ring_room_at(v, b->tail, f, size, &pad)) {
        atomic_fetch_add_explicit(&mb->refused_full, 1, memory_order_relaxed);
        return MBX_EFULL;
    }
    b->tail = ring_append_record(v, mb, b->tail, pad, size, msg, from_len);
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
    /* A deadline already past (the broker, for a member that died) never waits. */
    plat_lock_rc rc = deadline_ns <= plat_now_ns() ? plat_mutex_try_take(&mb->lock, &tok)
                                                   : plat_mutex_lock(&mb->lock, deadline_ns, &tok);
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
