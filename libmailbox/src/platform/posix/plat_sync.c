/*
 * The crash-safe lock and the counting semaphore of the POSIX backend: Linux futexes on
 * words inside the segment. Neither keeps a pointer in shared memory (glibc's robust
 * mutexes link held locks into their owner's list through pointers stored in the mutex,
 * which a scribbler could turn into writes in another process), and neither trusts a
 * value it reads: whatever a member wrote there decodes as some state, and no call
 * aborts (glibc asserts on a mutex or semaphore word it does not understand) or waits
 * past its deadline.
 *
 * The lock is one 64-bit word, so that its holder's identity changes in one atomic step:
 *   low half     the futex word: 0 when free; else the holder's thread id (bits 0-29),
 *                plus LOCK_WAITERS (bit 31) when a waiter may sleep on it.
 *   high half    the holder thread's start time (clock ticks since boot, its low 32 bits;
 *                0 only where the holder could not read its own), written by the same
 *                compare-and-swap that takes the lock, cleared by the one that frees it.
 * A waiter that has slept a while (1 ms, then doubling to 100 ms) looks at the holder:
 * a thread id that names no thread, or a thread started at another time than the word
 * records (the id was reused), means the holder died holding the lock (or never
 * existed: a scribble); the waiter takes it with a compare-and-swap against the word it
 * judged and gets PLAT_LOCK_OWNER_DIED. A holder that lives, even stopped, is never
 * robbed. A word that names the caller itself is garbage (no caller waits for a lock it
 * holds) and is taken over the same way.
 *
 * Why one word (review M2 of 2026-12-04): with the start time in a second word, stored
 * just after the compare-and-swap, a waiter judging in between saw the new, live holder's
 * thread id with the dead holder's start time, decided "died" and took the lock from a
 * live holder. Now a waiter judges a pair that one compare-and-swap wrote, and its
 * takeover succeeds only if the word still holds that very pair. That is also safe from
 * ABA: a pair judged dead cannot come back, because a dead thread takes no lock and a
 * thread that reuses its id has another start time. (A start time of 0, recorded by a
 * thread that cannot read its own in /proc, leaves only existence to judge by: that
 * holder is told from a successor of its id by nothing, as before.)
 *
 * Thread ids and start times are those of the caller's PID namespace: all members of a
 * namespace must share one (the broker already relies on it to watch clients).
 *
 * The semaphore is a count and a number of sleepers; post wakes one sleeper when there
 * is one. A count beyond SEM_COUNT_MAX is garbage: a waiter resets it and returns once,
 * a spurious wake-up its caller re-checks.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

#define LOCK_WAITERS 0x80000000u
#define LOCK_OWNER_MASK 0x3fffffffu
#define LOCK_SPINS 64
#define LOCK_FIRST_CHECK_NS (1000LL * 1000)
#define LOCK_MAX_CHECK_NS (100LL * 1000 * 1000)
#define SEM_COUNT_MAX (1u << 20)

typedef struct futex_lock {
    _Atomic uint64_t word; /* see the top of the file; the futex is its low half */
} futex_lock;

typedef struct futex_sem {
    _Atomic uint32_t count;
    _Atomic uint32_t sleepers;
} futex_sem;

_Static_assert(sizeof(futex_lock) <= sizeof(((plat_mutex *)0)->opaque), "lock fits");
_Static_assert(sizeof(futex_sem) <= sizeof(((plat_sem *)0)->opaque), "semaphore fits");

static futex_lock *as_lock(plat_mutex *m)
{
    return (futex_lock *)(void *)m->opaque;
}

static futex_sem *as_sem(plat_sem *s)
{
    return (futex_sem *)(void *)s->opaque;
}

/* The futex the kernel sleeps on: the low half of the lock word. Only the kernel reads
 * it as 32 bits; this file reads and writes the whole word. */
static _Atomic uint32_t *lock_futex(futex_lock *l)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (_Atomic uint32_t *)(void *)&l->word;
#else
    return (_Atomic uint32_t *)(void *)&l->word + 1;
#endif
}

static uint32_t owner_of(uint64_t word)
{
    return (uint32_t)word & LOCK_OWNER_MASK;
}

static uint32_t recorded_start(uint64_t word)
{
    return (uint32_t)(word >> 32);
}

/* ---- futex calls: shared (not private) futexes, absolute CLOCK_MONOTONIC deadlines -- */

/* Sleeps while *addr == expect, until woken or the deadline. Every outcome (woken, value
 * changed, signal, timeout, any error) just returns, callers re-check their state; true
 * when a signal handler ran. */
static bool futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != PLAT_FOREVER) {
        if (deadline_ns < 0)
            deadline_ns = 0;
        ts.tv_sec = (time_t)(deadline_ns / 1000000000);
        ts.tv_nsec = (long)(deadline_ns % 1000000000);
        tsp = &ts;
    }
    return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET, expect, tsp, NULL,
                   FUTEX_BITSET_MATCH_ANY) != 0 &&
           errno == EINTR;
}

static void futex_wake(_Atomic uint32_t *addr, int n)
{
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* ---- the calling thread's identity, cached per thread ------------------------------ */

static _Thread_local uint32_t self_tid;
static _Thread_local uint32_t self_start; /* as the lock word records it */
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

/* In a forked child the forking thread's cached identity is its parent's. */
static void forget_self(void)
{
    self_tid = 0;
    self_start = 0;
}

static void install_fork_hook(void)
{
    pthread_atfork(NULL, NULL, forget_self);
}

/* A start time as the lock word records it: its low 32 bits (497 days of ticks at 100
 * Hz; a thread id reused exactly that long later is the only confusion), never 0, which
 * means "not known". */
static uint32_t start_tag(uint64_t start)
{
    if (start == 0)
        return 0;
    return (uint32_t)start != 0 ? (uint32_t)start : 1;
}

static uint32_t self_id(void)
{
    if (self_tid == 0) {
        pthread_once(&fork_hook_once, install_fork_hook);
        self_tid = (uint32_t)syscall(SYS_gettid) & LOCK_OWNER_MASK;
        self_start = start_tag(plat_proc_start_time(self_tid));
    }
    return self_tid;
}

/* ---- the lock ---------------------------------------------------------------------- */

mbx_err plat_mutex_init(plat_mutex *m)
{
    memset(m, 0, sizeof *m);
    return MBX_OK;
}

#ifdef MBX_FAULT_INJECTION
static void (*_Atomic takeover_hook)(plat_mutex *m, bool taken);
#endif

bool plat_mutex_set_takeover_hook(void (*fn)(plat_mutex *m, bool taken))
{
#ifdef MBX_FAULT_INJECTION
    atomic_store(&takeover_hook, fn);
    return true;
#else
    (void)fn;
    return false;
#endif
}

static void call_takeover_hook(plat_mutex *m, bool taken)
{
#ifdef MBX_FAULT_INJECTION
    void (*hook)(plat_mutex *, bool) = atomic_load(&takeover_hook);
    if (hook != NULL)
        hook(m, taken);
#else
    (void)m;
    (void)taken;
#endif
}

/* Takes the word from `seen` (which names no live holder) for the caller: thread id and
 * start time in one step (see the top of the file). */
static bool take_word(futex_lock *l, uint64_t seen, uint32_t keep_bits)
{
    uint32_t me = self_id(); /* first: it reads self_start too */
    uint64_t mine = (uint64_t)self_start << 32 | me | keep_bits;
    return atomic_compare_exchange_strong_explicit(&l->word, &seen, mine, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* take_word from a holder judged dead. */
static bool take_over(plat_mutex *m, uint64_t seen, uint32_t keep_bits)
{
    call_takeover_hook(m, false); /* a test may move the word here */
    if (!take_word(as_lock(m), seen, keep_bits))
        return false;
    call_takeover_hook(m, true); /* a test may stop here: the lock is ours */
    return true;
}

/* True when the holder named by `word` died holding the lock (see the top of the file).
 * Existence is asked of the kernel (kill with signal 0 works on thread ids and across
 * users); /proc then tells a zombie (dead, not yet reaped by its parent: kill still finds
 * it) and the start time. Where /proc hides a task (hidepid), it counts as alive. */
static bool holder_died(uint64_t word)
{
    uint32_t owner = owner_of(word);
    if (owner == self_id())
        return true;
    if (kill((pid_t)owner, 0) != 0 && errno == ESRCH)
        return true;
    char state;
    uint64_t actual;
    if (!posix_task_stat(owner, &state, &actual))
        return false;
    if (state == 'Z' || state == 'X')
        return true;
    /* Recorded 0: the holder could not tell its start time; the id names a live thread,
     * taken to be that one. */
    uint32_t recorded = recorded_start(word);
    return recorded != 0 && recorded != start_tag(actual);
}

uint64_t plat_mutex_owner(const plat_mutex *m)
{
    uint64_t w =
        atomic_load_explicit(&((const futex_lock *)(const void *)m)->word, memory_order_relaxed);
    return owner_of(w) == 0 ? 0 : w & ~(uint64_t)LOCK_WAITERS;
}

plat_lock_rc plat_mutex_trylock(plat_mutex *m, plat_lock_token *tok)
{
    futex_lock *l = as_lock(m);
    uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
    tok->value = 0;
    if (owner_of(w) == 0 && take_word(l, w, (uint32_t)w & LOCK_WAITERS))
        return PLAT_LOCKED;
    return PLAT_LOCK_BUSY;
}

/* Spins a bounded while for a lock that is held for one copy, then judges its holder
 * once. The waiters bit is kept on a takeover: others may sleep on the word. */
plat_lock_rc plat_mutex_try_take(plat_mutex *m, plat_lock_token *tok)
{
    futex_lock *l = as_lock(m);
    for (int i = 0; i < LOCK_SPINS; i++) {
        if (plat_mutex_trylock(m, tok) == PLAT_LOCKED)
            return PLAT_LOCKED;
        plat_cpu_relax();
    }
    uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
    uint32_t waiters = (uint32_t)w & LOCK_WAITERS;
    if (owner_of(w) == 0)
        return take_word(l, w, waiters) ? PLAT_LOCKED : PLAT_LOCK_BUSY;
    if (holder_died(w) && take_over(m, w, waiters))
        return PLAT_LOCK_OWNER_DIED;
    return PLAT_LOCK_BUSY;
}

/* Sleeps on the word as it was seen, with the waiters bit set (so the holder's unlock
 * wakes someone), until `until` at the latest; returns at once when the word moved. */
static void sleep_on(futex_lock *l, uint64_t seen, int64_t until)
{
    if (((uint32_t)seen & LOCK_WAITERS) == 0) {
        if (!atomic_compare_exchange_strong(&l->word, &seen, seen | LOCK_WAITERS))
            return;
        seen |= LOCK_WAITERS;
    }
    (void)futex_wait(lock_futex(l), (uint32_t)seen, until);
}

plat_lock_rc plat_mutex_lock(plat_mutex *m, int64_t deadline_ns, plat_lock_token *tok)
{
    futex_lock *l = as_lock(m);
    tok->value = 0;
    for (int i = 0; i < LOCK_SPINS; i++) {
        if (plat_mutex_trylock(m, tok) == PLAT_LOCKED)
            return PLAT_LOCKED;
        plat_cpu_relax();
    }
    int64_t check_every = LOCK_FIRST_CHECK_NS;
    int64_t next_check = plat_now_ns() + check_every;
    /* Every pass ends at the deadline check, whatever happened in it: a word that keeps
     * moving under failed compare-and-swaps (other takers, or a member writing it) can
     * make the loop go round again, never past the deadline. */
    for (;;) {
        uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
        int64_t now = plat_now_ns();
        if (owner_of(w) == 0) {
            /* Free. Others may sleep on it too: keep the waiters bit so the next unlock
             * wakes one (at worst one wake-up too many). */
            if (take_word(l, w, LOCK_WAITERS))
                return PLAT_LOCKED;
        } else if (now >= next_check) {
            if (holder_died(w) && take_over(m, w, LOCK_WAITERS))
                return PLAT_LOCK_OWNER_DIED;
            check_every = check_every * 2 > LOCK_MAX_CHECK_NS ? LOCK_MAX_CHECK_NS : check_every * 2;
            next_check = now + check_every;
        } else if (now < deadline_ns) {
            sleep_on(l, w, next_check < deadline_ns ? next_check : deadline_ns);
            now = plat_now_ns();
        }
        if (now >= deadline_ns)
            return PLAT_LOCK_BUSY;
    }
}

void plat_mutex_unlock(plat_mutex *m, const plat_lock_token *tok)
{
    (void)tok; /* the word itself says whether the lock is still ours */
    futex_lock *l = as_lock(m);
    uint32_t me = self_id();
    uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
    do {
        if (owner_of(w) != me)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&l->word, &w, 0, memory_order_release,
                                                    memory_order_relaxed));
    if (((uint32_t)w & LOCK_WAITERS) != 0)
        futex_wake(lock_futex(l), 1);
}

/* ---- the semaphore ----------------------------------------------------------------- */

mbx_err plat_sem_init(plat_sem *s, unsigned value)
{
    memset(s, 0, sizeof *s);
    atomic_store(&as_sem(s)->count, value < SEM_COUNT_MAX ? value : SEM_COUNT_MAX);
    return MBX_OK;
}

void plat_sem_post(plat_sem *s)
{
    futex_sem *sem = as_sem(s);
    /* Above the bound the count is only a hint that is already set. */
    if (atomic_load_explicit(&sem->count, memory_order_relaxed) < SEM_COUNT_MAX)
        atomic_fetch_add(&sem->count, 1);
    if (atomic_load(&sem->sleepers) != 0)
        futex_wake(&sem->count, 1);
}

/* Takes one count if there is one. */
static bool sem_take(futex_sem *sem)
{
    uint32_t c = atomic_load(&sem->count);
    while (c != 0) {
        if (c > SEM_COUNT_MAX) {
            atomic_store(&sem->count, 0); /* garbage: one spurious wake-up, then sane */
            return true;
        }
        if (atomic_compare_exchange_weak(&sem->count, &c, c - 1))
            return true;
    }
    return false;
}

mbx_err plat_sem_wait(plat_sem *s, int64_t deadline_ns)
{
    futex_sem *sem = as_sem(s);
    for (;;) {
        if (sem_take(sem))
            return MBX_OK;
        if (plat_now_ns() >= deadline_ns)
            return MBX_ETIMEDOUT;
        /* Counted as a sleeper before the futex re-reads the count: a post either sees
         * us and wakes us, or its count makes the futex call return at once. */
        atomic_fetch_add(&sem->sleepers, 1);
        bool signalled = futex_wait(&sem->count, 0, deadline_ns);
        atomic_fetch_sub(&sem->sleepers, 1);
        if (signalled) /* the count, if one came meanwhile, stays for the next wait */
            return MBX_ESIGNAL;
    }
}

void plat_sem_drain(plat_sem *s)
{
    atomic_store(&as_sem(s)->count, 0);
}
