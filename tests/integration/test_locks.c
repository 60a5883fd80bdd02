/*
 * A sender stopped inside a mailbox's lock (Ctrl-Z, a debugger, a frozen container):
 * the lock is never rebuilt under it. When the recipient goes, its name is free at once
 * but its mailbox stays out of use until the stopped sender has gone on and the broker
 * has emptied it, so the late message never reaches the slot's next owner. Senders
 * waiting for that lock, even without a time limit, return when the recipient goes or
 * the namespace shuts down. And the broker itself never waits for a mailbox lock: a
 * member that wedges a thousand free mailboxes (their locks naming a live non-member)
 * does not slow connects down.
 *
 * The stopped sender replays ring_put by hand (it needs the layout: this test links the
 * internal library): lock, write a cell, stop, then publish and unlock when continued.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"

#define LATE_BODY "{\"for\":\"victim\",\"late\":true}"

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "locks");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* Takes victim's mailbox lock, writes a message into the cell at tail, stops itself;
 * once continued, publishes it and unlocks. */
static int stopped_holder_main(void *arg)
{
    (void)arg;
    mbx_client *c = harness_child_connect(ns, "holder");
    if (c == NULL)
        return 10;
    uint32_t slot, gen;
    if (segment_find(&c->view, "victim", &slot, &gen) != MBX_OK)
        return 11;
    seg_mailbox *mb = segment_mailbox(&c->view, slot);
    plat_lock_token tok;
    if (plat_mutex_lock(&mb->lock, plat_now_ns() + 5000000000LL, &tok) != PLAT_LOCKED)
        return 12;
    uint64_t tail = atomic_load(&mb->tail);
    uint32_t len = (uint32_t)strlen(LATE_BODY);
    uint32_t size = (uint32_t)SEG_RECORD_SIZE(6 + len);
    if (((uint32_t)tail & (c->view.ring_bytes - 1)) + size > c->view.ring_bytes)
        return 13; /* the test's record must not need a pad: the mailbox is fresh */
    seg_record *cell = segment_record(&c->view, mb, tail);
    memset(cell, 0, SEG_RECORD_HEADER);
    cell->size = size;
    cell->len = len;
    cell->from_len = 6;
    memcpy((char *)cell + SEG_RECORD_HEADER, "holder", 6);
    memcpy((char *)cell + SEG_RECORD_HEADER + 6, LATE_BODY, len);
    raise(SIGSTOP);
    atomic_store(&mb->tail, tail + (1ull << 32) + size); /* one record, size bytes */
    plat_mutex_unlock(&mb->lock, &tok);
    return 0;
}

/* Sends to victim without a time limit: it waits for the lock the holder keeps. Exits
 * with 100 + the send's result. */
static int patient_sender_main(void *arg)
{
    (void)arg;
    mbx_client *c = harness_child_connect(ns, "patient");
    if (c == NULL)
        return 10;
    return 100 + (int)mbx_send(c, "victim", "{\"patient\":1}", 13, -1);
}

static pid_t start_stopped_holder(void)
{
    pid_t holder = harness_spawn(stopped_holder_main, NULL, 60);
    int status;
    assert_int_equal(waitpid(holder, &status, WUNTRACED), holder);
    assert_true(WIFSTOPPED(status));
    return holder;
}

static int find_name(const mbx_client_info *info, void *arg)
{
    if (strcmp(info->name, ((const char **)arg)[0]) == 0)
        ((const char **)arg)[1] = "found";
    return 0;
}

/* Waits until a sender sleeps on the mailbox lock of slot (the POSIX lock word's waiters
 * bit, platform/posix/plat_sync.c), so the test knows the patient sender is blocked
 * there and not still starting. */
static void wait_for_lock_waiter(const seg_view *v, uint32_t slot)
{
    _Atomic uint32_t *word = (_Atomic uint32_t *)(void *)segment_mailbox(v, slot)->lock.opaque;
    long long until = harness_now_ms() + 5000;
    while ((atomic_load(word) & 0x80000000u) == 0 && harness_now_ms() < until)
        usleep(1000);
    assert_true((atomic_load(word) & 0x80000000u) != 0);
}

static bool client_listed(const char *name)
{
    mbx_namespace_info info;
    const char *args[2] = {name, NULL};
    return mbx_inspect(ns, &info, find_name, args) == MBX_OK && args[1] != NULL;
}

static uint64_t discarded(void)
{
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    return info.discarded;
}

static void test_stopped_sender_cannot_deliver_to_the_next_owner(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "8", NULL);
    pid_t victim = harness_spawn_idle_client(ns, "victim", 0);
    mbx_client *tx = harness_connect(ns, "tx");
    for (int i = 0; i < 3; i++)
        assert_int_equal(mbx_send(tx, "victim", "{\"for\":\"victim\"}", 16, 1000), MBX_OK);
    uint32_t victim_slot, gen;
    assert_int_equal(segment_find(&tx->view, "victim", &victim_slot, &gen), MBX_OK);
    pid_t holder = start_stopped_holder();
    pid_t patient = harness_spawn(patient_sender_main, NULL, 60);
    wait_for_lock_waiter(&tx->view, victim_slot);

    /* The recipient dies while the stopped sender holds its lock. */
    kill(victim, SIGKILL);
    assert_int_equal(harness_wait(victim, 5000), 128 + SIGKILL);
    long long until = harness_now_ms() + 5000;
    while (client_listed("victim") && harness_now_ms() < until)
        usleep(10 * 1000);
    assert_false(client_listed("victim"));
    /* The waiting sender learns that its recipient is gone, although it never got the
     * lock. */
    assert_int_equal(harness_wait(patient, 5000), 100 + MBX_EGONE);

    /* The name is free at once; its mailbox is not handed out. */
    mbx_client *newbie = harness_connect(ns, "victim");
    assert_int_not_equal(newbie->slot, victim_slot);
    kill(holder, SIGCONT);
    assert_int_equal(harness_wait(holder, 5000), 0);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(newbie, m, 300), MBX_ETIMEDOUT);

    /* Once the stopped sender has gone on, the broker empties the old mailbox: the three
     * waiting messages and the late one are discarded, and the slot serves again, empty. */
    until = harness_now_ms() + 5000;
    while (discarded() < 4 && harness_now_ms() < until)
        usleep(20 * 1000);
    assert_int_equal(discarded(), 4);
    mbx_client *reuse = harness_connect(ns, "reuse");
    assert_int_equal(reuse->slot, victim_slot);
    assert_int_equal(mbx_recv(reuse, m, 200), MBX_ETIMEDOUT);
    assert_int_equal(mbx_send(tx, "reuse", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(reuse, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    mbx_message_free(m);
    mbx_close(reuse);
    mbx_close(newbie);
    mbx_close(tx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_shutdown_wakes_a_sender_waiting_for_a_held_lock(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    pid_t victim = harness_spawn_idle_client(ns, "victim", 0);
    pid_t holder = start_stopped_holder();
    pid_t patient = harness_spawn(patient_sender_main, NULL, 60);
    mbx_client *observer = harness_connect(ns, "observer");
    uint32_t victim_slot, gen;
    assert_int_equal(segment_find(&observer->view, "victim", &victim_slot, &gen), MBX_OK);
    wait_for_lock_waiter(&observer->view, victim_slot);
    long long t0 = harness_now_ms();
    assert_int_equal(harness_stop(broker, 5000), 0);
    assert_int_equal(harness_wait(patient, 5000), 100 + MBX_ESHUTDOWN);
    printf("blocked sender returned %lld ms after the shutdown began\n", harness_now_ms() - t0);
    mbx_close(observer);
    kill(holder, SIGCONT);
    assert_int_equal(harness_wait(holder, 5000), 0);
    kill(victim, SIGKILL);
    assert_int_equal(harness_wait(victim, 5000), 128 + SIGKILL);
}

/* Review M3: a subscriber whose own mailbox lock is held by a stopped sender waits for it
 * (that is its own problem), but holds no namespace-wide lock meanwhile: other clients
 * subscribe and publish retained messages as usual. Exits with 100 + the subscribe's
 * result, after taking the retained message it was handed. */
static int stuck_subscriber_main(void *arg)
{
    int go_fd = *(int *)arg;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "victim";
    o.timeout_ms = 30000;
    mbx_client *c = NULL;
    if (mbx_connect(&o, &c) != MBX_OK)
        return 10;
    char b;
    if (read(go_fd, &b, 1) != 1) /* the holder has our lock now */
        return 11;
    mbx_err err = mbx_subscribe(c, "t.>", NULL);
    mbx_message *m = mbx_message_new();
    while (err == MBX_OK && mbx_recv(c, m, 5000) == MBX_OK)
        if (mbx_message_topic(m) != NULL)
            break; /* the retained one (after the holder's late message) */
    if (err == MBX_OK && mbx_message_topic(m) == NULL)
        err = MBX_ETIMEDOUT;
    mbx_message_free(m);
    mbx_close(c);
    return 100 + (int)err;
}

static void test_a_stuck_subscriber_holds_no_namespace_lock(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *pub = harness_connect(ns, "pub");
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.retain = 1;
    assert_int_equal(mbx_publish(pub, "t.a", "{\"v\":1}", 7, &po), MBX_OK);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t victim = harness_spawn(stuck_subscriber_main, &go[0], 60);
    assert_int_equal(mbx_wait_for(ns, "victim", 5000), MBX_OK);
    pid_t holder = start_stopped_holder();
    assert_int_equal(write(go[1], "g", 1), 1);
    uint32_t victim_slot, gen;
    assert_int_equal(segment_find(&pub->view, "victim", &victim_slot, &gen), MBX_OK);
    wait_for_lock_waiter(&pub->view, victim_slot); /* it waits in its subscribe */

    /* Everyone else goes on: short timeouts, far below the victim's wait. */
    po.timeout_ms = 500;
    assert_int_equal(mbx_publish(pub, "t.b", "{\"v\":2}", 7, &po), MBX_OK);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "other";
    o.timeout_ms = 500;
    mbx_client *other = NULL;
    assert_int_equal(mbx_connect(&o, &other), MBX_OK);
    assert_int_equal(mbx_subscribe(other, "t.*", NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(other, m, 1000), MBX_OK);
    assert_int_equal(mbx_recv(other, m, 1000), MBX_OK); /* both retained messages */
    assert_int_equal(mbx_recv(other, m, 0), MBX_ETIMEDOUT);

    kill(holder, SIGCONT);
    assert_int_equal(harness_wait(holder, 5000), 0);
    assert_int_equal(harness_wait(victim, 20000), 100 + MBX_OK);
    mbx_message_free(m);
    mbx_close(other);
    mbx_close(pub);
    close(go[0]);
    close(go[1]);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* The review's wedge (H2 of 2026-12-04), as any member can write it: the lock word of
 * every free mailbox but the last `spare` names pid 1, a live thread that is no member,
 * with no start time recorded (the POSIX lock's 64-bit word, platform/posix/plat_sync.c:
 * thread id in the low half, start time in the high half), and one record seems to wait
 * in the mailbox, so the broker's scrub finds it dirty. The "holder" never dies: the
 * broker can never empty these mailboxes. */
static unsigned wedge_free_mailboxes(const seg_view *v, uint32_t spare)
{
    unsigned n = 0;
    for (uint32_t s = 0; s + spare < v->slots; s++) {
        if (atomic_load(&segment_dir(v, s)->state) != SLOT_FREE)
            continue;
        seg_mailbox *mb = segment_mailbox(v, s);
        atomic_store((_Atomic uint64_t *)(void *)mb->lock.opaque, 1);
        uint64_t head = atomic_load(&mb->head);
        atomic_store(&mb->tail, head + (1ull << 32) + SEG_RECORD_ALIGN);
        n++;
    }
    return n;
}

/* Connects one after another and closes nothing: the clients of a process that then
 * dies at once, leaving them all for the broker to free. */
#define CROWD 300
static int crowd_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < CROWD; i++) {
        char name[16];
        snprintf(name, sizeof name, "crowd%d", i);
        if (harness_child_connect(ns, name) == NULL)
            return 10;
    }
    pause();
    return 0;
}

/* Connects with a 3 s timeout for three and a half seconds (three scrubs at least);
 * returns how many failed. */
static unsigned connects_failing(void)
{
    unsigned failed = 0, done = 0;
    long long until = harness_now_ms() + 3500;
    while (harness_now_ms() < until) {
        mbx_connect_options o;
        mbx_connect_options_init(&o);
        o.namespace_name = ns;
        o.timeout_ms = 3000;
        mbx_client *c;
        mbx_err err = mbx_connect(&o, &c);
        if (err == MBX_OK)
            mbx_close(c);
        else
            failed++;
        done++;
        usleep(50 * 1000);
    }
    printf("%u connects, %u failed\n", done, failed);
    return failed;
}

/* A broker whose every scrub finds a thousand mailboxes it cannot empty still serves:
 * connects keep succeeding within their timeout (before the fix the broker's thread
 * waited 5 ms on each of them, once a second, and connects timed out for seconds). */
static void test_wedged_mailboxes_do_not_stall_the_broker(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "1024", NULL);
    mbx_client *wedger = harness_connect(ns, "wedger");
    assert_true(wedge_free_mailboxes(&wedger->view, 8) >= 1000);
    unsigned failed = connects_failing();
    mbx_close(wedger);
    assert_int_equal(failed, 0);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Freeing the slots of clients that die together does not wait on their mailboxes'
 * locks either: a member wedges the locks of 300 clients' mailboxes, then the process of
 * those clients dies. Before the fix the broker waited 20 ms for each (6 s in all, then
 * 5 ms each per scrub), and connects timed out. */
static void test_dying_clients_with_wedged_mailboxes_do_not_stall_the_broker(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "512", NULL);
    pid_t crowd = harness_spawn(crowd_main, NULL, 60);
    mbx_client *wedger = harness_connect(ns, "wedger");
    uint32_t slot, gen;
    long long until = harness_now_ms() + 20000;
    while (segment_find(&wedger->view, "crowd299", &slot, &gen) != MBX_OK &&
           harness_now_ms() < until)
        usleep(10 * 1000);
    unsigned wedged = 0;
    for (int i = 0; i < CROWD; i++) {
        char name[16];
        snprintf(name, sizeof name, "crowd%d", i);
        if (segment_find(&wedger->view, name, &slot, &gen) != MBX_OK)
            continue;
        seg_mailbox *mb = segment_mailbox(&wedger->view, slot);
        atomic_store((_Atomic uint64_t *)(void *)mb->lock.opaque, 1); /* as above: pid 1 */
        wedged++;
    }
    kill(crowd, SIGKILL);
    assert_int_equal(harness_wait(crowd, 5000), 128 + SIGKILL);
    unsigned failed = connects_failing();
    mbx_close(wedger);
    assert_int_equal(wedged, CROWD);
    assert_int_equal(failed, 0);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_sender_cannot_deliver_to_the_next_owner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_wakes_a_sender_waiting_for_a_held_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stuck_subscriber_holds_no_namespace_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wedged_mailboxes_do_not_stall_the_broker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_dying_clients_with_wedged_mailboxes_do_not_stall_the_broker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
