/* Unit tests: how senders wait on a full mailbox, with a second thread as the sleeper
 * (POSIX threads: Linux only; the Windows suite covers full mailboxes with processes). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ring.h"
#include "segment_fixture.h"

static _Atomic uint64_t seq;

static mbx_err put(seg_view *v, uint32_t slot, uint32_t gen, const char *body, int timeout_ms)
{
    ring_outgoing m = {.body = body,
                       .len = (uint32_t)strlen(body),
                       .from_name = "tester",
                       .ts_us = 7,
                       .seq_source = &seq};
    return ring_put(v, slot, gen, &m, timeout_ms);
}

static mbx_err take(seg_view *v, uint32_t slot, uint32_t gen, char *buf, int timeout_ms)
{
    ring_incoming in = {.body = buf};
    return ring_take(v, slot, gen, &in, timeout_ms, NULL, NULL);
}

/* While a sender asleep on the mailbox starves (tx_starving_until_ms), a sender that may
 * wait queues behind the sleepers, even when a cell is free, until the half-way crossing
 * wakes them all: newcomers cannot keep taking the cells they wait for. Without a
 * starving sender, newcomers take free cells at once (queueing costs wake-ups). */
struct queued_put {
    seg_view *v;
    uint32_t gen;
    mbx_err result;
};

static void *queued_put_main(void *arg)
{
    struct queued_put *q = arg;
    q->result = put(q->v, 0, q->gen, "\"new\"", 10000);
    return NULL;
}

static void test_newcomer_queues_behind_sleepers(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    char buf[65];
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    atomic_store(&mb->tx_waiting, 1);                     /* a sender asleep on the full mailbox */
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);   /* 3 of 4 */
    assert_int_equal(put(&v, 0, gen, "0", 1000), MBX_OK); /* nobody starves: straight in */
    /* Now it starves (for the next 5 s). */
    atomic_store(&mb->tx_starving_until_ms, (uint32_t)(plat_now_ns() / 1000000 + 5000) | 1u);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK); /* 3 of 4: one cell free */
    /* A sender that may not wait takes the free cell at once... */
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_OK);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    /* ...one that may wait announces itself and sleeps behind the first. */
    struct queued_put q = {&v, gen, MBX_ETIMEDOUT};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, queued_put_main, &q), 0);
    int64_t until = plat_now_ns() + 5000000000LL;
    while (atomic_load(&mb->tx_waiting) < 2 && plat_now_ns() < until)
        plat_yield();
    assert_int_equal(atomic_load(&mb->tx_waiting), 2);
    assert_int_equal(ring_waiting(&v, 0), 3);
    /* Draining to half wakes every sleeper; the newcomer then gets in. */
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(q.result, MBX_OK);
    assert_int_equal(ring_waiting(&v, 0), 3);
    fixture_free(&v);
}

int main(void)
{
    /* Sleeps end when woken, not after a slice (test builds): the newcomer must stay
     * queued until the half-way crossing wakes it. */
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newcomer_queues_behind_sleepers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
