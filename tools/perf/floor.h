/*
 * floor.h: the floor of the comparison (docs/performance.md): the simplest ring of
 * mailbox's shape, with nothing mailbox adds per message. One process-shared ring of
 * FLOOR_DEPTH cells of FLOOR_CELL bytes; each side spins up to FLOOR_SPIN_NS for the
 * other before it sleeps on a semaphore, and the other side posts only when it sleeps;
 * producers of a fan-in serialise on a robust process-shared mutex. No envelope, no
 * validation, no statistics, no names.
 */
#ifndef MBX_PERF_FLOOR_H
#define MBX_PERF_FLOOR_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FLOOR_DEPTH 64
#define FLOOR_CELL 128
#define FLOOR_SPIN_NS 50000

typedef struct floor_ring {
    pthread_mutex_t producers;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint32_t tx_sleeping;
    sem_t space;
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint32_t rx_sleeping;
    sem_t items;
    _Alignas(64) char cells[FLOOR_DEPTH][FLOOR_CELL];
} floor_ring;

/* Initialises a ring in shared memory (before fork). 0 or -1. */
int floor_init(floor_ring *r);
/* Puts len (<= FLOOR_CELL) bytes, waiting for room. */
void floor_put(floor_ring *r, const void *msg, size_t len);
/* Takes the oldest message into buf (FLOOR_CELL bytes), waiting for one. */
void floor_get(floor_ring *r, void *buf);

#endif
