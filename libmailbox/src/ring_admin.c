/* ring_admin.c: what anyone may ask of a mailbox (how much waits, whether its indices are
 * sane) and the broker's maintenance: emptying it for a new owner, waking everyone. */
#include "ring_internal.h"
#include "wake.h"

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
    atomic_store(&mb->head_cache, tail);
    atomic_store(&mb->tx_starving_until_ms, 0);
    atomic_store(&mb->rx_sleeping, 0);
    atomic_store(&mb->closing, 0);
    atomic_store(&mb->taken_ahead, 0);
    /* Senders asleep for space are woken (they find the slot changed hands), then the count
     * starts again from zero: a sender killed while asleep left its announcement behind,
     * and the woken ones take theirs back without going below zero (shm_wait.h). */
    ring_wake_senders(mb);
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
    atomic_store(&mb->once, 0);
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
    ring_wake_senders(mb);
}

bool ring_mend_head_cache(const seg_view *v, uint32_t slot)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    uint64_t copy = atomic_load(&mb->head_cache);
    uint64_t head = atomic_load(&mb->head);
    ring_fill behind;
    if (copy == head || fill_between(v, copy, head, &behind))
        return false;
    /* A sender may have refreshed it meanwhile: only what was read is replaced. */
    return atomic_compare_exchange_strong(&mb->head_cache, &copy, head);
}
