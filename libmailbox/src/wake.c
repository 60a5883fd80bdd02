/* wake.c: see wake.h, and mbx_wait_handle() in mailbox.h. */
#include "client.h"
#include "ring.h"
#include "wake.h"

/* mbx_busy_poll: yields at most this many times in a call (the sender on our CPU). */
#define BUSY_POLL_YIELDS 2

void wake_reset(const seg_view *v, seg_mailbox *mb)
{
    plat_wake_signal(&v->wake_place, &mb->wake);
    plat_wake_reset(&v->wake_place, &mb->wake);
    atomic_store(&mb->rx_wake, WAKE_IDLE);
}

/* A state that ends the owner's receives: it must look. */
static bool client_ending(const mbx_client *c)
{
    if (atomic_load(&segment_header(&c->view)->state) != SEG_READY)
        return true;
    seg_dir_entry *e = segment_dir(&c->view, c->slot);
    return atomic_load(&e->state) != SLOT_ACTIVE || atomic_load(&e->generation) != c->generation;
}

/* Anything for the owner to look at past `seen`: a message, or an ending state. */
static bool news_since(const mbx_client *c, uint64_t seen)
{
    seg_mailbox *mb = segment_mailbox(&c->view, c->slot);
    return atomic_load(&mb->tail) != seen || client_ending(c);
}

void client_wake_arm(mbx_client *c, uint64_t seen)
{
    if (c->wake == PLAT_NO_HANDLE)
        return;
    seg_mailbox *mb = segment_mailbox(&c->view, c->slot);
    /* Quiet first, then ARMED, then one more look: a message published in between is seen
     * here (and we signal ourselves), or its sender sees ARMED and signals (our store and
     * load are sequentially consistent; the sender fences between its store of tail and
     * its load of the word).
     *
     * Making the handle quiet is a system call, and an event loop that busy-polls
     * (mbx_busy_poll), taking a message, answering it and arming again, would pay it on
     * every message. There the word is IDLE (mbx_busy_poll's), and unless mbx_busy_poll
     * replaced a NOTIFIED (wake_dirty) no sender has signalled since the handle was last
     * emptied: such an arm, after a look that found something new, leaves the handle as
     * it is. Anything a member put into the handle meanwhile (a forged signal, junk
     * datagrams: a Linux datagram queue holds ten, and a signal that does not fit makes
     * no edge for an edge-triggered loop) is emptied before the loop can sleep: an arm
     * after a look that found nothing new, and mbx_busy_poll's arm when it gives up,
     * always empty it; so does every arm of a loop that does not busy-poll (the word is
     * ARMED or NOTIFIED then), as before. */
    uint32_t word = atomic_load(&mb->rx_wake);
    bool quiet = word == WAKE_IDLE && !c->wake_dirty && seen != c->wake_armed_at;
    if (!quiet) {
        plat_wake_clear(&mb->wake, c->wake);
        c->wake_dirty = false;
    }
    c->wake_armed_at = seen;
    atomic_store(&mb->rx_wake, WAKE_ARMED);
    if (news_since(c, seen))
        wake_notify(&c->view, mb);
}

mbx_err mbx_wait_handle(mbx_client *c, mbx_handle *out)
{
    if (c == NULL || out == NULL || c->send_only || !client_ours(c))
        return MBX_EINVAL;
    /* The handle and the arming state belong to the one receiving thread (a receive
     * arms it): making it while another thread receives would race with that. */
    if (atomic_flag_test_and_set(&c->receiving))
        return MBX_EINVAL;
    mbx_err err = MBX_OK;
    if (c->wake == PLAT_NO_HANDLE) {
        plat_handle h;
        err = plat_wake_create(&c->view.wake_place, &segment_mailbox(&c->view, c->slot)->wake,
                               c->namespace_name, &h);
        if (err == MBX_OK) {
            c->wake = h;
            c->wake_dirty = true; /* not emptied yet */
            /* Nothing looked at yet: whatever waits is news. */
            client_wake_arm(c, atomic_load(&segment_mailbox(&c->view, c->slot)->head));
        }
    }
    if (err == MBX_OK)
        *out = (mbx_handle)c->wake;
    atomic_flag_clear(&c->receiving);
    return err;
}

static mbx_err busy_poll(mbx_client *c, int max_us)
{
    seg_mailbox *mb = segment_mailbox(&c->view, c->slot);
    /* While we watch, a sender sees IDLE and makes no system call for the handle: that
     * call and the kernel's wake-up are what busy polling saves. A byte already in the
     * handle stays until we arm again (readable once more, never a lost wake-up). */
    if (c->wake != PLAT_NO_HANDLE && atomic_exchange(&mb->rx_wake, WAKE_IDLE) == WAKE_NOTIFIED)
        c->wake_dirty = true; /* its signal is in the handle until we arm */
    /* What the caller has looked at: up to where it last took (it calls us after a
     * receive found nothing, so head is where that receive looked). */
    uint64_t seen = atomic_load_explicit(&mb->head, memory_order_relaxed);
    int64_t until = plat_now_ns() + (int64_t)max_us * 1000;
    int peer_cpu = c->last_sender_cpu;
    int yields = max_us > 0 ? BUSY_POLL_YIELDS : 0;
    do {
        /* The last sender ran on this CPU: spinning would only keep it from running (and
         * every round trip would cost the whole spin). Give the CPU up between looks, as
         * the blocking receive does (ring_recv.c), a few times at most: a yield may not
         * give the CPU back before the system's time slice ends (then the call returns
         * that much later than max_us), and the hint may be stale. */
        bool yield = yields > 0 && peer_cpu >= 0 && peer_cpu == plat_current_cpu();
        for (int i = 0; i < 64; i++) {
            /* Any difference, a corrupt one too: the receive that follows reports it. */
            if (atomic_load_explicit(&mb->tail, memory_order_acquire) != seen)
                return MBX_OK;
            if (yield) {
                yields--;
                plat_yield();
                break;
            }
            plat_cpu_relax();
        }
        if (atomic_load_explicit(&c->interrupted, memory_order_relaxed) != 0 || client_ending(c))
            return MBX_OK; /* the receive that follows says what it is */
    } while (plat_now_ns() < until);
    /* On the way to a sleep: whatever is in the handle goes (client_wake_arm). */
    c->wake_dirty = true;
    client_wake_arm(c, seen);
    return news_since(c, seen) ? MBX_OK : MBX_ETIMEDOUT;
}

mbx_err mbx_busy_poll(mbx_client *c, int max_us)
{
    if (c == NULL || c->send_only || !client_ours(c) || max_us < 0 || max_us > MBX_BUSY_POLL_MAX_US)
        return MBX_EINVAL;
    /* As a receive: one thread at a time (it arms the handle, as a receive does). */
    if (atomic_flag_test_and_set(&c->receiving))
        return MBX_EINVAL;
    mbx_err err = busy_poll(c, max_us);
    atomic_flag_clear(&c->receiving);
    return err;
}
