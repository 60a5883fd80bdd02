/*
 * Unit tests: the POSIX backend's crash-safe lock and semaphore (platform/posix/plat_sync.c)
 * between real processes sharing an anonymous mapping: a holder that dies, a holder that
 * is stopped, and every kind of garbage a member could write into the words.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform/platform.h"

typedef struct shared {
    plat_mutex lock;
    plat_sem sem;
    _Atomic int stage;
} shared;

static shared *sh;

static int setup(void **state)
{
    (void)state;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return -1;
    plat_mutex_init(&sh->lock);
    plat_sem_init(&sh->sem, 0);
    atomic_store(&sh->stage, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(sh, sizeof *sh);
    return 0;
}

static int64_t ms_from_now(int ms)
{
    return plat_now_ns() + (int64_t)ms * 1000000;
}

static void wait_stage(int stage)
{
    int64_t until = ms_from_now(10000);
    while (atomic_load(&sh->stage) < stage && plat_now_ns() < until)
        usleep(1000);
    assert_true(atomic_load(&sh->stage) >= stage);
}

/* A child that takes the lock, says so, then dies (how: `how`) without unlocking. */
static pid_t spawn_holder(int how)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        plat_lock_token tok;
        if (plat_mutex_lock(&sh->lock, ms_from_now(5000), &tok) != PLAT_LOCKED)
            _exit(3);
        atomic_store(&sh->stage, 1);
        if (how == SIGSTOP) {
            raise(SIGSTOP);
            plat_mutex_unlock(&sh->lock, &tok);
            _exit(0);
        }
        if (how == SIGKILL)
            raise(SIGKILL);
        _exit(0); /* exits holding it */
    }
    wait_stage(1);
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_uncontended(void **state)
{
    (void)state;
    plat_lock_token tok;
    assert_int_equal(plat_mutex_trylock(&sh->lock, &tok), PLAT_LOCKED);
    plat_mutex_unlock(&sh->lock, &tok);
    assert_int_equal(plat_mutex_lock(&sh->lock, ms_from_now(10), &tok), PLAT_LOCKED);
    plat_mutex_unlock(&sh->lock, &tok);
}

/* Killed, or exited, holding the lock, and not reaped yet by its parent. */
static void test_dead_holder_is_detected(void **state)
{
    (void)state;
    int ways[] = {SIGKILL, 0};
    for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
        atomic_store(&sh->stage, 0);
        pid_t holder = spawn_holder(ways[i]);
        /* Dead but not reaped: a zombie, which kill(pid, 0) still finds. */
        siginfo_t info;
        assert_int_equal(waitid(P_PID, (id_t)holder, &info, WEXITED | WNOWAIT), 0);
        plat_lock_token tok;
        assert_int_equal(plat_mutex_trylock(&sh->lock, &tok), PLAT_LOCK_BUSY);
        int64_t t0 = plat_now_ns();
        assert_int_equal(plat_mutex_lock(&sh->lock, ms_from_now(5000), &tok), PLAT_LOCK_OWNER_DIED);
        printf("dead holder detected after %.1f ms\n", (double)(plat_now_ns() - t0) / 1e6);
        plat_mutex_unlock(&sh->lock, &tok);
        assert_int_equal(plat_mutex_trylock(&sh->lock, &tok), PLAT_LOCKED);
        plat_mutex_unlock(&sh->lock, &tok);
        reap(holder);
    }
}

/* A stopped holder is alive: it keeps its lock, waiters time out, and it unlocks once it
 * goes on. Nobody rebuilds or steals the lock meanwhile. */
static void test_stopped_holder_keeps_the_lock(void **state)
{
    (void)state;
    pid_t holder = spawn_holder(SIGSTOP);
    int status;
    assert_int_equal(waitpid(holder, &status, WUNTRACED), holder);
    assert_true(WIFSTOPPED(status));
    plat_lock_token tok;
    assert_int_equal(plat_mutex_lock(&sh->lock, ms_from_now(300), &tok), PLAT_LOCK_BUSY);
    kill(holder, SIGCONT);
    assert_int_equal(plat_mutex_lock(&sh->lock, ms_from_now(5000), &tok), PLAT_LOCKED);
    plat_mutex_unlock(&sh->lock, &tok);
    reap(holder);
}

/* The takeover hook of the one-step test: stops the thread that has just taken over. */
static void stop_after_takeover(plat_mutex *m, bool taken)
{
    (void)m;
    if (taken)
        raise(SIGSTOP);
}

/* Clock ticks since boot, the unit of a thread's start time in /proc. */
static uint64_t ticks_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) /
           (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Review M2 (2026-12-04): a waiter never takes the lock from a live holder that has just
 * taken it over from a dead one. W takes the lock over from the dead D and is stopped
 * right after the lock names it (the takeover hook): the lock must name W entirely then,
 * thread id and start time, so a waiter judging it sees a live holder and times out.
 * Before, W's start time was stored in a second step: in between the waiter saw W's id
 * with D's start time, judged W dead and took the lock (two holders at once). */
static void test_takeover_changes_the_holder_in_one_step(void **state)
{
    (void)state;
    if (!plat_mutex_set_takeover_hook(NULL))
        skip(); /* a build without fault injection */
    pid_t dead = spawn_holder(0);
    uint64_t dead_start = plat_proc_start_time(dead);
    reap(dead);
    /* W starts on a later clock tick than D, or their start times could not differ. */
    while (ticks_now() <= dead_start)
        usleep(2000);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        alarm(20);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a stopped W must not outlive a failed test */
        plat_mutex_set_takeover_hook(stop_after_takeover);
        plat_lock_token tok;
        plat_lock_rc rc = plat_mutex_lock(&sh->lock, ms_from_now(5000), &tok);
        plat_mutex_set_takeover_hook(NULL);
        if (rc != PLAT_LOCK_OWNER_DIED)
            _exit(3);
        plat_mutex_unlock(&sh->lock, &tok);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(w, &status, WUNTRACED), w);
    bool stopped = WIFSTOPPED(status);
    uint64_t w_start = plat_proc_start_time(w);
    plat_lock_token tok;
    plat_lock_rc rc = stopped ? plat_mutex_lock(&sh->lock, ms_from_now(300), &tok) : PLAT_LOCK_BUSY;
    if (rc != PLAT_LOCK_BUSY)
        plat_mutex_unlock(&sh->lock, &tok);
    /* W goes on and unlocks before anything is asserted: nothing outlives the test. */
    kill(w, SIGCONT);
    int w_status = 0;
    if (stopped)
        assert_int_equal(waitpid(w, &w_status, 0), w);
    assert_true(stopped);
    assert_int_not_equal(w_start, dead_start);
    assert_int_equal(rc, PLAT_LOCK_BUSY); /* PLAT_LOCK_OWNER_DIED: taken from a live W */
    assert_true(WIFEXITED(w_status) && WEXITSTATUS(w_status) == 0);
    assert_int_equal(plat_mutex_trylock(&sh->lock, &tok), PLAT_LOCKED);
    plat_mutex_unlock(&sh->lock, &tok);
}

static int64_t mover_deadline;
static _Atomic unsigned moves_after_deadline;

/* The takeover hook of the deadline test: before each takeover's compare-and-swap, moves
 * the word to another thread id that names no thread (above 2^29: more than any pid_max),
 * as a member writing the word could, so that the compare-and-swap fails. Gives up after
 * 1,000 moves past the waiter's deadline, so that a waiter that ignores its deadline
 * still returns. */
static void move_before_takeover(plat_mutex *m, bool taken)
{
    if (taken)
        return;
    if (plat_now_ns() >= mover_deadline && atomic_fetch_add(&moves_after_deadline, 1) >= 1000)
        return;
    _Atomic uint64_t *word = (_Atomic uint64_t *)(void *)m->opaque;
    atomic_store(word, 0x20000000u + ((atomic_load(word) + 1) & 0xffffffu));
}

/* Review low item (2026-12-04): a compare-and-swap that loses to a moving word sent the
 * lock's loop round again without looking at the deadline, so a word that kept moving
 * kept a waiter past it (with every takeover failing: for ever). Each pass may start
 * before the deadline and try after it; then the waiter must return. */
static void test_deadline_holds_while_takeovers_fail(void **state)
{
    (void)state;
    if (!plat_mutex_set_takeover_hook(NULL))
        skip(); /* a build without fault injection */
    atomic_store((_Atomic uint64_t *)(void *)sh->lock.opaque, 0x20000000u);
    mover_deadline = ms_from_now(20);
    atomic_store(&moves_after_deadline, 0);
    plat_mutex_set_takeover_hook(move_before_takeover);
    plat_lock_token tok;
    plat_lock_rc rc = plat_mutex_lock(&sh->lock, mover_deadline, &tok);
    plat_mutex_set_takeover_hook(NULL);
    if (rc != PLAT_LOCK_BUSY)
        plat_mutex_unlock(&sh->lock, &tok);
    printf("takeovers tried after the deadline: %u\n", atomic_load(&moves_after_deadline));
    assert_true(atomic_load(&moves_after_deadline) <= 1);
    assert_int_equal(rc, PLAT_LOCK_BUSY);
}

/* Whatever a member writes into the lock's words, a lock call returns in time with one of
 * its results and never crashes. */
static void test_garbage_lock_words(void **state)
{
    (void)state;
    uint32_t self = (uint32_t)syscall(SYS_gettid);
    uint32_t words[] = {0xffffffffu, 0x80000000u, 0x7fffffffu, self,       self | 0x80000000u,
                        0x3fffffffu, 0x40000000u, 1u,          0x12345678u};
    uint32_t starts[] = {0, UINT32_MAX, 0x80000000u};
    srand(12345);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        for (size_t j = 0; j < sizeof starts / sizeof starts[0]; j++) {
            memset(&sh->lock, 0, sizeof sh->lock);
            /* The lock word: thread id and bits in the low half, start time in the high. */
            uint64_t word = (uint64_t)starts[j] << 32 | words[i];
            memcpy(sh->lock.opaque, &word, sizeof word);
            plat_lock_token tok;
            plat_lock_rc rc = plat_mutex_lock(&sh->lock, ms_from_now(300), &tok);
            /* pid 1 lives: with no recorded start, or the one it has, it stays the holder. */
            if (words[i] == 1u && starts[j] == 0)
                assert_int_equal(rc, PLAT_LOCK_BUSY);
            else
                assert_true(rc == PLAT_LOCKED || rc == PLAT_LOCK_OWNER_DIED);
            if (rc != PLAT_LOCK_BUSY)
                plat_mutex_unlock(&sh->lock, &tok);
        }
    }
    for (int round = 0; round < 200; round++) {
        for (size_t k = 0; k < sizeof sh->lock.opaque; k++)
            sh->lock.opaque[k] = (unsigned char)rand();
        plat_lock_token tok;
        plat_lock_rc rc = plat_mutex_lock(&sh->lock, ms_from_now(50), &tok);
        if (rc != PLAT_LOCK_BUSY)
            plat_mutex_unlock(&sh->lock, &tok);
    }
}

static void test_semaphore_counts_and_garbage(void **state)
{
    (void)state;
    plat_sem_post(&sh->sem);
    plat_sem_post(&sh->sem);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_OK);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_OK);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_ETIMEDOUT);

    /* A post from another process wakes a sleeper. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(20);
        usleep(50 * 1000);
        plat_sem_post(&sh->sem);
        _exit(0);
    }
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(5000)), MBX_OK);
    reap(child);

    /* A huge count is garbage: one spurious wake-up, then a sane, empty semaphore. */
    memset(&sh->sem, 0xff, sizeof sh->sem);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_OK);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_ETIMEDOUT);
    plat_sem_post(&sh->sem);
    assert_int_equal(plat_sem_wait(&sh->sem, ms_from_now(10)), MBX_OK);
    for (int round = 0; round < 200; round++) {
        for (size_t k = 0; k < sizeof sh->sem.opaque; k++)
            sh->sem.opaque[k] = (unsigned char)rand();
        plat_sem_post(&sh->sem);
        (void)plat_sem_wait(&sh->sem, ms_from_now(1));
        plat_sem_drain(&sh->sem);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uncontended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_holder_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_holder_keeps_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover_changes_the_holder_in_one_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deadline_holds_while_takeovers_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_lock_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_counts_and_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
