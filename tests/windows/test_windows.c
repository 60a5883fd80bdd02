/*
 * Multi-process tests of the Win32 backend, run under Wine in CI: real mailboxd.exe
 * processes, real client processes, TerminateProcess for the kills. The cases mirror the
 * Linux integration tests (tests/integration/) where Windows has the same thing to break;
 * docs/windows.md lists those left out and why.
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

#define SENDERS 6
#define PER_SENDER 400
#define FIRE_AT 100 /* the armed sender's fault point fires on its 100th pass */

static char ns[64];
static HANDLE broker;

/* ---- child roles ------------------------------------------------------------------- */

/* A body long enough that "half a copy" would be visibly half. */
static int format_body(char *buf, size_t cap, int sender, int n)
{
    return snprintf(buf, cap, "{\"s\":%d,\"n\":%d,\"pad\":\"%040d\"}", sender, n, n);
}

/* Sends PER_SENDER numbered messages to "sink" as "sender-<arg>". */
static int role_sender(const char *ns_, const char *arg)
{
    char name[32];
    snprintf(name, sizeof name, "sender-%s", arg);
    mbx_client *c = wh_connect(ns_, name, 0);
    if (c == NULL)
        return 10;
    char body[128];
    for (int n = 0; n < PER_SENDER; n++) {
        int len = format_body(body, sizeof body, atoi(arg), n);
        mbx_err err = mbx_send(c, "sink", body, (size_t)len, 20000);
        if (err != MBX_OK) {
            fprintf(stderr, "sender-%s: message %d: %s\n", arg, n, mbx_strerror(err));
            return 11;
        }
    }
    mbx_close(c);
    return 0;
}

/* Connects as arg and waits to be killed. */
static int role_idle(const char *ns_, const char *arg)
{
    mbx_client *c = wh_connect(ns_, arg, 0);
    if (c == NULL)
        return 10;
    Sleep(WH_CHILD_TIMEOUT_S * 1000);
    return 0;
}

/* Serves arg requests as "srv", answering each with {"re":<its body>}. */
static int role_responder(const char *ns_, const char *arg)
{
    mbx_client *c = wh_connect(ns_, "srv", 0);
    if (c == NULL)
        return 10;
    mbx_message *m = mbx_message_new();
    for (int served = 0; served < atoi(arg);) {
        if (mbx_recv(c, m, 20000) != MBX_OK)
            return 11;
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            continue;
        char answer[256];
        int n = snprintf(answer, sizeof answer, "{\"re\":%s}", mbx_message_body(m, NULL));
        if (mbx_reply(c, m, answer, (size_t)n, 5000) != MBX_OK)
            return 12;
        served++;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

#define WIN_PUBLICATIONS 200

/* Connects as sub-<arg>, subscribes to w.* (and the broker's client events), tells
 * "parent", then checks the retained w.cfg and WIN_PUBLICATIONS publications on w.x, in
 * order, none of v.* among them. */
static int role_subscriber(const char *ns_, const char *arg)
{
    char name[32];
    snprintf(name, sizeof name, "sub-%s", arg);
    mbx_client *c = wh_connect(ns_, name, 0);
    if (c == NULL)
        return 10;
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_BLOCK;
    if (mbx_subscribe(c, "w.*", &so) != MBX_OK || mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 11;
    mbx_message *m = mbx_message_new();
    if (mbx_recv(c, m, 20000) != MBX_OK || strcmp(mbx_message_topic(m), "w.cfg") != 0)
        return 12; /* the retained one first */
    for (int i = 0; i < WIN_PUBLICATIONS; i++) {
        char want[16];
        snprintf(want, sizeof want, "[%d]", i);
        if (mbx_recv(c, m, 20000) != MBX_OK)
            return 13;
        if (mbx_message_topic(m) == NULL || strcmp(mbx_message_topic(m), "w.x") != 0 ||
            strcmp(mbx_message_body(m, NULL), want) != 0)
            return 14;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

static const wh_role roles[] = {
    {"subscriber", role_subscriber},
    {"sender", role_sender},
    {"idle", role_idle},
    {"responder", role_responder},
    {NULL, NULL},
};

/* ---- fixtures ---------------------------------------------------------------------- */

static int start_broker(void **state)
{
    (void)state;
    wh_namespace(ns, "win");
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

static mbx_client *connect_as(const char *name)
{
    mbx_client *c = wh_connect(ns, name, 0);
    assert_non_null(c);
    return c;
}

struct seen {
    const char *name;
    bool found;
};

static int find_client(const mbx_client_info *ci, void *arg)
{
    struct seen *s = arg;
    s->found = s->found || strcmp(ci->name, s->name) == 0;
    return s->found;
}

/* True when a client of that name is connected now. */
static bool client_listed(const char *name)
{
    struct seen s = {name, false};
    mbx_namespace_info info;
    return mbx_inspect(ns, &info, find_client, &s) == MBX_OK && s.found;
}

/* ---- tests ------------------------------------------------------------------------- */

static void second_broker_is_refused(void **state)
{
    (void)state;
    char args[128];
    snprintf(args, sizeof args, "-N %s", ns);
    assert_int_equal(wh_run_broker(args), 3); /* BROKER_EXIT_BUSY, as on Linux */
    /* ... and the first one still serves. */
    mbx_client *c = connect_as("still-there");
    mbx_close(c);
}

/* The wake handle is a waitable HANDLE: signalled while a message waits, reset once a
 * receive found the mailbox empty, signalled on shutdown; WaitForMultipleObjects takes it
 * beside another handle. */
static void wake_handle_with_wait_for_multiple_objects(void **state)
{
    (void)state;
    mbx_client *rx = connect_as("rx");
    mbx_client *tx = connect_as("tx");
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    HANDLE other = CreateEventA(NULL, TRUE, FALSE, NULL);
    HANDLE both[2] = {other, (HANDLE)h};
    assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 0), WAIT_TIMEOUT);
    mbx_message *m = mbx_message_new();
    for (int round = 0; round < 3; round++) {
        assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
        assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 2000), WAIT_OBJECT_0 + 1);
        assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
        assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
        assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 0), WAIT_TIMEOUT);
    }
    /* Busy polling: nothing comes (the handle is then armed and quiet), a message there. */
    assert_int_equal(mbx_busy_poll(rx, -1), MBX_EINVAL);
    assert_int_equal(mbx_busy_poll(rx, 2000), MBX_ETIMEDOUT);
    assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 0), WAIT_TIMEOUT);
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
    assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 2000), WAIT_OBJECT_0 + 1);
    assert_int_equal(mbx_busy_poll(rx, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    assert_int_equal(WaitForMultipleObjects(2, both, FALSE, 0), WAIT_TIMEOUT);
    CloseHandle(other);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

/* The example event loop (examples/event_loop_win32.c): WaitForMultipleObjects on its
 * wake handle and a timer serves the messages sent to it, and ends on {"quit":true}
 * having seen the timer too (exit 0; 3 without a tick). */
static void example_event_loop_runs(void **state)
{
    (void)state;
    char args[160];
    snprintf(args, sizeof args, "-N %s looper", ns);
    HANDLE loop = wh_start_program("event_loop_win32.exe", args);
    assert_non_null(loop);
    assert_int_equal(mbx_wait_for(ns, "looper", 10000), MBX_OK);
    mbx_client *tx = connect_as("shell");
    assert_int_equal(mbx_send(tx, "looper", "{\"hello\":1}", 11, 1000), MBX_OK);
    Sleep(500); /* a few ticks */
    assert_int_equal(mbx_send(tx, "looper", "{\"quit\":true}", 13, 1000), MBX_OK);
    assert_int_equal(wh_wait(loop, 10000), 0);
    mbx_close(tx);
}

/* Request and reply across processes: correlated replies, a plain message sent around
 * the requests kept in order, "no responders" at once. */
static void request_and_reply_across_processes(void **state)
{
    (void)state;
    HANDLE srv = wh_spawn("responder", ns, "50", NULL);
    assert_non_null(srv);
    assert_int_equal(mbx_wait_for(ns, "srv", 10000), MBX_OK);
    mbx_client *me = connect_as("me");
    mbx_client *noise = connect_as("noise");
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_request(me, "nobody", "1", 1, m, 1000), MBX_ENORECIPIENT);
    assert_int_equal(mbx_send(noise, "me", "[1]", 3, 1000), MBX_OK);
    for (int i = 0; i < 50; i++) {
        char body[16], expect[32];
        int n = snprintf(body, sizeof body, "[%d]", i);
        snprintf(expect, sizeof expect, "{\"re\":%s}", body);
        assert_int_equal(mbx_request(me, "srv", body, (size_t)n, m, 10000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), expect);
    }
    assert_int_equal(mbx_recv(me, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    assert_int_equal(wh_wait(srv, 10000), 0);
    mbx_message_free(m);
    mbx_close(noise);
    mbx_close(me);
}

/* Publish and subscribe across processes: two subscribers of w.* get the retained w.cfg,
 * then every publication on w.x in order and nothing of v.*; the broker's events reach a
 * subscriber of $mbx.client.*. */
static void publish_subscribe_across_processes(void **state)
{
    (void)state;
    mbx_client *me = connect_as("parent");
    mbx_client *watch = connect_as("watch");
    assert_int_equal(mbx_subscribe(watch, "$mbx.client.down", NULL), MBX_OK);
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.retain = 1;
    assert_int_equal(mbx_publish(me, "w.cfg", "{\"mode\":1}", 10, &po), MBX_OK);
    HANDLE subs[2] = {wh_spawn("subscriber", ns, "a", NULL), wh_spawn("subscriber", ns, "b", NULL)};
    assert_non_null(subs[0]);
    assert_non_null(subs[1]);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(me, m, 10000), MBX_OK);
    assert_int_equal(mbx_recv(me, m, 10000), MBX_OK);
    mbx_publish_result res;
    mbx_publish_options_init(&po);
    po.result = &res;
    po.timeout_ms = 10000;
    for (int i = 0; i < WIN_PUBLICATIONS; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "[%d]", i);
        assert_int_equal(mbx_publish(me, "v.x", "[-1]", 4, &po), MBX_OK);
        assert_int_equal(res.delivered, 0);
        assert_int_equal(mbx_publish(me, "w.x", body, (size_t)n, &po), MBX_OK);
        assert_int_equal(res.delivered, 2);
    }
    assert_int_equal(wh_wait(subs[0], 20000), 0);
    assert_int_equal(wh_wait(subs[1], 20000), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mbx_recv(watch, m, 5000), MBX_OK);
        assert_string_equal(mbx_message_topic(m), "$mbx.client.down");
        assert_non_null(strstr(mbx_message_body(m, NULL), "\"reason\":\"closed\""));
    }
    mbx_message_free(m);
    mbx_close(watch);
    mbx_close(me);
}

static int find_namespace(const mbx_namespace_entry *e, void *arg)
{
    if (strcmp(e->name, ns) == 0)
        *(mbx_namespace_entry *)arg = *e;
    return 0;
}

/* mbx_namespaces finds the namespace by its broker's pipe; mbx_clean refuses while the
 * broker serves it and finds nothing to remove for a name without one. */
static void namespaces_and_clean(void **state)
{
    (void)state;
    mbx_namespace_entry e;
    memset(&e, 0, sizeof e);
    assert_int_equal(mbx_namespaces(find_namespace, &e), MBX_OK);
    assert_string_equal(e.name, ns);
    assert_int_equal(e.state, MBX_NS_SERVED);
    assert_true(e.broker_pid > 0);
    unsigned cleaned = 7;
    assert_int_equal(mbx_clean(ns, &cleaned), MBX_EEXIST);
    char other[80];
    snprintf(other, sizeof other, "%s-none", ns);
    assert_int_equal(mbx_clean(other, &cleaned), MBX_OK);
    assert_int_equal(cleaned, 0);
    /* A send-only client: no slot, it sends, it cannot receive. */
    mbx_client *rx = connect_as("rx");
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.send_only = 1;
    mbx_client *tx;
    assert_int_equal(mbx_connect(&o, &tx), MBX_OK);
    assert_int_equal(mbx_send(tx, "rx", "[7]", 3, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[7]");
    assert_int_equal(mbx_recv(tx, m, 0), MBX_EINVAL);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

static int count_adders(const mbx_client_info *ci, void *arg)
{
    if (strcmp(ci->name, "adder") == 0 && ci->group)
        (*(int *)arg)++;
    return 0;
}

/* A service group across processes (examples/service.c): two members of "adder" serve
 * six requests between them, each answered with the sum. */
static void service_group_across_processes(void **state)
{
    (void)state;
    char args[160];
    snprintf(args, sizeof args, "serve -N %s 3", ns);
    HANDLE servers[2] = {wh_start_program("service.exe", args),
                         wh_start_program("service.exe", args)};
    assert_non_null(servers[0]);
    assert_non_null(servers[1]);
    int members = 0;
    for (int tries = 0; tries < 500 && members < 2; tries++) {
        mbx_namespace_info info;
        members = 0;
        (void)mbx_inspect(ns, &info, count_adders, &members);
        if (members < 2)
            Sleep(20);
    }
    assert_int_equal(members, 2);
    mbx_client *me = connect_as("asker");
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 6; i++) {
        char body[32], expect[32];
        int n = snprintf(body, sizeof body, "[%d,%d]", i, i);
        snprintf(expect, sizeof expect, "%d", 2 * i);
        assert_int_equal(mbx_request(me, "adder", body, (size_t)n, m, 10000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), expect);
    }
    assert_int_equal(wh_wait(servers[0], 10000), 0);
    assert_int_equal(wh_wait(servers[1], 10000), 0);
    mbx_message_free(m);
    mbx_close(me);
}

/* mbx reply --exec runs its command through cmd.exe /c: the command's output is the reply,
 * and a command that fails gets an error reply. */
static void reply_exec_through_cmd(void **state)
{
    (void)state;
    char args[200];
    snprintf(args, sizeof args, "reply -N %s -c 2 calc --exec \"echo 42\"", ns);
    HANDLE server = wh_start_program("mbx.exe", args);
    assert_non_null(server);
    assert_int_equal(mbx_wait_for(ns, "calc", 10000), MBX_OK);
    mbx_client *me = connect_as("asker");
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_request(me, "calc", "[1]", 3, m, 10000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "42");
    assert_int_equal(mbx_request(me, "calc", "[2]", 3, m, 10000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "42");
    assert_int_equal(wh_wait(server, 10000), 0);
    mbx_message_free(m);
    mbx_close(me);
}

/* Many sender processes into one mailbox: every message exactly once, in order per
 * sender. The mailbox (64 cells) is far smaller than what is sent, so senders block on
 * a full mailbox and are woken through the named semaphores. */
static void many_senders_exactly_once_in_order(void **state)
{
    (void)state;
    mbx_client *sink = connect_as("sink");
    HANDLE senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        char arg[8];
        snprintf(arg, sizeof arg, "%d", i);
        senders[i] = wh_spawn("sender", ns, arg, NULL);
        assert_non_null(senders[i]);
    }
    int next[SENDERS] = {0};
    mbx_message *m = mbx_message_new();
    for (int got = 0; got < SENDERS * PER_SENDER; got++) {
        mbx_err err = mbx_recv(sink, m, 30000);
        assert_int_equal(err, MBX_OK);
        int s = -1, n = -1;
        assert_int_equal(sscanf(mbx_message_body(m, NULL), "{\"s\":%d,\"n\":%d", &s, &n), 2);
        assert_true(s >= 0 && s < SENDERS);
        assert_int_equal(n, next[s]);
        next[s]++;
    }
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(wh_wait(senders[i], 30000), 0);
    assert_int_equal(mbx_recv(sink, m, 100), MBX_ETIMEDOUT); /* nothing extra */
    mbx_message_free(m);
    mbx_close(sink);
}

/* Bad input of every kind is refused with its own error and loses nothing accepted. */
static void bad_input_is_refused_and_loses_nothing(void **state)
{
    (void)state;
    mbx_client *sink = connect_as("sink");
    mbx_client *a = connect_as("a");
    mbx_client *dup = NULL;
    assert_int_equal(wh_connect_retry(ns, "a", MBX_ETIMEDOUT, 1000, &dup), MBX_ENAMETAKEN);
    assert_int_equal(wh_connect_retry(ns, "bad name!", MBX_ETIMEDOUT, 1000, &dup), MBX_EINVAL);

    assert_int_equal(mbx_send(a, "sink", "{\"k\":1}", 7, 1000), MBX_OK);
    assert_int_equal(mbx_send(a, "sink", "{\"k\":", 5, 1000), MBX_EINVALJSON);
    assert_int_equal(mbx_send(a, "sink", "[1,2]x", 6, 1000), MBX_EINVALJSON);
    assert_int_equal(mbx_send(a, "nobody", "1", 1, 1000), MBX_ENORECIPIENT);
    assert_int_equal(mbx_send(a, "bad name!", "1", 1, 1000), MBX_EINVAL);
    size_t big = mbx_max_message(a) + 1;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '1';
    assert_int_equal(mbx_send(a, "sink", huge, big, 1000), MBX_ETOOLARGE);
    free(huge);
    assert_int_equal(mbx_send(a, "sink", "{\"k\":2}", 7, 1000), MBX_OK);

    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(sink, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"k\":1}");
    assert_string_equal(mbx_message_from(m), "a");
    assert_int_equal(mbx_recv(sink, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"k\":2}");
    assert_int_equal(mbx_recv(sink, m, 100), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(a);
    mbx_close(sink);
}

/* A client killed with TerminateProcess: the broker sees its process handle signalled
 * and frees the slot, so the name is free again. */
static void killed_client_frees_its_name(void **state)
{
    (void)state;
    HANDLE victim = wh_spawn("idle", ns, "victim", NULL);
    assert_non_null(victim);
    mbx_client *probe = NULL;
    /* Wait until the victim holds the name ... */
    for (int i = 0; i < 1000 && !client_listed("victim"); i++)
        Sleep(10);
    assert_true(client_listed("victim"));
    assert_int_equal(wh_connect_retry(ns, "victim", MBX_ETIMEDOUT, 1000, &probe), MBX_ENAMETAKEN);
    wh_kill(victim);
    /* ... and after the kill it is ours. */
    assert_int_equal(wh_connect_retry(ns, "victim", MBX_ENAMETAKEN, 10000, &probe), MBX_OK);
    mbx_close(probe);
}

/* The broker killed: clients keep their mailboxes and messages; a new broker adopts the
 * segment (kept alive by the clients' views) and serves them on. */
static void killed_broker_is_replaced_and_adopts(void **state)
{
    (void)state;
    mbx_client *sink = connect_as("sink");
    mbx_client *a = connect_as("a");
    for (int i = 0; i < 10; i++) {
        char body[32];
        int len = snprintf(body, sizeof body, "{\"before\":%d}", i);
        assert_int_equal(mbx_send(a, "sink", body, (size_t)len, 1000), MBX_OK);
    }
    wh_kill(broker);
    broker = NULL;
    mbx_client *late = NULL;
    assert_int_equal(wh_connect_retry(ns, "late", MBX_ETIMEDOUT, 1000, &late), MBX_ENOBROKER);
    /* Messaging between connected clients goes on without a broker. */
    assert_int_equal(mbx_send(a, "sink", "{\"during\":1}", 12, 1000), MBX_OK);

    broker = wh_start_broker(ns, NULL);
    assert_non_null(broker);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.epoch, 1);
    assert_int_equal(info.clients, 2);
    assert_int_equal(wh_connect_retry(ns, "late", MBX_ETIMEDOUT, 1000, &late), MBX_OK);
    assert_int_equal(mbx_send(late, "sink", "{\"after\":1}", 11, 1000), MBX_OK);

    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"before\":%d}", i);
        assert_int_equal(mbx_recv(sink, m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), want);
    }
    assert_int_equal(mbx_recv(sink, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"during\":1}");
    assert_int_equal(mbx_recv(sink, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"after\":1}");
    mbx_message_free(m);
    mbx_close(late);
    mbx_close(a);
    mbx_close(sink);
}

/* MBX_GLOBAL=1 puts the namespace under Global\ names (for services and other sessions):
 * broker and clients meet there, and a client without it does not find the broker. */
static void global_names_are_a_namespace_of_their_own(void **state)
{
    (void)state;
    char gns[64];
    wh_namespace(gns, "global");
    assert_int_equal(_putenv("MBX_GLOBAL=1"), 0); /* for us and the broker we start */
    HANDLE global_broker = wh_start_broker(gns, NULL);
    assert_non_null(global_broker);
    mbx_client *c = wh_connect(gns, "echo", 0);
    assert_non_null(c);
    assert_int_equal(mbx_send(c, "echo", "[1]", 3, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(c, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    mbx_message_free(m);

    assert_int_equal(_putenv("MBX_GLOBAL="), 0);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(gns, &info, NULL, NULL), MBX_ENOBROKER);
    mbx_close(c);
    wh_kill(global_broker);
}

#ifdef MBX_FAULT_INJECTION
/*
 * Crashes at the worst moment, as tests/integration/test_crash.c does on Linux: the last
 * of the senders is armed with a fault point (MBX_FAULT) that ends its process with
 * TerminateProcess while it holds the recipient's named mutex, or halfway through a
 * copy, or after publishing but before unlocking. The next sender to lock sees
 * WAIT_ABANDONED and repairs; the receiver sees whole messages only, each exactly once.
 */
static void crash_while_sending(const char *point, int delivered)
{
    mbx_client *sink = connect_as("sink");
    HANDLE senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        char arg[8], fault[64];
        snprintf(arg, sizeof arg, "%d", i);
        snprintf(fault, sizeof fault, "%s:%d", point, FIRE_AT);
        senders[i] = wh_spawn("sender", ns, arg, i == SENDERS - 1 ? fault : NULL);
        assert_non_null(senders[i]);
    }
    int next[SENDERS] = {0};
    int expected = (SENDERS - 1) * PER_SENDER + delivered;
    mbx_message *m = mbx_message_new();
    for (int got = 0; got < expected; got++) {
        mbx_err err = mbx_recv(sink, m, 20000);
        if (err != MBX_OK)
            fail_msg("%s: after %d messages: %s", point, got, mbx_strerror(err));
        int s = -1, n = -1;
        const char *body = mbx_message_body(m, NULL);
        if (sscanf(body, "{\"s\":%d,\"n\":%d", &s, &n) != 2 || s < 0 || s >= SENDERS)
            fail_msg("%s: a torn message: %s", point, body);
        char want[128];
        format_body(want, sizeof want, s, n);
        assert_string_equal(body, want); /* whole, byte for byte */
        assert_int_equal(n, next[s]);
        next[s]++;
    }
    assert_int_equal(mbx_recv(sink, m, 200), MBX_ETIMEDOUT);
    assert_int_equal(next[SENDERS - 1], delivered);
    for (int i = 0; i < SENDERS - 1; i++)
        assert_int_equal(wh_wait(senders[i], 30000), 0);
    assert_int_equal(wh_wait(senders[SENDERS - 1], 30000), 137); /* plat_kill_self() */
    /* No lock stays held: a send that may not wait goes through. */
    assert_int_equal(mbx_send(sink, "sink", "{}", 2, 0), MBX_OK);
    assert_int_equal(mbx_recv(sink, m, 1000), MBX_OK);
    mbx_message_free(m);
    mbx_close(sink);
}

static void killed_holding_the_lock(void **state)
{
    (void)state;
    crash_while_sending("ring.put.locked", FIRE_AT - 1);
}

static void killed_mid_copy(void **state)
{
    (void)state;
    crash_while_sending("ring.put.copy", FIRE_AT - 1);
}

static void killed_after_publish_before_unlock(void **state)
{
    (void)state;
    crash_while_sending("ring.put.published", FIRE_AT);
}

/* A small mailbox (8 cells), so senders contend for the lock and wait for space. */
static int start_small_broker(void **state)
{
    (void)state;
    wh_namespace(ns, "crash");
    broker = wh_start_broker(ns, "--depth 8 --max-message 256");
    return broker == NULL ? -1 : 0;
}

#define CRASH_TESTS                                                                                \
    cmocka_unit_test_setup_teardown(killed_holding_the_lock, start_small_broker, stop_all),        \
        cmocka_unit_test_setup_teardown(killed_mid_copy, start_small_broker, stop_all),            \
        cmocka_unit_test_setup_teardown(killed_after_publish_before_unlock, start_small_broker,    \
                                        stop_all),
#else
#define CRASH_TESTS /* fault points are compiled out of Release builds */
#endif

int main(int argc, char **argv)
{
    int rc = winharness_main(argc, argv, roles);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(second_broker_is_refused, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(wake_handle_with_wait_for_multiple_objects, start_broker,
                                        stop_all),
        cmocka_unit_test_setup_teardown(example_event_loop_runs, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(request_and_reply_across_processes, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(service_group_across_processes, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(publish_subscribe_across_processes, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(namespaces_and_clean, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(reply_exec_through_cmd, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(many_senders_exactly_once_in_order, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(bad_input_is_refused_and_loses_nothing, start_broker,
                                        stop_all),
        cmocka_unit_test_setup_teardown(killed_client_frees_its_name, start_broker, stop_all),
        cmocka_unit_test_setup_teardown(killed_broker_is_replaced_and_adopts, start_broker,
                                        stop_all),
        cmocka_unit_test_setup_teardown(global_names_are_a_namespace_of_their_own, start_broker,
                                        stop_all),
        CRASH_TESTS};
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    winharness_cleanup();
    return rc;
}
