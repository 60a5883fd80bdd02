/*
 * Robust process-shared mutexes and process-shared semaphores living inside the segment.
 * Waits use CLOCK_MONOTONIC so a change of the wall clock cannot stretch a timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "posix.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((plat_mutex *)0)->opaque), "mutex fits");
_Static_assert(sizeof(sem_t) <= sizeof(((plat_sem *)0)->opaque), "semaphore fits");

static struct timespec to_timespec(int64_t deadline_ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    return ts;
}

mbx_err plat_mutex_init(plat_mutex *m)
{
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0)
        return MBX_ESYSTEM;
    int rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init((pthread_mutex_t *)(void *)m->opaque, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? MBX_OK : plat_map_errno(rc);
}

int plat_mutex_lock(plat_mutex *m, int64_t deadline_ns)
{
    pthread_mutex_t *pm = (pthread_mutex_t *)(void *)m->opaque;
    int rc;
    if (deadline_ns == PLAT_FOREVER) {
        rc = pthread_mutex_lock(pm);
    } else {
#if defined(__SANITIZE_THREAD__)
        /* ThreadSanitizer does not intercept pthread_mutex_clocklock and would then see
         * every unlock as one of a mutex never locked: use the realtime clock there. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t left = deadline_ns - plat_now_ns();
        struct timespec ts =
            to_timespec((int64_t)now.tv_sec * 1000000000 + now.tv_nsec + (left > 0 ? left : 0));
        rc = pthread_mutex_timedlock(pm, &ts);
#else
        struct timespec ts = to_timespec(deadline_ns);
        rc = pthread_mutex_clocklock(pm, CLOCK_MONOTONIC, &ts);
#endif
    }
    switch (rc) {
    case 0:
        return MBX_OK;
    case EOWNERDEAD:
        return PLAT_OWNER_DIED;
    case ETIMEDOUT:
        return MBX_ETIMEDOUT;
    default:
        /* ENOTRECOVERABLE, EINVAL, EDEADLK: the mutex word is not one we can use. */
        return MBX_ECORRUPT;
    }
}

int plat_mutex_trylock(plat_mutex *m)
{
    switch (pthread_mutex_trylock((pthread_mutex_t *)(void *)m->opaque)) {
    case 0:
        return MBX_OK;
    case EOWNERDEAD:
        return PLAT_OWNER_DIED;
    case EBUSY:
        return MBX_ETIMEDOUT;
    default:
        return MBX_ECORRUPT;
    }
}

void plat_mutex_consistent(plat_mutex *m)
{
    pthread_mutex_consistent((pthread_mutex_t *)(void *)m->opaque);
}

void plat_mutex_unlock(plat_mutex *m)
{
    pthread_mutex_unlock((pthread_mutex_t *)(void *)m->opaque);
}

mbx_err plat_sem_init(plat_sem *s, unsigned value)
{
    if (sem_init((sem_t *)(void *)s->opaque, 1, value) != 0)
        return plat_map_errno(errno);
    return MBX_OK;
}

void plat_sem_post(plat_sem *s)
{
    /* EOVERFLOW only: the count is a wake-up hint, one more post changes nothing. */
    (void)sem_post((sem_t *)(void *)s->opaque);
}

mbx_err plat_sem_wait(plat_sem *s, int64_t deadline_ns)
{
    sem_t *sem = (sem_t *)(void *)s->opaque;
    int rc;
    if (deadline_ns == PLAT_FOREVER) {
        rc = sem_wait(sem);
    } else {
        struct timespec ts = to_timespec(deadline_ns < 0 ? 0 : deadline_ns);
        rc = sem_clockwait(sem, CLOCK_MONOTONIC, &ts);
    }
    return rc == 0 ? MBX_OK : MBX_ETIMEDOUT;
}

void plat_sem_drain(plat_sem *s)
{
    sem_t *sem = (sem_t *)(void *)s->opaque;
    /* Bounded: a hostile writer could make the count look huge. */
    for (int i = 0; i < 1 << 20 && sem_trywait(sem) == 0; i++)
        ;
}
