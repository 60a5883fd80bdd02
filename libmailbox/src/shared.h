/*
 * shared.h: reading shared memory once.
 *
 * Any member of a namespace can write any byte of the segment at any time, so a value
 * read from it is checked and then used as one local copy: a length checked and then read
 * again for a memcpy is a heap overflow waiting for a member to flip it in between (review
 * M1). A plain memcpy into a local is not enough on its own: the compiler may drop the
 * copy and read the shared bytes again where the local is used. shm_copy copies, then
 * tells the compiler that memory may have changed, so every later use of the copy reads
 * the copy; shm_load reads one scalar through a volatile access, exactly once.
 */
#ifndef MBX_SHARED_H
#define MBX_SHARED_H

#include <string.h>

/* Copies n bytes of shared memory at src into the local dst: checks and uses go to dst. */
static inline void shm_copy(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
    __asm__ __volatile__("" ::: "memory"); /* no later read of dst is served from src */
}

/* One read of a shared scalar (not an _Atomic one: those have atomic_load). */
#define shm_load(lvalue) (*(const volatile __typeof__(lvalue) *)&(lvalue))

#endif
