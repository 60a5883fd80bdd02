/*
 * A service group that shrinks and grows under load loses no work (docs/api.md, "A group
 * that shrinks loses no work"): 20 requester processes ask a group "srv" without pause
 * while it is scaled from 4 members to 1 and back, 10 times; members leave by closing
 * (SIGTERM: the member stops receiving and calls mbx_close) with requests still in their
 * mailboxes. Every request must be answered, exactly once, with its own answer: a
 * requester that gets any error, or an answer to another request, fails.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define REQUESTERS 20
#define MEMBERS 4
#define CYCLES 10

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "groups");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* A member: answers {"re":<body>} until SIGTERM, then closes, handing on what it holds. */
static volatile sig_atomic_t leaving;
static mbx_client *member_client;

static void on_term(int sig)
{
    (void)sig;
    leaving = 1;
    mbx_interrupt(member_client);
}

static int member_main(void *p)
{
    int ready_fd = *(int *)p;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "srv";
    o.group = 1;
    if (mbx_connect(&o, &member_client) != MBX_OK)
        return 10;
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    (void)!write(ready_fd, "r", 1);
    mbx_message *m = mbx_message_new();
    while (!leaving) {
        mbx_err err = mbx_recv(member_client, m, 30000);
        if (err == MBX_EINTR)
            continue;
        if (err != MBX_OK)
            return 11;
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            return 12;
        char answer[128];
        int n = snprintf(answer, sizeof answer, "{\"re\":%s}", mbx_message_body(m, NULL));
        err = mbx_reply(member_client, m, answer, (size_t)n, 10000);
        if (err != MBX_OK)
            return 13;
    }
    mbx_message_free(m);
    mbx_close(member_client); /* requests still in the mailbox go back to their requesters */
    return 0;
}

static pid_t start_member(void)
{
    int up[2];
    assert_int_equal(pipe(up), 0);
    pid_t pid = harness_spawn(member_main, &up[1], 120);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    close(up[0]);
    close(up[1]);
    return pid;
}

/* A requester: asks until the stop pipe is readable; every answer must be its own. Exit code:
 * 0, or 20 + the error of the request that failed, or 1 for a crossed answer. */
struct requester {
    int index;
    int stop_fd;
};

static int requester_main(void *p)
{
    struct requester *r = p;
    char name[16];
    snprintf(name, sizeof name, "q%d", r->index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    mbx_message *reply = mbx_message_new();
    char body[64], expect[96];
    struct pollfd stop = {.fd = r->stop_fd, .events = POLLIN};
    for (int n = 0; poll(&stop, 1, 0) == 0; n++) {
        int len = snprintf(body, sizeof body, "[%d,%d]", r->index, n);
        snprintf(expect, sizeof expect, "{\"re\":%s}", body);
        mbx_err err = mbx_request(c, "srv", body, (size_t)len, reply, 30000);
        if (err != MBX_OK) {
            fprintf(stderr, "requester %d, request %d: %s\n", r->index, n, mbx_strerror(err));
            return 20 + (int)err;
        }
        if (strcmp(mbx_message_body(reply, NULL), expect) != 0) {
            fprintf(stderr, "requester %d: %s answered %s\n", r->index, body,
                    mbx_message_body(reply, NULL));
            return 1;
        }
    }
    mbx_message_free(reply);
    mbx_close(c);
    return 0;
}

static int count_members(const mbx_client_info *ci, void *arg)
{
    if (strcmp(ci->name, "srv") == 0 && ci->group)
        (*(int *)arg)++;
    return 0;
}

/* Waits until the group has `want` members as the broker sees them. */
static void wait_members(int want)
{
    long long until = harness_now_ms() + 20000;
    int n;
    do {
        n = 0;
        mbx_namespace_info info;
        assert_int_equal(mbx_inspect(ns, &info, count_members, &n), MBX_OK);
    } while (n != want && harness_now_ms() < until && usleep(2000) == 0);
    assert_int_equal(n, want);
}

static void test_a_group_scaled_down_and_up_under_load_answers_everything(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "64", NULL);
    pid_t members[MEMBERS];
    for (int i = 0; i < MEMBERS; i++)
        members[i] = start_member();
    int stop[2];
    assert_int_equal(pipe(stop), 0);
    struct requester rq[REQUESTERS];
    pid_t requesters[REQUESTERS];
    for (int i = 0; i < REQUESTERS; i++) {
        rq[i] = (struct requester){.index = i, .stop_fd = stop[0]};
        requesters[i] = harness_spawn(requester_main, &rq[i], 120);
    }
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        usleep(30 * 1000); /* traffic on 4 members */
        for (int i = 1; i < MEMBERS; i++)
            kill(members[i], SIGTERM);
        for (int i = 1; i < MEMBERS; i++)
            assert_int_equal(harness_wait(members[i], 20000), 0);
        wait_members(1);
        usleep(30 * 1000); /* traffic on 1 */
        for (int i = 1; i < MEMBERS; i++)
            members[i] = start_member();
        wait_members(MEMBERS);
    }
    /* One byte, never read, stops them all (children hold the write end too: no EOF). */
    assert_int_equal(write(stop[1], "x", 1), 1);
    close(stop[1]);
    for (int i = 0; i < REQUESTERS; i++)
        assert_int_equal(harness_wait(requesters[i], 40000), 0);
    close(stop[0]);
    for (int i = 0; i < MEMBERS; i++) {
        kill(members[i], SIGTERM);
        assert_int_equal(harness_wait(members[i], 20000), 0);
    }
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Asks "srv" once and exits with 100 + the result (1 for a wrong answer). */
static int one_request_main(void *p)
{
    int index = *(int *)p;
    char name[16], body[32], expect[64];
    snprintf(name, sizeof name, "one%d", index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    int len = snprintf(body, sizeof body, "[%d]", index);
    snprintf(expect, sizeof expect, "{\"re\":%s}", body);
    mbx_message *reply = mbx_message_new();
    mbx_err err = mbx_request(c, "srv", body, (size_t)len, reply, 20000);
    if (err == MBX_OK && strcmp(mbx_message_body(reply, NULL), expect) != 0)
        return 1;
    mbx_message_free(reply);
    mbx_close(c);
    return 100 + (int)err;
}

/* A member killed with requests it never took: the broker gives them back to their
 * requesters, who send them to the member that is left (MBX_EGONE is only for a request
 * a member took). */
static void test_requests_a_killed_member_never_took_go_to_another(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    pid_t doomed = start_member();
    kill(doomed, SIGSTOP); /* takes nothing from here on */
    int index[3] = {0, 1, 2};
    pid_t askers[3];
    for (int i = 0; i < 3; i++)
        askers[i] = harness_spawn(one_request_main, &index[i], 60);
    harness_wait_gauge(ns, "srv", HARNESS_WAITING, 3, 20000); /* all three wait in it */
    pid_t heir = start_member();
    kill(doomed, SIGKILL);
    assert_int_equal(harness_wait(doomed, 5000), 128 + SIGKILL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(harness_wait(askers[i], 30000), 100 + MBX_OK);
    kill(heir, SIGTERM);
    assert_int_equal(harness_wait(heir, 20000), 0);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1); /* a missing wake-up hangs, not passes late */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_group_scaled_down_and_up_under_load_answers_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_a_killed_member_never_took_go_to_another,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
