/* wake.c: see wake.h, and mbx_wait_handle() in mailbox.h. */
#include "client.h"
#include "ring.h"
#include "wake.h"

void wake_arm(seg_mailbox *mb, plat_handle h, bool (*pending)(void *arg), void *arg)
{
    plat_wake_clear(&mb->wake, h);
    atomic_store(&mb->rx_wake, WAKE_ARMED);
    if (pending(arg))
        wake_notify(mb); /* came in between: readable again, at once */
}

void wake_reset(seg_mailbox *mb)
{
    plat_wake_signal(&mb->wake);
    plat_wake_reset(&mb->wake);
    atomic_store(&mb->rx_wake, WAKE_IDLE);
}

/* Anything for the owner to look at: a message, or a state that ends its receives. */
static bool client_pending(void *arg)
{
    mbx_client *c = arg;
    if (ring_waiting(&c->view, c->slot) > 0)
        return true;
    if (atomic_load(&segment_header(&c->view)->state) != SEG_READY)
        return true;
    seg_dir_entry *e = segment_dir(&c->view, c->slot);
    return atomic_load(&e->state) != SLOT_ACTIVE || atomic_load(&e->generation) != c->generation;
}

void client_wake_arm(mbx_client *c)
{
    if (c->wake != PLAT_NO_HANDLE)
        wake_arm(segment_mailbox(&c->view, c->slot), c->wake, client_pending, c);
}

mbx_err mbx_wait_handle(mbx_client *c, mbx_handle *out)
{
    if (c == NULL || out == NULL || c->send_only)
        return MBX_EINVAL;
    if (c->wake == PLAT_NO_HANDLE) {
        plat_handle h;
        mbx_err err =
            plat_wake_create(&segment_mailbox(&c->view, c->slot)->wake, c->namespace_name, &h);
        if (err != MBX_OK)
            return err;
        c->wake = h;
        client_wake_arm(c);
    }
    *out = (mbx_handle)c->wake;
    return MBX_OK;
}

mbx_err mbx_busy_poll(mbx_client *c, int max_us)
{
    if (c == NULL || c->send_only || max_us < 0 || max_us > MBX_BUSY_POLL_MAX_US)
        return MBX_EINVAL;
    seg_mailbox *mb = segment_mailbox(&c->view, c->slot);
    /* While we watch, a sender sees IDLE and makes no system call for the handle: that
     * call and the kernel's wake-up are what busy polling saves. A byte already in the
     * handle stays until we arm again (readable once more, never a lost wake-up). */
    if (c->wake != PLAT_NO_HANDLE)
        atomic_store(&mb->rx_wake, WAKE_IDLE);
    int64_t until = plat_now_ns() + (int64_t)max_us * 1000;
    do {
        for (int i = 0; i < 64; i++) {
            /* Any difference, a corrupt one too: the receive that follows reports it. */
            if (atomic_load_explicit(&mb->tail, memory_order_acquire) !=
                atomic_load_explicit(&mb->head, memory_order_relaxed))
                return MBX_OK;
            plat_cpu_relax();
        }
        if (atomic_load_explicit(&c->interrupted, memory_order_relaxed) != 0 || client_pending(c))
            return MBX_OK; /* the receive that follows says what it is */
    } while (plat_now_ns() < until);
    client_wake_arm(c);
    return client_pending(c) ? MBX_OK : MBX_ETIMEDOUT;
}
