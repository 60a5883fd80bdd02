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
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Whatever a member writes into the lock's words, a lock call returns in time with one of
 * its results and never crashes. */
static void test_garbage_lock_words(void **state)
{
    (void)state;
    uint32_t self = (uint32_t)syscall(SYS_gettid);
    uint32_t words[] = {0xffffffffu, 0x80000000u, 0x7fffffffu, self,       self | 0x80000000u,
                        0x3fffffffu, 0x40000000u, 1u,          0x12345678u};
    uint64_t starts[] = {0, UINT64_MAX, 0x8000000000000000ull};
    srand(12345);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        for (size_t j = 0; j < sizeof starts / sizeof starts[0]; j++) {
            memset(&sh->lock, 0, sizeof sh->lock);
            memcpy(sh->lock.opaque, &words[i], sizeof words[i]);
            memcpy(sh->lock.opaque + 8, &starts[j], sizeof starts[j]);
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
        cmocka_unit_test_setup_teardown(test_garbage_lock_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_counts_and_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
