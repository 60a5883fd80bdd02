/*
 * mbx bench: measures a running namespace with processes of its own (never threads).
 *
 * pingpong:   one process sends a message to another, which sends it back; the round
 *             trip time of each is recorded (after a warm-up) and its percentiles shown.
 * throughput: N sender processes send COUNT messages in all to one receiver process, as
 *             fast as they can; messages per second from the start signal to the last
 *             message received.
 *
 * All processes connect first and report ready; a shared "go" releases them at once.
 * Results come back through an anonymous shared mapping.
 *
 * --peer-namespace NS2: the receiving side connects to NS2 instead, and the go waits until
 * a mailbox-bridge has made its name known in NS (and, in pingpong, the pinger's in NS2):
 * two namespaces joined by bridges measure the bridged path, on one machine or two.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "affinity.h"
#include "bench_stats.h"
#include "cli.h"
#include "size_suffix.h"

#define BENCH_MAX_SENDERS 64
#define BENCH_RECV_TIMEOUT_MS 20000
#define BENCH_TOPIC "bench.fanout"
#define BENCH_PEER_WAIT_MS 15000 /* for the names to cross the bridges */

static const char usage_text[] =
    "Usage: mbx bench [-N NS] [--mode pingpong|throughput|request|fanout] [--senders N]\n"
    "                 [--subscribers N] [--size BYTES]\n"
    "                 [--count N] [--pin none|same|split] [--no-validate] [--poll [--busy-poll "
    "US]]\n"
    "                 [--responders M] [--peer-namespace NS2] [--json]\n"
    "Measure a running namespace with benchmark processes of its own.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --peer-namespace NS2\n"
    "                      pingpong, throughput, request: the receiving side connects to\n"
    "                      NS2, joined to NS by mailbox-bridge (one each, same --cluster);\n"
    "                      its name must appear in NS within 15 s, else exit 5\n"
    "  -m, --mode MODE     pingpong (round-trip latency, default), throughput, or\n"
    "                      request (mbx_request and mbx_reply: round-trip latency), or\n"
    "                      fanout (mbx_publish to N subscribers: messages delivered per\n"
    "                      second)\n"
    "  -s, --senders N     throughput: sender processes; request: requesters (default 1,\n"
    "                      up to 64)\n"
    "      --responders M  request: M responders serving as a group (default 1)\n"
    "      --subscribers N fanout: subscriber processes, each getting every publication\n"
    "                      (default 4, up to 64)\n"
    "      --size BYTES    message size (default 120; K and M allowed: 4K)\n"
    "  -c, --count N       round trips, or messages in all (default 100000)\n"
    "      --pin WHERE     none (default), same: all on one CPU, split: receiver on one\n"
    "                      CPU and the others on another\n"
    "      --no-validate   send as trusted text (mbx_send_ex with trusted = 1)\n"
    "      --poll          the receiving side waits in an epoll loop on its wake handle\n"
    "                      (mbx_wait_handle) instead of blocking in mbx_recv\n"
    "      --busy-poll US  with --poll: before each wait, watch the mailbox for up to US\n"
    "                      microseconds (mbx_busy_poll; 1..10000)\n"
    "      --json          print one JSON object (its schema: " MBX_SCHEMA_DIR
    "/bench.schema.json)\n"
    "  -h, --help          show this help\n";

enum {
    OPT_SIZE = 256,
    OPT_PIN,
    OPT_NO_VALIDATE,
    OPT_POLL,
    OPT_BUSY_POLL,
    OPT_JSON,
    OPT_RESPONDERS,
    OPT_SUBSCRIBERS,
    OPT_PEER_NAMESPACE
};

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_bench_short[] = ":N:m:s:c:h";
const struct option cmd_bench_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"mode", required_argument, NULL, 'm'},
    {"senders", required_argument, NULL, 's'},
    {"size", required_argument, NULL, OPT_SIZE},
    {"count", required_argument, NULL, 'c'},
    {"pin", required_argument, NULL, OPT_PIN},
    {"no-validate", no_argument, NULL, OPT_NO_VALIDATE},
    {"poll", no_argument, NULL, OPT_POLL},
    {"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
    {"responders", required_argument, NULL, OPT_RESPONDERS},
    {"subscribers", required_argument, NULL, OPT_SUBSCRIBERS},
    {"peer-namespace", required_argument, NULL, OPT_PEER_NAMESPACE},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct bench_config {
    const char *ns;
    const char *peer_ns; /* the receiving side's namespace, bridged to ns; NULL: ns */
    bool throughput;
    bool request;         /* pingpong through mbx_request / mbx_reply */
    long long responders; /* request: responders, a group when more than one */
    bool fanout;          /* throughput through mbx_publish to `subscribers` subscribers */
    long long subscribers;
    long long senders;
    long long size;
    long long count;
    long long warmup;
    const char *pin; /* "none", "same", "split" */
    bool trusted;
    bool poll;           /* the receiving side waits in epoll on its wake handle */
    long long busy_poll; /* --poll: microseconds of mbx_busy_poll before each wait */
    bool json;
} bench_config;

/* Shared with the benchmark processes. */
typedef struct bench_shared {
    _Atomic int64_t t_end_ns; /* throughput: when the (last) receiver took its last message */
    int failures;             /* processes that hit an error */
    int64_t rtt_ns[];         /* pingpong: one per measured round trip */
} bench_shared;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A JSON string of exactly size bytes: "xxxx". */
static char *make_body(long size)
{
    char *b = malloc((size_t)size + 1);
    if (b == NULL)
        return NULL;
    memset(b, 'x', (size_t)size);
    b[0] = b[size - 1] = '"';
    b[size] = '\0';
    return b;
}

typedef struct role {
    const bench_config *cfg;
    bench_shared *shared;
    const char *ns; /* the namespace this one connects to */
    char name[MBX_NAME_MAX + 1];
    char peer[MBX_NAME_MAX + 1];
    int cpu;
    long long messages;
    int ready_fd;
    int go_fd;
    int parent_fds[2];  /* the parent's ends of both pipes, closed in the child */
    long long rtt_base; /* where this one's round trips go in shared->rtt_ns */
    bool group;         /* join the group serving the name */
    bool subscriber;    /* fanout: subscribe to BENCH_TOPIC */
} role;

static mbx_client *role_connect(role *r)
{
    if (affinity_pin(r->cpu) != 0)
        return NULL;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = r->ns;
    o.client_name = r->name;
    o.group = r->group;
    mbx_client *c;
    if (mbx_connect(&o, &c) != MBX_OK) {
        (void)!write(r->ready_fd, "f", 1); /* the parent stops everyone at once */
        return NULL;
    }
    /* A fanout sink subscribes before it says it is ready: no publication is missed. */
    mbx_subscribe_options sub;
    mbx_subscribe_options_init(&sub);
    sub.policy = MBX_SUB_BLOCK;
    if (r->subscriber && mbx_subscribe(c, BENCH_TOPIC, &sub) != MBX_OK) {
        (void)!write(r->ready_fd, "f", 1);
        mbx_close(c);
        return NULL;
    }
    /* Ready; then wait for the parent to close the go pipe, releasing everyone. */
    (void)!write(r->ready_fd, "r", 1);
    char b;
    while (read(r->go_fd, &b, 1) < 0 && errno == EINTR)
        ;
    return c;
}

static int pinger(role *r, mbx_send_options *so, const char *body)
{
    mbx_client *c = role_connect(r);
    if (c == NULL)
        return 1;
    mbx_message *m = mbx_message_new();
    long long total = r->cfg->warmup + r->messages;
    for (long long i = 0; i < total; i++) {
        int64_t t0 = now_ns();
        if (r->cfg->request) {
            if (mbx_request(c, r->peer, body, (size_t)r->cfg->size, m, BENCH_RECV_TIMEOUT_MS) !=
                MBX_OK)
                return 2;
        } else if (mbx_send_ex(c, r->peer, body, (size_t)r->cfg->size, so) != MBX_OK ||
                   mbx_recv(c, m, BENCH_RECV_TIMEOUT_MS) != MBX_OK) {
            return 2;
        }
        if (i >= r->cfg->warmup)
            r->shared->rtt_ns[r->rtt_base + i - r->cfg->warmup] = now_ns() - t0;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

/* The receiving side's wait: blocking in mbx_recv, or (--poll) an epoll loop on the wake
 * handle, taking with timeout 0 until a receive finds the mailbox empty. */
typedef struct receiver {
    mbx_client *c;
    int ep;        /* -1: blocking */
    int busy_poll; /* microseconds of mbx_busy_poll before each wait, 0: none */
} receiver;

static bool receiver_open(receiver *rv, mbx_client *c, const bench_config *cfg)
{
    rv->c = c;
    rv->ep = -1;
    rv->busy_poll = (int)cfg->busy_poll;
    if (!cfg->poll)
        return true;
    mbx_handle h;
    rv->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    return rv->ep >= 0 && mbx_wait_handle(c, &h) == MBX_OK &&
           epoll_ctl(rv->ep, EPOLL_CTL_ADD, h, &ev) == 0;
}

static mbx_err receive_one(receiver *rv, mbx_message *m)
{
    if (rv->ep < 0)
        return mbx_recv(rv->c, m, BENCH_RECV_TIMEOUT_MS);
    for (;;) {
        mbx_err err = mbx_recv(rv->c, m, 0);
        if (err != MBX_ETIMEDOUT)
            return err;
        if (rv->busy_poll > 0 && mbx_busy_poll(rv->c, rv->busy_poll) == MBX_OK)
            continue;
        struct epoll_event ev;
        if (epoll_wait(rv->ep, &ev, 1, BENCH_RECV_TIMEOUT_MS) <= 0)
            return MBX_ETIMEDOUT;
    }
}

static int ponger(role *r, mbx_send_options *so, const char *body)
{
    (void)body; /* echoes what it receives */
    mbx_client *c = role_connect(r);
    if (c == NULL)
        return 1;
    receiver rv;
    if (!receiver_open(&rv, c, r->cfg))
        return 4;
    mbx_message *m = mbx_message_new();
    /* A member of a group of responders serves until the parent stops it. */
    long long total = r->group ? LLONG_MAX : r->cfg->warmup + r->messages;
    for (long long i = 0; i < total; i++) {
        size_t len;
        if (receive_one(&rv, m) != MBX_OK)
            return 2;
        const char *echo = mbx_message_body(m, &len);
        mbx_err err = r->cfg->request ? mbx_reply(c, m, echo, len, so->timeout_ms)
                                      : mbx_send_ex(c, mbx_message_from(m), echo, len, so);
        if (err != MBX_OK)
            return 3;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

static int sender(role *r, mbx_send_options *so, const char *body)
{
    mbx_client *c = role_connect(r);
    if (c == NULL)
        return 1;
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    po.timeout_ms = so->timeout_ms;
    po.trusted = so->trusted;
    for (long long i = 0; i < r->messages; i++)
        if ((r->cfg->fanout ? mbx_publish(c, BENCH_TOPIC, body, (size_t)r->cfg->size, &po)
                            : mbx_send_ex(c, r->peer, body, (size_t)r->cfg->size, so)) != MBX_OK)
            return 2;
    mbx_close(c);
    return 0;
}

static int sink(role *r, mbx_send_options *so, const char *body)
{
    (void)so; /* only receives */
    (void)body;
    mbx_client *c = role_connect(r);
    if (c == NULL)
        return 1;
    receiver rv;
    if (!receiver_open(&rv, c, r->cfg))
        return 4;
    mbx_message *m = mbx_message_new();
    for (long long i = 0; i < r->messages; i++)
        if (receive_one(&rv, m) != MBX_OK)
            return 2;
    /* The last receiver to finish ends the measurement. */
    int64_t end = now_ns(), seen = atomic_load(&r->shared->t_end_ns);
    while (end > seen && !atomic_compare_exchange_weak(&r->shared->t_end_ns, &seen, end))
        ;
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

typedef int (*role_fn)(role *r, mbx_send_options *so, const char *body);

static pid_t start_role(role *r, role_fn fn, mbx_send_options *so, const char *body)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* A benchmark process dies with the command: killed, it must not leave processes
         * holding slots and spinning. (Checked again after arming, in case the parent
         * died just before.) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(4);
        /* Without this the child would hold the go pipe open and never see it close. */
        close(r->parent_fds[0]);
        close(r->parent_fds[1]);
        _exit(fn(r, so, body));
    }
    return pid;
}

/* CPU of the receiving side (first) and of the others, per --pin. */
static void placement(const char *pin, int *receiver_cpu, int *other_cpu)
{
    *receiver_cpu = *other_cpu = -1;
    if (strcmp(pin, "same") == 0) {
        *receiver_cpu = *other_cpu = 0;
    } else if (strcmp(pin, "split") == 0) {
        *receiver_cpu = 0;
        *other_cpu = affinity_cpus() > 1 ? 1 : 0;
    }
}

static const char *mode_name(const bench_config *cfg)
{
    return cfg->fanout       ? "fanout"
           : cfg->throughput ? "throughput"
           : cfg->request    ? "request"
                             : "pingpong";
}

static void print_result(const bench_config *cfg, const bench_percentiles *p, double msgs_per_s,
                         double seconds)
{
    const char *validate = cfg->trusted ? "false" : "true";
    if (cfg->json) {
        printf("{\"mode\":\"%s\",\"size\":%lld,\"count\":%lld,\"senders\":%lld,\"validate\":%s,"
               "\"pin\":\"%s\",\"poll\":%s,\"busy_poll_us\":%lld,\"seconds\":%.6f",
               mode_name(cfg), cfg->size, cfg->count, cfg->senders, validate, cfg->pin,
               cfg->poll ? "true" : "false", cfg->busy_poll, seconds);
        if (cfg->peer_ns != NULL) /* a valid name needs no escaping */
            printf(",\"peer_namespace\":\"%s\"", cfg->peer_ns);
        if (cfg->fanout)
            printf(",\"subscribers\":%lld,\"publications_per_s\":%.0f,\"msgs_per_s\":%.0f}\n",
                   cfg->subscribers, msgs_per_s / (double)cfg->subscribers, msgs_per_s);
        else if (cfg->throughput)
            printf(",\"msgs_per_s\":%.0f}\n", msgs_per_s);
        else
            printf(",\"rtt_us\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
                   "\"mean\":%.3f}}\n",
                   p->p50, p->p99, p->p999, p->max, p->mean);
        return;
    }
    printf("%s: %lld %s of %lld bytes, %s, pinned %s%s", mode_name(cfg), cfg->count,
           cfg->throughput ? "messages" : "round trips", cfg->size,
           cfg->trusted ? "not validated" : "validated", cfg->pin,
           cfg->poll ? ", receiver in an epoll loop" : "");
    if (cfg->busy_poll > 0)
        printf(", busy polling %lld us", cfg->busy_poll);
    if (cfg->peer_ns != NULL)
        printf(", receiving side on '%s' (bridged)", cfg->peer_ns);
    putchar('\n');
    if (cfg->fanout)
        printf("  %lld -> %lld subscribers: %.2f M msgs/s delivered (%.2f M publications/s, "
               "%.3f s)\n",
               cfg->senders, cfg->subscribers, msgs_per_s / 1e6,
               msgs_per_s / (double)cfg->subscribers / 1e6, seconds);
    else if (cfg->throughput)
        printf("  %lld -> 1: %.2f M msgs/s, %.1f MB/s (%.3f s)\n", cfg->senders, msgs_per_s / 1e6,
               msgs_per_s * (double)cfg->size / 1e6, seconds);
    else
        printf("  RTT p50 %.2f us, p99 %.2f us, p99.9 %.2f us, max %.2f us, mean %.2f us\n", p->p50,
               p->p99, p->p999, p->max, p->mean);
}

/* Fails fast, before any process starts, when a namespace cannot hold the benchmark.
 * Bridged, each holds every process: its own, and the bridge's stand-ins for the others. */
static int check_namespace(const bench_config *cfg, const char *ns)
{
    mbx_namespace_info info;
    mbx_err err = mbx_inspect(ns, &info, NULL, NULL);
    if (err != MBX_OK)
        return cli_fail_namespace("bench", err, ns);
    long long needed = cfg->senders + (cfg->request  ? cfg->responders
                                       : cfg->fanout ? cfg->subscribers
                                                     : 1);
    long long free_slots = (long long)info.slots - (long long)info.clients;
    if (free_slots < needed)
        return cli_fail("bench", EXIT_NAME,
                        "namespace '%s' has %lld free slots; this benchmark needs %lld "
                        "(--senders, plus --responders or --subscribers or 1)",
                        ns, free_slots, needed);
    if (cfg->size > (long long)info.max_message)
        return cli_fail("bench", EXIT_USAGE,
                        "--size: %lld bytes is more than namespace '%s' allows (%u)", cfg->size, ns,
                        info.max_message);
    return EXIT_OK_;
}

/* --peer-namespace: waits until the bridges have made the receiving side's name known in
 * NS (and, in pingpong, where the echo is a plain send, each pinger's name in NS2). */
static int wait_for_peers(const bench_config *cfg, const role *roles, int receivers, int n)
{
    const char *env = getenv("MBX_TEST_BENCH_PEER_WAIT_MS"); /* for tests only */
    int wait_ms = env != NULL ? atoi(env) : BENCH_PEER_WAIT_MS;
    int64_t deadline = now_ns() + (int64_t)wait_ms * 1000000;
    bool echo = !cfg->throughput && !cfg->request;
    /* Role 0 stands for the receiving side (every responder has its name); then the
     * pingers, from `receivers` on. */
    for (int i = 0; i < (echo ? n : 1); i = i == 0 ? receivers : i + 1) {
        const char *ns = i == 0 ? cfg->ns : cfg->peer_ns;
        int64_t left_ms = (deadline - now_ns()) / 1000000;
        if (mbx_wait_for(ns, roles[i].name, left_ms > 0 ? (int)left_ms : 0) != MBX_OK)
            return cli_fail("bench", EXIT_NO_RECIPIENT,
                            "'%s' of namespace '%s' did not appear in namespace '%s' within "
                            "%d ms: a mailbox-bridge must join '%s' and '%s' (one on each, "
                            "the same --cluster)",
                            roles[i].name, roles[i].ns, ns, wait_ms, cfg->ns, cfg->peer_ns);
    }
    return EXIT_OK_;
}

static int run(const bench_config *cfg)
{
    int rc_check = check_namespace(cfg, cfg->ns);
    if (rc_check == EXIT_OK_ && cfg->peer_ns != NULL)
        rc_check = check_namespace(cfg, cfg->peer_ns);
    if (rc_check != EXIT_OK_)
        return rc_check;
    size_t shared_size = sizeof(bench_shared) + (size_t)cfg->count * sizeof(int64_t);
    bench_shared *shared =
        mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *body = make_body(cfg->size);
    int ready[2], go[2];
    if (shared == MAP_FAILED || body == NULL || pipe(ready) != 0 || pipe(go) != 0)
        return cli_fail("bench", EXIT_FAILURE_, "cannot set up: %s", strerror(errno));
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = -1;
    so.trusted = cfg->trusted;
    int receiver_cpu, other_cpu;
    placement(cfg->pin, &receiver_cpu, &other_cpu);

    role roles[2 * BENCH_MAX_SENDERS];
    pid_t pids[2 * BENCH_MAX_SENDERS];
    int n = 0;
    long self = (long)getpid();
    role base = {.cfg = cfg,
                 .shared = shared,
                 .ns = cfg->ns,
                 .ready_fd = ready[1],
                 .go_fd = go[0],
                 .parent_fds = {ready[0], go[1]}};
    /* Role 0 receives (pong, or the sink); the others send. */
    roles[0] = base;
    roles[0].ns = cfg->peer_ns != NULL ? cfg->peer_ns : cfg->ns;
    roles[0].cpu = receiver_cpu;
    snprintf(roles[0].name, sizeof roles[0].name, "bench.%ld.%s", self,
             cfg->throughput ? "sink" : "pong");
    /* The pong side answers every requester's warm-up too. */
    roles[0].messages =
        cfg->throughput ? cfg->count : cfg->count + (cfg->senders - 1) * cfg->warmup;
    /* More than one responder: a group, each serving until the requesters are done (it
     * cannot know its share), then stopped by us. */
    int responders = cfg->request ? (int)cfg->responders : 1;
    if (responders > 1)
        roles[0].messages = 0, roles[0].group = true;
    /* Fanout: every subscriber is a sink getting all of it. */
    roles[0].subscriber = cfg->fanout;
    int receivers = cfg->fanout ? (int)cfg->subscribers : responders;
    pids[n++] = start_role(&roles[0], cfg->throughput ? sink : ponger, &so, body);
    for (int i = 1; i < receivers; i++) {
        roles[n] = roles[0];
        if (cfg->fanout)
            snprintf(roles[n].name, sizeof roles[n].name, "bench.%ld.sink%d", self, i);
        pids[n] = start_role(&roles[n], cfg->throughput ? sink : ponger, &so, body);
        n++;
    }
    long long rtt_base = 0;
    for (long long i = 0; i < cfg->senders; i++) {
        roles[n] = base;
        roles[n].cpu = other_cpu;
        snprintf(roles[n].name, sizeof roles[n].name, "bench.%ld.s%lld", self, i);
        memcpy(roles[n].peer, roles[0].name, sizeof roles[n].peer);
        roles[n].messages = cfg->count / cfg->senders + (i < cfg->count % cfg->senders);
        roles[n].rtt_base = rtt_base;
        rtt_base += roles[n].messages;
        pids[n] = start_role(&roles[n], cfg->throughput ? sender : pinger, &so, body);
        n++;
    }
    close(ready[1]);
    close(go[0]);
    int ok = 0;
    char b;
    while (ok < n && read(ready[0], &b, 1) == 1 && b == 'r')
        ok++;
    int rc_wait =
        ok == n && cfg->peer_ns != NULL ? wait_for_peers(cfg, roles, receivers, n) : EXIT_OK_;
    if (ok < n || rc_wait != EXIT_OK_) {
        /* One could not connect (or is not known across the bridge): the others wait for a
         * start that must not come. */
        for (int i = 0; i < n; i++)
            kill(pids[i], SIGKILL);
        for (int i = 0; i < n; i++)
            (void)waitpid(pids[i], NULL, 0);
        close(ready[0]);
        close(go[1]);
        free(body);
        munmap(shared, shared_size);
        if (rc_wait != EXIT_OK_)
            return rc_wait;
        return cli_fail("bench", EXIT_FAILURE_,
                        "a benchmark process could not connect to '%s'%s%s%s (is a broker "
                        "running?)",
                        cfg->ns, cfg->peer_ns != NULL ? " or '" : "",
                        cfg->peer_ns != NULL ? cfg->peer_ns : "", cfg->peer_ns != NULL ? "'" : "");
    }
    int64_t t0 = now_ns();
    close(go[1]); /* go */
    int failures = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (i < responders && responders > 1)
            kill(pids[i], SIGKILL); /* the requesters are done: the group may go */
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i] ||
            (!(i < responders && responders > 1) &&
             (!WIFEXITED(status) || WEXITSTATUS(status) != 0)))
            failures++;
    }
    close(ready[0]);
    int rc = EXIT_OK_;
    if (failures > 0) {
        rc = cli_fail("bench", EXIT_FAILURE_,
                      "%d benchmark process(es) failed (is a broker running on '%s', with %lld "
                      "free slots and --max-message >= %lld?)",
                      failures, cfg->ns, (long long)n, cfg->size);
    } else if (cfg->throughput) {
        double seconds = (double)(atomic_load(&shared->t_end_ns) - t0) / 1e9;
        double delivered = (double)cfg->count * (cfg->fanout ? (double)cfg->subscribers : 1.0);
        print_result(cfg, NULL, delivered / seconds, seconds);
    } else {
        bench_percentiles p;
        bench_percentiles_of(shared->rtt_ns, (size_t)cfg->count, 1e-3, &p);
        print_result(cfg, &p, 0, (double)(now_ns() - t0) / 1e9);
    }
    free(body);
    munmap(shared, shared_size);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_config cfg = {.senders = 1,
                        .responders = 1,
                        .subscribers = 4,
                        .size = 120,
                        .count = 100000,
                        .pin = "none"};
    const char *mode = "pingpong";
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_bench_short, cmd_bench_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            cfg.ns = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 's':
            if (!cli_parse_long(optarg, 1, BENCH_MAX_SENDERS, &cfg.senders))
                return cli_fail("bench", EXIT_USAGE, "--senders: '%s' is not a number in 1..%d",
                                optarg, BENCH_MAX_SENDERS);
            break;
        case OPT_SIZE: {
            uint64_t size;
            if (!size_parse(optarg, 2, 1 << 20, &size))
                return cli_fail("bench", EXIT_USAGE,
                                "--size: '%s' is not a size in 2..%d bytes (K, M allowed)", optarg,
                                1 << 20);
            cfg.size = (long long)size;
            break;
        }
        case 'c':
            if (!cli_parse_long(optarg, 1, 100000000, &cfg.count))
                return cli_fail("bench", EXIT_USAGE, "--count: '%s' is not a number in 1..%d",
                                optarg, 100000000);
            break;
        case OPT_PIN:
            cfg.pin = optarg;
            break;
        case OPT_NO_VALIDATE:
            cfg.trusted = true;
            break;
        case OPT_POLL:
            cfg.poll = true;
            break;
        case OPT_BUSY_POLL:
            if (!cli_parse_long(optarg, 1, MBX_BUSY_POLL_MAX_US, &cfg.busy_poll))
                return cli_fail("bench", EXIT_USAGE, "--busy-poll: '%s' is not a number in 1..%d",
                                optarg, MBX_BUSY_POLL_MAX_US);
            break;
        case OPT_SUBSCRIBERS:
            if (!cli_parse_long(optarg, 1, BENCH_MAX_SENDERS, &cfg.subscribers))
                return cli_fail("bench", EXIT_USAGE, "--subscribers: '%s' is not a number in 1..%d",
                                optarg, BENCH_MAX_SENDERS);
            break;
        case OPT_RESPONDERS:
            if (!cli_parse_long(optarg, 1, BENCH_MAX_SENDERS, &cfg.responders))
                return cli_fail("bench", EXIT_USAGE, "--responders: '%s' is not a number in 1..%d",
                                optarg, BENCH_MAX_SENDERS);
            break;
        case OPT_PEER_NAMESPACE:
            cfg.peer_ns = optarg;
            break;
        case OPT_JSON:
            cfg.json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("bench", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("bench", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_fail("bench", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (strcmp(mode, "pingpong") != 0 && strcmp(mode, "throughput") != 0 &&
        strcmp(mode, "request") != 0 && strcmp(mode, "fanout") != 0)
        return cli_fail("bench", EXIT_USAGE,
                        "--mode: '%s' is not pingpong, throughput, request or fanout", mode);
    if (strcmp(cfg.pin, "none") != 0 && strcmp(cfg.pin, "same") != 0 &&
        strcmp(cfg.pin, "split") != 0)
        return cli_fail("bench", EXIT_USAGE, "--pin: '%s' is not none, same or split", cfg.pin);
    cfg.fanout = strcmp(mode, "fanout") == 0;
    cfg.throughput = strcmp(mode, "throughput") == 0 || cfg.fanout;
    cfg.request = strcmp(mode, "request") == 0;
    if (!cfg.throughput && !cfg.request && cfg.senders != 1)
        return cli_fail("bench", EXIT_USAGE, "--senders: pingpong takes exactly one");
    if (cfg.busy_poll > 0 && !cfg.poll)
        return cli_fail("bench", EXIT_USAGE, "--busy-poll: only with --poll");
    if (cfg.ns == NULL)
        cfg.ns = mbx_default_namespace();
    if (mbx_check_name(cfg.ns) != MBX_OK)
        return cli_fail("bench", EXIT_USAGE, "invalid namespace name '%s'", cfg.ns);
    if (cfg.peer_ns != NULL &&
        (mbx_check_name(cfg.peer_ns) != MBX_OK || cfg.fanout || strcmp(cfg.peer_ns, cfg.ns) == 0))
        return cli_fail("bench", EXIT_USAGE,
                        "--peer-namespace: '%s' is not a valid name other than '%s' (and not "
                        "for fanout)",
                        cfg.peer_ns, cfg.ns);
    cfg.warmup = cfg.throughput ? 0 : (cfg.count / 10 < 1000 ? cfg.count / 10 : 1000);
    mbx_namespace_info info;
    mbx_err err = mbx_inspect(cfg.ns, &info, NULL, NULL);
    if (err != MBX_OK)
        return cli_fail_namespace("bench", err, cfg.ns);
    if ((unsigned long)cfg.size > info.max_message)
        return cli_fail("bench", EXIT_USAGE, "--size: %lld is over the namespace's limit of %u",
                        cfg.size, info.max_message);
    return run(&cfg);
}
