/*
 * A request is answered once, by the client it went to, and only in the run of the
 * requester's name that asked it (docs/api.md, "Request and reply"):
 * - a client that takes over a lingering mailbox does not get the previous run's replies
 *   as answers to its own requests (ids are unique across runs);
 * - a second reply to an answered request is dropped and counted, and mbx_reply on a
 *   request it answered already is refused;
 * - replies to any number of requests given up (not only the last 64) are dropped;
 * - a reply is accepted only from the responder the request went to.
 * The clients of each test live in this process: the order of events is then exact. It
 * links the internal library to forge a record, as a hostile member could.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"
#include "ring.h"

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "answers");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

static mbx_client *connect_as(const char *name, int linger_ms)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    o.linger_ms = linger_ms;
    mbx_client *c = NULL;
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    return c;
}

static int late_replies_of(const mbx_client_info *ci, void *arg)
{
    struct {
        const char *name;
        uint64_t late;
    } *want = arg;
    if (strcmp(ci->name, want->name) == 0)
        want->late = ci->late_replies;
    return 0;
}

static uint64_t late_replies(const char *name)
{
    struct {
        const char *name;
        uint64_t late;
    } want = {name, UINT64_MAX};
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, late_replies_of, &want), MBX_OK);
    return want.late;
}

/* srv takes the next request and answers {"answer_to":<its body>}. */
static void answer_next(mbx_client *srv)
{
    mbx_message *req = mbx_message_new();
    assert_int_equal(mbx_recv(srv, req, 5000), MBX_OK);
    assert_int_equal(mbx_message_kind(req), MBX_KIND_REQUEST);
    char out[256];
    int n = snprintf(out, sizeof out, "{\"answer_to\":%s}", mbx_message_body(req, NULL));
    assert_int_equal(mbx_reply(srv, req, out, (size_t)n, 1000), MBX_OK);
    mbx_message_free(req);
}

/* Review H1: the first run asks, closes with linger; its reply lands in the lingering
 * mailbox; the next run takes the mailbox over and asks something else. */
static void test_a_restarted_client_gets_only_its_own_answers(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *srv = connect_as("srv", 0);
    mbx_client *alice = connect_as("alice", 10000);
    uint64_t first;
    const char *q1 = "{\"q\":\"transfer 100 to bob?\"}";
    assert_int_equal(mbx_request_send(alice, "srv", q1, strlen(q1), 1000, &first), MBX_OK);
    mbx_close(alice); /* the mailbox lingers, with its slot and generation */
    answer_next(srv);
    harness_wait_gauge(ns, "alice", HARNESS_WAITING, 1, 5000); /* the old answer is there */

    mbx_client *again = connect_as("alice", 10000); /* takes the lingering mailbox over */
    uint64_t second;
    const char *q2 = "{\"q\":\"delete account?\"}";
    assert_int_equal(mbx_request_send(again, "srv", q2, strlen(q2), 1000, &second), MBX_OK);
    assert_true(second != first);
    answer_next(srv);
    mbx_message *r = mbx_message_new();
    assert_int_equal(mbx_recv_reply(again, second, r, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(r, NULL), "{\"answer_to\":{\"q\":\"delete account?\"}}");
    assert_true(mbx_message_correlation(r) == second);
    /* The old answer is not delivered by mbx_recv either: dropped and counted. */
    assert_int_equal(mbx_recv(again, r, 0), MBX_ETIMEDOUT);
    assert_int_equal(late_replies("alice"), 1);
    /* Asked again: its own answer, through mbx_recv too. */
    const char *q3 = "{\"q\":\"balance?\"}";
    uint64_t third;
    assert_int_equal(mbx_request_send(again, "srv", q3, strlen(q3), 1000, &third), MBX_OK);
    answer_next(srv);
    assert_int_equal(mbx_recv(again, r, 1000), MBX_OK);
    assert_int_equal(mbx_message_kind(r), MBX_KIND_REPLY);
    assert_true(mbx_message_correlation(r) == third);
    assert_string_equal(mbx_message_body(r, NULL), "{\"answer_to\":{\"q\":\"balance?\"}}");
    mbx_message_free(r);
    mbx_close(again);
    mbx_close(srv);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* The same request answered twice (the responder held it in two messages: peeked, then
 * received): the requester gets the first answer once; the second is dropped and counted.
 * A second mbx_reply on the same message is refused and sends nothing. */
static void test_a_request_is_answered_once(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *srv = connect_as("srv", 0);
    mbx_client *me = connect_as("me", 0);
    mbx_client *noise = connect_as("noise", 0);
    uint64_t id;
    assert_int_equal(mbx_request_send(me, "srv", "{\"n\":1}", 7, 1000, &id), MBX_OK);
    mbx_message *peeked = mbx_message_new(), *taken = mbx_message_new();
    assert_int_equal(mbx_peek(srv, peeked, 1000), MBX_OK);
    assert_int_equal(mbx_recv(srv, taken, 1000), MBX_OK); /* the same request */
    assert_int_equal(mbx_reply(srv, peeked, "{\"first\":1}", 11, 1000), MBX_OK);
    assert_int_equal(mbx_reply(srv, peeked, "{\"again\":1}", 11, 1000), MBX_EINVAL);
    assert_int_equal(mbx_reply(srv, taken, "{\"duplicate\":4}", 15, 1000), MBX_OK);
    assert_int_equal(mbx_send(noise, "me", "[9]", 3, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
    assert_int_equal(mbx_message_kind(m), MBX_KIND_REPLY);
    assert_string_equal(mbx_message_body(m, NULL), "{\"first\":1}");
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK); /* the duplicate was dropped */
    assert_string_equal(mbx_message_body(m, NULL), "[9]");
    assert_int_equal(mbx_recv(me, m, 0), MBX_ETIMEDOUT);
    assert_int_equal(late_replies("me"), 1);
    /* Answered: not a request that waits any more. */
    assert_int_equal(mbx_recv_reply(me, id, m, 0), MBX_EINVAL);
    assert_int_equal(mbx_request_cancel(me, id), MBX_EINVAL);
    mbx_message_free(m);
    mbx_message_free(peeked);
    mbx_message_free(taken);
    mbx_close(noise);
    mbx_close(me);
    mbx_close(srv);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* 100 requests given up (mbx_request timed out) and one cancelled, then all answered:
 * not one of the 101 replies is delivered. */
#define GIVEN_UP 100
static void test_replies_to_any_number_of_given_up_requests_are_dropped(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "512", NULL);
    mbx_client *srv = connect_as("srv", 0);
    mbx_client *me = connect_as("me", 0);
    mbx_client *noise = connect_as("noise", 0);
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < GIVEN_UP; i++)
        assert_int_equal(mbx_request(me, "srv", "[1]", 3, m, 0), MBX_ETIMEDOUT);
    uint64_t cancelled;
    assert_int_equal(mbx_request_send(me, "srv", "[2]", 3, 1000, &cancelled), MBX_OK);
    assert_int_equal(mbx_request_cancel(me, cancelled), MBX_OK);
    assert_int_equal(mbx_recv_reply(me, cancelled, m, 0), MBX_EINVAL);
    for (int i = 0; i <= GIVEN_UP; i++)
        answer_next(srv);
    assert_int_equal(mbx_send(noise, "me", "[9]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[9]");
    assert_int_equal(late_replies("me"), GIVEN_UP + 1);
    mbx_message_free(m);
    mbx_close(noise);
    mbx_close(me);
    mbx_close(srv);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A reply with the right id from a client that is not the responder (a member writing
 * records into our mailbox by hand): dropped and counted; the responder's own answer is
 * delivered. */
static void test_only_the_responder_can_answer(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *srv = connect_as("srv", 0);
    mbx_client *other = connect_as("other", 0);
    mbx_client *me = connect_as("me", 0);
    uint64_t id;
    assert_int_equal(mbx_request_send(me, "srv", "[1]", 3, 1000, &id), MBX_OK);
    ring_outgoing forged = {.body = "{\"forged\":1}",
                            .len = 12,
                            .from_slot = other->slot,
                            .from_generation = other->generation,
                            .from_name = "srv",
                            .sender_cpu = -1,
                            .seq = 1,
                            .kind = CELL_REPLY,
                            .corr = id};
    assert_int_equal(ring_put(&other->view, me->slot, me->generation, &forged, 1000), MBX_OK);
    answer_next(srv);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv_reply(me, id, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"answer_to\":[1]}");
    assert_int_equal(mbx_recv(me, m, 0), MBX_ETIMEDOUT); /* the forgery: dropped */
    assert_int_equal(late_replies("me"), 1);
    mbx_message_free(m);
    mbx_close(me);
    mbx_close(other);
    mbx_close(srv);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1); /* a missing wake-up hangs, not passes late */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_restarted_client_gets_only_its_own_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_request_is_answered_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_to_any_number_of_given_up_requests_are_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_the_responder_can_answer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
