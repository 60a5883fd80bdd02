/*
 * Crashes at the worst moment: fault-injection points (libmailbox/src/fault.h) kill a
 * sender between lock and unlock or in the middle of a copy, the broker or a client in the
 * middle of registration, while other processes keep working. The namespace must go on,
 * the receiver must see only whole messages, and no lock may stay held.
 */
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

#define SENDERS 4 /* the last one is armed */
#define PER_SENDER 1500
#define FIRE_AT 400

static char ns[64];
static const char *armed_point;

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "crash");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

static int sender_main(void *p)
{
    int index = *(int *)p;
    if (index == SENDERS - 1) {
        char spec[96];
        snprintf(spec, sizeof spec, "%s:%d", armed_point, FIRE_AT);
        setenv("MBX_FAULT", spec, 1);
    }
    char name[32];
    snprintf(name, sizeof name, "sender-%d", index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    char body[128];
    for (int n = 0; n < PER_SENDER; n++) {
        /* A body long enough that "half a copy" is visibly half. */
        int len = snprintf(body, sizeof body, "{\"s\":%d,\"n\":%d,\"pad\":\"%040d\"}", index, n, n);
        if (mbx_send(c, "sink", body, (size_t)len, 20000) != MBX_OK)
            return 11;
    }
    mbx_close(c);
    return 0;
}

/* Runs 3 normal senders and one armed with `point`; the armed one dies holding the lock
 * or mid-copy. `delivered` is how many of its messages must arrive. */
static void crash_while_sending(const char *point, int delivered)
{
    armed_point = point;
    pid_t broker = harness_start_broker(ns, "--depth", "8", "--max-message", "256", NULL);
    mbx_client *sink = harness_connect(ns, "sink");
    int index[SENDERS];
    pid_t pids[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        index[i] = i;
        pids[i] = harness_spawn(sender_main, &index[i], 60);
    }
    int next[SENDERS] = {0};
    int expected = (SENDERS - 1) * PER_SENDER + delivered;
    mbx_message *m = mbx_message_new();
    for (int got = 0; got < expected; got++) {
        mbx_err err = mbx_recv(sink, m, 20000);
        if (err != MBX_OK)
            fail_msg("%s: after %d messages: %s", point, got, mbx_strerror(err));
        /* Whole messages only: each parses, and is its sender's next. */
        cJSON *doc = cJSON_Parse(mbx_message_body(m, NULL));
        if (doc == NULL)
            fail_msg("%s: a torn message: %s", point, mbx_message_body(m, NULL));
        int s = cJSON_GetObjectItem(doc, "s")->valueint;
        int n = cJSON_GetObjectItem(doc, "n")->valueint;
        cJSON_Delete(doc);
        assert_in_range(s, 0, SENDERS - 1);
        assert_int_equal(n, next[s]);
        next[s]++;
    }
    assert_int_equal(mbx_recv(sink, m, 200), MBX_ETIMEDOUT);
    assert_int_equal(next[SENDERS - 1], delivered);
    for (int i = 0; i < SENDERS - 1; i++)
        assert_int_equal(harness_wait(pids[i], 30000), 0);
    assert_int_equal(harness_wait(pids[SENDERS - 1], 30000), 128 + SIGKILL);
    /* No lock stays held: a send that may not wait goes through. */
    assert_int_equal(mbx_send(sink, "sink", "{}", 2, 0), MBX_OK);
    assert_int_equal(mbx_recv(sink, m, 1000), MBX_OK);
    mbx_message_free(m);
    mbx_close(sink);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_killed_holding_the_lock(void **state)
{
    (void)state;
    crash_while_sending("ring.put.locked", FIRE_AT - 1);
}

static void test_killed_mid_copy(void **state)
{
    (void)state;
    crash_while_sending("ring.put.copy", FIRE_AT - 1);
}

static void test_killed_after_publish_before_unlock(void **state)
{
    (void)state;
    crash_while_sending("ring.put.published", FIRE_AT);
}

static int register_and_die_main(void *p)
{
    (void)p;
    setenv("MBX_FAULT", "client.register.sent", 1);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "fragile";
    mbx_client *c;
    return mbx_connect(&o, &c) == MBX_OK ? 10 : 11; /* never returns: killed inside */
}

static void test_client_killed_mid_registration(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *bystander = harness_connect(ns, "bystander");
    pid_t child = harness_spawn(register_and_die_main, NULL, 30);
    assert_int_equal(harness_wait(child, 10000), 128 + SIGKILL);
    /* The slot it was given is freed, and its name can be taken. */
    mbx_client *c = NULL;
    assert_int_equal(harness_connect_retry(ns, "fragile", MBX_ENAMETAKEN, 2000, &c), MBX_OK);
    assert_int_equal(mbx_send(c, "bystander", "1", 1, 1000), MBX_OK);
    mbx_close(c);
    mbx_close(bystander);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_broker_killed_mid_registration(void **state)
{
    (void)state;
    setenv("MBX_FAULT", "registry.claim.writing:2", 1);
    pid_t broker = harness_start_broker(ns, NULL);
    unsetenv("MBX_FAULT");
    mbx_client *first = harness_connect(ns, "first"); /* the first claim passes */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "second";
    mbx_client *c = NULL;
    assert_int_equal(mbx_connect(&o, &c), MBX_ENOBROKER); /* the broker died answering */
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);

    /* A new broker mends the half-written entry; everyone carries on. */
    pid_t second = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 1);
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    assert_int_equal(mbx_send(c, "first", "[2]", 3, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(first, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "second");
    mbx_message_free(m);
    mbx_close(c);
    mbx_close(first);
    assert_int_equal(harness_stop(second, 5000), 0);
}

static int blocked_sender_main(void *p)
{
    (void)p;
    mbx_client *c = harness_child_connect(ns, NULL);
    if (c == NULL)
        return 10;
    mbx_err err = mbx_send(c, "victim", "1", 1, 30000); /* the mailbox is full */
    mbx_close(c);
    return err == MBX_EGONE ? 0 : 20 + (int)err;
}

static void test_sender_blocked_on_dead_recipient_wakes(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "2", NULL);
    pid_t victim = harness_spawn_idle_client(ns, "victim", 0);
    mbx_client *tx = harness_connect(ns, "tx");
    assert_int_equal(mbx_send(tx, "victim", "1", 1, 0), MBX_OK);
    assert_int_equal(mbx_send(tx, "victim", "1", 1, 0), MBX_OK);
    pid_t blocked = harness_spawn(blocked_sender_main, NULL, 60);
    harness_wait_gauge(ns, "victim", HARNESS_SENDERS_ASLEEP, 1,
                       20000); /* blocked on the full mailbox */
    kill(victim, SIGKILL);
    assert_int_equal(harness_wait(victim, 5000), 128 + SIGKILL);
    assert_int_equal(harness_wait(blocked, 10000), 0); /* woke with "recipient gone" */
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.discarded, 2);
    mbx_close(tx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A keeper killed before it has closed what it inherited from its broker (copies of the
 * liveness lock and the socket): the broker does not report ready, says why, and leaves
 * the namespace free. It waits for its keeper's ready, so no broker reports ready while
 * its keeper may still hold its lock: a broker killed after that is seen dead at once. */
static void test_broker_waits_for_its_keeper(void **state)
{
    (void)state;
    char err[512];
    setenv("MBX_FAULT", "keeper.inherited", 1);
    int rc = harness_run_broker(err, sizeof err, "-N", ns, NULL);
    unsetenv("MBX_FAULT");
    assert_int_equal(rc, 1);
    if (strstr(err, "keeper did not start") == NULL)
        fail_msg("the broker did not say why it stopped: %s", err);
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *c = harness_connect(ns, "after");
    mbx_close(c);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    /* Sleeps last until their deadline, not one slice (test builds): a missing wake-up
     * then hangs a test here instead of passing 250 ms late. */
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_killed_holding_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_mid_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_publish_before_unlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_killed_mid_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_killed_mid_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_blocked_on_dead_recipient_wakes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broker_waits_for_its_keeper, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
