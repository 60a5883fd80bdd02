/*
 * Topics between real processes: a publisher and eight subscribers with mixed patterns,
 * each receiving exactly what its patterns select, in order; a stopped drop-policy
 * subscriber that slows nobody and learns exactly how much it missed; block policy naming
 * the subscriber that stayed full; subscriptions ending with their client (a thousand
 * subscribers that die leave nothing in the table); retained messages, bounded and
 * cleared; topics surviving a broker killed and restarted (retained messages even with
 * no client connected); the broker's presence events
 * for a close, a kill and a linger that expires; and the limits and errors.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define SUBSCRIBERS 8
#define PUBLICATIONS 100000

static char ns[64];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "topics");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* ---- one publisher, eight subscribers ---------------------------------------------- */

/* Publication i goes on topic t.<i % 4>.<i % 5>; subscriber k's patterns, and what they
 * select, written out independently of the library's matcher. */
static const char *const patterns[SUBSCRIBERS][3] = {
    {">", NULL, NULL},           {"t.0.*", NULL, NULL},  {"t.*.0", NULL, NULL},
    {"t.1.1", "t.2.>", NULL},    {"t.>", "t.3.*", NULL}, /* overlapping: still one copy each */
    {"*.*.4", NULL, NULL},       {"t.9.*", NULL, NULL},  /* nothing */
    {"t.0.0", "t.0.1", "t.0.2"},
};

static bool selects(int k, int a, int b)
{
    switch (k) {
    case 0:
    case 4:
        return true;
    case 1:
        return a == 0;
    case 2:
        return b == 0;
    case 3:
        return (a == 1 && b == 1) || a == 2;
    case 5:
        return b == 4;
    case 6:
        return false;
    default:
        return a == 0 && b <= 2;
    }
}

/* Subscribes to its patterns (block policy: nothing may be missed here) and to ctl.end,
 * says so to "parent", then checks every publication against the expected sequence. */
static int subscriber_main(void *p)
{
    int k = *(int *)p;
    char name[16];
    snprintf(name, sizeof name, "sub%d", k);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_BLOCK;
    for (int i = 0; i < 3 && patterns[k][i] != NULL; i++)
        if (mbx_subscribe(c, patterns[k][i], &so) != MBX_OK)
            return 11;
    if (mbx_subscribe(c, "ctl.end", &so) != MBX_OK || mbx_send(c, "parent", "[0]", 3, 5000) != 0)
        return 12;
    mbx_message *m = mbx_message_new();
    int next = 0; /* the next publication index it should get */
    for (;;) {
        if (mbx_recv(c, m, 20000) != MBX_OK)
            return 13;
        const char *topic = mbx_message_topic(m);
        if (topic == NULL)
            return 14;
        if (strcmp(topic, "ctl.end") == 0)
            break;
        while (next < PUBLICATIONS && !selects(k, next % 4, next % 5))
            next++;
        int i = -1, a = -1, b = -1;
        if (sscanf(mbx_message_body(m, NULL), "[%d]", &i) != 1 ||
            sscanf(topic, "t.%d.%d", &a, &b) != 2)
            return 15;
        if (i != next || a != i % 4 || b != i % 5 || mbx_message_missed(m) != 0)
            return 16; /* out of order, missing, a duplicate, or the wrong topic */
        next++;
    }
    while (next < PUBLICATIONS && !selects(k, next % 4, next % 5))
        next++;
    mbx_message_free(m);
    mbx_close(c);
    return next == PUBLICATIONS ? 0 : 17;
}

static void test_eight_subscribers_get_exactly_their_topics(void **state)
{
    (void)state;
    pid_t broker =
        harness_start_broker(ns, "--depth", "512", "--max-message", "128", "--slots", "16", NULL);
    mbx_client *parent = harness_connect(ns, "parent");
    int index[SUBSCRIBERS];
    pid_t subs[SUBSCRIBERS];
    for (int k = 0; k < SUBSCRIBERS; k++) {
        index[k] = k;
        subs[k] = harness_spawn(subscriber_main, &index[k], 240);
    }
    mbx_message *m = mbx_message_new();
    for (int k = 0; k < SUBSCRIBERS; k++)
        assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK); /* all subscribed */
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.subscriptions, 1 + 1 + 1 + 2 + 2 + 1 + 1 + 3 + SUBSCRIBERS);

    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.timeout_ms = 20000;
    char topic[32], body[32];
    for (int i = 0; i < PUBLICATIONS; i++) {
        snprintf(topic, sizeof topic, "t.%d.%d", i % 4, i % 5);
        int len = snprintf(body, sizeof body, "[%d]", i);
        assert_int_equal(mbx_publish(parent, topic, body, (size_t)len, &po), MBX_OK);
    }
    mbx_publish_result res;
    po.result = &res;
    assert_int_equal(mbx_publish(parent, "ctl.end", "[]", 2, &po), MBX_OK);
    assert_int_equal(res.delivered, SUBSCRIBERS);
    for (int k = 0; k < SUBSCRIBERS; k++)
        assert_int_equal(harness_wait(subs[k], 60000), 0);
    mbx_message_free(m);
    mbx_close(parent);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- a stopped subscriber ------------------------------------------------------------ */

#define SLOW_DEPTH 16
#define SLOW_BURST 1000

/* Subscribes to s.> (drop policy), says so, then waits to be stopped and continued; takes
 * the SLOW_DEPTH publications its mailbox held, then one more that says how many it
 * missed. */
static int slow_main(void *p)
{
    (void)p;
    mbx_client *c = harness_child_connect(ns, "slow");
    if (c == NULL || mbx_subscribe(c, "s.>", NULL) != MBX_OK ||
        mbx_send(c, "parent", "[0]", 3, 5000) != MBX_OK)
        return 10;
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < SLOW_DEPTH; i++) {
        int n = -1;
        if (mbx_recv(c, m, 20000) != MBX_OK || sscanf(mbx_message_body(m, NULL), "[%d]", &n) != 1 ||
            n != i || mbx_message_missed(m) != 0)
            return 11;
    }
    if (mbx_recv(c, m, 20000) != MBX_OK)
        return 12;
    if (mbx_message_missed(m) != SLOW_BURST - SLOW_DEPTH)
        return 13;
    char *env = mbx_message_envelope_json(m);
    char want[32];
    snprintf(want, sizeof want, "\"missed\":%d", SLOW_BURST - SLOW_DEPTH);
    int rc = env != NULL && strstr(env, want) != NULL ? 0 : 14;
    mbx_free(env);
    mbx_message_free(m);
    mbx_close(c);
    return rc;
}

static void test_stopped_subscriber_slows_nobody(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "16", NULL);
    mbx_client *parent = harness_connect(ns, "parent");
    mbx_client *fast = harness_connect(ns, "fast");
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_BLOCK;
    assert_int_equal(mbx_subscribe(fast, "s.*", &so), MBX_OK);
    pid_t slow = harness_spawn(slow_main, NULL, 60);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(parent, m, 10000), MBX_OK);
    kill(slow, SIGSTOP);

    mbx_publish_result res;
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.result = &res;
    po.timeout_ms = 5000;
    uint32_t dropped = 0;
    for (int i = 0; i < SLOW_BURST; i++) {
        char body[16];
        int len = snprintf(body, sizeof body, "[%d]", i);
        assert_int_equal(mbx_publish(parent, "s.x", body, (size_t)len, &po), MBX_OK);
        dropped += res.dropped;
        /* The fast subscriber keeps up (its block policy would hold the publisher up for
         * it, never for the stopped one). */
        assert_int_equal(mbx_recv(fast, m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), body);
    }
    assert_int_equal(dropped, SLOW_BURST - SLOW_DEPTH);
    /* mbx list's counter says the same. */
    mbx_client_info slow_info;
    assert_true(harness_find_client(ns, "slow", &slow_info));
    assert_int_equal(slow_info.dropped, SLOW_BURST - SLOW_DEPTH);
    assert_int_equal(slow_info.subscriptions, 1);

    kill(slow, SIGCONT);
    /* Once it has taken what its mailbox held, one more tells it what it missed. */
    long long deadline = harness_now_ms() + 10000;
    while (harness_find_client(ns, "slow", &slow_info) && slow_info.waiting > 0 &&
           harness_now_ms() < deadline)
        usleep(10 * 1000);
    assert_int_equal(slow_info.waiting, 0);
    assert_int_equal(mbx_publish(parent, "s.x", "[-1]", 4, &po), MBX_OK);
    assert_int_equal(harness_wait(slow, 20000), 0);
    mbx_message_free(m);
    mbx_close(fast);
    mbx_close(parent);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- block policy -------------------------------------------------------------------- */

/* Takes one message from the client `arg` once it is told to (the block-policy test). */
typedef struct drainer {
    mbx_client *client;
    _Atomic int go;
    mbx_err result;
} drainer;

static void *drain_one(void *arg)
{
    drainer *d = arg;
    while (atomic_load(&d->go) == 0)
        usleep(1000);
    usleep(20000); /* most likely while the publisher waits: the test holds either way */
    mbx_message *m = mbx_message_new();
    d->result = mbx_recv(d->client, m, 5000);
    mbx_message_free(m);
    return NULL;
}

static void test_block_policy_names_the_full_subscriber(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "4", NULL);
    mbx_client *pub = harness_connect(ns, "pub");
    mbx_client *stuck = harness_connect(ns, "stuck");
    mbx_client *drain = harness_connect(ns, "drain");
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_BLOCK;
    assert_int_equal(mbx_subscribe(stuck, "b.*", &so), MBX_OK);
    assert_int_equal(mbx_subscribe(drain, "b.*", NULL), MBX_OK);
    mbx_publish_result res;
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.result = &res;
    po.timeout_ms = 100;
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mbx_publish(pub, "b.x", "[1]", 3, &po), MBX_OK);
        assert_int_equal(res.delivered, 2);
        assert_int_equal(mbx_recv(drain, m, 0), MBX_OK);
    }
    assert_int_equal(mbx_publish(pub, "b.x", "[2]", 3, &po), MBX_EFULL);
    assert_string_equal(res.full, "stuck");
    assert_int_equal(res.delivered, 1); /* the other got it */
    assert_int_equal(mbx_recv(drain, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[2]");
    /* Room made while the publication waits (another thread takes one): it goes through,
     * to both, without giving up on the full one. */
    drainer d = {.client = stuck, .result = MBX_EINVAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_one, &d), 0);
    po.timeout_ms = 10000;
    atomic_store(&d.go, 1);
    assert_int_equal(mbx_publish(pub, "b.x", "[3]", 3, &po), MBX_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(d.result, MBX_OK);
    assert_int_equal(res.delivered, 2);
    assert_string_equal(res.full, "");
    mbx_message_free(m);
    mbx_close(drain);
    mbx_close(stuck);
    mbx_close(pub);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- subscriptions end with their client --------------------------------------------- */

#define CYCLES 1000

/* Subscribes to three patterns, then dies without closing (odd cycles: SIGKILL). */
static int short_lived_main(void *p)
{
    int cycle = *(int *)p;
    mbx_client *c = harness_child_connect(ns, NULL);
    if (c == NULL)
        return 10;
    const char *pats[] = {"x.>", "y.*", "z"};
    for (int i = 0; i < 3; i++)
        if (mbx_subscribe(c, pats[i], NULL) != MBX_OK)
            return 11;
    if (cycle % 2 == 1)
        raise(SIGKILL);
    _exit(0);
}

static void test_subscriptions_end_with_their_client(void **state)
{
    (void)state;
    /* A table of 64: a thousand subscribers of three patterns each would fill it many
     * times over if the dead kept theirs. */
    pid_t broker = harness_start_broker(ns, "--subscriptions", "64", NULL);
    mbx_client *pub = harness_connect(ns, "pub");
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        pid_t child = harness_spawn(short_lived_main, &cycle, 20);
        int rc = harness_wait(child, 20000);
        assert_true(rc == 0 || rc == 128 + SIGKILL);
        /* Publishing to the dead is no error. */
        assert_int_equal(mbx_publish(pub, "x.1", "[1]", 3, NULL), MBX_OK);
    }
    /* Within a scrub or two the broker has cleared every entry. */
    mbx_namespace_info info;
    long long deadline = harness_now_ms() + 5000;
    do {
        assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
        if (info.subscriptions == 0)
            break;
        usleep(50 * 1000);
    } while (harness_now_ms() < deadline);
    assert_int_equal(info.subscriptions, 0);
    assert_int_equal(info.max_subscriptions, 64);
    /* The whole table is there for the living. */
    char pattern[32];
    for (int i = 0; i < 64; i++) {
        snprintf(pattern, sizeof pattern, "p.%d", i);
        assert_int_equal(mbx_subscribe(pub, pattern, NULL), MBX_OK);
    }
    mbx_close(pub);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- retained messages --------------------------------------------------------------- */

static void test_retained_messages(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--retained", "2", NULL);
    mbx_client *pub = harness_connect(ns, "pub");
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.retain = 1;
    assert_int_equal(mbx_publish(pub, "cfg.a", "{\"v\":1}", 7, &po), MBX_OK);
    assert_int_equal(mbx_publish(pub, "cfg.a", "{\"v\":2}", 7, &po), MBX_OK); /* replaces */
    assert_int_equal(mbx_publish(pub, "cfg.b", "{\"v\":3}", 7, &po), MBX_OK);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.retained, 2);
    assert_int_equal(info.max_retained, 2);

    /* A late joiner gets the last retained message of each matching topic, at once. */
    mbx_client *late = harness_connect(ns, "late");
    assert_int_equal(mbx_subscribe(late, "cfg.*", NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "cfg.a");
    assert_string_equal(mbx_message_body(m, NULL), "{\"v\":2}");
    assert_string_equal(mbx_message_from(m), "pub");
    assert_int_equal(mbx_message_retained(m), 1); /* a bridge republishes it retained */
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "cfg.b");
    assert_int_equal(mbx_recv(late, m, 0), MBX_ETIMEDOUT);
    /* Live: a retained publication says so, a plain one does not. */
    assert_int_equal(mbx_publish(pub, "cfg.x", "{}", 2, NULL), MBX_OK);
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_int_equal(mbx_message_retained(m), 0);
    mbx_message_fields f;
    mbx_message_fields_get(m, &f);
    assert_int_equal(f.retained, 0);

    /* The table is bounded: a third topic takes the oldest entry's place (cfg.a was
     * stored before cfg.b). A retained null clears its topic (and is delivered). */
    assert_int_equal(mbx_publish(pub, "cfg.c", "{\"v\":4}", 7, &po), MBX_OK);
    assert_int_equal(mbx_publish(pub, "cfg.b", "null", 4, &po), MBX_OK);
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "cfg.c");
    assert_int_equal(mbx_message_retained(m), 1);
    mbx_message_fields_get(m, &f);
    assert_int_equal(f.retained, 1);
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "null");
    assert_int_equal(mbx_message_retained(m), 1);
    mbx_client *later = harness_connect(ns, "later");
    assert_int_equal(mbx_subscribe(later, "cfg.>", NULL), MBX_OK);
    assert_int_equal(mbx_recv(later, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "cfg.c");
    assert_int_equal(mbx_recv(later, m, 0), MBX_ETIMEDOUT);
    /* Subscribing again to the same pattern changes nothing and delivers nothing again. */
    assert_int_equal(mbx_subscribe(later, "cfg.>", NULL), MBX_OK);
    assert_int_equal(mbx_recv(later, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(later);
    mbx_close(late);
    mbx_close(pub);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- a broker killed and restarted --------------------------------------------------- */

static void test_topics_survive_a_broker_restart(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *sub = harness_connect(ns, "sub");
    mbx_client *pub = harness_connect(ns, "pub");
    assert_int_equal(mbx_subscribe(sub, "r.*", NULL), MBX_OK);
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.retain = 1;
    assert_int_equal(mbx_publish(pub, "r.1", "[1]", 3, &po), MBX_OK);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    broker = harness_start_broker(ns, NULL); /* adopts the segment */
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.epoch, 1);
    assert_int_equal(info.subscriptions, 1);
    assert_int_equal(info.retained, 1);
    assert_int_equal(mbx_publish(pub, "r.2", "[2]", 3, NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(sub, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    assert_int_equal(mbx_recv(sub, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[2]");
    /* A subscriber after the restart still gets the retained message. */
    mbx_client *late = harness_connect(ns, "late");
    assert_int_equal(mbx_subscribe(late, "r.>", NULL), MBX_OK);
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "r.1");
    mbx_message_free(m);
    mbx_close(late);
    mbx_close(pub);
    mbx_close(sub);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Retained messages are kept through a broker's death even when no client is connected
 * (nothing else then asks the keeper to keep the segment). */
static void test_retained_survive_a_broker_restart_with_no_client(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *pub = harness_connect(ns, "pub");
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.retain = 1;
    assert_int_equal(mbx_publish(pub, "cfg.kept", "{\"v\":7}", 7, &po), MBX_OK);
    mbx_close(pub);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    /* The keeper answers only after it has seen its broker's end of file and judged what
     * the segment holds: a keeper that let it go is gone by then. */
    assert_int_equal(harness_keeper_probe(ns), broker);
    broker = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.epoch, 1);
    assert_int_equal(info.retained, 1);
    mbx_client *late = harness_connect(ns, "late");
    assert_int_equal(mbx_subscribe(late, "cfg.>", NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(late, m, 0), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "cfg.kept");
    assert_string_equal(mbx_message_body(m, NULL), "{\"v\":7}");
    assert_string_equal(mbx_message_from(m), "pub");
    mbx_message_free(m);
    mbx_close(late);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- presence events ----------------------------------------------------------------- */

/* The next $mbx event: its topic and body. */
static void next_event(mbx_client *c, mbx_message *m, const char *topic, const char *body_part)
{
    assert_int_equal(mbx_recv(c, m, 5000), MBX_OK);
    assert_string_equal(mbx_message_topic(m), topic);
    assert_string_equal(mbx_message_from(m), "mailboxd");
    if (strstr(mbx_message_body(m, NULL), body_part) == NULL)
        fail_msg("event %s: '%s' lacks '%s'", topic, mbx_message_body(m, NULL), body_part);
}

static void test_presence_events(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *watch = harness_connect(ns, "watch");
    assert_int_equal(mbx_subscribe(watch, "$mbx.client.*", NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    mbx_client *all = harness_connect(ns, "all");
    next_event(watch, m, "$mbx.client.up", "\"name\":\"all\"");
    assert_int_equal(mbx_subscribe(all, ">", NULL), MBX_OK); /* not the broker's topics */

    /* Closed. */
    mbx_client *a = harness_connect(ns, "a");
    next_event(watch, m, "$mbx.client.up", "{\"name\":\"a\",\"pid\":");
    mbx_close(a);
    next_event(watch, m, "$mbx.client.down", "\"reason\":\"closed\"");
    assert_non_null(strstr(mbx_message_body(m, NULL), "\"name\":\"a\""));

    /* Killed. */
    pid_t b = harness_spawn_idle_client(ns, "b", 0);
    next_event(watch, m, "$mbx.client.up", "\"name\":\"b\"");
    char pid[32];
    snprintf(pid, sizeof pid, "\"pid\":%d", (int)b);
    assert_non_null(strstr(mbx_message_body(m, NULL), pid));
    kill(b, SIGKILL);
    assert_int_equal(harness_wait(b, 5000), 128 + SIGKILL);
    next_event(watch, m, "$mbx.client.down", "\"reason\":\"died\"");
    assert_non_null(strstr(mbx_message_body(m, NULL), "\"name\":\"b\""));

    /* A lingering mailbox: the name takes messages until the linger expires. */
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "c";
    o.linger_ms = 300;
    mbx_client *c;
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    next_event(watch, m, "$mbx.client.up", "\"name\":\"c\"");
    mbx_close(c);
    next_event(watch, m, "$mbx.client.down", "\"reason\":\"linger expired\"");
    assert_non_null(strstr(mbx_message_body(m, NULL), "\"name\":\"c\""));

    assert_int_equal(mbx_recv(watch, m, 0), MBX_ETIMEDOUT);
    assert_int_equal(mbx_recv(all, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(all);
    mbx_close(watch);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* ---- limits and errors --------------------------------------------------------------- */

static void test_limits_and_errors(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--subscriptions", "70", "--max-message", "64", NULL);
    mbx_client *c = harness_connect(ns, "c");
    mbx_client *d = harness_connect(ns, "d");
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    assert_int_equal(mbx_subscribe(c, "a..b", NULL), MBX_EINVAL);
    assert_int_equal(mbx_subscribe(c, "a.>.b", NULL), MBX_EINVAL);
    assert_int_equal(mbx_subscribe(NULL, "a", NULL), MBX_EINVAL);
    so.policy = 7;
    assert_int_equal(mbx_subscribe(c, "a", &so), MBX_EINVAL);
    assert_int_equal(mbx_publish(c, "a.*", "[1]", 3, NULL), MBX_EINVAL);
    assert_int_equal(mbx_publish(c, "$mbx.client.up", "[1]", 3, NULL), MBX_EINVAL);
    assert_int_equal(mbx_publish(c, "a", "[1", 2, NULL), MBX_EINVALJSON);
    /* The topic and the body share the namespace's message size. */
    char body[64];
    memset(body, '1', sizeof body);
    assert_int_equal(mbx_publish(c, "a", body, 64, NULL), MBX_ETOOLARGE);
    assert_int_equal(mbx_publish(c, "ab", body, 63, NULL), MBX_ETOOLARGE);
    assert_int_equal(mbx_publish(c, "a", body, 63, NULL), MBX_OK);
    assert_int_equal(mbx_unsubscribe(c, "never"), MBX_EINVAL);
    /* A client's share of the table. */
    char pattern[32];
    for (int i = 0; i < MBX_SUBSCRIPTIONS_PER_CLIENT; i++) {
        snprintf(pattern, sizeof pattern, "p.%d", i);
        assert_int_equal(mbx_subscribe(c, pattern, NULL), MBX_OK);
    }
    assert_int_equal(mbx_subscribe(c, "one.more", NULL), MBX_ENOSLOTS);
    /* The table's size: 70 in all. */
    for (int i = 0; i < 6; i++) {
        snprintf(pattern, sizeof pattern, "q.%d", i);
        assert_int_equal(mbx_subscribe(d, pattern, NULL), MBX_OK);
    }
    assert_int_equal(mbx_subscribe(d, "q.last", NULL), MBX_ENOSLOTS);
    /* Unsubscribing frees an entry, and what is queued for that pattern is not handed
     * out any more. */
    assert_int_equal(mbx_publish(c, "q.0", "[1]", 3, NULL), MBX_OK);
    assert_int_equal(mbx_unsubscribe(d, "q.0"), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(d, m, 0), MBX_ETIMEDOUT);
    assert_int_equal(mbx_subscribe(d, "q.last", NULL), MBX_OK);
    mbx_message_free(m);
    mbx_close(d);
    mbx_close(c);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_eight_subscribers_get_exactly_their_topics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stopped_subscriber_slows_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_policy_names_the_full_subscriber, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subscriptions_end_with_their_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retained_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics_survive_a_broker_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retained_survive_a_broker_restart_with_no_client,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
