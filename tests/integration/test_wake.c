/*
 * The wake handle (mbx_wait_handle) in event loops, between real processes: readable
 * exactly while a message waits, quiet after a receive found none, on shutdown too; a
 * million messages from three senders with random pauses into an epoll loop, level- and
 * edge-triggered, each exactly once and in order, without spinning, and again with
 * busy polling (mbx_busy_poll) before each wait; and a sender's descriptors do not grow
 * with the number of recipients.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define SENDERS 3
#define PER_SENDER 333334 /* a million in all */

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "wake");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN) != 0;
}

static void test_handle_follows_the_mailbox(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_handle h, again;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    assert_int_equal(mbx_wait_handle(rx, &again), MBX_OK);
    assert_int_equal(h, again);
    assert_false(readable(h, 0));
    mbx_message *m = mbx_message_new();
    for (int round = 0; round < 3; round++) {
        assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
        assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
        assert_true(readable(h, 1000));
        assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
        assert_true(readable(h, 0)); /* still one waiting */
        assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
        assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
        assert_false(readable(h, 0)); /* quiet until the next arrival */
    }
    /* Shutdown makes it readable, and the receive says why. */
    assert_int_equal(harness_stop(broker, 5000), 0);
    assert_true(readable(h, 5000));
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ESHUTDOWN);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

/* Sends PER_SENDER numbered messages, pausing now and then. */
static int paused_sender_main(void *p)
{
    int index = *(int *)p;
    char name[16];
    snprintf(name, sizeof name, "s%d", index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    srand((unsigned)index * 7919u + 1);
    char body[64];
    for (int n = 0; n < PER_SENDER; n++) {
        int len = snprintf(body, sizeof body, "[%d,%d]", index, n);
        if (mbx_send(c, "loop", body, (size_t)len, 20000) != MBX_OK)
            return 11;
        if (rand() % 50000 == 0)
            usleep((useconds_t)(rand() % 20000)); /* a pause: the loop must sleep, not spin */
    }
    mbx_close(c);
    return 0;
}

/* busy_us > 0: before each wait, the loop busy-polls (mbx_busy_poll) for that long. */
static void run_epoll_loop(bool edge, int busy_us)
{
    pid_t broker = harness_start_broker(ns, "--depth", "256", "--max-message", "64", NULL);
    mbx_client *rx = harness_connect(ns, "loop");
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0)};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, h, &ev), 0);
    int index[SENDERS];
    pid_t senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        index[i] = i;
        senders[i] = harness_spawn(paused_sender_main, &index[i], 120);
    }
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    int next[SENDERS] = {0};
    long total = 0, wakeups = 0, empty_wakeups = 0, caught = 0;
    mbx_message *m = mbx_message_new();
    bool busy_caught = false;
    while (total < (long)SENDERS * PER_SENDER) {
        if (!busy_caught) {
            struct epoll_event out;
            int n = epoll_wait(ep, &out, 1, 20000);
            assert_int_equal(n, 1); /* never a 20 s silence: no lost wake-up */
            wakeups++;
        }
        long got = 0;
        mbx_err err;
        while ((err = mbx_recv(rx, m, 0)) == MBX_OK) {
            int s = -1, k = -1;
            sscanf(mbx_message_body(m, NULL), "[%d,%d]", &s, &k);
            assert_in_range(s, 0, SENDERS - 1);
            assert_int_equal(k, next[s]);
            next[s]++;
            got++;
        }
        assert_int_equal(err, MBX_ETIMEDOUT);
        total += got;
        empty_wakeups += !busy_caught && got == 0;
        busy_caught = busy_us > 0 && mbx_busy_poll(rx, busy_us) == MBX_OK;
        caught += busy_caught;
    }
    getrusage(RUSAGE_SELF, &after);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(harness_wait(senders[i], 60000), 0);
    double cpu = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                 (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                 (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                 (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    printf("%s-triggered, busy polling %d us: %ld messages, %ld wake-ups (%ld found nothing), "
           "%ld caught busy polling, receiver CPU %.2f s\n",
           edge ? "edge" : "level", busy_us, total, wakeups, empty_wakeups, caught, cpu);
    /* Nothing is left, and the handle is quiet. */
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    assert_false(readable(h, 0));
    mbx_message_free(m);
    close(ep);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_million_messages_level_triggered(void **state)
{
    (void)state;
    run_epoll_loop(false, 0);
}

static void test_million_messages_edge_triggered(void **state)
{
    (void)state;
    run_epoll_loop(true, 0);
}

static void test_million_messages_busy_polling(void **state)
{
    (void)state;
    run_epoll_loop(true, 20);
}

/* Sends [3] to rx a moment after it connected. */
static int late_sender_main(void *p)
{
    (void)p;
    mbx_client *c = harness_child_connect(ns, "late");
    if (c == NULL)
        return 10;
    usleep(2000);
    int rc = mbx_send(c, "rx", "[3]", 3, 5000) == MBX_OK ? 0 : 11;
    mbx_close(c);
    return rc;
}

/* mbx_busy_poll: a message already there, one that comes while it watches (from another
 * process), none (then the handle is armed: quiet, and readable at the next arrival), a
 * pending interrupt, bad arguments. */
static void test_busy_poll(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    assert_int_equal(mbx_busy_poll(NULL, 10), MBX_EINVAL);
    assert_int_equal(mbx_busy_poll(rx, -1), MBX_EINVAL);
    assert_int_equal(mbx_busy_poll(rx, MBX_BUSY_POLL_MAX_US + 1), MBX_EINVAL);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_busy_poll(rx, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    /* Nothing comes: ETIMEDOUT, the handle armed and quiet, then readable on arrival. */
    assert_int_equal(mbx_busy_poll(rx, 2000), MBX_ETIMEDOUT);
    assert_false(readable(h, 0));
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
    assert_true(readable(h, 1000));
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    /* A message from another process while it watches: caught, whether it came during
     * the spin or after (then through the armed handle). */
    pid_t later = harness_spawn(late_sender_main, NULL, 10);
    mbx_err err;
    int spins = 0;
    while ((err = mbx_busy_poll(rx, MBX_BUSY_POLL_MAX_US)) == MBX_ETIMEDOUT && spins < 1000) {
        spins++;
        if (readable(h, 10))
            break;
    }
    assert_int_equal(harness_wait(later, 10000), 0);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    assert_false(readable(h, 0));
    /* An interrupt: busy polling says there is something, the receive says what. */
    assert_int_equal(mbx_interrupt(rx), MBX_OK);
    assert_int_equal(mbx_busy_poll(rx, MBX_BUSY_POLL_MAX_US), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_EINTR);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Blocks in a receive on the client until interrupted (a receive refused because the
 * main thread's call held the client that moment is tried again). */
static void *receiving_thread(void *p)
{
    mbx_message *m = mbx_message_new();
    mbx_err err;
    while ((err = mbx_recv((mbx_client *)p, m, 20000)) == MBX_EINVAL)
        usleep(100);
    mbx_message_free(m);
    return (void *)(intptr_t)err;
}

/* The wake handle and busy polling are a receive's (mailbox.h: thread safety as
 * mbx_recv): while another thread receives, both are refused, not raced with; after it,
 * both work. */
static void test_one_receiving_thread(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, receiving_thread, rx), 0);
    mbx_handle h;
    /* Until the thread is inside its receive, either call may still win the flag: then
     * it returns at once, and the thread's receive is refused instead. */
    long long until = harness_now_ms() + 10000;
    mbx_err wh = MBX_OK, bp = MBX_OK;
    while (harness_now_ms() < until) {
        wh = mbx_wait_handle(rx, &h);
        bp = mbx_busy_poll(rx, 0);
        if (wh == MBX_EINVAL && bp == MBX_EINVAL)
            break;
        usleep(1000);
    }
    assert_int_equal(wh, MBX_EINVAL);
    assert_int_equal(bp, MBX_EINVAL);
    assert_int_equal(mbx_interrupt(rx), MBX_OK);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_int_equal((mbx_err)(intptr_t)ret, MBX_EINTR);
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    assert_int_equal(mbx_busy_poll(rx, 0), MBX_ETIMEDOUT);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

#define RECIPIENTS 500

/* Holds RECIPIENTS clients, each with its wake handle armed, until told to go. */
static int many_receivers_main(void *p)
{
    int *pipes = p;
    mbx_client *c[RECIPIENTS];
    for (int i = 0; i < RECIPIENTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        c[i] = harness_child_connect(ns, name);
        mbx_handle h;
        if (c[i] == NULL || mbx_wait_handle(c[i], &h) != MBX_OK)
            return 10;
    }
    (void)!write(pipes[1], "r", 1);
    char b;
    (void)!read(pipes[2], &b, 1);
    return 0;
}

static void test_sender_descriptors_do_not_grow(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * RECIPIENTS) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    pid_t broker =
        harness_start_broker(ns, "--slots", "520", "--depth", "4", "--max-message", "64", NULL);
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    int pipes[3] = {up[0], up[1], go[0]};
    pid_t receivers = harness_spawn(many_receivers_main, pipes, 120);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    mbx_client *tx = harness_connect(ns, "tx");
    assert_int_equal(mbx_send(tx, "r0", "[0]", 3, 1000), MBX_OK); /* the first may open one */
    int fds = open_fds();
    for (int i = 1; i < RECIPIENTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(mbx_send(tx, name, "[0]", 3, 1000), MBX_OK);
    }
    printf("descriptors of a sender to %d armed recipients: %d, then %d\n", RECIPIENTS, fds,
           open_fds());
    assert_int_equal(open_fds(), fds);
    (void)!write(go[1], "g", 1);
    assert_int_equal(harness_wait(receivers, 30000), 0);
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    mbx_close(tx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handle_follows_the_mailbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million_messages_level_triggered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million_messages_edge_triggered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million_messages_busy_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_receiving_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_descriptors_do_not_grow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
