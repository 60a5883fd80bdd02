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

/* Watches the word for up to SHM_SETTLE_SPIN_NS; true while it has not moved. */
static bool still_after_settling(const shm_wait *w)
{
    int64_t until = plat_now_ns() + SHM_SETTLE_SPIN_NS;
    for (;;) {
        for (int i = 0; i < 32; i++) {
            if (!unchanged(w))
                return false;
            plat_cpu_relax();
        }
        if (plat_now_ns() >= until)
            return true;
    }
}

/* One sleep on the semaphore until until_ns, letting held signals through meanwhile. */
static mbx_err sleep_once(const shm_wait *w, int64_t until_ns)
{
    bool held = w->hold != NULL && w->hold->held;
    if (held && plat_signals_came(w->hold))
        return MBX_ESIGNAL; /* its handler runs when the caller lets go */
    /* Only between these two can a handler run unseen: a few instructions. */
    if (held)
        plat_signals_release(w->hold);
    mbx_err err = plat_sem_wait(w->sem, until_ns);
    if (held)
        plat_signals_hold(w->hold);
    return err;
}

static bool may_sleep(const shm_wait *w)
{
    return unchanged(w) && (w->interrupt == NULL || atomic_load(w->interrupt) == 0);
}

static int64_t settle_sleep_ns(void)
{
#ifdef MBX_FAULT_INJECTION
    return fault_settle_sleep_ns(SHM_SETTLE_SLEEP_NS);
#else
    return SHM_SETTLE_SLEEP_NS;
#endif
}

mbx_err shm_wait_once(const shm_wait *w, int64_t until_ns)
{
    announce(w);
    mbx_err err = MBX_OK;
    /* An interrupt sets its word, then posts: looked at after announcing, never missed. */
    if (may_sleep(w) && (!w->settle || still_after_settling(w))) {
        if (!w->settle) {
            err = sleep_once(w, until_ns);
        } else {
            int64_t first = plat_now_ns() + settle_sleep_ns();
            err = sleep_once(w, first < until_ns ? first : until_ns);
            /* Timed out with the word unmoved: a publish missed in both directions would
             * show by now; the rest of the sleep is an ordinary one. */
            if (err == MBX_ETIMEDOUT && first < until_ns && may_sleep(w))
                err = sleep_once(w, until_ns);
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
