/*
 * Threads: one client used by several threads at once, as mailbox.h allows: four threads
 * send on it while a fifth receives on it, talking to an echo process. Every message comes
 * back exactly once, in order per thread. Run under ThreadSanitizer by
 * `tests/run.sh --tsan`.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"

#define THREADS 4
#define PER_THREAD 3000

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "threads");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* The echo process: sends every message back to its sender, until told to stop. */
static int echo_main(void *p)
{
    int fd = *(int *)p;
    mbx_client *c = harness_child_connect(ns, "echo");
    if (c == NULL)
        return 10;
    (void)!write(fd, "c", 1);
    mbx_message *m = mbx_message_new();
    for (int n = 0; n < THREADS * PER_THREAD; n++) {
        if (mbx_recv(c, m, 30000) != MBX_OK)
            return 11;
        size_t len;
        const char *body = mbx_message_body(m, &len);
        if (mbx_send(c, mbx_message_from(m), body, len, 30000) != MBX_OK)
            return 12;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

struct sender {
    mbx_client *client;
    int index;
    int failures;
};

static void *send_thread(void *p)
{
    struct sender *s = p;
    char body[64];
    for (int n = 0; n < PER_THREAD; n++) {
        int len = snprintf(body, sizeof body, "{\"t\":%d,\"n\":%d}", s->index, n);
        if (mbx_send(s->client, "echo", body, (size_t)len, 30000) != MBX_OK)
            s->failures++;
    }
    return NULL;
}

struct receiver {
    mbx_client *client;
    int next[THREADS];
    int bad;
};

static void *recv_thread(void *p)
{
    struct receiver *r = p;
    mbx_message *m = mbx_message_new();
    for (int got = 0; got < THREADS * PER_THREAD; got++) {
        if (mbx_recv(r->client, m, 30000) != MBX_OK) {
            r->bad++;
            break;
        }
        cJSON *doc = cJSON_Parse(mbx_message_body(m, NULL));
        int t = doc ? cJSON_GetObjectItem(doc, "t")->valueint : -1;
        int n = doc ? cJSON_GetObjectItem(doc, "n")->valueint : -1;
        cJSON_Delete(doc);
        if (t < 0 || t >= THREADS || n != r->next[t])
            r->bad++;
        else
            r->next[t]++;
    }
    mbx_message_free(m);
    return NULL;
}

struct blocked {
    mbx_client *client;
    mbx_err err;
};

static void *blocked_recv(void *p)
{
    struct blocked *b = p;
    mbx_message *m = mbx_message_new();
    b->err = mbx_recv(b->client, m, 20000);
    mbx_message_free(m);
    return NULL;
}

static void test_threads_share_one_client(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "32", NULL);
    int up[2];
    assert_int_equal(pipe(up), 0);
    pid_t echo = harness_spawn(echo_main, &up[1], 120);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    close(up[0]);
    close(up[1]);

    mbx_client *c = harness_connect(ns, "many");
    struct receiver r = {.client = c};
    pthread_t rt, st[THREADS];
    struct sender s[THREADS];
    assert_int_equal(pthread_create(&rt, NULL, recv_thread, &r), 0);
    for (int i = 0; i < THREADS; i++) {
        s[i] = (struct sender){.client = c, .index = i};
        assert_int_equal(pthread_create(&st[i], NULL, send_thread, &s[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(st[i], NULL);
        assert_int_equal(s[i].failures, 0);
    }
    pthread_join(rt, NULL);
    assert_int_equal(r.bad, 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(r.next[i], PER_THREAD);

    assert_int_equal(harness_wait(echo, 30000), 0);

    /* A second receiver at the same time is refused, not allowed to race: while a thread
     * waits in mbx_recv, another call gets MBX_EINVAL. */
    struct blocked blocked = {.client = c};
    pthread_t bt;
    assert_int_equal(pthread_create(&bt, NULL, blocked_recv, &blocked), 0);
    mbx_message *m = mbx_message_new();
    mbx_err second = MBX_OK;
    for (int i = 0; i < 1000 && second != MBX_EINVAL; i++) {
        second = mbx_recv(c, m, 0);
        usleep(1000);
    }
    assert_int_equal(second, MBX_EINVAL);
    assert_int_equal(mbx_send(c, "many", "1", 1, 1000), MBX_OK); /* release it */
    pthread_join(bt, NULL);
    assert_int_equal(blocked.err, MBX_OK);
    mbx_message_free(m);
    mbx_close(c);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* mbx_interrupt: a receive blocked without a time limit returns MBX_EINTR when another
 * thread interrupts it, and when a signal handler does; an interrupt with no receive
 * blocked ends the next one; the client stays usable. */
static mbx_client *interrupt_target;

static void on_alarm(int sig)
{
    (void)sig;
    (void)mbx_interrupt(interrupt_target);
}

struct forever {
    mbx_client *client;
    mbx_err err;
};

static void *recv_forever(void *p)
{
    struct forever *f = p;
    mbx_message *m = mbx_message_new();
    f->err = mbx_recv(f->client, m, -1);
    mbx_message_free(m);
    return NULL;
}

static void test_interrupt_ends_a_blocked_receive(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *c = harness_connect(ns, "waiter");
    mbx_message *m = mbx_message_new();

    /* From another thread. */
    for (int round = 0; round < 20; round++) {
        struct forever f = {.client = c, .err = MBX_OK};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, recv_forever, &f), 0);
        usleep((useconds_t)(round % 4) * 1000); /* blocked, spinning, or not yet started */
        assert_int_equal(mbx_interrupt(c), MBX_OK);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(f.err, MBX_EINTR);
    }

    /* From a signal handler, while this thread is blocked. */
    interrupt_target = c;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    alarm(1);
    assert_int_equal(mbx_recv(c, m, -1), MBX_EINTR);
    signal(SIGALRM, SIG_DFL);

    /* With nothing blocked: the next receive returns at once, only that one. */
    assert_int_equal(mbx_interrupt(c), MBX_OK);
    assert_int_equal(mbx_recv(c, m, 5000), MBX_EINTR);
    assert_int_equal(mbx_recv(c, m, 0), MBX_ETIMEDOUT);

    /* Still fully usable. */
    assert_int_equal(mbx_send(c, "waiter", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(c, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    assert_int_equal(mbx_interrupt(NULL), MBX_EINVAL);
    mbx_message_free(m);
    mbx_close(c);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_share_one_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_ends_a_blocked_receive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
