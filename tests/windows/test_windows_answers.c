/*
 * Requests and the wake handle on Windows, under Wine (the Linux side:
 * tests/integration/test_answers.c, test_wake_replies.c, test_groups.c):
 * - a client that takes over a lingering mailbox gets only its own answers;
 * - the wake handle (a manual-reset event) is set while anything arrived since the client
 *   last looked: mbx_recv_reply hears of its reply behind an unread message, and the
 *   event is not left set for that message;
 * - a service group whose members come and go under load answers every request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "winharness.h"

#define ASKERS 4
#define PER_ASKER 300
#define TEMP_SERVES 40 /* a member that comes and goes serves this many, then closes */

static char ns[64];
static HANDLE broker;

/* ---- child roles ------------------------------------------------------------------- */

/* A member of the group "srv": answers {"re":<body>}. arg "0": until a plain message
 * {"stop":1}; else that many requests, then it closes with whatever else is queued (which
 * it hands on), or earlier when nothing comes for a second. */
static int role_member(const char *ns_, const char *arg)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns_;
    o.client_name = "srv";
    o.group = 1;
    mbx_client *c = NULL;
    if (mbx_connect(&o, &c) != MBX_OK)
        return 10;
    int limit = atoi(arg);
    mbx_message *m = mbx_message_new();
    for (int served = 0; limit == 0 || served < limit;) {
        mbx_err err = mbx_recv(c, m, limit == 0 ? 30000 : 1000);
        if (err == MBX_ETIMEDOUT && limit != 0)
            break;
        if (err != MBX_OK)
            return 11;
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            break; /* {"stop":1} */
        char answer[128];
        int n = snprintf(answer, sizeof answer, "{\"re\":%s}", mbx_message_body(m, NULL));
        if (mbx_reply(c, m, answer, (size_t)n, 10000) != MBX_OK)
            return 12;
        served++;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

/* Asks "srv" PER_ASKER times; every answer must be its own. Exit: 0, 20 + the error, or 1
 * for a crossed answer. */
static int role_asker(const char *ns_, const char *arg)
{
    char name[16];
    snprintf(name, sizeof name, "ask%s", arg);
    mbx_client *c = wh_connect(ns_, name, 0);
    if (c == NULL)
        return 10;
    mbx_message *reply = mbx_message_new();
    char body[64], expect[96];
    for (int n = 0; n < PER_ASKER; n++) {
        int len = snprintf(body, sizeof body, "[%s,%d]", arg, n);
        snprintf(expect, sizeof expect, "{\"re\":%s}", body);
        mbx_err err = mbx_request(c, "srv", body, (size_t)len, reply, 30000);
        if (err != MBX_OK) {
            fprintf(stderr, "asker %s, request %d: %s\n", arg, n, mbx_strerror(err));
            return 20 + (int)err;
        }
        if (strcmp(mbx_message_body(reply, NULL), expect) != 0)
            return 1;
    }
    mbx_message_free(reply);
    mbx_close(c);
    return 0;
}

static const wh_role roles[] = {
    {"member", role_member},
    {"asker", role_asker},
    {NULL, NULL},
};

/* ---- fixtures ---------------------------------------------------------------------- */

static int start_broker(void **state)
{
    (void)state;
    wh_namespace(ns, "answers");
    broker = wh_start_broker(ns, NULL);
    return broker == NULL ? -1 : 0;
}

static int stop_all(void **state)
{
    (void)state;
    wh_kill(broker);
    broker = NULL;
    winharness_cleanup();
    return 0;
}

static mbx_client *connect_as(const char *name, int linger_ms)
{
    mbx_client *c = wh_connect(ns, name, linger_ms);
    assert_non_null(c);
    return c;
}

static void answer_next(mbx_client *srv)
{
    mbx_message *req = mbx_message_new();
    assert_int_equal(mbx_recv(srv, req, 5000), MBX_OK);
    char out[256];
    int n = snprintf(out, sizeof out, "{\"answer_to\":%s}", mbx_message_body(req, NULL));
    assert_int_equal(mbx_reply(srv, req, out, (size_t)n, 1000), MBX_OK);
    assert_int_equal(mbx_reply(srv, req, out, (size_t)n, 1000), MBX_EINVAL); /* once */
    mbx_message_free(req);
}

/* ---- tests ------------------------------------------------------------------------- */

static void a_restarted_client_gets_only_its_own_answers(void **state)
{
    (void)state;
    mbx_client *srv = connect_as("srv", 0);
    mbx_client *alice = connect_as("alice", 10000);
    uint64_t first;
    assert_int_equal(mbx_request_send(alice, "srv", "{\"q\":1}", 7, 1000, &first), MBX_OK);
    mbx_close(alice); /* lingers */
    answer_next(srv);
    mbx_client *again = connect_as("alice", 10000);
    uint64_t second;
    assert_int_equal(mbx_request_send(again, "srv", "{\"q\":2}", 7, 1000, &second), MBX_OK);
    assert_true(second != first);
    answer_next(srv);
    mbx_message *r = mbx_message_new();
    assert_int_equal(mbx_recv_reply(again, second, r, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(r, NULL), "{\"answer_to\":{\"q\":2}}");
    assert_int_equal(mbx_recv(again, r, 0), MBX_ETIMEDOUT); /* the old one: dropped */
    mbx_message_free(r);
    mbx_close(again);
    mbx_close(srv);
}

static bool signalled(mbx_handle h)
{
    return WaitForSingleObject((HANDLE)h, 0) == WAIT_OBJECT_0;
}

static void wake_handle_hears_a_reply_behind_another_message(void **state)
{
    (void)state;
    mbx_client *loop = connect_as("loop", 0);
    mbx_client *svc = connect_as("svc", 0);
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(loop, &h), MBX_OK);
    assert_false(signalled(h));
    uint64_t id;
    assert_int_equal(mbx_request_send(loop, "svc", "{\"q\":1}", 7, 1000, &id), MBX_OK);
    mbx_message *req = mbx_message_new(), *m = mbx_message_new();
    assert_int_equal(mbx_recv(svc, req, 1000), MBX_OK);
    assert_int_equal(mbx_send(svc, "loop", "{\"note\":1}", 10, 1000), MBX_OK);
    assert_true(signalled(h));
    assert_int_equal(mbx_recv_reply(loop, id, m, 0), MBX_ETIMEDOUT);
    assert_false(signalled(h)); /* looked at: not set again for that message */
    assert_int_equal(mbx_reply(svc, req, "{\"a\":42}", 8, 1000), MBX_OK);
    assert_int_equal(WaitForSingleObject((HANDLE)h, 5000), WAIT_OBJECT_0);
    assert_int_equal(mbx_recv_reply(loop, id, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"a\":42}");
    assert_int_equal(mbx_recv(loop, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"note\":1}");
    assert_int_equal(mbx_recv(loop, m, 0), MBX_ETIMEDOUT);
    assert_false(signalled(h));
    mbx_message_free(m);
    mbx_message_free(req);
    mbx_close(svc);
    mbx_close(loop);
}

static void a_group_whose_members_come_and_go_answers_everything(void **state)
{
    (void)state;
    HANDLE keeper = wh_spawn("member", ns, "0", NULL);
    assert_non_null(keeper);
    assert_int_equal(mbx_wait_for(ns, "srv", 10000), MBX_OK);
    HANDLE askers[ASKERS];
    for (int i = 0; i < ASKERS; i++) {
        char arg[8];
        snprintf(arg, sizeof arg, "%d", i);
        askers[i] = wh_spawn("asker", ns, arg, NULL);
        assert_non_null(askers[i]);
    }
    /* Members come, serve TEMP_SERVES requests each, and close with requests queued,
     * until every asker is done. */
    int rounds = 0;
    for (bool busy = true; busy; rounds++) {
        char arg[8];
        snprintf(arg, sizeof arg, "%d", TEMP_SERVES);
        HANDLE temp[2] = {wh_spawn("member", ns, arg, NULL), wh_spawn("member", ns, arg, NULL)};
        assert_int_equal(wh_wait(temp[0], 30000), 0);
        assert_int_equal(wh_wait(temp[1], 30000), 0);
        busy = false;
        for (int i = 0; i < ASKERS; i++)
            busy |= WaitForSingleObject(askers[i], 0) == WAIT_TIMEOUT;
    }
    for (int i = 0; i < ASKERS; i++)
        assert_int_equal(wh_wait(askers[i], 30000), 0);
    mbx_client *me = connect_as("boss", 0);
    assert_int_equal(mbx_send(me, "srv", "{\"stop\":1}", 10, 1000), MBX_OK);
    assert_int_equal(wh_wait(keeper, 10000), 0);
    mbx_close(me);
    printf("%d rounds of members coming and going\n", rounds);
}

int main(int argc, char **argv)
{
    int rc = winharness_main(argc, argv, roles);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_restarted_client_gets_only_its_own_answers, start_broker,
                                        stop_all),
        cmocka_unit_test_setup_teardown(wake_handle_hears_a_reply_behind_another_message,
                                        start_broker, stop_all),
        cmocka_unit_test_setup_teardown(a_group_whose_members_come_and_go_answers_everything,
                                        start_broker, stop_all),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    winharness_cleanup();
    return rc;
}
