/*
 * Request and reply between real processes: correlated replies for many requesters at
 * once, the asynchronous form, messages that arrive around a request kept in order, "no
 * responders" at once, a responder killed holding a request (MBX_EGONE within a second),
 * and a reply that comes after its request was given up (dropped and counted).
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define REQUESTERS 8
#define PER_REQUESTER 500

static int requests_each = PER_REQUESTER; /* set before the requesters are forked */

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "request");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* The responder: answers each request with {"re":<its body>}, after `delay_ms`; a request
 * whose body is "hold" is taken and never answered (the test kills us then). */
struct responder {
    int delay_ms;
    int ready_fd;
    bool group; /* join the group "srv" rather than take the name alone */
};

static int responder_main(void *p)
{
    struct responder *r = p;
    mbx_client *c = NULL;
    if (r->group) {
        mbx_connect_options o;
        mbx_connect_options_init(&o);
        o.namespace_name = ns;
        o.client_name = "srv";
        o.group = 1;
        if (mbx_connect(&o, &c) != MBX_OK)
            return 10;
    } else {
        c = harness_child_connect(ns, "srv");
    }
    if (c == NULL)
        return 10;
    (void)!write(r->ready_fd, "r", 1);
    mbx_message *m = mbx_message_new();
    for (;;) {
        mbx_err err = mbx_recv(c, m, 30000);
        if (err != MBX_OK)
            return err == MBX_ESHUTDOWN ? 0 : 11;
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            continue;
        size_t len;
        const char *body = mbx_message_body(m, &len);
        if (strcmp(body, "\"hold\"") == 0) {
            (void)!write(r->ready_fd, "h", 1);
            pause();
        }
        if (r->delay_ms > 0)
            usleep((useconds_t)r->delay_ms * 1000);
        char answer[256];
        int n = snprintf(answer, sizeof answer, "{\"re\":%s}", body);
        err = mbx_reply(c, m, answer, (size_t)n, 5000);
        if (err != MBX_OK && err != MBX_EGONE)
            return 12;
    }
}

static pid_t start_responder(struct responder *r)
{
    int up[2];
    assert_int_equal(pipe(up), 0);
    r->ready_fd = up[1];
    pid_t pid = harness_spawn(responder_main, r, 60);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    r->ready_fd = up[0]; /* the test reads "h" from here later */
    close(up[1]);
    return pid;
}

static int requester_main(void *p)
{
    int index = *(int *)p;
    char name[16];
    snprintf(name, sizeof name, "q%d", index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    mbx_message *reply = mbx_message_new();
    char body[64], expect[96];
    for (int n = 0; n < requests_each; n++) {
        int len = snprintf(body, sizeof body, "[%d,%d]", index, n);
        snprintf(expect, sizeof expect, "{\"re\":%s}", body);
        if (mbx_request(c, "srv", body, (size_t)len, reply, 20000) != MBX_OK)
            return 11;
        if (strcmp(mbx_message_body(reply, NULL), expect) != 0 ||
            mbx_message_kind(reply) != MBX_KIND_REPLY)
            return 12; /* crossed, or not a reply */
    }
    mbx_message_free(reply);
    mbx_close(c);
    return 0;
}

static void test_many_requesters_get_their_own_replies(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    struct responder r = {0};
    (void)start_responder(&r);
    int index[REQUESTERS];
    pid_t pids[REQUESTERS];
    for (int i = 0; i < REQUESTERS; i++) {
        index[i] = i;
        pids[i] = harness_spawn(requester_main, &index[i], 60);
    }
    for (int i = 0; i < REQUESTERS; i++)
        assert_int_equal(harness_wait(pids[i], 60000), 0);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_messages_around_a_request_keep_their_order(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    struct responder r = {.delay_ms = 50};
    (void)start_responder(&r);
    mbx_client *me = harness_connect(ns, "me");
    mbx_client *noise = harness_connect(ns, "noise");
    mbx_message *m = mbx_message_new();
    for (int i = 1; i <= 3; i++) {
        char b[8];
        int n = snprintf(b, sizeof b, "[%d]", i);
        assert_int_equal(mbx_send(noise, "me", b, (size_t)n, 1000), MBX_OK);
    }
    /* Nobody serves that name: at once. */
    assert_int_equal(mbx_request(me, "nobody", "1", 1, m, 5000), MBX_ENORECIPIENT);
    assert_int_equal(mbx_request(me, "srv", "\"q\"", 3, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"re\":\"q\"}");
    assert_int_equal(mbx_message_kind(m), MBX_KIND_REPLY);
    assert_true(mbx_message_correlation(m) != 0);
    char *env = mbx_message_envelope_json(m);
    assert_non_null(strstr(env, "\"kind\":\"reply\",\"corr\":"));
    mbx_free(env);
    assert_int_equal(mbx_send(noise, "me", "[4]", 3, 1000), MBX_OK);
    /* What came before, during and after, in order, and nothing else. */
    for (int i = 1; i <= 4; i++) {
        char b[8];
        snprintf(b, sizeof b, "[%d]", i);
        assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), b);
        assert_int_equal(mbx_message_kind(m), MBX_KIND_PLAIN);
        assert_int_equal(mbx_message_correlation(m), 0);
    }
    assert_int_equal(mbx_recv(me, m, 100), MBX_ETIMEDOUT);

    /* The asynchronous form: replies come through mbx_recv, each with its request's id. */
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(mbx_request_send(me, "srv", "[0]", 3, 1000, &ids[i]), MBX_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mbx_recv(me, m, 5000), MBX_OK);
        assert_int_equal(mbx_message_kind(m), MBX_KIND_REPLY);
        assert_int_equal(mbx_message_correlation(m), ids[i]);
    }
    /* mbx_recv_reply: the reply to one id, taken past a plain message that stays; a
     * timeout does not give the request up. */
    uint64_t id, other;
    assert_int_equal(mbx_request_send(me, "srv", "[7]", 3, 1000, &id), MBX_OK);
    assert_int_equal(mbx_recv_reply(me, id, m, 0), MBX_ETIMEDOUT); /* 50 ms away */
    assert_int_equal(mbx_send(noise, "me", "[5]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_request_send(me, "srv", "[8]", 3, 1000, &other), MBX_OK);
    assert_int_equal(mbx_recv_reply(me, other, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"re\":[8]}");
    assert_int_equal(mbx_recv_reply(me, id, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"re\":[7]}");
    assert_int_equal(mbx_message_correlation(m), id);
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[5]");
    assert_int_equal(mbx_recv_reply(me, other + 1, m, 0), MBX_EINVAL);
    assert_int_equal(mbx_recv_reply(me, 0, m, 0), MBX_EINVAL);
    /* A reply needs a request. */
    assert_int_equal(mbx_reply(me, m, "1", 1, 100), MBX_EINVAL);
    mbx_message_free(m);
    mbx_close(noise);
    mbx_close(me);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_responder_killed_holding_a_request(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    struct responder r = {0};
    pid_t srv = start_responder(&r);
    mbx_client *me = harness_connect(ns, "me");
    mbx_message *m = mbx_message_new();
    /* The responder takes "hold" and says so; we kill it; the request ends at once. */
    pid_t killer = fork();
    assert_true(killer >= 0);
    if (killer == 0) {
        char b;
        alarm(30);
        if (read(r.ready_fd, &b, 1) == 1 && b == 'h')
            kill(srv, SIGKILL);
        _exit(0);
    }
    long long t0 = harness_now_ms();
    mbx_err err = mbx_request(me, "srv", "\"hold\"", 6, m, 20000);
    long long took = harness_now_ms() - t0;
    assert_int_equal(err, MBX_EGONE);
    printf("MBX_EGONE %lld ms after the request (the responder was killed holding it)\n", took);
    assert_int_equal(harness_wait(killer, 10000), 0);
    assert_int_equal(harness_wait(srv, 10000), 128 + SIGKILL);
    mbx_message_free(m);
    mbx_close(me);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static int late_replies_of(const mbx_client_info *ci, void *arg)
{
    if (strcmp(ci->name, "me") == 0)
        *(uint64_t *)arg = ci->late_replies;
    return 0;
}

static void test_late_reply_is_dropped_and_counted(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    struct responder r = {.delay_ms = 400};
    (void)start_responder(&r);
    mbx_client *me = harness_connect(ns, "me");
    mbx_client *noise = harness_connect(ns, "noise");
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_request(me, "srv", "\"slow\"", 6, m, 100), MBX_ETIMEDOUT);
    harness_wait_gauge(ns, "me", HARNESS_WAITING, 1, 20000); /* the late reply has come */
    assert_int_equal(mbx_send(noise, "me", "[9]", 3, 1000), MBX_OK);
    /* The next message is the plain one: the late reply was dropped, not delivered. */
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[9]");
    uint64_t late = 0;
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, late_replies_of, &late), MBX_OK);
    assert_int_equal(late, 1);
    mbx_message_free(m);
    mbx_close(noise);
    mbx_close(me);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A client that only makes requests, never receives: 2,000 requests of 120 bytes run its
 * ring round many times (a pad at each wrap), some given up by a short timeout so that
 * their replies come late. Each reply is found and every lap's space comes back: a pad or
 * a late reply left at the head once filled the mailbox behind it for good. */
static void test_requests_only_client_runs_many_laps(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "16", NULL);
    struct responder r = {.delay_ms = 0};
    (void)start_responder(&r);
    mbx_client *me = harness_connect(ns, "me");
    mbx_message *m = mbx_message_new();
    char body[128];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(body, sizeof body, "{\"i\":%d,\"pad\":\"%096d\"}", i, 0);
        mbx_err err = mbx_request(me, "srv", body, (size_t)n, m, i % 100 == 7 ? 0 : 10000);
        if (i % 100 == 7) {
            assert_true(err == MBX_ETIMEDOUT || err == MBX_OK);
            continue;
        }
        assert_int_equal(err, MBX_OK);
        assert_non_null(strstr(mbx_message_body(m, NULL), body));
    }
    mbx_message_free(m);
    mbx_close(me);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static int served_by(const mbx_client_info *ci, void *arg)
{
    uint64_t *counts = arg;
    if (strcmp(ci->name, "srv") == 0 && ci->group && counts[0] < 8)
        counts[1 + counts[0]++] = ci->received;
    return 0;
}

/* A group of 3 responders serves 20 requesters x 1,000 requests: each requester gets its
 * own replies, and the load is spread. Then one member is killed holding a request: its
 * requester gets MBX_EGONE at once, and the others go on serving. */
static void test_group_of_responders(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    struct responder r[3];
    pid_t members[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct responder){.group = true};
        members[i] = start_responder(&r[i]);
    }
    /* Anyone else is refused the name; another member is not. */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "srv";
    mbx_client *alone;
    assert_int_equal(mbx_connect(&o, &alone), MBX_ENAMETAKEN);
    o.linger_ms = 1000;
    o.group = 1;
    assert_int_equal(mbx_connect(&o, &alone), MBX_EINVAL); /* a member does not linger */

    enum { GROUP_REQUESTERS = 20 };
    requests_each = 1000;
    int index[GROUP_REQUESTERS];
    pid_t pids[GROUP_REQUESTERS];
    for (int i = 0; i < GROUP_REQUESTERS; i++) {
        index[i] = i;
        pids[i] = harness_spawn(requester_main, &index[i], 120);
    }
    for (int i = 0; i < GROUP_REQUESTERS; i++)
        assert_int_equal(harness_wait(pids[i], 120000), 0);
    uint64_t counts[9] = {0};
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, served_by, counts), MBX_OK);
    assert_int_equal(counts[0], 3);
    printf("requests served by the 3 members: %llu, %llu, %llu\n", (unsigned long long)counts[1],
           (unsigned long long)counts[2], (unsigned long long)counts[3]);
    for (int i = 1; i <= 3; i++)
        assert_true(counts[i] > 0); /* how evenly depends on scheduling: printed above */
    requests_each = PER_REQUESTER;

    /* One member takes "hold" and is killed: EGONE; the others still serve. */
    mbx_client *me = harness_connect(ns, "me");
    mbx_message *m = mbx_message_new();
    pid_t killer = fork();
    assert_true(killer >= 0);
    if (killer == 0) {
        alarm(30);
        struct pollfd pfd[3];
        for (int i = 0; i < 3; i++)
            pfd[i] = (struct pollfd){.fd = r[i].ready_fd, .events = POLLIN};
        if (poll(pfd, 3, 20000) > 0)
            for (int i = 0; i < 3; i++)
                if (pfd[i].revents != 0) {
                    kill(members[i], SIGKILL);
                    break;
                }
        _exit(0);
    }
    assert_int_equal(mbx_request(me, "srv", "\"hold\"", 6, m, 20000), MBX_EGONE);
    assert_int_equal(harness_wait(killer, 10000), 0);
    for (int n = 0; n < 20; n++) {
        assert_int_equal(mbx_request(me, "srv", "[7]", 3, m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "{\"re\":[7]}");
    }
    mbx_message_free(m);
    mbx_close(me);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A requester killed while it waits: its reply goes nowhere (the responder is told
 * MBX_EGONE and goes on), nothing stays behind, and its name can be taken again. */
static int doomed_requester_main(void *p)
{
    (void)p;
    mbx_client *c = harness_child_connect(ns, "doomed");
    if (c == NULL)
        return 10;
    mbx_message *m = mbx_message_new();
    (void)mbx_request(c, "srv", "[1]", 3, m, 20000); /* killed while it waits */
    return 11;
}

static void test_requester_killed_while_it_waits(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *srv = harness_connect(ns, "srv");
    pid_t doomed = harness_spawn(doomed_requester_main, NULL, 60);
    mbx_message *req = mbx_message_new();
    assert_int_equal(mbx_recv(srv, req, 10000), MBX_OK);
    assert_int_equal(mbx_message_kind(req), MBX_KIND_REQUEST);
    kill(doomed, SIGKILL);
    assert_int_equal(harness_wait(doomed, 5000), 128 + SIGKILL);
    long long until = harness_now_ms() + 5000;
    mbx_namespace_info before;
    do /* until the broker has freed its slot (a request is answered once: no retries) */
        assert_int_equal(mbx_inspect(ns, &before, NULL, NULL), MBX_OK);
    while (before.clients != 1 && harness_now_ms() < until && usleep(10 * 1000) == 0);
    assert_int_equal(before.clients, 1);
    assert_int_equal(mbx_reply(srv, req, "[2]", 3, 1000), MBX_EGONE);
    assert_int_equal(mbx_reply(srv, req, "[2]", 3, 1000), MBX_EINVAL); /* answered (gone) */
    mbx_namespace_info after;
    assert_int_equal(mbx_inspect(ns, &after, NULL, NULL), MBX_OK);
    assert_int_equal(after.discarded, before.discarded + 1); /* counted */
    mbx_client *again = harness_connect(ns, "doomed");
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(again, m, 100), MBX_ETIMEDOUT); /* nothing of the old one */
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 2);
    mbx_message_free(m);
    mbx_message_free(req);
    mbx_close(again);
    mbx_close(srv);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1); /* a missing wake-up hangs, not passes late */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_requesters_get_their_own_replies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_messages_around_a_request_keep_their_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_responder_killed_holding_a_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_reply_is_dropped_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_only_client_runs_many_laps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_of_responders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requester_killed_while_it_waits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
