/*
 * The broker dies, the messages do not: a broker killed with SIGKILL while clients are
 * busy, then restarted, adopts the namespace; every message whose send succeeded arrives
 * exactly once, in order per sender.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"

#define SENDERS 4
#define PER_SENDER 6000

static char ns[64];
static int report_fd; /* senders write "<index> <successes>\n" here */

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "restart");
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
    char name[32];
    snprintf(name, sizeof name, "sender-%d", index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    int ok = 0;
    char body[64];
    for (int n = 0; n < PER_SENDER; n++) {
        int len = snprintf(body, sizeof body, "{\"s\":%d,\"n\":%d}", index, n);
        mbx_err err = mbx_send(c, "sink", body, (size_t)len, 20000);
        if (err != MBX_OK) {
            /* From here on nothing was accepted: the count says what was. */
            fprintf(stderr, "sender %d, message %d: %s\n", index, n, mbx_strerror(err));
            break;
        }
        ok++;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%d %d\n", index, ok);
    (void)!write(report_fd, line, (size_t)len);
    mbx_close(c);
    return 0;
}

static int newcomer_main(void *p)
{
    (void)p;
    mbx_client *c = harness_child_connect(ns, "newcomer");
    if (c == NULL)
        return 10;
    const char *hello = "{\"hello\":\"after the restart\"}";
    mbx_err err = mbx_send(c, "sink", hello, strlen(hello), 20000);
    mbx_close(c);
    return err == MBX_OK ? 0 : 20 + (int)err;
}

/* Checks that m is the next message of its sender. */
static void take_current(mbx_message *m, int next[SENDERS])
{
    const char *body = mbx_message_body(m, NULL);
    if (strcmp(mbx_message_from(m), "newcomer") == 0) {
        assert_string_equal(body, "{\"hello\":\"after the restart\"}");
        return;
    }
    cJSON *doc = cJSON_Parse(body);
    assert_non_null(doc);
    int s = cJSON_GetObjectItem(doc, "s")->valueint;
    int n = cJSON_GetObjectItem(doc, "n")->valueint;
    cJSON_Delete(doc);
    assert_in_range(s, 0, SENDERS - 1);
    assert_int_equal(n, next[s]); /* exactly once, in order */
    next[s]++;
}

/* Receives one message and checks it is the next one of its sender. */
static void take_next(mbx_client *sink, mbx_message *m, int next[SENDERS])
{
    mbx_err err = mbx_recv(sink, m, 20000);
    if (err != MBX_OK)
        fail_msg("recv: %s", mbx_strerror(err));
    take_current(m, next);
}

static void test_broker_killed_and_restarted_loses_nothing(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "16", "--depth", "32", NULL);
    mbx_client *sink = harness_connect(ns, "sink");
    int report[2];
    assert_int_equal(pipe(report), 0);
    report_fd = report[1];
    int index[SENDERS];
    pid_t pids[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        index[i] = i;
        pids[i] = harness_spawn(sender_main, &index[i], 60);
    }
    close(report[1]);
    /* Everyone connected before the broker dies: a sender that only tries to connect while
     * no broker runs would rightly be refused, and this test is about the connected ones. */
    mbx_namespace_info info;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
        if (info.clients == SENDERS + 1)
            break;
        usleep(10 * 1000);
    }
    assert_int_equal(info.clients, SENDERS + 1);

    int next[SENDERS] = {0};
    mbx_message *m = mbx_message_new();
    int got = 0;
    for (; got < 1000; got++)
        take_next(sink, m, next);

    /* The broker dies at a moment of its choosing: mid-traffic. */
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    for (; got < 4000; got++) /* clients go on without it */
        take_next(sink, m, next);

    pid_t second = harness_start_broker(ns, NULL);
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.epoch, 1);
    assert_int_equal(info.broker_pid, second);
    /* New clients can connect and reach the old ones. */
    pid_t newcomer = harness_spawn(newcomer_main, NULL, 60);

    /* Keep receiving while the senders finish; each reports how many sends succeeded. The
     * total to receive is known once all have reported (+1 for the newcomer). */
    int expected = -1;
    char buf[256];
    size_t used = 0;
    fcntl(report[0], F_SETFL, O_NONBLOCK);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (expected < 0 || got < expected) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 60)
            fail_msg("after 60 s: %d of %d messages; next %d %d %d %d", got, expected, next[0],
                     next[1], next[2], next[3]);
        mbx_err err = mbx_recv(sink, m, 10);
        if (err == MBX_OK) {
            take_current(m, next);
            got++;
            continue;
        }
        assert_int_equal(err, MBX_ETIMEDOUT);
        ssize_t n = read(report[0], buf + used, sizeof buf - 1 - used);
        if (n > 0) {
            used += (size_t)n;
            buf[used] = '\0';
        }
        if (expected < 0) {
            int idx, ok, off = 0, consumed, reported = 0, accepted = 1;
            while (sscanf(buf + off, "%d %d\n%n", &idx, &ok, &consumed) == 2) {
                reported++;
                accepted += ok;
                off += consumed;
            }
            if (reported == SENDERS)
                expected = accepted;
        }
    }
    close(report[0]);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(harness_wait(pids[i], 10000), 0);
    assert_int_equal(mbx_recv(sink, m, 100), MBX_ETIMEDOUT); /* nothing more */
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(next[i], PER_SENDER);

    assert_int_equal(harness_wait(newcomer, 10000), 0);
    /* The senders closed after the restart over a new channel: their names are free
     * at once. */
    mbx_client *again = harness_connect(ns, "sender-0");
    mbx_close(again);
    mbx_message_free(m);
    mbx_close(sink);
    assert_int_equal(harness_stop(second, 5000), 0);
}

static void test_adoption_frees_the_dead_and_keeps_the_living(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "8", "--depth", "8", NULL);
    pid_t doomed = harness_spawn_idle_client(ns, "doomed", 0);
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *keeper = harness_connect(ns, "keeper");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mbx_send(tx, "doomed", "1", 1, 1000), MBX_OK);
        assert_int_equal(mbx_send(tx, "keeper", "2", 1, 1000), MBX_OK);
    }
    /* Broker first, then the client: no one is there to see the client die. */
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    kill(doomed, SIGKILL);
    assert_int_equal(harness_wait(doomed, 5000), 128 + SIGKILL);

    pid_t second = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 2); /* tx and keeper */
    assert_int_equal(info.discarded, 3);
    assert_int_equal(mbx_send(tx, "doomed", "1", 1, 100), MBX_ENORECIPIENT);
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mbx_recv(keeper, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "2");
    }
    /* The dead client's name is free, and its old mailbox is not handed over. */
    mbx_client *successor = harness_connect(ns, "doomed");
    assert_int_equal(mbx_recv(successor, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(successor);
    mbx_close(tx);
    mbx_close(keeper);
    assert_int_equal(harness_stop(second, 5000), 0);
}

/* A client closes while no broker runs (nobody can take its name back), or loses the
 * answer to its registration with the broker: the next broker adopts its slot, as its
 * process lives. That same process can take the name back; another one cannot. */
static void test_same_process_takes_its_name_back_after_adoption(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *c = harness_connect(ns, "worker");
    mbx_client *tx = harness_connect(ns, "tx");
    assert_int_equal(mbx_send(tx, "worker", "[1]", 3, 1000), MBX_OK);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    mbx_close(c); /* nobody answers */
    broker = harness_start_broker(ns, NULL);
    (void)harness_spawn_idle_client(ns, "bystander", 0);
    mbx_client *again = NULL;
    assert_int_equal(harness_connect_retry(ns, "worker", MBX_ENOBROKER, 5000, &again), MBX_OK);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 3); /* worker, tx, bystander: no orphaned slot */
    /* It is the same mailbox: what waited in it is still there. */
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(again, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    mbx_message_free(m);
    mbx_close(again);
    mbx_close(tx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static int connect_as_worker_main(void *p)
{
    (void)p;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "worker";
    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    return err == MBX_OK ? 0 : 100 + (int)err;
}

/* ... but a different process asking for an adopted name is refused. */
static void test_other_process_cannot_take_an_adopted_name(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *c = harness_connect(ns, "worker");
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    broker = harness_start_broker(ns, NULL);
    pid_t child = harness_spawn(connect_as_worker_main, NULL, 30);
    assert_int_equal(harness_wait(child, 10000), 100 + MBX_ENAMETAKEN);
    mbx_close(c);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_killed_and_restarted_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_adoption_frees_the_dead_and_keeps_the_living, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_process_takes_its_name_back_after_adoption, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_process_cannot_take_an_adopted_name, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
