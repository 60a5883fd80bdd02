/*
 * floor.h: the floor of the comparison (docs/performance.md): the strongest simple ring
 * of mailbox's shape, written the textbook way, with nothing mailbox adds per message
 * (no envelope, no validation, no statistics, no names, no crash repair beyond a robust
 * lock). What mailbox is judged against; if a peer beats it in a run, the harness says
 * "the floor is not a floor".
 *
 * One process-shared ring of FLOOR_DEPTH cells of FLOOR_CELL bytes (mailbox's record for
 * a 120-byte message: three cache lines). Producers serialise on a robust process-shared
 * mutex (one producer takes it uncontended); the consumer takes records without a lock.
 * - Each side keeps a cached copy of the other's index and reads the shared one only when
 *   the cache says full (producers; the cache is shared by them, under the mutex) or
 *   empty (the consumer).
 * - The consumer publishes its position once per FLOOR_BATCH records, or when it finds
 *   the ring empty (before it spins or sleeps).
 * - Each side spins up to FLOOR_SPIN_NS (reading the clock every 256 looks), then sleeps
 *   on a semaphore; the other side posts only to a sleeper it sees announced (a load,
 *   then an exchange only when it is set). A side whose peer last ran on its own CPU
 *   yields the CPU instead of spinning (spinning cannot let that peer run), as mailbox's
 *   receiver does.
 */
#ifndef MBX_PERF_FLOOR_H
#define MBX_PERF_FLOOR_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FLOOR_DEPTH 64
#define FLOOR_CELL 192 /* a 120-byte message's record in mailbox, header and name included */
#define FLOOR_BATCH 16
#define FLOOR_SPIN_NS 50000

typedef struct floor_ring {
    /* The producers' lines: their lock, their index, their cached copy of head. */
    pthread_mutex_t producers;
    _Alignas(64) _Atomic uint64_t tail;
    uint64_t head_cache;    /* under the mutex */
    _Atomic int32_t tx_cpu; /* the CPU the last producer ran on */
    _Atomic uint32_t tx_sleeping;
    sem_t space;
    /* The consumer's: its published index, its private cursor and cached copy of tail. */
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint32_t rx_sleeping;
    _Atomic int32_t rx_cpu; /* the CPU the consumer last published from */
    sem_t items;
    _Alignas(64) uint64_t next; /* the next record to take; published as head */
    uint64_t tail_cache;
    _Alignas(64) unsigned char cells[FLOOR_DEPTH][FLOOR_CELL];
} floor_ring;

/* Initialises a ring in shared memory (before fork). 0 or -1. */
int floor_init(floor_ring *r);
/* Puts len (<= FLOOR_CELL - 4) bytes, waiting for room. */
void floor_put(floor_ring *r, const void *msg, size_t len);
/* Takes the oldest message into buf (FLOOR_CELL bytes), waiting for one; its length. */
size_t floor_get(floor_ring *r, void *buf);

#endif
