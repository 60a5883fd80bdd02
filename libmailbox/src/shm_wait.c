/* shm_wait.c: see shm_wait.h. */
#include "shm_wait.h"
#include "fault.h"

static void announce(const shm_wait *w)
{
    if (w->counted)
        atomic_fetch_add(w->sleepers, 1);
    else
        atomic_store(w->sleepers, 1);
}

static void retract(const shm_wait *w)
{
    if (!w->counted) {
        atomic_store(w->sleepers, 0);
        return;
    }
    uint32_t n = atomic_load(w->sleepers);
    while (n != 0 && !atomic_compare_exchange_weak(w->sleepers, &n, n - 1))
        ;
}

static bool unchanged(const shm_wait *w)
{
    return w->word != NULL ? atomic_load(w->word) == w->seen
                           : atomic_load(w->word32) == (uint32_t)w->seen;
}

mbx_err shm_wait_once(const shm_wait *w, int64_t until_ns)
{
    announce(w);
    mbx_err err = MBX_OK;
    /* An interrupt sets its word, then posts: looked at after announcing, never missed. */
    if (unchanged(w) && (w->interrupt == NULL || atomic_load(w->interrupt) == 0)) {
        bool held = w->hold != NULL && w->hold->held;
        if (held && plat_signals_came(w->hold)) {
            err = MBX_ESIGNAL; /* its handler runs when the caller lets go */
        } else {
            /* Only between these two can a handler run unseen: a few instructions. */
            if (held)
                plat_signals_release(w->hold);
            err = plat_sem_wait(w->sem, until_ns);
            if (held)
                plat_signals_hold(w->hold);
        }
    }
    retract(w);
    return err == MBX_ESIGNAL ? MBX_ESIGNAL : MBX_OK;
}

bool shm_slices(void)
{
#ifdef MBX_FAULT_INJECTION
    return !fault_no_wait_slice();
#else
    return true;
#endif
}

int64_t shm_sleep_until(int64_t deadline_ns, int64_t now_ns)
{
    if (!shm_slices())
        return deadline_ns;
    int64_t slice = now_ns + SHM_WAIT_SLICE_NS;
    return slice < deadline_ns ? slice : deadline_ns;
}
