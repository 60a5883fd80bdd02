/* floor.c: see floor.h. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "floor.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int floor_init(floor_ring *r)
{
    memset(r, 0, sizeof *r);
    atomic_store(&r->tx_cpu, -1);
    atomic_store(&r->rx_cpu, -1);
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0 || pthread_mutexattr_setpshared(&a, 1) != 0 ||
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&r->producers, &a) != 0)
        return -1;
    pthread_mutexattr_destroy(&a);
    return sem_init(&r->space, 1, 0) == 0 && sem_init(&r->items, 1, 0) == 0 ? 0 : -1;
}

static void sem_wait_all(sem_t *s)
{
    while (sem_wait(s) != 0 && errno == EINTR)
        ;
}

/* Producers (under the mutex): room for one more, re-reading head only when the cached
 * copy says full. */
static int has_room(floor_ring *r, uint64_t tail)
{
    if (tail - r->head_cache < FLOOR_DEPTH)
        return 1;
    r->head_cache = atomic_load(&r->head); /* seq_cst: the Dekker pair with publish_head */
    return tail - r->head_cache < FLOOR_DEPTH;
}

/* One look's pause: a yield when the peer last ran on this CPU (it cannot run while we
 * spin), else a pause instruction. */
static void pause_for(const _Atomic int32_t *peer_cpu, int me)
{
    if (atomic_load_explicit(peer_cpu, memory_order_relaxed) == me)
        sched_yield();
    else
        relax();
}

/* Records the CPU this side runs on, where the other side looks before it spins. */
static void note_cpu(_Atomic int32_t *word)
{
    int cpu = sched_getcpu();
    if (atomic_load_explicit(word, memory_order_relaxed) != cpu)
        atomic_store_explicit(word, cpu, memory_order_relaxed);
}

/* Waits until ready(r, arg): spins up to FLOOR_SPIN_NS (pausing as pause_for says about
 * the peer's CPU), then announces itself in `sleeping` and sleeps on `sem`, which the
 * other side posts only to a sleeper it sees. */
static void wait_until(floor_ring *r, int (*ready)(floor_ring *, uint64_t), uint64_t arg,
                       const _Atomic int32_t *peer_cpu, _Atomic uint32_t *sleeping, sem_t *sem)
{
    int64_t until = 0;
    int me = sched_getcpu();
    for (unsigned i = 1; !ready(r, arg); i++) {
        pause_for(peer_cpu, me);
        if (i % 256 != 0)
            continue;
        int64_t now = now_ns();
        if (until == 0) {
            until = now + FLOOR_SPIN_NS;
        } else if (now >= until) {
            atomic_store(sleeping, 1);
            if (!ready(r, arg))
                sem_wait_all(sem);
            atomic_store(sleeping, 0);
            until = 0;
        }
    }
}

void floor_put(floor_ring *r, const void *msg, size_t len)
{
    if (pthread_mutex_lock(&r->producers) == EOWNERDEAD)
        pthread_mutex_consistent(&r->producers);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    wait_until(r, has_room, tail, &r->rx_cpu, &r->tx_sleeping, &r->space);
    unsigned char *cell = r->cells[tail % FLOOR_DEPTH];
    uint32_t n = (uint32_t)len;
    memcpy(cell, &n, sizeof n);
    memcpy(cell + sizeof n, msg, len);
    note_cpu(&r->tx_cpu);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_seq_cst);
    pthread_mutex_unlock(&r->producers);
    /* Seen before it is written: the consumer's line stays shared unless it sleeps (a
     * Dekker pair with its store of rx_sleeping, then its load of tail). */
    if (atomic_load(&r->rx_sleeping) != 0 && atomic_exchange(&r->rx_sleeping, 0) != 0)
        sem_post(&r->items);
}

/* The consumer publishes its position, and wakes a producer asleep for room. */
static void publish_head(floor_ring *r)
{
    note_cpu(&r->rx_cpu);
    atomic_store_explicit(&r->head, r->next, memory_order_seq_cst);
    if (atomic_load(&r->tx_sleeping) != 0 && atomic_exchange(&r->tx_sleeping, 0) != 0)
        sem_post(&r->space);
}

/* The consumer: a record to take, re-reading tail only when the cached copy says empty
 * (the argument is unused: wait_until's shape). */
static int has_item(floor_ring *r, uint64_t unused)
{
    (void)unused;
    if (r->next != r->tail_cache)
        return 1;
    r->tail_cache = atomic_load(&r->tail); /* seq_cst: the Dekker pair with floor_put */
    return r->next != r->tail_cache;
}

size_t floor_get(floor_ring *r, void *buf)
{
    if (!has_item(r, 0)) {
        /* Dry: what was taken is published before spinning, and before sleeping. */
        if (atomic_load_explicit(&r->head, memory_order_relaxed) != r->next)
            publish_head(r);
        wait_until(r, has_item, 0, &r->tx_cpu, &r->rx_sleeping, &r->items);
    }
    const unsigned char *cell = r->cells[r->next % FLOOR_DEPTH];
    uint32_t n;
    memcpy(&n, cell, sizeof n);
    if (n > FLOOR_CELL - sizeof n)
        n = FLOOR_CELL - sizeof n;
    memcpy(buf, cell + sizeof n, n);
    r->next++;
    if (r->next % FLOOR_BATCH == 0)
        publish_head(r);
    return n;
}
