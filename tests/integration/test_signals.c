/*
 * Signals (mbx_connect_options.signals): with the option, a signal handled while a call
 * sleeps ends that call with MBX_ESIGNAL, having taken or sent nothing; without it the
 * call sleeps on. Every blocking call is tried: a receive, a send waiting for room, a
 * send waiting for its recipient to appear, a request, a reply awaited, a publication
 * waiting for a block-policy subscriber.
 *
 * Sends wait 8 s at most, so that a call that never notices fails the test instead of
 * hanging it (receives are ended by mbx_interrupt then).
 *
 * The signal goes to the thread making the call, again every few milliseconds until the
 * call returns: one that lands before the thread sleeps (while it spins) is not seen,
 * by design (docs/api.md, "Signals"), and the next one is.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char ns[64];
static atomic_int handled;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "signals");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: as language runtimes install theirs */
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGUSR1, &sa, NULL);
}

static int teardown(void **state)
{
    (void)state;
    signal(SIGUSR1, SIG_DFL);
    harness_cleanup();
    return 0;
}

static mbx_client *connect_with(const char *name, int signals)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    o.signals = signals;
    mbx_client *c = NULL;
    assert_int_equal(mbx_connect(&o, &c), MBX_OK);
    return c;
}

/* One blocking call, run on a thread of its own. */
typedef struct call {
    mbx_err (*run)(struct call *);
    mbx_client *c;
    const char *to;
    uint64_t id;
    mbx_publish_result res;
    mbx_err err;
    atomic_bool done;
} call;

static void *run_call(void *p)
{
    call *k = p;
    k->err = k->run(k);
    atomic_store(&k->done, true);
    return NULL;
}

/* Signals the call's thread every 5 ms until it returns (5 s at most) or, when
 * `for_ms` is not 0, for that long. True when the call returned. */
static bool signal_until_done(pthread_t t, call *k, int for_ms)
{
    long long end = harness_now_ms() + (for_ms != 0 ? for_ms : 5000);
    while (!atomic_load(&k->done) && harness_now_ms() < end) {
        (void)pthread_kill(t, SIGUSR1);
        usleep(5000);
    }
    return atomic_load(&k->done);
}

static mbx_err do_recv(call *k)
{
    mbx_message *m = mbx_message_new();
    mbx_err err = mbx_recv(k->c, m, -1);
    mbx_message_free(m);
    return err;
}

static mbx_err do_send_blocking(call *k)
{
    return mbx_send(k->c, k->to, "\"late\"", 6, 8000); /* ends by itself if never signalled */
}

static mbx_err do_send_waiting_for_name(call *k)
{
    mbx_send_options o;
    mbx_send_options_init(&o);
    o.wait_ms = 8000;
    return mbx_send_ex(k->c, k->to, "1", 1, &o);
}

static mbx_err do_request(call *k)
{
    mbx_message *m = mbx_message_new();
    mbx_err err = mbx_request(k->c, k->to, "{}", 2, m, -1);
    mbx_message_free(m);
    return err;
}

static mbx_err do_recv_reply(call *k)
{
    mbx_message *m = mbx_message_new();
    mbx_err err = mbx_recv_reply(k->c, k->id, m, -1);
    mbx_message_free(m);
    return err;
}

static mbx_err do_publish(call *k)
{
    mbx_publish_options o;
    mbx_publish_options_init(&o);
    o.timeout_ms = 8000;
    o.result = &k->res;
    return mbx_publish(k->c, "t.x", "2", 1, &o);
}

/* Starts k on a thread and signals it until it returns; its result. */
static mbx_err signalled(call *k)
{
    pthread_t t;
    atomic_store(&k->done, false);
    assert_int_equal(pthread_create(&t, NULL, run_call, k), 0);
    bool done = signal_until_done(t, k, 0);
    if (!done)
        (void)mbx_interrupt(k->c); /* a receive that never noticed: end it, then fail */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(done);
    return k->err;
}

/* Fills to's mailbox from c until it refuses; how many it took. */
static int fill(mbx_client *c, const char *to)
{
    int n = 0;
    while (mbx_send(c, to, "0", 1, 0) == MBX_OK)
        n++;
    return n;
}

static int drain(mbx_client *c)
{
    mbx_message *m = mbx_message_new();
    int n = 0;
    while (mbx_recv(c, m, 0) == MBX_OK)
        n++;
    mbx_message_free(m);
    return n;
}

static void test_receive(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *rx = connect_with("rx", 1);
    mbx_client *tx = connect_with("tx", 0);

    call k = {.run = do_recv, .c = rx};
    assert_int_equal(signalled(&k), MBX_ESIGNAL);
    assert_true(atomic_load(&handled) > 0);
    /* Nothing was taken, and the client works on. */
    assert_int_equal(mbx_send(tx, "rx", "[7]", 3, 1000), MBX_OK);
    mbx_message *m = mbx_message_new();
    assert_int_equal(mbx_recv(rx, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "[7]");

    /* Without the option the same signals leave the receive asleep: it gets the
     * message sent after them. */
    call quiet = {.run = do_recv, .c = tx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_call, &quiet), 0);
    assert_false(signal_until_done(t, &quiet, 200));
    assert_int_equal(mbx_send(rx, "tx", "[8]", 3, 1000), MBX_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(quiet.err, MBX_OK);

    mbx_message_free(m);
    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_sends(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "8", NULL);
    mbx_client *rx = connect_with("rx", 0);
    mbx_client *tx = connect_with("tx", 1);

    /* Waiting for room: nothing sent, not counted as refused. */
    int filled = fill(tx, "rx");
    assert_true(filled > 0);
    call k = {.run = do_send_blocking, .c = tx, .to = "rx"};
    assert_int_equal(signalled(&k), MBX_ESIGNAL);
    assert_int_equal(drain(rx), filled);

    /* Waiting for the recipient to appear. */
    call w = {.run = do_send_waiting_for_name, .c = tx, .to = "later"};
    assert_int_equal(signalled(&w), MBX_ESIGNAL);

    mbx_close(tx);
    mbx_close(rx);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_requests(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    mbx_client *svc = connect_with("svc", 0);
    mbx_client *cl = connect_with("cl", 1);
    mbx_message *m = mbx_message_new();

    /* mbx_request gives its request up: the answer that comes later is dropped. */
    call k = {.run = do_request, .c = cl, .to = "svc"};
    assert_int_equal(signalled(&k), MBX_ESIGNAL);
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_int_equal(mbx_reply(svc, m, "\"late\"", 6, 1000), MBX_OK);
    assert_int_equal(mbx_recv(cl, m, 200), MBX_ETIMEDOUT);

    /* mbx_recv_reply keeps it: the answer comes to the next call. */
    uint64_t id;
    assert_int_equal(mbx_request_send(cl, "svc", "{}", 2, 1000, &id), MBX_OK);
    call r = {.run = do_recv_reply, .c = cl, .id = id};
    assert_int_equal(signalled(&r), MBX_ESIGNAL);
    assert_int_equal(mbx_recv(svc, m, 1000), MBX_OK);
    assert_int_equal(mbx_reply(svc, m, "\"ok\"", 4, 1000), MBX_OK);
    assert_int_equal(mbx_recv_reply(cl, id, m, 1000), MBX_OK);
    assert_string_equal(mbx_message_body(m, NULL), "\"ok\"");

    mbx_message_free(m);
    mbx_close(cl);
    mbx_close(svc);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

static void test_publish(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, "--depth", "8", NULL);
    mbx_client *slow = connect_with("slow", 0);
    mbx_client *fast = connect_with("fast", 0);
    mbx_client *pub = connect_with("pub", 1);
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    so.policy = MBX_SUB_BLOCK;
    assert_int_equal(mbx_subscribe(slow, "t.>", &so), MBX_OK);
    assert_int_equal(mbx_subscribe(fast, "t.>", &so), MBX_OK);
    int filled = fill(pub, "slow");

    call k = {.run = do_publish, .c = pub};
    assert_int_equal(signalled(&k), MBX_ESIGNAL);
    /* The one with room has its copy; the full one got nothing more. */
    assert_int_equal(k.res.delivered, 1);
    assert_int_equal(drain(fast), 1);
    assert_int_equal(drain(slow), filled);

    mbx_close(pub);
    mbx_close(fast);
    mbx_close(slow);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
