/*
 * What mailbox-bridge needs from a namespace (docs/bridge.md), with a real broker and
 * real clients in one process (the bridge is one process serving many names):
 * - a client may stand for a name served on another node: `mbx list` (mbx_inspect) shows
 *   it as remote with its node, $mbx.client.up says so, and a local client asking for
 *   the same name is refused as for any name taken;
 * - a group prefers its local members to a bridge's member;
 * - a message, request or publication delivered by a bridge carries its node and its
 *   sender's name on that node, and replies still come back to the bridge;
 * - a request can end with an error told from the far side (mbx_reply_error);
 * - a retained publication keeps its node;
 * - a broker that adopts the namespace keeps the node of live and lingering remote names;
 * - a durable delivery repeated after a crash is not put in twice (once);
 * - a forwarder holds several messages at once (mbx_peek_after) and acknowledges them in
 *   order.
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

#include <cmocka.h>

#include "harness.h"

static char ns[64];
static pid_t broker;

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "remote");
    broker = harness_start_broker(ns, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_stop(broker, 5000);
    harness_cleanup();
    return 0;
}

static mbx_client *connect_as(const char *name, const char *node, int group)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    o.node = node;
    o.group = group;
    mbx_client *c = NULL;
    mbx_err err = mbx_connect(&o, &c);
    if (err != MBX_OK)
        fail_msg("connect %s: %s", name, mbx_strerror(err));
    return c;
}

typedef struct found {
    const char *name;
    int remote;
    char node[MBX_NAME_MAX + 1];
    int seen;
} found;

static int look(const mbx_client_info *ci, void *arg)
{
    found *f = arg;
    if (strcmp(ci->name, f->name) == 0) {
        f->seen++;
        f->remote = ci->remote;
        memcpy(f->node, ci->node, sizeof f->node);
    }
    return 0;
}

static void test_remote_name_is_shown_and_taken(void **state)
{
    (void)state;
    mbx_client *watcher = connect_as("watcher", NULL, 0);
    assert_int_equal(mbx_subscribe(watcher, "$mbx.client.up", NULL), MBX_OK);
    mbx_client *proxy = connect_as("svc", "hostb", 0);

    mbx_namespace_info info;
    found f = {.name = "svc"};
    assert_int_equal(mbx_inspect(ns, &info, look, &f), MBX_OK);
    assert_int_equal(f.seen, 1);
    assert_int_equal(f.remote, 1);
    assert_string_equal(f.node, "hostb");
    found w = {.name = "watcher"};
    assert_int_equal(mbx_inspect(ns, &info, look, &w), MBX_OK);
    assert_int_equal(w.remote, 0);
    assert_string_equal(w.node, "");

    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(watcher, m, 2000), MBX_OK);
    assert_non_null(strstr(mbx_message_body(m, NULL), "\"name\":\"svc\""));
    assert_non_null(strstr(mbx_message_body(m, NULL), "\"node\":\"hostb\""));

    /* A local client wanting the name is refused, as for any taken name. */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "svc";
    mbx_client *local = NULL;
    assert_int_equal(mbx_connect(&o, &local), MBX_ENAMETAKEN);

    /* A remote name needs a name and a valid node. */
    o.client_name = NULL;
    o.node = "hostb";
    assert_int_equal(mbx_connect(&o, &local), MBX_EINVAL);
    o.client_name = "x";
    o.node = "bad/node";
    assert_int_equal(mbx_connect(&o, &local), MBX_EINVAL);

    mbx_message_free(m);
    mbx_close(proxy);
    mbx_close(watcher);
}

static void test_group_prefers_local_members(void **state)
{
    (void)state;
    mbx_client *sender = connect_as("sender", NULL, 0);
    mbx_client *far = connect_as("work", "hostb", 1);
    mbx_client *near = connect_as("work", NULL, 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(mbx_send(sender, "work", "1", 1, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 20; i++)
        assert_int_equal(mbx_recv(near, m, 1000), MBX_OK);
    assert_int_equal(mbx_recv(far, m, 0), MBX_ETIMEDOUT);
    /* No local member left: the bridge's member gets it. */
    mbx_close(near);
    assert_int_equal(mbx_send(sender, "work", "2", 1, 1000), MBX_OK);
    assert_int_equal(mbx_recv(far, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "2");
    mbx_message_free(m);
    mbx_close(far);
    mbx_close(sender);
}

static void test_delivery_carries_node_and_sender(void **state)
{
    (void)state;
    mbx_client *bridge = connect_as("bridge", NULL, 0);
    mbx_client *svc = connect_as("svc", NULL, 0);
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.from = "alice";
    /* A sender's name without its node is refused. */
    assert_int_equal(mbx_send_ex(bridge, "svc", "{}", 2, &so), MBX_EINVAL);
    so.node = "hosta";
    assert_int_equal(mbx_send_ex(bridge, "svc", "{\"n\":1}", 7, &so), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "alice");
    assert_string_equal(mbx_message_node(m), "hosta");
    char *env = mbx_message_envelope_json(m);
    assert_non_null(strstr(env, "\"from\":\"alice\",\"node\":\"hosta\""));
    mbx_free(env);

    /* A request on alice's behalf: the reply comes back to the bridge. */
    uint64_t id;
    assert_int_equal(mbx_request_send_ex(bridge, "svc", "{\"q\":1}", 7, &so, &id), MBX_OK);
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_int_equal(mbx_message_kind(m), MBX_KIND_REQUEST);
    assert_string_equal(mbx_message_from(m), "alice");
    assert_int_equal(mbx_reply(svc, m, "{\"a\":1}", 7, 1000), MBX_OK);
    mbx_message *r = mbx_message_new();
    assert_int_equal(mbx_recv_reply(bridge, id, r, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(r, NULL), "{\"a\":1}");
    assert_null(mbx_message_node(r));

    /* Publications: the node is kept, retained ones too. */
    assert_int_equal(mbx_subscribe(svc, "t.>", NULL), MBX_OK);
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.node = "hosta";
    po.from = "pub";
    po.retain = 1;
    assert_int_equal(mbx_publish(bridge, "t.x", "5", 1, &po), MBX_OK);
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "pub");
    assert_string_equal(mbx_message_node(m), "hosta");
    mbx_client *late = connect_as("late", NULL, 0);
    assert_int_equal(mbx_subscribe(late, "t.x", NULL), MBX_OK);
    assert_int_equal(mbx_recv(late, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "pub");
    assert_string_equal(mbx_message_node(m), "hosta");
    mbx_message_fields mf;
    mbx_message_fields_get(m, &mf);
    assert_string_equal(mf.node, "hosta");

    mbx_message_free(r);
    mbx_message_free(m);
    mbx_close(late);
    mbx_close(svc);
    mbx_close(bridge);
}

static void test_request_ends_with_far_error(void **state)
{
    (void)state;
    mbx_client *proxy = connect_as("svc", "hostb", 0);
    mbx_client *asker = connect_as("asker", NULL, 0);
    mbx_message *req = mbx_message_new(), *rep = mbx_message_new();
    uint64_t id;
    assert_int_equal(mbx_request_send(asker, "svc", "{}", 2, 1000, &id), MBX_OK);
    assert_int_equal(mbx_recv(proxy, req, 1000), MBX_OK);
    assert_int_equal(mbx_reply_error(proxy, req, MBX_OK, 1000), MBX_EINVAL);
    /* Only errors that tell of the far side: a timeout would read as "call again". */
    assert_int_equal(mbx_reply_error(proxy, req, MBX_ETIMEDOUT, 1000), MBX_EINVAL);
    assert_int_equal(mbx_reply_error(proxy, req, MBX_ESHUTDOWN, 1000), MBX_EINVAL);
    assert_int_equal(mbx_reply_error(proxy, req, MBX_EGONE, 1000), MBX_OK);
    assert_int_equal(mbx_recv_reply(asker, id, rep, 1000), MBX_EGONE);

    /* Taken with mbx_recv instead, it says so too. */
    assert_int_equal(mbx_request_send(asker, "svc", "{}", 2, 1000, &id), MBX_OK);
    assert_int_equal(mbx_recv(proxy, req, 1000), MBX_OK);
    assert_int_equal(mbx_reply_error(proxy, req, MBX_ENORECIPIENT, 1000), MBX_OK);
    assert_int_equal(mbx_recv(asker, rep, 1000), MBX_OK);
    assert_int_equal(mbx_message_kind(rep), MBX_KIND_REPLY);
    assert_int_equal(mbx_message_error(rep), MBX_ENORECIPIENT);
    assert_non_null(strstr(mbx_message_body(rep, NULL), "\"code\":"));
    mbx_message_free(req);
    mbx_message_free(rep);
    mbx_close(asker);
    mbx_close(proxy);
}

/* A bridge's mailbox that lingers (the bridge died) stays remote with its node. */
static int lingering_proxy_main(void *arg)
{
    (void)arg;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "far";
    o.node = "hostc";
    o.linger_ms = 60000;
    mbx_client *c;
    if (mbx_connect(&o, &c) != MBX_OK)
        return 10;
    _exit(0); /* gone without closing: the mailbox lingers */
}

static void test_adoption_keeps_the_node(void **state)
{
    (void)state;
    mbx_client *live = connect_as("near", "hostb", 0);
    pid_t child = harness_spawn(lingering_proxy_main, NULL, 30);
    assert_int_equal(harness_wait(child, 10000), 0);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    broker = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    found near = {.name = "near"}, far = {.name = "far"};
    assert_int_equal(mbx_inspect(ns, &info, look, &near), MBX_OK);
    assert_int_equal(info.epoch, 1); /* adopted, not made anew */
    assert_int_equal(mbx_inspect(ns, &info, look, &far), MBX_OK);
    assert_int_equal(near.seen, 1);
    assert_int_equal(near.remote, 1);
    assert_string_equal(near.node, "hostb");
    assert_int_equal(far.seen, 1);
    assert_int_equal(far.remote, 1);
    assert_string_equal(far.node, "hostc");
    /* Its messages are for the name served on hostc: no local client takes it over. */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "far";
    mbx_client *local = NULL;
    assert_int_equal(mbx_connect(&o, &local), MBX_ENAMETAKEN);
    /* A bridge standing for the same node does. */
    mbx_client *again = connect_as("far", "hostc", 0);
    mbx_close(again);
    mbx_close(live);
}

/* Durable deliveries (mbx_send_options.once): a delivery repeated after a crash is not
 * put in twice, whichever client repeats it; the mark stays with a lingering mailbox and
 * is reset for a new owner. */
static void test_repeated_delivery_is_not_duplicated(void **state)
{
    (void)state;
    mbx_client *bridge = connect_as("bridge", NULL, 0);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "svc";
    o.linger_ms = 60000;
    mbx_client *svc = NULL;
    assert_int_equal(mbx_connect(&o, &svc), MBX_OK);
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.once = 5;
    assert_int_equal(mbx_send_ex(bridge, "svc", "1", 1, &so), MBX_EINVAL); /* needs a node */
    so.node = "hosta";
    so.from = "alice";
    assert_int_equal(mbx_send_ex(bridge, "svc", "5", 1, &so), MBX_OK);
    assert_int_equal(mbx_send_ex(bridge, "svc", "5", 1, &so), MBX_OK); /* again: not put */
    so.once = 3;
    assert_int_equal(mbx_send_ex(bridge, "svc", "3", 1, &so), MBX_OK); /* older: not put */
    so.once = 0;
    assert_int_equal(mbx_send_ex(bridge, "svc", "0", 1, &so), MBX_OK); /* unchecked */
    /* Another bridge process after a crash repeats it too. */
    mbx_close(bridge);
    bridge = connect_as("bridge", NULL, 0);
    so.once = 5;
    assert_int_equal(mbx_send_ex(bridge, "svc", "5", 1, &so), MBX_OK);
    so.once = 6;
    assert_int_equal(mbx_send_ex(bridge, "svc", "6", 1, &so), MBX_OK);
    mbx_message *m = mbx_message_new();
    const char *want[] = {"5", "0", "6"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), want[i]);
    }
    assert_int_equal(mbx_recv(svc, m, 0), MBX_ETIMEDOUT);
    /* The client goes and its mailbox lingers: the mark stays. */
    mbx_close(svc);
    assert_int_equal(mbx_send_ex(bridge, "svc", "6", 1, &so), MBX_OK);
    svc = NULL;
    assert_int_equal(mbx_connect(&o, &svc), MBX_OK);
    assert_int_equal(mbx_recv(svc, m, 200), MBX_ETIMEDOUT);
    /* A new owner of a fresh mailbox starts from nothing. */
    mbx_close(svc);
    mbx_close(bridge);
    harness_stop(broker, 5000);
    broker = harness_start_broker(ns, NULL);
    bridge = connect_as("bridge", NULL, 0);
    svc = connect_as("svc", NULL, 0);
    so.once = 2;
    assert_int_equal(mbx_send_ex(bridge, "svc", "2", 1, &so), MBX_OK);
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "2");
    mbx_message_free(m);
    mbx_close(svc);
    mbx_close(bridge);
}

/* A forwarder holds several messages at once (mbx_peek, then mbx_peek_after) and removes
 * them oldest first as each is passed on; nothing is removed before its mbx_ack, and a
 * crash (here: a new client of the name) finds them all again. */
static void test_peek_after_holds_several(void **state)
{
    (void)state;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "fwd";
    o.linger_ms = 60000;
    mbx_client *fwd = NULL;
    assert_int_equal(mbx_connect(&o, &fwd), MBX_OK);
    mbx_client *tx = connect_as("tx", NULL, 0);
    for (int i = 1; i <= 3; i++) {
        char body[8];
        snprintf(body, sizeof body, "%d", i);
        assert_int_equal(mbx_send(tx, "fwd", body, strlen(body), 1000), MBX_OK);
    }
    mbx_message *m[4];
    for (int i = 0; i < 4; i++)
        m[i] = mbx_message_new();
    assert_int_equal(mbx_peek_after(fwd, m[0], m[1]), MBX_EINVAL); /* m[0] was not peeked */
    assert_int_equal(mbx_peek(fwd, m[0], 1000), MBX_OK);
    assert_int_equal(mbx_peek_after(fwd, m[0], m[1]), MBX_OK);
    assert_int_equal(mbx_peek_after(fwd, m[1], m[2]), MBX_OK);
    assert_int_equal(mbx_peek_after(fwd, m[2], m[3]), MBX_ETIMEDOUT);
    assert_string_equal(mbx_message_body(m[0], NULL), "1");
    assert_string_equal(mbx_message_body(m[1], NULL), "2");
    assert_string_equal(mbx_message_body(m[2], NULL), "3");
    /* Oldest first only. */
    assert_int_equal(mbx_ack(fwd, m[1]), MBX_EINVAL);
    assert_int_equal(mbx_ack(fwd, m[0]), MBX_OK);
    /* What follows an acknowledged message is still there; past it, the mailbox moved. */
    assert_int_equal(mbx_peek_after(fwd, m[0], m[3]), MBX_OK);
    assert_string_equal(mbx_message_body(m[3], NULL), "2");
    /* More arrives behind what is held; a later peek_after sees it. */
    assert_int_equal(mbx_send(tx, "fwd", "4", 1, 1000), MBX_OK);
    assert_int_equal(mbx_peek_after(fwd, m[2], m[3]), MBX_OK);
    assert_string_equal(mbx_message_body(m[3], NULL), "4");
    assert_int_equal(mbx_ack(fwd, m[1]), MBX_OK);
    assert_int_equal(mbx_peek_after(fwd, m[0], m[1]), MBX_EINVAL);
    /* The forwarder dies holding 3 and 4: its successor finds them. */
    mbx_close(fwd);
    fwd = NULL;
    assert_int_equal(mbx_connect(&o, &fwd), MBX_OK);
    assert_int_equal(mbx_peek(fwd, m[0], 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m[0], NULL), "3");
    assert_int_equal(mbx_peek_after(fwd, m[0], m[0]), MBX_OK); /* msg may be prev */
    assert_string_equal(mbx_message_body(m[0], NULL), "4");
    assert_int_equal(mbx_recv(fwd, m[1], 0), MBX_OK);
    assert_string_equal(mbx_message_body(m[1], NULL), "3");
    assert_int_equal(mbx_recv(fwd, m[1], 0), MBX_OK);
    assert_int_equal(mbx_recv(fwd, m[1], 0), MBX_ETIMEDOUT);
    /* Round the ring many times with messages of many sizes: padding at the ring's end
     * sits between held messages now and then, and every acknowledgement still works. */
    static char big[3000];
    for (int round = 0; round < 200; round++) {
        for (int k = 0; k < 3; k++) {
            size_t n = 40 + (size_t)((round * 7 + k * 13) % 29) * 90;
            memset(big, 'x', n);
            big[0] = '"';
            big[n - 1] = '"';
            assert_int_equal(mbx_send(tx, "fwd", big, n, 1000), MBX_OK);
        }
        assert_int_equal(mbx_peek(fwd, m[0], 1000), MBX_OK);
        assert_int_equal(mbx_peek_after(fwd, m[0], m[1]), MBX_OK);
        assert_int_equal(mbx_peek_after(fwd, m[1], m[2]), MBX_OK);
        for (int k = 0; k < 3; k++)
            assert_int_equal(mbx_ack(fwd, m[k]), MBX_OK);
    }
    assert_int_equal(mbx_recv(fwd, m[0], 0), MBX_ETIMEDOUT);
    for (int i = 0; i < 4; i++)
        mbx_message_free(m[i]);
    mbx_close(tx);
    mbx_close(fwd);
}

static void test_pattern_match(void **state)
{
    (void)state;
    assert_int_equal(mbx_pattern_match(">", "svc"), 1);
    assert_int_equal(mbx_pattern_match("svc.*", "svc.a"), 1);
    assert_int_equal(mbx_pattern_match("svc.*", "svc.a.b"), 0);
    assert_int_equal(mbx_pattern_match("svc.>", "svc.a.b"), 1);
    assert_int_equal(mbx_pattern_match(">", "$mbx.client.up"), 0);
    assert_int_equal(mbx_pattern_match("a", "a."), 0);
    assert_int_equal(mbx_pattern_match("a..b", "a"), 0);
}

int main(void)
{
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remote_name_is_shown_and_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_prefers_local_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_carries_node_and_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_ends_with_far_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adoption_keeps_the_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_delivery_is_not_duplicated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_after_holds_several, setup, teardown),
        cmocka_unit_test(test_pattern_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
