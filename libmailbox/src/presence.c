/* presence.c: see presence.h, and mbx_wait_for() in mailbox.h. */
#include "client.h"
#include "presence.h"
#include "ring.h"
#include "shm_wait.h"

void presence_changed(const seg_view *v)
{
    seg_header *h = segment_header(v);
    atomic_fetch_add(&h->dir_changes, 1);
    /* A hint count from shared memory: bounded against garbage. */
    uint32_t waiting = atomic_load(&h->dir_waiters);
    if (waiting > 4096)
        waiting = 4096;
    for (uint32_t i = 0; i < waiting; i++)
        plat_sem_post(&h->dir_sem);
}

static mbx_err wait_for_name(const seg_view *v, const char *name, int64_t deadline_ns,
                             plat_signal_hold *hold)
{
    seg_header *h = segment_header(v);
    for (;;) {
        uint32_t seen = atomic_load(&h->dir_changes);
        uint32_t slot, gen;
        if (segment_find(v, name, &slot, &gen) == MBX_OK)
            return MBX_OK;
        uint32_t state = atomic_load(&h->state);
        if (state == SEG_CLOSING)
            return MBX_ESHUTDOWN;
        if (state != SEG_READY && state != SEG_INITIALIZING)
            return MBX_ECORRUPT;
        int64_t now = plat_now_ns();
        if (now >= deadline_ns)
            return MBX_ETIMEDOUT;
        if (v->stop_on_signal)
            plat_signals_hold(hold); /* from here to the sleep (platform.h) */
        /* Until the directory changes (shm_wait.h); the slice bounds a wake-up lost to a
         * broker killed mid-post. */
        shm_wait change = {.sem = &h->dir_sem,
                           .sleepers = &h->dir_waiters,
                           .counted = true,
                           .word32 = &h->dir_changes,
                           .seen = seen,
                           .hold = hold};
        if (shm_wait_once(&change, shm_sleep_until(deadline_ns, now)) == MBX_ESIGNAL &&
            v->stop_on_signal)
            return MBX_ESIGNAL;
    }
}

mbx_err presence_wait(const seg_view *v, const char *name, int64_t deadline_ns)
{
    plat_signal_hold hold = {.held = false};
    mbx_err err = wait_for_name(v, name, deadline_ns, &hold);
    plat_signals_release(&hold);
    return err;
}

mbx_err mbx_wait_for(const char *ns, const char *name, int timeout_ms)
{
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (name == NULL || mbx_check_name(ns) != MBX_OK || mbx_check_name(name) != MBX_OK)
        return MBX_EINVAL;
    int64_t deadline = plat_deadline(timeout_ms);
    /* The watch first, then a look: a broker that appears in between is not missed. */
    plat_chan_watch *watch;
    mbx_err err = plat_chan_watch_open(ns, &watch);
    if (err != MBX_OK)
        return err;
    for (;;) {
        plat_shm shm;
        seg_view v;
        int64_t broker_pid;
        err = client_inspect_segment(ns, false, &broker_pid, &shm, &v);
        if (err == MBX_EAGAIN_INTERNAL)
            err = MBX_ENOBROKER; /* looked at again at the next change */
        if (err == MBX_OK) {
            err = presence_wait(&v, name, deadline);
            plat_shm_close(&shm);
            if (err != MBX_ESHUTDOWN)
                break; /* there, timed out, or refused */
            /* That broker is leaving: wait for the next one. */
        } else if (err != MBX_ENOBROKER) {
            break;
        }
        err = plat_chan_watch_wait(watch, deadline);
        if (err != MBX_OK)
            break;
    }
    plat_chan_watch_close(watch);
    return err;
}
