/*
 * Hostile shared memory: while two clients chat, this test writes random bytes over the
 * live namespace's header, directory, mailbox indices and counters, and cells. No client
 * and no broker may crash, hang, or read outside the mapping; operations that meet the
 * damage fail with an error; the broker logs what it found and repairs it, after which
 * new clients work normally.
 *
 * The mailbox locks and semaphores are scribbled too: they hold no pointers, and any
 * value in them is a state the library can handle (docs/architecture.md, "The lock").
 */
#include <fcntl.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "harness.h"
#include "proto.h"
#include "ring.h"
#include "segment.h"

static char ns[64];
static char log_path[128];

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "hostile");
    snprintf(log_path, sizeof log_path, "/tmp/%s.log", ns);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    if (getenv("MBX_KEEP_LOG") == NULL) /* set it to read what the broker repaired */
        unlink(log_path);
    return 0;
}

/* Sends to its peer and receives for a while, accepting any error; a crash or a hang is
 * what the test looks for. */
static int chatter_main(void *p)
{
    int me = *(int *)p;
    char name[32], peer[32];
    snprintf(name, sizeof name, "chat-%d", me);
    snprintf(peer, sizeof peer, "chat-%d", 1 - me);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    /* Topics too: each subscribes to its own, publishes on the other's and on one nobody
     * asked for, and must never be handed a publication it did not subscribe to. */
    char mine[32], theirs[32];
    snprintf(mine, sizeof mine, "chat.%d.>", me);
    snprintf(theirs, sizeof theirs, "chat.%d.x", 1 - me);
    (void)mbx_subscribe(c, mine, NULL);
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.timeout_ms = 20;
    mbx_message *m = mbx_message_new();
    long long end = harness_now_ms() + 2500;
    while (harness_now_ms() < end) {
        (void)mbx_send(c, peer, "{\"k\":[1,2,3]}", 13, 20);
        (void)mbx_publish(c, theirs, "[1]", 3, &po);
        (void)mbx_publish(c, "nobody.asked", "[2]", 3, &po);
        mbx_err err = mbx_recv(c, m, 5);
        if (err == MBX_OK && mbx_message_body(m, NULL)[0] == '\0')
            return 12; /* an empty body is never delivered */
        const char *topic = err == MBX_OK ? mbx_message_topic(m) : NULL;
        if (topic != NULL && strncmp(topic, mine, 7) != 0)
            return 13; /* a publication it did not subscribe to */
    }
    mbx_namespace_info info;
    (void)mbx_inspect(ns, &info, NULL, NULL);
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

/* The namespace's segment as a member sees it: the mapping of a client of this process
 * (read-write, as any member's), valid until that client closes. */
static unsigned char *map_segment(mbx_client *member, size_t *size)
{
    *size = member->shm.size;
    return member->shm.base;
}

static void scribble(unsigned char *at, size_t len)
{
    for (size_t i = 0; i < len; i++)
        at[i] = (unsigned char)rand();
}

static void test_scribbling_crashes_nobody_and_is_repaired(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--slots", "8", "--depth", "16", "--max-message", "128",
                                        "--log", log_path, NULL);
    int index[2] = {0, 1};
    pid_t chatters[2];
    for (int i = 0; i < 2; i++)
        chatters[i] = harness_spawn(chatter_main, &index[i], 30);

    mbx_client *observer = harness_connect(ns, "observer");
    size_t size;
    unsigned char *base = map_segment(observer, &size);
    seg_view v;
    assert_int_equal(segment_validate(base, size, &v), MBX_OK);

    /* MBX_TEST_SEED replays a run: the seed is printed. */
    unsigned seed = getenv("MBX_TEST_SEED") != NULL
                        ? (unsigned)strtoul(getenv("MBX_TEST_SEED"), NULL, 10)
                        : (unsigned)getpid();
    printf("scribbling with MBX_TEST_SEED=%u\n", seed);
    srand(seed);
    usleep(100 * 1000); /* let them start chatting */
    for (int round = 0; round < 400; round++) {
        uint32_t slot = (uint32_t)rand() % v.slots;
        unsigned char *mb = (unsigned char *)segment_mailbox(&v, slot);
        switch (rand() % 7) {
        case 0: /* the header's used part */
            scribble(base + rand() % (int)sizeof(seg_header), 1 + rand() % 8);
            break;
        case 1: /* a directory entry */
            scribble((unsigned char *)segment_dir(&v, slot) + rand() % 128, 1 + rand() % 16);
            break;
        case 2: /* lock, indices, hint counters and semaphores: everything but statistics */
            scribble(mb + (size_t)(rand() % (int)offsetof(seg_mailbox, sent)), 1 + rand() % 8);
            break;
        case 3: /* statistics, and the owner's sleeping and wake words at the end */
            if (rand() % 2 == 0)
                scribble(mb + offsetof(seg_mailbox, sent) + (size_t)(rand() % 24), 1 + rand() % 8);
            else
                scribble(mb + offsetof(seg_mailbox, rx_sleeping) + (size_t)(rand() % 8),
                         1 + rand() % 4);
            break;
        case 4: /* the subscription table (the first entries: the ones in use) */
            scribble(base + v.sub_off + (size_t)rand() % (8 * sizeof(seg_sub)), 1 + rand() % 16);
            break;
        case 5: /* the retained messages */
            scribble(base + v.retain_off + (size_t)rand() % (2 * v.retain_stride), 1 + rand() % 16);
            break;
        default: /* cells: headers and bodies */
            scribble(mb + sizeof(seg_mailbox) + (size_t)rand() % (v.ring_bytes - 16),
                     1 + rand() % 16);
            break;
        }
        usleep(4000);
    }
    mbx_close(observer);

    /* Nobody crashed (a signal) or hung (killed by the harness: -1). */
    for (int i = 0; i < 2; i++)
        assert_int_equal(harness_wait(chatters[i], 20000), 0);
    assert_int_equal(waitpid(broker, NULL, WNOHANG), 0);

    /* Within a few scrubs the namespace is whole again: new clients talk normally. */
    mbx_client *a = NULL, *b = NULL;
    long long deadline = harness_now_ms() + 5000;
    mbx_err err;
    mbx_message *m = mbx_message_new();
    do {
        mbx_close(a);
        mbx_close(b);
        a = b = NULL;
        usleep(100 * 1000);
        mbx_connect_options o;
        mbx_connect_options_init(&o);
        o.namespace_name = ns;
        o.client_name = "after-a";
        err = mbx_connect(&o, &a);
        o.client_name = "after-b";
        if (err == MBX_OK)
            err = mbx_connect(&o, &b);
        if (err == MBX_OK)
            err = mbx_send(a, "after-b", "[42]", 4, 1000);
        if (err == MBX_OK)
            err = mbx_recv(b, m, 1000);
    } while (err != MBX_OK && harness_now_ms() < deadline);
    assert_int_equal(err, MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[42]");
    mbx_message_free(m);
    mbx_close(a);
    mbx_close(b);
    assert_int_equal(harness_stop(broker, 5000), 0);

    /* The broker said what it found. */
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[512];
    int repairs = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, "overwritten") != NULL)
            repairs++;
    fclose(f);
    assert_true(repairs > 0);
}

/* A dead client's entry names a pid that is alive again (here: ours). The adopting broker
 * compares start times, so the recycled pid does not pass for the dead client. */
static void test_recycled_pid_does_not_pass(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    pid_t ghost = harness_spawn_idle_client(ns, "ghost", 0);
    mbx_client *tx = harness_connect(ns, "tx");
    assert_int_equal(mbx_send(tx, "ghost", "1", 1, 1000), MBX_OK);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    kill(ghost, SIGKILL);
    assert_int_equal(harness_wait(ghost, 5000), 128 + SIGKILL);

    size_t size;
    unsigned char *base = map_segment(tx, &size);
    seg_view v;
    assert_int_equal(segment_validate(base, size, &v), MBX_OK);
    uint32_t slot, gen;
    assert_int_equal(segment_find(&v, "ghost", &slot, &gen), MBX_OK);
    atomic_store(&segment_dir(&v, slot)->pid, (int64_t)getpid()); /* alive, another process */

    broker = harness_start_broker(ns, NULL);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 1); /* tx only */
    assert_int_equal(info.discarded, 1);
    mbx_client *successor = harness_connect(ns, "ghost");
    mbx_close(successor);
    mbx_close(tx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Eight bytes of garbage in an idle mailbox's lock, and in its semaphores: senders and
 * the owner go on working (each call returns, none aborts), and a broker killed and
 * restarted adopts the namespace without --fresh, the waiting messages kept. */
static void test_garbage_in_locks_and_semaphores(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    size_t size;
    unsigned char *base = map_segment(rx, &size);
    seg_view v;
    assert_int_equal(segment_validate(base, size, &v), MBX_OK);
    uint32_t slot, gen;
    assert_int_equal(segment_find(&v, "rx", &slot, &gen), MBX_OK);
    unsigned char *mb = (unsigned char *)segment_mailbox(&v, slot);
    const uint64_t garbage = 0xfedcba9876543210ull;
    size_t fields[] = {offsetof(seg_mailbox, lock), offsetof(seg_mailbox, items),
                       offsetof(seg_mailbox, space)};
    mbx_message *m = mbx_message_new();
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        memcpy(mb + fields[i], &garbage, sizeof garbage);
        memcpy(mb + fields[i] + 8, &garbage, sizeof garbage);
        assert_int_equal(mbx_send(tx, "rx", "{\"n\":1}", 7, 3000), MBX_OK);
        assert_int_equal(mbx_recv(rx, m, 3000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "{\"n\":1}");
    }
    /* Garbage again, a message left waiting, and the broker killed: the next one adopts. */
    memcpy(mb + offsetof(seg_mailbox, lock), &garbage, sizeof garbage);
    memcpy(mb + offsetof(seg_mailbox, items), &garbage, sizeof garbage);
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 3000), MBX_OK);
    kill(broker, SIGKILL);
    assert_int_equal(harness_wait(broker, 5000), 128 + SIGKILL);
    broker = harness_start_broker(ns, "--log", log_path, NULL);
    assert_int_equal(mbx_recv(rx, m, 3000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[2]");
    assert_int_equal(mbx_send(tx, "rx", "[3]", 3, 3000), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 3000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Forged bodies in queued cells: text that is not JSON, two values in one cell, and
 * valid JSON with a line break outside strings. Each is refused as corrupt and removed;
 * the good message behind them arrives; nothing that could break a line-per-message
 * stream is ever handed out, by mbx_recv or by mbx_peek. */
static void test_forged_bodies_are_refused(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    size_t size;
    unsigned char *base = map_segment(rx, &size);
    seg_view v;
    assert_int_equal(segment_validate(base, size, &v), MBX_OK);
    uint32_t slot, gen;
    assert_int_equal(segment_find(&v, "rx", &slot, &gen), MBX_OK);
    seg_mailbox *mb = segment_mailbox(&v, slot);
    const char *forged[] = {"{\"a\":1}\n{\"b\":2}", "1 2", "{\"a\":\n1}", "\"open", "nul"};
    mbx_message *m = mbx_message_new();
    for (int peek = 0; peek < 2; peek++) {
        for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
            size_t len = strlen(forged[i]);
            /* A placeholder of the same length, then its body overwritten in the cell. */
            char placeholder[64];
            memset(placeholder, '1', len);
            uint64_t at = atomic_load(&mb->tail);
            assert_int_equal(mbx_send(tx, "rx", placeholder, len, 1000), MBX_OK);
            seg_record *cell = segment_record(&v, mb, at);
            if (cell->kind == CELL_PAD) /* the record went to the ring's start */
                cell = segment_record(&v, mb, at + cell->size);
            memcpy((char *)cell + SEG_RECORD_HEADER + cell->from_len, forged[i], len);
        }
        assert_int_equal(mbx_send(tx, "rx", "{\"good\":true}", 13, 1000), MBX_OK);
        for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
            assert_int_equal(peek ? mbx_peek(rx, m, 1000) : mbx_recv(rx, m, 1000), MBX_ECORRUPT);
        assert_int_equal(peek ? mbx_peek(rx, m, 1000) : mbx_recv(rx, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "{\"good\":true}");
        if (peek)
            assert_int_equal(mbx_ack(rx, m), MBX_OK);
    }
    /* A batch that meets one after its first message ends there, and the next receive
     * reports it (mailbox.h, mbx_recv_batch), before the good one behind it. */
    assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
    uint64_t at = atomic_load(&mb->tail);
    assert_int_equal(mbx_send(tx, "rx", "111", 3, 1000), MBX_OK);
    seg_record *cell = segment_record(&v, mb, at);
    if (cell->kind == CELL_PAD)
        cell = segment_record(&v, mb, at + cell->size);
    memcpy((char *)cell + SEG_RECORD_HEADER + cell->from_len, "1 2", 3);
    assert_int_equal(mbx_send(tx, "rx", "[3]", 3, 1000), MBX_OK);
    mbx_message *batch[3] = {mbx_message_new(), mbx_message_new(), mbx_message_new()};
    size_t got = 0;
    assert_int_equal(mbx_recv_batch(rx, batch, 3, &got, 1000), MBX_OK);
    assert_int_equal(got, 1);
    assert_string_equal(mbx_message_body(batch[0], NULL), "[1]");
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ECORRUPT);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    for (int i = 0; i < 3; i++)
        mbx_message_free(batch[i]);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A forged shutdown: any member can write "closing" into the header. Clients ask the
 * broker (it closes their channel when it means it) before they believe it: here it does
 * not, so they report a corrupt segment, which is not final, and go on once the scrub has
 * put the header back. */
static void test_forged_shutdown_is_not_final(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    size_t size;
    unsigned char *base = map_segment(rx, &size);
    seg_view v;
    assert_int_equal(segment_validate(base, size, &v), MBX_OK);
    mbx_message *m = mbx_message_new();
    /* Written again before each call. The scrub puts it back once a second, and may do so
     * between our store and the call's look (the call then simply works: it ran against
     * a restored header); what a call never does is believe the forgery. Each kind of
     * call is tried until it has met the forgery once. */
    int refused_recv = 0, refused_send = 0, sent = 0;
    for (int attempt = 0; attempt < 5 && (refused_recv == 0 || refused_send == 0); attempt++) {
        atomic_store(&segment_header(&v)->state, SEG_CLOSING);
        mbx_err err = mbx_recv(rx, m, 0);
        assert_true(err == MBX_ECORRUPT || err == MBX_ETIMEDOUT || err == MBX_OK);
        refused_recv += err == MBX_ECORRUPT;
        if (err == MBX_OK) { /* one sent in an earlier attempt, against a restored header */
            assert_string_equal(mbx_message_body(m, NULL), "[1]");
            sent--;
        }
        atomic_store(&segment_header(&v)->state, SEG_CLOSING);
        err = mbx_send(tx, "rx", "[1]", 3, 0);
        assert_true(err == MBX_ECORRUPT || err == MBX_OK);
        refused_send += err == MBX_ECORRUPT;
        sent += err == MBX_OK;
    }
    assert_true(refused_recv > 0 && refused_send > 0);
    long long until = harness_now_ms() + 5000;
    while (atomic_load(&segment_header(&v)->state) != SEG_READY && harness_now_ms() < until)
        usleep(10 * 1000);
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
    for (int i = 0; i < sent; i++) { /* those that ran against a restored header */
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "[1]");
    }
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[2]");
    /* A real shutdown is believed. */
    assert_int_equal(harness_stop(broker, 5000), 0);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_ESHUTDOWN);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

/* A registered client sends requests the broker does not understand on its channel (a
 * newer library, a bug): each is answered with an error, and the client keeps its slot. */
static void test_bad_request_does_not_evict(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    proto_request bad;
    memset(&bad, 0x5a, sizeof bad);
    proto_request future = {.magic = PROTO_MAGIC, .version = PROTO_VERSION, .op = 99};
    const void *requests[] = {"garbage", &bad, &future};
    size_t sizes[] = {7, sizeof bad, sizeof future};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(plat_chan_send(rx->chan, requests[i], sizes[i]), MBX_OK);
        proto_reply rep;
        size_t got = 0;
        assert_int_equal(plat_chan_recv(rx->chan, &rep, sizeof rep, &got, plat_deadline(5000)),
                         MBX_OK);
        assert_int_equal(got, sizeof rep);
        assert_int_not_equal(rep.status, MBX_OK);
    }
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 2);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A member writes a well-formed subscription for another client into the shared table:
 * publishers deliver to it (the table cannot tell), but the victim's library hands out
 * nothing it did not subscribe to itself; what it did subscribe to still arrives. */
static void test_forged_subscription_delivers_nothing(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *victim = harness_connect(ns, "victim");
    mbx_client *pub = harness_connect(ns, "pub");
    seg_sub *e = segment_sub(&pub->view, 0);
    assert_int_equal(atomic_load(&e->state), SUB_FREE);
    atomic_store(&e->seq, 2);
    atomic_store(&e->slot, victim->slot);
    atomic_store(&e->generation, victim->generation);
    atomic_store(&e->policy, MBX_SUB_DROP);
    atomic_store(&e->pattern_len, 3);
    memcpy(e->pattern, "x.>", 4);
    atomic_store(&e->state, SUB_USED);
    atomic_store(&segment_header(&pub->view)->sub_high, 1);
    atomic_fetch_add(&segment_header(&pub->view)->topics_version, 1);

    mbx_publish_result res;
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.result = &res;
    assert_int_equal(mbx_publish(pub, "x.y", "[1]", 3, &po), MBX_OK);
    assert_int_equal(res.delivered, 1); /* the forgery reached the victim's mailbox ... */
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(victim, m, 0), MBX_ETIMEDOUT); /* ... and went no further */
    assert_int_equal(mbx_subscribe(victim, "x.z", NULL), MBX_OK);
    assert_int_equal(mbx_publish(pub, "x.y", "[2]", 3, &po), MBX_OK);
    assert_int_equal(mbx_publish(pub, "x.z", "[3]", 3, &po), MBX_OK);
    assert_int_equal(mbx_recv(victim, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "x.z");
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    assert_int_equal(mbx_recv(victim, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(pub);
    mbx_close(victim);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A member forges the monitor table to point at another client (and even flags that
 * client's directory entry a monitor): senders then put copies into the victim's mailbox,
 * but the victim's library drops them and hands out only what was sent to it; the scrub
 * puts the table and the entry back, after which no copy goes anywhere; and a real
 * monitor attached afterwards gets every copy once. */
static void test_forged_monitor_table_misleads_nobody(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_client *victim = harness_connect(ns, "victim");
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    seg_header *h = segment_header(&tx->view);
    atomic_store(&h->monitor[2], (uint64_t)victim->slot | (uint64_t)victim->generation << 32);
    atomic_store(&h->monitors, 1u << 2 | 1u << 3); /* entry 3: a zero word, slot 0 */
    /* Without the entry's flag, senders put nothing there. */
    assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(ring_waiting(&tx->view, victim->slot), 0);
    /* With it (forged too), copies reach the mailbox and go no further. */
    atomic_fetch_or(&segment_dir(&tx->view, victim->slot)->flags, DIR_MONITOR);
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_send(tx, "victim", "[3]", 3, 1000), MBX_OK);
    /* The copies of [2] and [3] did land there (beside [3] itself), unless the scrub
     * (once a second) put the table back in the microseconds since it was forged. */
    assert_int_equal(ring_waiting(&tx->view, victim->slot), 3);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(victim, m, 1000), MBX_OK);
    assert_false(mbx_message_monitored(m));
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    assert_int_equal(mbx_recv(victim, m, 0), MBX_ETIMEDOUT);
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        assert_false(mbx_message_monitored(m));
    }
    /* The scrub (once a second) restores the table and the entry from its records. */
    long long until = harness_now_ms() + 10000;
    while ((atomic_load(&h->monitors) != 0 ||
            (atomic_load(&segment_dir(&tx->view, victim->slot)->flags) & DIR_MONITOR) != 0) &&
           harness_now_ms() < until)
        usleep(20000);
    assert_int_equal(atomic_load(&h->monitors), 0);
    assert_int_equal(atomic_load(&segment_dir(&tx->view, victim->slot)->flags) & DIR_MONITOR, 0);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.monitor = 1;
    mbx_client *mon;
    assert_int_equal(mbx_connect(&o, &mon), MBX_OK);
    assert_int_equal(mbx_send(tx, "rx", "[4]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_recv(mon, m, 1000), MBX_OK);
    assert_true(mbx_message_monitored(m));
    assert_string_equal(mbx_message_body(m, NULL), "[4]");
    assert_int_equal(mbx_recv(mon, m, 100), MBX_ETIMEDOUT);
    assert_int_equal(ring_waiting(&tx->view, victim->slot), 0);
    mbx_message_free(m);
    mbx_close(mon);
    mbx_close(rx);
    mbx_close(tx);
    mbx_close(victim);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A member forges the senders' copy of head (head_cache). A value that frames no fill is
 * read again from head: the next send neither fails nor overwrites anything. A value
 * ahead of head (it would let senders overwrite unread records) is put back by the
 * scrub; the messages waiting are all delivered, in order. */
static void test_forged_head_copy(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    seg_mailbox *mb = segment_mailbox(&tx->view, rx->slot);
    for (int i = 0; i < 3; i++) {
        char body[8];
        int len = snprintf(body, sizeof body, "[%d]", i);
        assert_int_equal(mbx_send(tx, "rx", body, (size_t)len, 1000), MBX_OK);
    }
    atomic_store(&mb->head_cache, 0xdeadbeefcafef00dULL);
    assert_int_equal(mbx_send(tx, "rx", "[3]", 3, 1000), MBX_OK);
    assert_int_equal(atomic_load(&mb->head_cache), atomic_load(&mb->head)); /* read again */
    atomic_store(&mb->head_cache, atomic_load(&mb->tail)); /* ahead of head: 4 unread */
    long long until = harness_now_ms() + 10000;
    while (atomic_load(&mb->head_cache) != atomic_load(&mb->head) && harness_now_ms() < until)
        usleep(20000);
    assert_int_equal(atomic_load(&mb->head_cache), atomic_load(&mb->head)); /* the scrub */
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 4; i++) {
        char want[8];
        snprintf(want, sizeof want, "[%d]", i);
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), want);
    }
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static bool handle_readable(int fd);

/* A member writes ARMED over the owner's NOTIFIED word while the signal sits in the
 * handle, or stuffs the handle's datagram queue (ten datagrams fill it: a signal that
 * does not fit makes no edge for an edge-triggered loop). Arming skips emptying the handle
 * only in a busy-polling loop that found something new (wake.c): the forged word costs
 * no empty wake-up, and the junk is gone before the loop sleeps, so the next message
 * still makes an edge. */
static void test_forged_wake_signals_cost_no_wakeup(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_client *tx = harness_connect(ns, "tx");
    seg_mailbox *mb = segment_mailbox(&tx->view, rx->slot);
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    mbx_message *m = mbx_message_new();
    /* The signal comes, and the forger hides it: word ARMED, handle readable. */
    assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
    assert_int_equal(atomic_load(&mb->rx_wake), 2); /* WAKE_NOTIFIED */
    atomic_store(&mb->rx_wake, 1);                  /* WAKE_ARMED */
    assert_true(handle_readable((int)h));
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    assert_false(handle_readable((int)h)); /* no empty wake-up */
    /* Junk in the handle of an edge-triggered loop that busy-polls. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, (int)h, &ev), 0);
    struct sockaddr_un addr;
    socklen_t alen = sizeof addr;
    assert_int_equal(getsockname((int)h, (struct sockaddr *)&addr, &alen), 0);
    int junk = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(junk >= 0);
    int stuffed = 0;
    while (stuffed < 64 && sendto(junk, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&addr, alen) == 1)
        stuffed++;
    assert_true(stuffed >= 1);
    assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
    assert_int_equal(mbx_busy_poll(rx, 1000), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);     /* new: may leave the junk in */
    assert_int_equal(mbx_busy_poll(rx, 200), MBX_ETIMEDOUT); /* on the way to sleep */
    assert_false(handle_readable((int)h));
    struct epoll_event out;
    while (epoll_wait(ep, &out, 1, 0) == 1) /* the junk's edges, if still pending */
        ;
    assert_int_equal(mbx_send(tx, "rx", "[3]", 3, 1000), MBX_OK);
    assert_int_equal(epoll_wait(ep, &out, 1, 2000), 1); /* a fresh edge */
    assert_int_equal(mbx_recv(rx, m, 0), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[3]");
    close(junk);
    close(ep);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* A member stopped while it holds a monitor's mailbox lock (in the middle of its copy):
 * every other sender's copy is missed and counted, and after the first one gives up the
 * mailbox is marked stalled, so the rest only look at the lock once; every send goes on.
 * Killed, the holder is judged dead by the next copy that polls, which takes the lock
 * over: copies go in again. */
static uint32_t monitor_slot;

static int monitor_lock_holder_main(void *arg)
{
    (void)arg;
    mbx_client *c = harness_child_connect(ns, "holder");
    if (c == NULL)
        return 10;
    plat_lock_token tok;
    if (plat_mutex_lock(&segment_mailbox(&c->view, monitor_slot)->lock,
                        plat_now_ns() + 5000000000LL, &tok) != PLAT_LOCKED)
        return 11;
    raise(SIGSTOP);
    pause();
    return 0;
}

static void test_stopped_holder_of_a_monitor_lock(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--log", log_path, NULL);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.monitor = 1;
    mbx_client *mon;
    assert_int_equal(mbx_connect(&o, &mon), MBX_OK);
    monitor_slot = mon->slot;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    pid_t holder = harness_spawn(monitor_lock_holder_main, NULL, 60);
    int status;
    assert_int_equal(waitpid(holder, &status, WUNTRACED), holder);
    assert_true(WIFSTOPPED(status));
    seg_mailbox *mb = segment_mailbox(&tx->view, monitor_slot);
    mbx_message *m = mbx_message_new();
    enum { SENDS = 2000 };
    for (int i = 0; i < SENDS; i++) {
        assert_int_equal(mbx_send(tx, "rx", "[1]", 3, 1000), MBX_OK);
        if (i == 0) /* the first copy polled, judged the holder alive, gave up */
            assert_int_not_equal(atomic_load(&mb->copy_stall_until_ms), 0);
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    }
    /* Every copy missed, and counted. */
    assert_int_equal(atomic_load(&mb->dropped), SENDS);
    assert_int_equal(mbx_recv(mon, m, 0), MBX_ETIMEDOUT);

    kill(holder, SIGKILL);
    assert_int_equal(harness_wait(holder, 10000), 128 + SIGKILL);
    /* Once the stall mark runs out, a copy polls, judges the dead holder and takes over. */
    long long until = harness_now_ms() + 10000;
    mbx_err got = MBX_ETIMEDOUT;
    while (got != MBX_OK && harness_now_ms() < until) {
        assert_int_equal(mbx_send(tx, "rx", "[2]", 3, 1000), MBX_OK);
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        got = mbx_recv(mon, m, 20);
    }
    assert_int_equal(got, MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[2]");
    assert_true(mbx_message_missed(m) >= SENDS); /* told with the first copy that went in */
    mbx_message_free(m);
    mbx_close(rx);
    mbx_close(tx);
    mbx_close(mon);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Review M1: a member flips a retained message's length between a valid and a huge value
 * while another subscribes again and again (each subscription hands the retained messages
 * over). The subscriber reads the header once: it hands out the message whole or skips
 * it, and never copies by a length it did not check (the Debug build with AddressSanitizer
 * caught the overflow at once before). */
static _Atomic bool flipping;
static seg_retained *flipped;

static void *flip_length(void *arg)
{
    (void)arg;
    volatile uint32_t *len = &flipped->len;
    while (atomic_load_explicit(&flipping, memory_order_relaxed)) {
        *len = 7;
        *len = 0x40000000u;
    }
    *len = 7;
    return NULL;
}

static void test_flipped_retained_length_is_read_once(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *evil = harness_connect(ns, "evil");
    mbx_client *victim = harness_connect(ns, "victim");
    flipped = segment_retained(&evil->view, 0);
    char *data = (char *)flipped + sizeof *flipped;
    memcpy(data, "a.b", 3);
    memcpy(data + 3, "{\"x\":1}", 8);
    memset(flipped->from, 0, sizeof flipped->from);
    strcpy(flipped->from, "evil");
    flipped->topic_len = 3;
    flipped->len = 7;
    flipped->state = SUB_USED;
    atomic_store(&flipping, true);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flip_length, NULL), 0);
    mbx_message *m = mbx_message_new();
    long handed = 0;
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(mbx_subscribe(victim, "a.b", NULL), MBX_OK);
        while (mbx_recv(victim, m, 0) == MBX_OK) {
            /* Whole, or not at all: never a copy by the huge length. */
            assert_string_equal(mbx_message_body(m, NULL), "{\"x\":1}");
            handed++;
        }
        assert_int_equal(mbx_unsubscribe(victim, "a.b"), MBX_OK);
    }
    atomic_store(&flipping, false);
    assert_int_equal(pthread_join(t, NULL), 0);
    printf("retained message handed over %ld times of 20000\n", handed);
    mbx_message_free(m);
    mbx_close(victim);
    mbx_close(evil);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

/* Review: wake sockets had abstract names, listed in /proc/net/unix, that any local user
 * could flood. Now they live in the namespace's wake directory, which only members can
 * enter: another user cannot make a member's handle readable; a member can. */
static bool handle_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static void test_strangers_cannot_wake_a_member(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(rx, &h), MBX_OK);
    assert_false(handle_readable(h));
    /* Nothing in the abstract namespace any more. */
    FILE *unix_list = fopen("/proc/net/unix", "r");
    assert_non_null(unix_list);
    char line[512];
    while (fgets(line, sizeof line, unix_list) != NULL)
        assert_null(strstr(line, "mailbox-wake"));
    fclose(unix_list);
    /* The socket's path, as a stranger would work it out. */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(h, (struct sockaddr *)&addr, &len), 0);
    char dir[80], path[sizeof addr.sun_path], *slash = strrchr(addr.sun_path, '/');
    assert_non_null(slash);
    *slash = '\0';
    ssize_t dn = readlink(addr.sun_path, dir, sizeof dir - 1); /* /proc/self/fd/N */
    assert_true(dn > 0 && dn < (ssize_t)sizeof dir - 1);
    dir[dn] = '\0';
    assert_true(strlen(dir) + 1 + strlen(slash + 1) < sizeof path);
    snprintf(path, sizeof path, "%.79s/%.17s", dir, slash + 1);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700); /* the default mode: its owner only */
    if (geteuid() == 0) {
        /* A stranger (nobody) tries: refused, and the handle stays quiet. */
        pid_t stranger = fork();
        assert_true(stranger >= 0);
        if (stranger == 0) {
            alarm(10);
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(2);
            int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
            struct sockaddr_un to = {.sun_family = AF_UNIX};
            memcpy(to.sun_path, path, sizeof path);
            _exit(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to) < 0 ? 0 : 1);
        }
        assert_int_equal(harness_wait(stranger, 10000), 0);
        assert_false(handle_readable(h));
    }
    /* A member (this user) can. */
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    memcpy(to.sun_path, path, sizeof path);
    assert_int_equal(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to), 1);
    close(fd);
    assert_true(handle_readable(h));
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
    /* A clean shutdown takes the wake directory with it. */
    assert_int_equal(stat(dir, &st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scribbling_crashes_nobody_and_is_repaired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recycled_pid_does_not_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_in_locks_and_semaphores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_bodies_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_shutdown_is_not_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_request_does_not_evict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_monitor_table_misleads_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_holder_of_a_monitor_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_head_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_wake_signals_cost_no_wakeup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_subscription_delivers_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_retained_length_is_read_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strangers_cannot_wake_a_member, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
