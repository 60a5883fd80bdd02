/* floor.c: see floor.h. */
#include <errno.h>
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
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0 || pthread_mutexattr_setpshared(&a, 1) != 0 ||
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&r->producers, &a) != 0)
        return -1;
    pthread_mutexattr_destroy(&a);
    return sem_init(&r->space, 1, 0) == 0 && sem_init(&r->items, 1, 0) == 0 ? 0 : -1;
}

/* Spins until pred(r) or FLOOR_SPIN_NS passed; returns pred(r). */
static int spin_until(floor_ring *r, int (*pred)(floor_ring *))
{
    int64_t until = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (pred(r))
                return 1;
            relax();
        }
        int64_t now = now_ns();
        if (until == 0)
            until = now + FLOOR_SPIN_NS;
        else if (now >= until)
            return pred(r);
    }
}

static int has_room(floor_ring *r)
{
    return atomic_load(&r->tail) - atomic_load(&r->head) < FLOOR_DEPTH;
}

static int has_item(floor_ring *r)
{
    return atomic_load(&r->tail) != atomic_load(&r->head);
}

static void sem_wait_all(sem_t *s)
{
    while (sem_wait(s) != 0 && errno == EINTR)
        ;
}

void floor_put(floor_ring *r, const void *msg, size_t len)
{
    if (pthread_mutex_lock(&r->producers) == EOWNERDEAD)
        pthread_mutex_consistent(&r->producers);
    while (!spin_until(r, has_room)) {
        atomic_store(&r->tx_sleeping, 1);
        if (!has_room(r))
            sem_wait_all(&r->space);
        atomic_store(&r->tx_sleeping, 0);
    }
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    memcpy(r->cells[tail % FLOOR_DEPTH], msg, len);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_seq_cst);
    pthread_mutex_unlock(&r->producers);
    if (atomic_exchange(&r->rx_sleeping, 0) != 0)
        sem_post(&r->items);
}

void floor_get(floor_ring *r, void *buf)
{
    while (!spin_until(r, has_item)) {
        atomic_store(&r->rx_sleeping, 1);
        if (!has_item(r))
            sem_wait_all(&r->items);
        atomic_store(&r->rx_sleeping, 0);
    }
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    memcpy(buf, r->cells[head % FLOOR_DEPTH], FLOOR_CELL);
    atomic_store_explicit(&r->head, head + 1, memory_order_seq_cst);
    if (atomic_exchange(&r->tx_sleeping, 0) != 0)
        sem_post(&r->space);
}
