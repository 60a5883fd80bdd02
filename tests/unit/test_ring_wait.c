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

/* Light publishes (ring.h): a sender that read the owner's announcement before it was
 * visible posts nothing, while the owner, which looked at tail before the publish was
 * visible, sleeps. Emulated here: the owner is asleep, its announcement is cleared (the
 * sender's stale look), then a put publishes without a post. Settling makes the owner's
 * first sleep short (300 ms here, so that this thread surely acts within it), after which
 * it looks again and takes the message. Without settling it would sleep forever (no wait
 * slices in this test): the watchdog below then wakes it and the test fails. */
struct taker {
    seg_view *v;
    uint32_t gen;
    mbx_err result;
    char buf[65];
    _Atomic int done;
};

static void *taker_main(void *arg)
{
    struct taker *t = arg;
    t->result = take(t->v, 0, t->gen, t->buf, -1);
    atomic_store(&t->done, 1);
    return NULL;
}

static void test_settling_catches_a_publish_that_posted_nothing(void **state)
{
    (void)state;
    setenv("MBX_TEST_SETTLE_SLEEP_MS", "300", 1);
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    ring_allow_light(&v, 0);
    struct taker t = {.v = &v, .gen = gen, .result = MBX_ETIMEDOUT};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, taker_main, &t), 0);
    int64_t until = plat_now_ns() + 5000000000LL;
    while (atomic_load(&mb->rx_sleeping) == 0 && plat_now_ns() < until)
        plat_sleep_ns(100000);
    assert_int_equal(atomic_load(&mb->rx_sleeping), 1);
    atomic_store(&mb->rx_sleeping, 0); /* the sender's stale look: nobody to post to */
    assert_int_equal(put(&v, 0, gen, "\"late\"", 0), MBX_OK);
    until = plat_now_ns() + 10000000000LL;
    while (atomic_load(&t.done) == 0 && plat_now_ns() < until)
        plat_sleep_ns(1000000);
    bool woke_by_itself = atomic_load(&t.done) != 0;
    if (!woke_by_itself)
        plat_sem_post(&mb->items); /* the watchdog: let the thread end, then fail */
    assert_int_equal(pthread_join(th, NULL), 0);
    unsetenv("MBX_TEST_SETTLE_SLEEP_MS");
    assert_true(woke_by_itself);
    assert_int_equal(t.result, MBX_OK);
    assert_string_equal(t.buf, "\"late\"");
    fixture_free(&v);
}

/* Making a wake handle turns light publishes off under the lock: it waits for a sender
 * that holds the lock, and gives up, saying so, when the holder keeps it past the
 * deadline; a slot that changed hands is not touched. */
struct holder {
    plat_mutex *lock;
    _Atomic int stage; /* 1: it holds the lock; 2: let it go; 3: it let go */
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    plat_lock_token tok;
    if (plat_mutex_trylock(h->lock, &tok) != PLAT_LOCKED)
        return NULL;
    atomic_store(&h->stage, 1);
    while (atomic_load(&h->stage) != 2)
        plat_sleep_ns(100000);
    plat_mutex_unlock(h->lock, &tok);
    atomic_store(&h->stage, 3);
    return NULL;
}

static void test_forbid_light_takes_the_lock(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    ring_allow_light(&v, 0);
    assert_int_equal(atomic_load(&mb->tx_light), 1);
    struct holder h = {.lock = &mb->lock}; /* a live sender that keeps the lock */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
    int64_t until = plat_now_ns() + 5000000000LL;
    while (atomic_load(&h.stage) != 1 && plat_now_ns() < until)
        plat_sleep_ns(100000);
    assert_int_equal(atomic_load(&h.stage), 1);
    assert_int_equal(ring_forbid_light(&v, 0, gen, plat_deadline(50)), MBX_ETIMEDOUT);
    assert_int_equal(atomic_load(&mb->tx_light), 1);
    atomic_store(&h.stage, 2);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&h.stage), 3);
    /* The broker took the slot back (it frees a slot by marking it free, generation + 2). */
    seg_dir_entry *e = segment_dir(&v, 0);
    atomic_store(&e->state, SLOT_FREE);
    atomic_store(&e->generation, gen + 2);
    assert_int_equal(ring_forbid_light(&v, 0, gen, plat_deadline(50)), MBX_ESHUTDOWN);
    assert_int_equal(atomic_load(&mb->tx_light), 1);
    atomic_store(&e->generation, gen);
    atomic_store(&e->state, SLOT_ACTIVE);
    assert_int_equal(ring_forbid_light(&v, 0, gen, plat_deadline(50)), MBX_OK);
    assert_int_equal(atomic_load(&mb->tx_light), 0);
    /* Senders fence from now on; a receive still works as ever. */
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    char buf[65];
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    fixture_free(&v);
}

int main(void)
{
    /* Sleeps end when woken, not after a slice (test builds): the newcomer must stay
     * queued until the half-way crossing wakes it. */
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newcomer_queues_behind_sleepers),
        cmocka_unit_test(test_settling_catches_a_publish_that_posted_nothing),
        cmocka_unit_test(test_forbid_light_takes_the_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
