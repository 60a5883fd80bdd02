/*
 * The wake handle is readable while anything arrived since the caller last looked
 * (mailbox.h, mbx_wait_handle), whichever receive looked: mbx_recv, mbx_peek,
 * mbx_recv_batch or mbx_recv_reply. Review H3: an edge-triggered loop that waits for a
 * reply with mbx_recv_reply(id, 0) must hear of the reply even when another message came
 * first and stays unread; a level-triggered one must not wake over and over for that
 * message. Then a loop, edge- and level-triggered, that mixes requests both ways, replies,
 * publications and plain messages from three processes: nothing missed, no storm.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "wakereply");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

static int watch(mbx_client *c, bool edge)
{
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(c, &h), MBX_OK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0)};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, h, &ev), 0);
    return ep;
}

static int events(int ep, int timeout_ms)
{
    struct epoll_event out;
    return epoll_wait(ep, &out, 1, timeout_ms);
}

/* The review's sequence, one step at a time, for one kind of trigger. */
static void reply_behind_another_message(bool edge)
{
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *loop = harness_connect(ns, "loop");
    mbx_client *svc = harness_connect(ns, "svc");
    int ep = watch(loop, edge);
    assert_int_equal(events(ep, 0), 0);
    uint64_t id;
    assert_int_equal(mbx_request_send(loop, "svc", "{\"q\":1}", 7, 1000, &id), MBX_OK);
    mbx_message *req = mbx_message_new(), *m = mbx_message_new();
    assert_int_equal(mbx_recv(svc, req, 1000), MBX_OK);
    assert_int_equal(mbx_send(svc, "loop", "{\"note\":\"unrelated\"}", 20, 1000), MBX_OK);
    assert_int_equal(events(ep, 5000), 1);
    assert_int_equal(mbx_recv_reply(loop, id, m, 0), MBX_ETIMEDOUT);
    /* Looked at: nothing new, so quiet for both kinds of loop (no storm). */
    assert_int_equal(events(ep, 0), 0);
    assert_int_equal(mbx_reply(svc, req, "{\"answer\":42}", 13, 1000), MBX_OK);
    assert_int_equal(events(ep, 5000), 1); /* the reply is news */
    assert_int_equal(mbx_recv_reply(loop, id, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"answer\":42}");
    assert_int_equal(events(ep, 0), 0); /* the unrelated message was looked at already */

    /* A message behind the reply, both come before the loop looks: after taking the
     * reply, what lies behind it is news. */
    assert_int_equal(mbx_request_send(loop, "svc", "{\"q\":2}", 7, 1000, &id), MBX_OK);
    assert_int_equal(mbx_recv(svc, req, 1000), MBX_OK);
    assert_int_equal(mbx_reply(svc, req, "{\"answer\":43}", 13, 1000), MBX_OK);
    assert_int_equal(mbx_send(svc, "loop", "{\"behind\":1}", 12, 1000), MBX_OK);
    assert_int_equal(events(ep, 5000), 1);
    assert_int_equal(mbx_recv_reply(loop, id, m, 0), MBX_OK);
    assert_int_equal(events(ep, 0), 1);
    /* Everything taken: quiet. */
    assert_int_equal(mbx_recv(loop, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"note\":\"unrelated\"}");
    assert_int_equal(mbx_recv(loop, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"behind\":1}");
    assert_int_equal(mbx_recv(loop, m, 0), MBX_ETIMEDOUT);
    assert_int_equal(events(ep, 0), 0);
    close(ep);
    mbx_message_free(m);
    mbx_message_free(req);
    mbx_close(svc);
    mbx_close(loop);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_edge_triggered_loop_hears_its_reply(void **state)
{
    (void)state;
    reply_behind_another_message(true);
}

static void test_level_triggered_loop_does_not_storm(void **state)
{
    (void)state;
    reply_behind_another_message(false);
}

/* ---- a loop with everything at once -------------------------------------------------- */

#define PLAIN 3000
#define PUBLICATIONS 3000
#define THEIR_REQUESTS 3000
#define OUR_REQUESTS 3000
#define IN_FLIGHT 8

/* Peers: 0 sends plain messages, 1 publishes on "mix.tick", 2 asks the loop and answers
 * the loop's requests (as "svc"). */
static int peer_main(void *p)
{
    int role = *(int *)p;
    static const char *names[] = {"plain", "pub", "svc"};
    mbx_client *c = harness_child_connect(ns, names[role]);
    if (c == NULL)
        return 10;
    mbx_message *m = mbx_message_new();
    char body[64];
    if (role == 0) {
        for (int i = 0; i < PLAIN; i++) {
            int n = snprintf(body, sizeof body, "[%d]", i);
            if (mbx_send(c, "loop", body, (size_t)n, 20000) != MBX_OK)
                return 11;
            if (i % 97 == 0)
                usleep(500); /* pauses: the loop has to sleep */
        }
    } else if (role == 1) {
        /* Waits until the loop subscribed (it says so with a message). */
        if (mbx_recv(c, m, 20000) != MBX_OK)
            return 12;
        mbx_publish_options po;
        mbx_publish_options_init(&po);
        po.timeout_ms = 20000;
        for (int i = 0; i < PUBLICATIONS; i++) {
            int n = snprintf(body, sizeof body, "[%d]", i);
            if (mbx_publish(c, "mix.tick", body, (size_t)n, &po) != MBX_OK)
                return 13;
            if (i % 89 == 0)
                usleep(700);
        }
    } else {
        /* Its requests to the loop, each waited for, and the loop's requests, answered as
         * they come: one mbx_recv stream carries both. */
        int asked = 0, answered_by_loop = 0, served = 0;
        uint64_t mine = 0;
        while (answered_by_loop < THEIR_REQUESTS || served < OUR_REQUESTS) {
            if (mine == 0 && asked < THEIR_REQUESTS) {
                int n = snprintf(body, sizeof body, "[%d]", asked++);
                if (mbx_request_send(c, "loop", body, (size_t)n, 20000, &mine) != MBX_OK)
                    return 14;
            }
            mbx_err err = mbx_recv(c, m, 20000);
            if (err != MBX_OK)
                return 15;
            if (mbx_message_kind(m) == MBX_KIND_REPLY) {
                if (mbx_message_correlation(m) != mine)
                    return 16;
                mine = 0;
                answered_by_loop++;
            } else if (mbx_message_kind(m) == MBX_KIND_REQUEST) {
                size_t len;
                const char *text = mbx_message_body(m, &len);
                if (mbx_reply(c, m, text, len, 20000) != MBX_OK)
                    return 17;
                served++;
            } else {
                return 18;
            }
        }
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

static void mixed_loop(bool edge)
{
    pid_t broker = harness_start_broker(ns, "--depth", "64", NULL);
    mbx_client *loop = harness_connect(ns, "loop");
    mbx_subscribe_options sub;
    mbx_subscribe_options_init(&sub);
    sub.policy = MBX_SUB_BLOCK; /* every publication counted on arrives */
    assert_int_equal(mbx_subscribe(loop, "mix.*", &sub), MBX_OK);
    int ep = watch(loop, edge);
    int roles[3] = {0, 1, 2};
    pid_t peers[3];
    for (int i = 0; i < 3; i++)
        peers[i] = harness_spawn(peer_main, &roles[i], 120);
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.wait_ms = 10000;
    assert_int_equal(mbx_send_ex(loop, "pub", "\"go\"", 4, &so), MBX_OK);
    assert_int_equal(mbx_wait_for(ns, "svc", 10000), MBX_OK);
    long plain = 0, pubs = 0, theirs = 0, replies = 0, wakeups = 0, empty = 0;
    int asked = 0;
    uint64_t in_flight[IN_FLIGHT] = {0};
    mbx_message *m = mbx_message_new();
    char body[64];
    while (plain < PLAIN || pubs < PUBLICATIONS || theirs < THEIR_REQUESTS ||
           replies < OUR_REQUESTS) {
        /* Keep requests to svc in flight; collect their replies by id first. */
        for (int i = 0; i < IN_FLIGHT; i++) {
            if (in_flight[i] == 0 && asked < OUR_REQUESTS) {
                int n = snprintf(body, sizeof body, "[%d]", asked++);
                assert_int_equal(
                    mbx_request_send(loop, "svc", body, (size_t)n, 20000, &in_flight[i]), MBX_OK);
            }
            if (in_flight[i] != 0 && i % 2 == 0 &&
                mbx_recv_reply(loop, in_flight[i], m, 0) == MBX_OK) {
                in_flight[i] = 0;
                replies++;
            }
        }
        long got = 0;
        mbx_err err;
        while ((err = mbx_recv(loop, m, 0)) == MBX_OK) {
            got++;
            switch (mbx_message_kind(m)) {
            case MBX_KIND_PLAIN:
                plain++;
                break;
            case MBX_KIND_PUBLICATION:
                pubs++;
                break;
            case MBX_KIND_REQUEST:
                assert_int_equal(mbx_reply(loop, m, "true", 4, 20000), MBX_OK);
                theirs++;
                break;
            case MBX_KIND_REPLY:
                for (int i = 0; i < IN_FLIGHT; i++)
                    if (in_flight[i] == mbx_message_correlation(m))
                        in_flight[i] = 0;
                replies++;
                break;
            }
        }
        assert_int_equal(err, MBX_ETIMEDOUT);
        if (plain < PLAIN || pubs < PUBLICATIONS || theirs < THEIR_REQUESTS ||
            replies < OUR_REQUESTS) {
            /* Never a 20 s silence with work outstanding: no missed wake-up. */
            if (events(ep, 20000) != 1)
                fail_msg("silence with %ld plain, %ld publications, %ld requests, %ld replies",
                         plain, pubs, theirs, replies);
            wakeups++;
            empty += got == 0;
        }
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(harness_wait(peers[i], 60000), 0);
    long total = plain + pubs + theirs + replies;
    printf("%s-triggered: %ld messages, %ld wake-ups, %ld of them found nothing new\n",
           edge ? "edge" : "level", total, wakeups, empty);
    /* No storm: a wake-up is news, at most one per message (and the first round's). */
    assert_true(wakeups <= total + 1);
    mbx_message_free(m);
    close(ep);
    mbx_close(loop);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_mixed_traffic_edge_triggered(void **state)
{
    (void)state;
    mixed_loop(true);
}

static void test_mixed_traffic_level_triggered(void **state)
{
    (void)state;
    mixed_loop(false);
}

int main(void)
{
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1); /* a missing wake-up hangs, not passes late */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edge_triggered_loop_hears_its_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_triggered_loop_does_not_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_traffic_edge_triggered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_traffic_level_triggered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
