/*
 * Multi-process tests of the core: a real broker process, real shared memory, real client
 * processes. Child processes report through their exit codes only (no cmocka inside).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"

#define SENDERS 16
#define PER_SENDER 2000

static char ns[64];
static pid_t broker;

static int start_default(void **state)
{
    (void)state;
    harness_namespace(ns, "core");
    broker =
        harness_start_broker(ns, "--slots", "32", "--depth", "16", "--max-message", "256", NULL);
    return 0;
}

static int stop_broker(void **state)
{
    (void)state;
    if (broker > 0)
        harness_stop(broker, 5000);
    broker = 0;
    harness_cleanup();
    return 0;
}

static mbx_err send_str(mbx_client *c, const char *to, const char *json, int timeout_ms)
{
    return mbx_send(c, to, json, strlen(json), timeout_ms);
}

/* ---- 16 senders x 2,000 messages to one receiver ----------------------------------- */

struct sender_arg {
    int index;
};

static int sender_main(void *p)
{
    struct sender_arg *a = p;
    char name[32];
    snprintf(name, sizeof name, "sender-%d", a->index);
    mbx_client *c = harness_child_connect(ns, name);
    if (c == NULL)
        return 10;
    char body[64];
    for (int n = 0; n < PER_SENDER; n++) {
        int len = snprintf(body, sizeof body, "{\"s\":%d,\"n\":%d}", a->index, n);
        mbx_err err = mbx_send(c, "sink", body, (size_t)len, 20000);
        if (err != MBX_OK) {
            fprintf(stderr, "sender %d message %d: %s\n", a->index, n, mbx_strerror(err));
            mbx_close(c);
            return 11;
        }
    }
    mbx_close(c);
    return 0;
}

static void test_many_senders_exactly_once_in_order(void **state)
{
    (void)state;
    mbx_client *sink = harness_connect(ns, "sink");
    struct sender_arg args[SENDERS];
    pid_t pids[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        args[i].index = i;
        pids[i] = harness_spawn(sender_main, &args[i], 60);
    }
    int next[SENDERS] = {0};
    mbx_message *m = mbx_message_new();
    for (int got = 0; got < SENDERS * PER_SENDER; got++) {
        mbx_err err = mbx_recv(sink, m, 20000);
        if (err != MBX_OK)
            fail_msg("after %d messages: %s", got, mbx_strerror(err));
        cJSON *doc = cJSON_Parse(mbx_message_body(m, NULL));
        assert_non_null(doc);
        int s = cJSON_GetObjectItem(doc, "s")->valueint;
        int n = cJSON_GetObjectItem(doc, "n")->valueint;
        cJSON_Delete(doc);
        assert_in_range(s, 0, SENDERS - 1);
        /* Exactly once and in order: each sender's n must be the next one expected. */
        assert_int_equal(n, next[s]);
        next[s]++;
        char from[32];
        snprintf(from, sizeof from, "sender-%d", s);
        assert_string_equal(mbx_message_from(m), from);
        assert_string_equal(mbx_message_to(m), "sink");
        assert_int_equal(mbx_message_seq(m), (uint64_t)n + 1);
    }
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(next[i], PER_SENDER);
    /* Nothing more than what was sent. */
    assert_int_equal(mbx_recv(sink, m, 0), MBX_ETIMEDOUT);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(harness_wait(pids[i], 30000), 0);
    mbx_message_free(m);
    mbx_close(sink);
}

/* ---- names ------------------------------------------------------------------------- */

static int hold_name_main(void *p)
{
    int *fds = p; /* [0]: write "connected", [1]: read "go away" */
    mbx_client *c = harness_child_connect(ns, "holder");
    if (c == NULL)
        return 10;
    (void)!write(fds[0], "c", 1);
    char b;
    (void)!read(fds[1], &b, 1);
    if (b == 'x')
        _exit(0); /* leave without mbx_close(): the broker must notice the exit */
    mbx_close(c);
    return 0;
}

struct held {
    pid_t pid;
    int to_child;
};

static struct held spawn_holder(void)
{
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    int fds[2] = {up[1], down[0]};
    struct held h;
    h.pid = harness_spawn(hold_name_main, fds, 30);
    close(up[1]);
    close(down[0]);
    char b = 0;
    assert_int_equal(read(up[0], &b, 1), 1);
    close(up[0]);
    h.to_child = down[1];
    return h;
}

static void test_name_taken(void **state)
{
    (void)state;
    struct held h = spawn_holder();
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "holder";
    mbx_client *c = NULL;
    assert_int_equal(mbx_connect(&o, &c), MBX_ENAMETAKEN);
    assert_null(c);
    assert_int_equal(write(h.to_child, "q", 1), 1);
    close(h.to_child);
    assert_int_equal(harness_wait(h.pid, 5000), 0);
    /* mbx_close() returned in the child: the name is free at once. */
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    mbx_close(c);
}

static void test_slot_freed_after_exit(void **state)
{
    (void)state;
    struct held h = spawn_holder();
    assert_int_equal(write(h.to_child, "x", 1), 1);
    close(h.to_child);
    assert_int_equal(harness_wait(h.pid, 5000), 0);
    mbx_client *c = NULL;
    assert_int_equal(harness_connect_retry(ns, "holder", MBX_ENAMETAKEN, 2000, &c), MBX_OK);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 1);
    mbx_close(c);
}

static void test_slot_freed_after_sigkill(void **state)
{
    (void)state;
    struct held h = spawn_holder();
    kill(h.pid, SIGKILL);
    assert_int_equal(harness_wait(h.pid, 5000), 128 + SIGKILL);
    close(h.to_child);
    mbx_client *c = NULL;
    assert_int_equal(harness_connect_retry(ns, "holder", MBX_ENAMETAKEN, 2000, &c), MBX_OK);
    mbx_close(c);
    /* And the slot count goes back to zero once the broker has seen both go. */
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 0);
}

static void test_anonymous_names_are_unique(void **state)
{
    (void)state;
    mbx_client *a = harness_connect(ns, NULL);
    mbx_client *b = harness_connect(ns, "");
    assert_string_not_equal(mbx_client_name(a), mbx_client_name(b));
    assert_int_equal(mbx_check_name(mbx_client_name(a)), MBX_OK);
    assert_int_equal(send_str(a, mbx_client_name(b), "[1]", 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(b, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), mbx_client_name(a));
    mbx_message_free(m);
    mbx_close(a);
    mbx_close(b);
}

/* ---- bad input --------------------------------------------------------------------- */

static void test_batch_receive(void **state)
{
    (void)state;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    mbx_message *msgs[8];
    for (int i = 0; i < 8; i++)
        msgs[i] = mbx_message_new();
    size_t got = 99;
    assert_int_equal(mbx_recv_batch(rx, msgs, 8, &got, 0), MBX_ETIMEDOUT);
    assert_int_equal(got, 0);
    for (int i = 0; i < 5; i++) {
        char body[8];
        int len = snprintf(body, sizeof body, "%d", i);
        assert_int_equal(mbx_send(tx, "rx", body, (size_t)len, 100), MBX_OK);
    }
    assert_int_equal(mbx_recv_batch(rx, msgs, 3, &got, 1000), MBX_OK);
    assert_int_equal(got, 3);
    assert_int_equal(mbx_recv_batch(rx, msgs + 3, 5, &got, 1000), MBX_OK);
    assert_int_equal(got, 2); /* only what was there */
    for (int i = 0; i < 5; i++) {
        char body[8];
        snprintf(body, sizeof body, "%d", i);
        assert_string_equal(mbx_message_body(msgs[i], NULL), body);
    }
    assert_int_equal(mbx_recv_batch(rx, msgs, 0, &got, 0), MBX_EINVAL);
    for (int i = 0; i < 8; i++)
        mbx_message_free(msgs[i]);
    mbx_close(tx);
    mbx_close(rx);
}

/* A process that connects to the broker and says nothing is dropped, not kept for ever. */
static void test_silent_connection_is_closed(void **state)
{
    (void)state;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr;
    socklen_t len = harness_socket_addr(ns, &addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, len), 0);
    mbx_client *c = harness_connect(ns, "meanwhile"); /* the broker still serves others */
    mbx_close(c);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 20000), 1); /* bounded wait; the broker's limit is 5 s */
    char b;
    assert_int_equal(recv(fd, &b, 1, 0), 0); /* closed by the broker */
    close(fd);
}

static void test_unknown_recipient(void **state)
{
    (void)state;
    mbx_client *c = harness_connect(ns, "lonely");
    assert_int_equal(send_str(c, "nobody-here", "{}", 100), MBX_ENORECIPIENT);
    assert_int_equal(send_str(c, "bad/name", "{}", 100), MBX_EINVAL);
    mbx_close(c);
}

static void test_invalid_json_enters_nothing(void **state)
{
    (void)state;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    const char *bad[] = {"", "{", "{\"a\":}", "[1,]", "nul", "{} {}", "\"\x01\"", "\"\xc3\x28\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(send_str(tx, "rx", bad[i], 100), MBX_EINVALJSON);
    assert_int_equal(mbx_send(tx, "rx", "{\"a\":\0}", 7, 100), MBX_EINVALJSON);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    /* A good one still goes through, compacted. */
    assert_int_equal(send_str(tx, "rx", " { \"a\" : [ 1 , \"b c\" ] } \n", 100), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"a\":[1,\"b c\"]}");
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

static void test_size_limit_exact_and_one_over(void **state)
{
    (void)state;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "rx");
    size_t max = mbx_max_message(tx);
    assert_int_equal(max, 256);
    /* JSON strings of exactly max bytes and of max + 1 bytes. */
    char *exact = malloc(max + 1), *over = malloc(max + 2);
    memset(exact, 'a', max);
    exact[0] = exact[max - 1] = '"';
    exact[max] = '\0';
    memset(over, 'a', max + 1);
    over[0] = over[max] = '"';
    over[max + 1] = '\0';
    assert_int_equal(mbx_send(tx, "rx", exact, max, 100), MBX_OK);
    assert_int_equal(mbx_send(tx, "rx", over, max + 1, 100), MBX_ETOOLARGE);
    mbx_message *m = mbx_message_new();
    size_t len = 0;
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, &len), exact);
    assert_int_equal(len, max);
    assert_int_equal(mbx_recv(rx, m, 0), MBX_ETIMEDOUT);
    free(exact);
    free(over);
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

/* ---- a full mailbox ---------------------------------------------------------------- */

static int late_sender_main(void *p)
{
    (void)p;
    mbx_client *c;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    if (mbx_connect(&o, &c) != MBX_OK)
        return 10;
    mbx_err err = send_str(c, "slow", "{\"late\":true}", 10000);
    mbx_close(c);
    return err == MBX_OK ? 0 : 20 + (int)err;
}

static void test_full_mailbox_times_out_then_wakes(void **state)
{
    (void)state;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "slow");
    for (int i = 0; i < 16; i++) /* depth is 16 */
        assert_int_equal(send_str(tx, "slow", "1", 100), MBX_OK);
    assert_int_equal(send_str(tx, "slow", "2", 0), MBX_EFULL);
    assert_int_equal(send_str(tx, "slow", "2", 200), MBX_EFULL);
    /* A sender in another process blocks on the full mailbox and wakes when we drain. */
    pid_t late = harness_spawn(late_sender_main, NULL, 30);
    harness_wait_gauge(ns, "slow", HARNESS_SENDERS_ASLEEP, 1,
                       20000); /* asleep before we make room */
    mbx_message *m = mbx_message_new();
    for (int i = 0; i < 16; i++) {
        assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "1");
    }
    assert_int_equal(harness_wait(late, 10000), 0);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "{\"late\":true}");
    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
}

/* ---- a broker that does not answer ------------------------------------------------- */

/* Connects with a 300 ms limit, then closes; exits 100 + the connect's result. */
static int bounded_connect_main(void *p)
{
    (void)p;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.timeout_ms = 300;
    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    if (err == MBX_OK)
        mbx_close(c);
    return 100 + (int)err;
}

/* Closes a client whose broker has stopped: bounded by the client's timeout. */
static int bounded_close_main(void *p)
{
    mbx_client *c = p;
    mbx_close(c);
    return 0;
}

/* Fills the stopped broker's listen backlog, so that a connect is refused at once. */
static int flood_backlog(int *fds, int max)
{
    struct sockaddr_un addr;
    socklen_t len = harness_socket_addr(ns, &addr);
    int opened = 0;
    while (opened < max) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
        if (fd < 0)
            break;
        if (connect(fd, (struct sockaddr *)&addr, len) != 0) {
            int e = errno;
            close(fd);
            assert_int_equal(e, EAGAIN); /* the backlog is full */
            return opened;
        }
        fds[opened++] = fd;
    }
    fail_msg("the backlog took %d connections and is still not full", opened);
    return opened;
}

static void test_stopped_broker_does_not_hold_connect_or_close(void **state)
{
    (void)state;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "closing";
    o.timeout_ms = 300;
    mbx_client *c;
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    kill(broker, SIGSTOP);
    /* Registration that nobody answers ends at the limit. */
    pid_t child = harness_spawn(bounded_connect_main, NULL, 30);
    assert_int_equal(harness_wait(child, 5000), 100 + MBX_ETIMEDOUT);
    /* So does closing (no answer to UNREGISTER, no second connection). */
    child = harness_spawn(bounded_close_main, c, 30);
    assert_int_equal(harness_wait(child, 5000), 0);
    /* With the listen backlog full, connecting itself is bounded. */
    static int fds[900]; /* the broker listens with a backlog of 512 */
    int opened = flood_backlog(fds, 900);
    child = harness_spawn(bounded_connect_main, NULL, 30);
    assert_int_equal(harness_wait(child, 5000), 100 + MBX_ETIMEDOUT);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    kill(broker, SIGCONT);
    mbx_close(c);
}

/* ---- waiting for a peer ------------------------------------------------------------ */

static int no_broker_yet(void **state)
{
    (void)state;
    harness_namespace(ns, "presence");
    broker = 0;
    return 0;
}

/* Waits for "late" (and for a broker, none running yet): exits 100 + the result. */
static int wait_for_late_main(void *p)
{
    (void)p;
    return 100 + (int)mbx_wait_for(ns, "late", 20000);
}

static void test_wait_for_waits_for_broker_and_peer(void **state)
{
    (void)state;
    pid_t waiter = harness_spawn(wait_for_late_main, NULL, 30);
    usleep(200 * 1000); /* not needed for correctness: the waiter is asleep by now */
    broker = harness_start_broker(ns, NULL);
    mbx_client *other = harness_connect(ns, "other"); /* a change that is not it */
    usleep(100 * 1000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mbx_client *late = harness_connect(ns, "late");
    assert_int_equal(harness_wait(waiter, 10000), 100 + MBX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("mbx_wait_for returned %.2f ms after the connect began\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    /* Already there: at once. Not there: the limit. */
    assert_int_equal(mbx_wait_for(ns, "late", 0), MBX_OK);
    assert_int_equal(mbx_wait_for(ns, "absent", 50), MBX_ETIMEDOUT);
    assert_int_equal(mbx_wait_for(ns, "bad/name", 50), MBX_EINVAL);
    /* A send that may wait for its recipient. */
    mbx_send_options so;
    mbx_send_options_init(&so);
    assert_int_equal(mbx_send_ex(other, "later", "[1]", 3, &so), MBX_ENORECIPIENT);
    so.wait_ms = 50;
    assert_int_equal(mbx_send_ex(other, "later", "[1]", 3, &so), MBX_ENORECIPIENT);
    mbx_close(late);
    mbx_close(other);
}

static int count_refusals(const mbx_client_info *ci, void *arg)
{
    if (strcmp(ci->name, "slow") == 0)
        *(uint64_t *)arg = ci->refused_full;
    return 0;
}

static void test_full_refusals_are_counted(void **state)
{
    (void)state;
    mbx_client *tx = harness_connect(ns, "tx");
    mbx_client *rx = harness_connect(ns, "slow");
    for (int i = 0; i < 16; i++)
        assert_int_equal(send_str(tx, "slow", "1", 100), MBX_OK);
    assert_int_equal(send_str(tx, "slow", "1", 0), MBX_EFULL);
    assert_int_equal(send_str(tx, "slow", "1", 50), MBX_EFULL);
    uint64_t refused = 0;
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, count_refusals, &refused), MBX_OK);
    assert_int_equal(refused, 2);
    mbx_close(tx);
    mbx_close(rx);
}

/* ---- broker life ------------------------------------------------------------------- */

static void test_no_broker(void **state)
{
    (void)state;
    char lonely[64];
    harness_namespace(lonely, "none");
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = lonely;
    mbx_client *c = NULL;
    assert_int_equal(mbx_connect(&o, &c), MBX_ENOBROKER);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(lonely, &info, NULL, NULL), MBX_ENOBROKER);
}

static int blocked_receiver_main(void *p)
{
    int fd = *(int *)p;
    mbx_client *c = harness_child_connect(ns, "waiter");
    if (c == NULL)
        return 10;
    (void)!write(fd, "c", 1);
    mbx_message *m = mbx_message_new();
    mbx_err err = mbx_recv(c, m, -1); /* no timeout: only the shutdown can end it */
    mbx_message_free(m);
    mbx_close(c);
    return err == MBX_ESHUTDOWN ? 0 : 20 + (int)err;
}

static void test_sigterm_wakes_blocked_receiver(void **state)
{
    (void)state;
    int up[2];
    assert_int_equal(pipe(up), 0);
    pid_t rx = harness_spawn(blocked_receiver_main, &up[1], 30);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    close(up[0]);
    close(up[1]);
    usleep(100 * 1000); /* let it go to sleep in recv */
    assert_int_equal(harness_stop(broker, 5000), 0);
    broker = 0;
    assert_int_equal(harness_wait(rx, 5000), 0);
    /* The broker removed the namespace on its way out: its socket, and its keeper. */
    struct sockaddr_un addr;
    harness_socket_addr(ns, &addr);
    struct stat st;
    assert_int_not_equal(stat(addr.sun_path, &st), 0);
    assert_int_equal(harness_keeper_pid(ns), 0);
}

static void test_second_broker_refused(void **state)
{
    (void)state;
    char err[512];
    int rc = harness_run_broker(err, sizeof err, "-N", ns, NULL);
    assert_int_equal(rc, 3);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)broker);
    if (strstr(err, pid) == NULL)
        fail_msg("refusal does not name the live broker (%s): %s", pid, err);
    /* The live broker is untouched. */
    mbx_client *c = harness_connect(ns, "still-works");
    mbx_close(c);
}

/* A send-only client: no slot (as many as wanted, names only labels), it sends and
 * publishes, everything that needs a mailbox is refused, and its sends count in the
 * namespace's totals. */
static void test_send_only_clients(void **state)
{
    (void)state;
    mbx_client *rx = harness_connect(ns, "rx");
    assert_int_equal(mbx_subscribe(rx, "t.*", NULL), MBX_OK);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.send_only = 1;
    o.client_name = "label";
    mbx_client *a, *b, *anon;
    assert_int_equal(mbx_connect(&o, &a), MBX_OK);
    assert_int_equal(mbx_connect(&o, &b), MBX_OK); /* the same label twice: no name taken */
    o.client_name = NULL;
    assert_int_equal(mbx_connect(&o, &anon), MBX_OK);
    assert_true(strncmp(mbx_client_name(anon), "send.", 5) == 0);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(info.clients, 1); /* only rx holds a slot */
    assert_int_equal(send_str(a, "rx", "[1]", 1000), MBX_OK);
    assert_int_equal(send_str(b, "rx", "[2]", 1000), MBX_OK);
    assert_int_equal(mbx_publish(anon, "t.x", "[3]", 3, NULL), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_from(m), "label");
    assert_string_equal(mbx_message_body(m, NULL), "[1]");
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_topic(m), "t.x");
    /* Nothing that needs a mailbox. */
    uint64_t id;
    mbx_handle h;
    assert_int_equal(mbx_recv(a, m, 0), MBX_EINVAL);
    assert_int_equal(mbx_peek(a, m, 0), MBX_EINVAL);
    assert_int_equal(mbx_subscribe(a, "t.*", NULL), MBX_EINVAL);
    assert_int_equal(mbx_request(a, "rx", "1", 1, m, 100), MBX_EINVAL);
    assert_int_equal(mbx_request_send(a, "rx", "1", 1, 100, &id), MBX_EINVAL);
    assert_int_equal(mbx_wait_handle(a, &h), MBX_EINVAL);
    assert_int_equal(mbx_busy_poll(a, 10), MBX_EINVAL);
    assert_int_equal(mbx_interrupt(a), MBX_EINVAL);
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_true(info.total_sent >= 3);
    /* Not with a group or a linger. */
    mbx_client *bad;
    o.group = 1;
    o.client_name = "g";
    assert_int_equal(mbx_connect(&o, &bad), MBX_EINVAL);
    o.group = 0;
    o.linger_ms = 100;
    assert_int_equal(mbx_connect(&o, &bad), MBX_EINVAL);
    mbx_message_free(m);
    mbx_close(anon);
    mbx_close(b);
    mbx_close(a);
    mbx_close(rx);
}

int main(void)
{
    /* Sleeps last until their deadline, not one slice (test builds): a missing wake-up
     * then hangs a test here instead of passing 250 ms late. */
    setenv("MBX_TEST_NO_WAIT_SLICE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_senders_exactly_once_in_order, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_name_taken, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_slot_freed_after_exit, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_slot_freed_after_sigkill, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_anonymous_names_are_unique, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_unknown_recipient, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_batch_receive, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_silent_connection_is_closed, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_invalid_json_enters_nothing, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_size_limit_exact_and_one_over, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_full_mailbox_times_out_then_wakes, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_full_refusals_are_counted, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_stopped_broker_does_not_hold_connect_or_close,
                                        start_default, stop_broker),
        cmocka_unit_test(test_no_broker),
        cmocka_unit_test_setup_teardown(test_wait_for_waits_for_broker_and_peer, no_broker_yet,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_sigterm_wakes_blocked_receiver, start_default,
                                        stop_broker),
        cmocka_unit_test_setup_teardown(test_second_broker_refused, start_default, stop_broker),
        cmocka_unit_test_setup_teardown(test_send_only_clients, start_default, stop_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
