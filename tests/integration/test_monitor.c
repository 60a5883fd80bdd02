/*
 * Monitors (mbx_connect_options.monitor, `mbx monitor`) between real processes: four
 * workers sending, requesting (and an echo replying) and publishing at once, every one of
 * their messages seen by the monitor exactly once, with the right kind, sender,
 * recipient, topic and correlation, and whatever it could not take counted exactly; a
 * stopped monitor that slows no sender and learns exactly how much it missed; the
 * monitor table's limit and options; a monitor kept across a broker killed and restarted,
 * and its entry freed when it is killed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define WORKERS 4
#define OPS 2500 /* per worker: op i sends (i % 3 == 0), requests (1) or publishes (2) */
#define SENDS_PER_WORKER ((OPS + 2) / 3)
#define REQUESTS_PER_WORKER ((OPS + 1) / 3)
/* Every copy the monitor should see: each op once, and each request's reply. */
#define EXPECTED (WORKERS * (OPS + REQUESTS_PER_WORKER))

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "monitor");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

static mbx_err connect_monitor(mbx_client **out)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.monitor = 1;
    return mbx_connect(&o, out);
}

/* ---- four workers, every message seen once ------------------------------------------ */

/* Takes `count` messages (the workers' sends), each valid. */
static int sink_main(void *p)
{
    int count = *(int *)p;
    mbx_client *c = harness_child_connect(ns, "sink");
    if (c == NULL || mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 10;
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < count; i++)
        if (mbx_recv(c, m, 30000) != MBX_OK)
            return 11;
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

/* Answers `count` requests with their own body. */
static int echo_main(void *p)
{
    int count = *(int *)p;
    mbx_client *c = harness_child_connect(ns, "echo");
    if (c == NULL || mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 20;
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < count; i++) {
        size_t len;
        if (mbx_recv(c, m, 30000) != MBX_OK || mbx_message_kind(m) != MBX_KIND_REQUEST)
            return 21;
        const char *body = mbx_message_body(m, &len);
        if (mbx_reply(c, m, body, len, 30000) != MBX_OK)
            return 22;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

static int worker_main(void *p)
{
    int k = *(int *)p;
    char name[16], topic[16], body[64];
    snprintf(name, sizeof name, "w%d", k);
    snprintf(topic, sizeof topic, "w.%d", k);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 30;
    mbx_message *reply = mbx_message_new();
    for (int i = 0; i < OPS; i++) {
        int len = snprintf(body, sizeof body, "{\"w\":%d,\"i\":%d}", k, i);
        mbx_err err;
        if (i % 3 == 0) {
            err = mbx_send(c, "sink", body, (size_t)len, 30000);
        } else if (i % 3 == 1) {
            err = mbx_request(c, "echo", body, (size_t)len, reply, 30000);
        } else {
            mbx_publish_options po;
            mbx_publish_options_init(&po);
            err = mbx_publish(c, topic, body, (size_t)len, &po);
        }
        if (err != MBX_OK)
            return 31;
    }
    mbx_message_free(reply);
    mbx_close(c);
    return 0;
}

/* What the monitor saw of worker w's op i: one bit per kind. */
static unsigned char seen[WORKERS][OPS];
static uint64_t request_corr[WORKERS][OPS];

/* A request's copy and its reply's carry one correlation. Either may come first: each
 * sender copies after its own put, and a requester preempted in between lets the reply's
 * copy overtake its request's. */
static void same_corr(int w, int i, uint64_t corr)
{
    assert_int_not_equal(corr, 0);
    if (request_corr[w][i] == 0)
        request_corr[w][i] = corr;
    else
        assert_int_equal(corr, request_corr[w][i]);
}

static void check_copy(const mbx_message *m, int *replies)
{
    assert_true(mbx_message_monitored(m));
    int w = -1, i = -1;
    assert_int_equal(sscanf(mbx_message_body(m, NULL), "{\"w\":%d,\"i\":%d}", &w, &i), 2);
    assert_true(w >= 0 && w < WORKERS && i >= 0 && i < OPS);
    char worker[16], topic[16];
    snprintf(worker, sizeof worker, "w%d", w);
    snprintf(topic, sizeof topic, "w.%d", w);
    mbx_kind kind = mbx_message_kind(m);
    unsigned bit = 1u << kind;
    assert_int_equal(seen[w][i] & bit, 0); /* once */
    seen[w][i] |= (unsigned char)bit;
    switch (kind) {
    case MBX_KIND_PLAIN:
        assert_int_equal(i % 3, 0);
        assert_string_equal(mbx_message_from(m), worker);
        assert_string_equal(mbx_message_to(m), "sink");
        assert_null(mbx_message_topic(m));
        break;
    case MBX_KIND_REQUEST:
        assert_int_equal(i % 3, 1);
        assert_string_equal(mbx_message_from(m), worker);
        assert_string_equal(mbx_message_to(m), "echo");
        same_corr(w, i, mbx_message_correlation(m));
        break;
    case MBX_KIND_REPLY:
        assert_int_equal(i % 3, 1);
        assert_string_equal(mbx_message_from(m), "echo");
        assert_string_equal(mbx_message_to(m), worker);
        same_corr(w, i, mbx_message_correlation(m));
        (*replies)++;
        break;
    case MBX_KIND_PUBLICATION:
        assert_int_equal(i % 3, 2);
        assert_string_equal(mbx_message_from(m), worker);
        assert_string_equal(mbx_message_topic(m), topic);
        assert_string_equal(mbx_message_to(m), "");
        break;
    }
}

static void test_every_message_is_seen_once(void **state)
{
    (void)state;
    /* Deep mailboxes: the monitor's holds every copy even if it fell behind, so a copy
     * is missed only when another sender kept its lock too long (counted, told). */
    pid_t broker = harness_start_broker(ns, "--depth", "16384", "--slots", "16", NULL);
    mbx_client *parent = harness_connect(ns, "parent");
    mbx_client *mon;
    assert_int_equal(connect_monitor(&mon), MBX_OK);
    int sends = WORKERS * SENDS_PER_WORKER, requests = WORKERS * REQUESTS_PER_WORKER;
    pid_t sink = harness_spawn(sink_main, &sends, 120);
    pid_t echo = harness_spawn(echo_main, &requests, 120);
    mbx_message *m = mbx_message_new();
    for (int k = 0; k < 2; k++)
        assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK); /* both are there */
    pid_t workers[WORKERS];
    int index[WORKERS];
    for (int k = 0; k < WORKERS; k++) {
        index[k] = k;
        workers[k] = harness_spawn(worker_main, &index[k], 120);
    }
    /* The copies of the children's "[0]" to parent come first: not the workers'. */
    int got = 0, replies = 0, others = 0;
    uint64_t told_missed = 0;
    mbx_client_info ci;
    long long deadline = harness_now_ms() + 90000;
    while (harness_now_ms() < deadline) {
        mbx_err err = mbx_recv(mon, m, 1000);
        if (err == MBX_ETIMEDOUT) {
            /* Done when every copy is here or counted as missed. */
            assert_true(harness_find_client(ns, mbx_client_name(mon), &ci));
            if ((uint64_t)got + ci.dropped >= EXPECTED)
                break;
            continue;
        }
        assert_int_equal(err, MBX_OK);
        told_missed += mbx_message_missed(m);
        if (strcmp(mbx_message_to(m), "parent") == 0) {
            others++;
            continue;
        }
        check_copy(m, &replies);
        got++;
        if (got == 1) /* a copy cannot be answered: the monitor watches, it takes no part */
            assert_int_equal(mbx_reply(mon, m, "[1]", 3, 100), MBX_EINVAL);
    }
    for (int k = 0; k < WORKERS; k++)
        assert_int_equal(harness_wait(workers[k], 60000), 0);
    assert_int_equal(harness_wait(sink, 60000), 0);
    assert_int_equal(harness_wait(echo, 60000), 0);
    assert_true(harness_find_client(ns, mbx_client_name(mon), &ci));
    printf("# monitor: %d copies of %d, %llu missed (%llu told)\n", got, EXPECTED,
           (unsigned long long)ci.dropped, (unsigned long long)told_missed);
    assert_int_equal(others, 2);
    /* Exactly: what was not seen was counted, and nothing else was. A miss needs another
     * sender preempted while it holds the monitor's lock, past RING_BRIEF_LOCK_POLLS (on
     * an idle machine none in 13,332; under a loaded CI a preemption of some
     * milliseconds costs the copies tried meanwhile): some, never most. */
    assert_int_equal((uint64_t)got + ci.dropped, EXPECTED);
    assert_true(told_missed <= ci.dropped);
    assert_true(ci.dropped * 4 <= EXPECTED);
    if (ci.dropped == 0)
        assert_int_equal(replies, WORKERS * REQUESTS_PER_WORKER);
    mbx_message_free(m);
    mbx_close(mon);
    mbx_close(parent);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- a stopped monitor --------------------------------------------------------------- */

#define BURST 10000

/* Attaches, says so, then is stopped and continued by the parent: takes what its mailbox
 * held (at most the depth), says so, then checks that the next copy tells exactly how
 * many it missed. */
static int stopped_monitor_main(void *p)
{
    (void)p;
    mbx_client *c;
    if (connect_monitor(&c) != MBX_OK || mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 40;
    raise(SIGSTOP);
    mbx_message *m = mbx_message_new();
    int held = 0;
    while (mbx_recv(c, m, 300) == MBX_OK) {
        if (mbx_message_missed(m) != 0 || !mbx_message_monitored(m))
            return 41;
        held++;
    }
    if (held == 0 || held >= BURST)
        return 42;
    char body[32];
    int len = snprintf(body, sizeof body, "[%d]", held);
    if (mbx_send(c, "parent", body, (size_t)len, 5000) != MBX_OK)
        return 43;
    /* The copy of the parent's last message says what came between. */
    if (mbx_recv(c, m, 10000) != MBX_OK || strcmp(mbx_message_body(m, NULL), "[\"last\"]") != 0)
        return 44;
    int rc = mbx_message_missed(m) == (uint64_t)(BURST - held) ? 0 : 45;
    mbx_message_free(m);
    mbx_close(c);
    return rc;
}

static void test_stopped_monitor_slows_nobody(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "64", NULL);
    mbx_client *parent = harness_connect(ns, "parent");
    int sends = BURST + 1;
    mbx_message *m = mbx_message_new();
    pid_t sink = harness_spawn(sink_main, &sends, 120);
    assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK); /* the sink is there ... */
    pid_t mon = harness_spawn(stopped_monitor_main, NULL, 120);
    assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK); /* ... then the monitor */
    int status;
    assert_int_equal(waitpid(mon, &status, WUNTRACED), mon);
    assert_true(WIFSTOPPED(status));
    /* The monitor's mailbox fills after 64 copies; every send still goes at once (a copy
     * that waited would hang this loop: the harness's timeouts would fail the test). */
    for (int i = 0; i < BURST; i++)
        assert_int_equal(mbx_send(parent, "sink", "[1]", 3, 30000), MBX_OK);
    kill(mon, SIGCONT);
    assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK); /* what it held: [N] */
    int held = -1;
    assert_int_equal(sscanf(mbx_message_body(m, NULL), "[%d]", &held), 1);
    assert_int_equal(mbx_send(parent, "sink", "[\"last\"]", 8, 30000), MBX_OK);
    assert_int_equal(harness_wait(mon, 30000), 0);
    assert_int_equal(harness_wait(sink, 30000), 0);
    mbx_message_free(m);
    mbx_close(parent);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- the table's limit, the options -------------------------------------------------- */

static void test_four_monitors_at_most(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *mons[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(connect_monitor(&mons[i]), MBX_OK);
    mbx_client *extra;
    assert_int_equal(connect_monitor(&extra), MBX_ENOSLOTS);
    mbx_close(mons[1]);
    assert_int_equal(connect_monitor(&mons[1]), MBX_OK); /* its entry is free again */

    /* Every monitor gets its copy. */
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    assert_int_equal(mbx_send(tx, "rx", "{\"a\":1}", 7, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mbx_recv(mons[i], m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "{\"a\":1}");
        assert_string_equal(mbx_message_from(m), "tx");
        assert_string_equal(mbx_message_to(m), "rx");
        assert_int_equal(mbx_recv(mons[i], m, 0), MBX_ETIMEDOUT); /* once */
    }
    /* A message sent to a monitor is seen as a copy, never twice; an ordinary client
     * never sees a copy. */
    assert_int_equal(mbx_send(tx, mbx_client_name(mons[0]), "[2]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(mons[0], m, 5000), MBX_OK);
    assert_true(mbx_message_monitored(m));
    assert_int_equal(mbx_recv(mons[0], m, 200), MBX_ETIMEDOUT);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_false(mbx_message_monitored(m));
    assert_string_equal(mbx_message_body(m, NULL), "{\"a\":1}");
    assert_int_equal(mbx_recv(rx, m, 100), MBX_ETIMEDOUT);

    /* A monitor is a client of its own. */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.monitor = 1;
    o.client_name = "m";
    o.group = 1;
    assert_int_equal(mbx_connect(&o, &extra), MBX_EINVAL);
    o.group = 0;
    o.linger_ms = 1000;
    assert_int_equal(mbx_connect(&o, &extra), MBX_EINVAL);
    o.linger_ms = 0;
    o.send_only = 1;
    assert_int_equal(mbx_connect(&o, &extra), MBX_EINVAL);

    mbx_message_free(m);
    for (int i = 0; i < 4; i++)
        mbx_close(mons[i]);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- what is traffic ------------------------------------------------------------------ */

/* A bridge's delivery repeated after a crash (mbx_send_options.once) is put once and
 * copied once; a monitor neither subscribes nor makes requests (their answers would be
 * dropped unseen, and its counts would lie). */
static void test_copies_only_of_real_traffic(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *mon;
    assert_int_equal(connect_monitor(&mon), MBX_OK);
    mbx_client *bridge = harness_connect(ns, "bridge");
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.node = "hostb";
    so.from = "far";
    so.once = 7;
    for (int i = 0; i < 2; i++)
        assert_int_equal(mbx_send_ex(bridge, "rx", "[7]", 3, &so), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 100), MBX_ETIMEDOUT);
    assert_int_equal(mbx_recv(mon, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "far");
    assert_string_equal(mbx_message_node(m), "hostb");
    assert_string_equal(mbx_message_to(m), "rx");
    assert_int_equal(mbx_recv(mon, m, 100), MBX_ETIMEDOUT); /* once */

    assert_int_equal(mbx_subscribe(mon, "a.>", NULL), MBX_EINVAL);
    uint64_t id;
    assert_int_equal(mbx_request_send(mon, "rx", "[1]", 3, 1000, &id), MBX_EINVAL);
    assert_int_equal(mbx_request(mon, "rx", "[1]", 3, m, 100), MBX_EINVAL);
    assert_int_equal(mbx_send(mon, "rx", "[8]", 3, 1000), MBX_OK); /* sends are fine */
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_int_equal(mbx_recv(mon, m, 100), MBX_ETIMEDOUT); /* its own: not copied to it */
    mbx_message_free(m);
    mbx_close(rx);
    mbx_close(bridge);
    mbx_close(mon);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- restarts and deaths --------------------------------------------------------------- */

static int idle_monitor_main(void *p)
{
    (void)p;
    mbx_client *c;
    if (connect_monitor(&c) != MBX_OK || mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 50;
    pause();
    return 0;
}

static void test_monitor_outlives_its_broker_and_dies_cleanly(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *mon;
    assert_int_equal(connect_monitor(&mon), MBX_OK);
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *parent = harness_connect(ns, "parent");
    mbx_message *m = mbx_message_new();

    /* A broker killed and restarted adopts the namespace: the monitor still gets copies. */
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 10000), 128 + SIGKILL);
    broker = harness_start_broker(ns, NULL);
    assert_int_equal(mbx_send(tx, "parent", "[\"after\"]", 9, 5000), MBX_OK);
    assert_int_equal(mbx_recv(mon, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[\"after\"]");
    assert_string_equal(mbx_message_to(m), "parent");
    assert_int_equal(mbx_recv(parent, m, 5000), MBX_OK);

    /* Monitors killed give their entries back: four can attach again. */
    pid_t dead[3];
    for (int i = 0; i < 3; i++) {
        dead[i] = harness_spawn(idle_monitor_main, NULL, 60);
        assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK);
    }
    mbx_client *extra;
    assert_int_equal(connect_monitor(&extra), MBX_ENOSLOTS);
    for (int i = 0; i < 3; i++) {
        kill(dead[i], SIGKILL);
        assert_int_equal(harness_wait(dead[i], 10000), 128 + SIGKILL);
    }
    mbx_client *again[3];
    for (int i = 0; i < 3; i++) {
        mbx_err err = MBX_ENOSLOTS;
        /* The broker frees a dead client's slot when it hears of its death. */
        for (int tries = 0; tries < 500 && err == MBX_ENOSLOTS; tries++) {
            err = connect_monitor(&again[i]);
            if (err == MBX_ENOSLOTS)
                usleep(10000);
        }
        assert_int_equal(err, MBX_OK);
    }
    assert_int_equal(mbx_send(tx, "parent", "[3]", 3, 5000), MBX_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mbx_recv(again[i], m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "[3]");
        mbx_close(again[i]);
    }
    mbx_message_free(m);
    mbx_close(mon);
    mbx_close(tx);
    mbx_close(parent);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_message_is_seen_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_monitor_slows_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_monitors_at_most, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copies_only_of_real_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_outlives_its_broker_and_dies_cleanly, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
