/*
 * Durable mailboxes: a client that asks for linger leaves its mailbox behind when it goes
 * (closes, exits, is killed); senders go on delivering to it, and a new client of the same
 * name within the linger time receives everything, in order. Without linger, or after the
 * time runs out, the messages are discarded and counted, never handed to a successor.
 * A runtime directory cleared under the broker is made again, so a crash then loses
 * nothing either.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char ns[64];
static pid_t broker;

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "durable");
    broker = harness_start_broker(ns, "--depth", "16", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop(broker, 5000);
    harness_cleanup();
    return 0;
}

static pid_t spawn_durable(int linger_ms)
{
    return harness_spawn_idle_client(ns, "durable", linger_ms);
}

static void send_numbers(mbx_client *tx, int from, int to)
{
    char body[16];
    for (int n = from; n < to; n++) {
        int len = snprintf(body, sizeof body, "%d", n);
        assert_int_equal(mbx_send(tx, "durable", body, (size_t)len, 1000), MBX_OK);
    }
}

static void expect_numbers(mbx_client *rx, int from, int to)
{
    mbx_message *m = mbx_message_new();
    char body[16];
    for (int n = from; n < to; n++) {
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        snprintf(body, sizeof body, "%d", n);
        assert_string_equal(mbx_message_body(m, NULL), body);
    }
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
}

static uint64_t discarded(void)
{
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    return info.discarded;
}

static int find_lingering(const mbx_client_info *ci, void *arg)
{
    if (strcmp(ci->name, "durable") == 0 && ci->lingering && ci->pid == 0)
        *(int *)arg = 1;
    return 0;
}

/* Waits (bounded) until the broker has seen the client go and its mailbox lingers. */
static void wait_lingering(void)
{
    for (int i = 0; i < 500; i++) {
        int found = 0;
        mbx_namespace_info info;
        assert_int_equal(mbx_inspect(ns, &info, find_lingering, &found), MBX_OK);
        if (found)
            return;
        usleep(10 * 1000);
    }
    fail_msg("the mailbox never lingered");
}

static void test_killed_client_mailbox_outlives_it(void **state)
{
    (void)state;
    pid_t child = spawn_durable(30000);
    mbx_client *tx = harness_connect(ns, "tx");
    send_numbers(tx, 0, 4);
    kill(child, SIGKILL);
    assert_int_equal(harness_wait(child, 5000), 128 + SIGKILL);
    wait_lingering();
    send_numbers(tx, 4, 9); /* still delivered while nobody holds it */
    mbx_client *successor = harness_connect(ns, "durable");
    expect_numbers(successor, 0, 9);
    assert_int_equal(discarded(), 0);
    mbx_close(successor);
    mbx_close(tx);
}

static void test_linger_runs_out(void **state)
{
    (void)state;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "durable";
    o.linger_ms = 200;
    mbx_client *c;
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    mbx_close(c);
    mbx_client *tx = harness_connect(ns, "tx");
    send_numbers(tx, 0, 3);
    /* The broker frees it at its next check after the time is up. */
    wait_lingering();
    int still = 1;
    for (int i = 0; i < 500 && still; i++) {
        usleep(10 * 1000);
        still = 0;
        mbx_namespace_info info;
        assert_int_equal(mbx_inspect(ns, &info, find_lingering, &still), MBX_OK);
    }
    assert_int_equal(still, 0);
    assert_int_equal(mbx_send(tx, "durable", "0", 1, 0), MBX_ENORECIPIENT);
    assert_int_equal(discarded(), 3);
    mbx_client *successor = harness_connect(ns, "durable");
    expect_numbers(successor, 0, 0); /* nothing handed over */
    mbx_close(successor);
    mbx_close(tx);
}

static void test_without_linger_messages_are_discarded(void **state)
{
    (void)state;
    pid_t child = spawn_durable(0);
    mbx_client *tx = harness_connect(ns, "tx");
    send_numbers(tx, 0, 5);
    kill(child, SIGKILL);
    assert_int_equal(harness_wait(child, 5000), 128 + SIGKILL);
    mbx_client *successor = NULL;
    assert_int_equal(harness_connect_retry(ns, "durable", MBX_ENAMETAKEN, 2000, &successor),
                     MBX_OK);
    expect_numbers(successor, 0, 0);
    assert_int_equal(discarded(), 5);
    mbx_close(successor);
    mbx_close(tx);
}

static void test_lingering_survives_a_broker_restart(void **state)
{
    (void)state;
    pid_t child = spawn_durable(30000);
    mbx_client *tx = harness_connect(ns, "tx");
    send_numbers(tx, 0, 3);
    /* The client dies while no broker runs: the next broker starts its linger time. */
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    kill(child, SIGKILL);
    assert_int_equal(harness_wait(child, 5000), 128 + SIGKILL);
    send_numbers(tx, 3, 5);
    broker = harness_start_broker(ns, NULL);
    wait_lingering();
    send_numbers(tx, 5, 7);
    mbx_client *successor = harness_connect(ns, "durable");
    expect_numbers(successor, 0, 7);
    mbx_close(successor);
    mbx_close(tx);
}

/* Clearing the runtime directory (rm, a cleaner of runtime directories) under a live
 * broker: everything the next broker needs to adopt the namespace is made again (the
 * broker's socket and lock, the keeper's endpoint), so a crash afterwards loses nothing. */
static void test_cleared_runtime_directory_is_made_again(void **state)
{
    (void)state;
    pid_t child = spawn_durable(30000);
    mbx_client *tx = harness_connect(ns, "tx");
    send_numbers(tx, 0, 2);
    kill(child, SIGKILL);
    assert_int_equal(harness_wait(child, 5000), 128 + SIGKILL);
    wait_lingering();
    static const char *const ext[] = {"sock", "lock", "keep"};
    char path[160];
    for (int i = 0; i < 3; i++)
        assert_int_equal(unlink(harness_runtime_file(ns, ext[i], path, sizeof path)), 0);
    int missing = 3;
    for (long long end = harness_now_ms() + 10000; missing > 0 && harness_now_ms() < end;) {
        missing = 0;
        for (int i = 0; i < 3; i++)
            missing += access(harness_runtime_file(ns, ext[i], path, sizeof path), F_OK) != 0;
        if (missing > 0)
            usleep(20 * 1000);
    }
    if (missing > 0)
        fail_msg("%d of the namespace's runtime files never came back", missing);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    broker = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.epoch, 1); /* adopted, not started afresh */
    mbx_client *successor = harness_connect(ns, "durable");
    expect_numbers(successor, 0, 2);
    mbx_close(successor);
    mbx_close(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_killed_client_mailbox_outlives_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger_runs_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_linger_messages_are_discarded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lingering_survives_a_broker_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleared_runtime_directory_is_made_again, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
