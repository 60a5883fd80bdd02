/*
 * mailbox-bridge: joins one namespace across several hosts over NATS (docs/bridge.md,
 * mailbox-bridge(8)).
 *
 * main.c starts the pieces and runs the main loop: it waits on the signals, the events
 * NATS threads post, the control client's wake handle and every proxy's, and on a 100 ms
 * tick for the directory's timers. Exit status: 0 stopped by SIGTERM/SIGINT, 1 another
 * failure, 2 bad command line, 7 the namespace shut down, 8 permission denied, 9 another
 * bridge serves this node's name here, 10 version mismatch or corrupt segment.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bridge.h"
#include "durable.h"
#include "outbound.h"

#define TICK_MS 100
#define POLL_MAX 4096
#define TAKEN_GRACE_MS 10000 /* bridge.<node> taken at start: a predecessor's, maybe */

enum {
    EXIT_STOPPED = 0,
    EXIT_FAILED = 1,
    EXIT_SHUTDOWN = 7,
    EXIT_PERM = 8,
    EXIT_TAKEN = 9,
    EXIT_VERSION = 10
};

static int exit_code_of(mbx_err err)
{
    switch (err) {
    case MBX_ESHUTDOWN:
        return EXIT_SHUTDOWN;
    case MBX_EPERM:
        return EXIT_PERM;
    case MBX_ENAMETAKEN:
    case MBX_ENOSLOTS:
        return EXIT_TAKEN;
    case MBX_EVERSION:
    case MBX_ECORRUPT:
        return EXIT_VERSION;
    default:
        return EXIT_FAILED;
    }
}

/* Connects the control client, waiting for the broker as long as it takes (a bridge
 * may start before its broker, as any client may). Returns MBX_OK, or the error that
 * ends the program; *stopped when a signal came first. */
static mbx_err connect_control(bridge *b, const sigset_t *stops, bool *stopped)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = b->cfg.ns;
    o.client_name = b->self;
    bool told = false;
    int64_t taken_until = bridge_now_ns() + TAKEN_GRACE_MS * 1000000LL;
    for (;;) {
        mbx_err err = mbx_connect(&o, &b->ctl);
        /* A predecessor killed a moment ago holds the name until the broker sees it gone. */
        bool predecessor = err == MBX_ENAMETAKEN && bridge_now_ns() < taken_until;
        if (err != MBX_ENOBROKER && err != MBX_ESHUTDOWN && !predecessor)
            return err;
        if (!told && !predecessor)
            bridge_log(LOG_INFO, "waiting for the broker of namespace %s",
                       b->cfg.ns != NULL ? b->cfg.ns : mbx_default_namespace());
        told = told || !predecessor;
        struct timespec wait = {0, 250 * 1000000L};
        if (sigtimedwait(stops, NULL, &wait) > 0) {
            *stopped = true;
            return MBX_OK;
        }
    }
}

static void handle_events(bridge *b)
{
    bridge_event *all = events_take_all(b);
    for (bridge_event *e = all; e != NULL; e = e->next) {
        switch (e->kind) {
        case EV_DIRECTORY:
            directory_on_message(b, e->msg, e->id);
            break;
        case EV_HELLO:
            topics_on_hello(b, e->msg);
            break;
        case EV_ACK:
            outbound_on_ack(b, e->id, e->count & ~(1ULL << 63), (e->count >> 63) != 0);
            break;
        case EV_REPLY:
            outbound_on_reply(b, e->id, e->msg);
            break;
        case EV_JS_ACK:
            durable_on_pub_ack(b, e->msg, e->count != 0);
            break;
        case EV_CONNECTED:
            if (b->cfg.durable)
                durable_on_connected(b);
            /* Others may have expired us while we were away: everything again. */
            topics_say_hello(b);
            directory_send_snapshot(b);
            break;
        case EV_DISCONNECTED:
            break;
        }
    }
    events_free(b, all);
}

/* Called, and returns, with main_mu held: it lets go only while it sleeps in poll. */
static int run(bridge *b, int sigfd)
{
    static struct pollfd fds[POLL_MAX];
    static proxy *who[POLL_MAX];
    mbx_handle ctl_fd;
    if (mbx_wait_handle(b->ctl, &ctl_fd) != MBX_OK) {
        bridge_log(LOG_ERROR, "out of descriptors");
        return EXIT_FAILED;
    }
    int64_t next_tick = 0;
    int code = EXIT_STOPPED;
    for (;;) {
        fds[0] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = b->event_fd, .events = POLLIN};
        fds[2] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
        bool more = b->ctl_more;
        int n = 3 + outbound_poll_fds(b, fds + 3, who + 3, POLL_MAX - 3, &more);
        int64_t now = bridge_now_ns();
        int wait_ms = next_tick > now && !more ? (int)((next_tick - now) / 1000000) + 1 : 0;
        /* who[] stays valid meanwhile: only this thread frees proxies. A delivery thread
         * may drain one (answer_watch.c) and so may close its client: outbound_drain
         * looks. */
        atomic_store(&b->main_asleep, true);
        pthread_mutex_unlock(&b->main_mu);
        int polled = poll(fds, (nfds_t)n, wait_ms);
        int poll_errno = errno;
        atomic_store(&b->main_asleep, false);
        pthread_mutex_lock(&b->main_mu);
        if (polled < 0 && poll_errno != EINTR) {
            bridge_log(LOG_ERROR, "poll: %s", strerror(poll_errno));
            code = EXIT_FAILED;
            break;
        }
        if (fds[0].revents != 0) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) > 0)
                bridge_log(LOG_INFO, "stopping (%s)", strsignal((int)si.ssi_signo));
            break;
        }
        uint64_t epoch = b->proxies_epoch;
        if (fds[1].revents != 0)
            handle_events(b);
        answer_watch_asked(b); /* drained just below */
        control_drain(b, false);
        if (b->ctl_err != MBX_OK) {
            bridge_log(b->ctl_err == MBX_ESHUTDOWN ? LOG_INFO : LOG_ERROR, "namespace: %s",
                       mbx_strerror(b->ctl_err));
            code = exit_code_of(b->ctl_err);
            break;
        }
        /* who[] is stale when proxies were freed meanwhile (a directory's news): their
         * handles are polled again at once, and what they hold waits a round. */
        for (int i = 3; i < n && epoch == b->proxies_epoch; i++)
            if (fds[i].revents != 0 || who[i]->more)
                outbound_drain(b, who[i]);
        now = bridge_now_ns();
        if (now >= next_tick) {
            next_tick = now + TICK_MS * 1000000LL;
            directory_tick(b, now);
            outbound_tick(b, now);
            if (b->cfg.durable)
                durable_tick(b, now);
            inbound_tick(b, now);
            msg_release_tick(b);
        }
    }
    return code;
}

int main(int argc, char **argv)
{
    static bridge b;
    bridge_options(argc, argv, &b.cfg);
    bridge_log_init(b.cfg.level);
    snprintf(b.self, sizeof b.self, "bridge.%s", b.cfg.node);
    snprintf(b.prefix, sizeof b.prefix, "mbx.%s.", b.cfg.cluster);
    if (getrandom(&b.instance, sizeof b.instance, 0) != sizeof b.instance)
        b.instance = (uint64_t)getpid() << 32 ^ (uint64_t)bridge_now_ns();
    srand((unsigned)b.instance);
    pthread_mutex_init(&b.mu, NULL);
    pthread_mutex_init(&b.rel_mu, NULL);
    /* Held by this thread from now on, but while it sleeps in poll (bridge.h, "Threads"):
     * from before cnats' threads start to the end, teardown included. */
    pthread_mutex_init(&b.main_mu, NULL);
    pthread_mutex_lock(&b.main_mu);

    /* Signals are taken through a descriptor; blocked before any thread starts, so
     * that cnats' threads never run a handler. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sigfd = signalfd(-1, &stops, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0 || events_init(&b) != 0) {
        bridge_log(LOG_ERROR, "cannot make descriptors: %s", strerror(errno));
        return EXIT_FAILED;
    }

    bool stopped = false;
    mbx_err err = connect_control(&b, &stops, &stopped);
    if (stopped)
        return EXIT_STOPPED;
    if (err == MBX_ENAMETAKEN) {
        bridge_log(LOG_ERROR,
                   "%s is taken: another bridge with node name %s serves this "
                   "namespace",
                   b.self, b.cfg.node);
        return EXIT_TAKEN;
    }
    if (err != MBX_OK) {
        bridge_log(LOG_ERROR, "cannot connect to the namespace: %s", mbx_strerror(err));
        return exit_code_of(err);
    }
    if ((b.ctl_msg = mbx_message_new()) == NULL) {
        bridge_log(LOG_ERROR, "out of memory");
        mbx_close(b.ctl);
        return EXIT_FAILED;
    }
    if (topics_start_local(&b) != 0 || nats_link_connect(&b) != NATS_OK ||
        (b.cfg.durable && durable_start(&b) != 0) || topics_start_nats(&b) != 0 ||
        outbound_start(&b) != 0 || inbound_start(&b) != 0) {
        mbx_close(b.ctl);
        return EXIT_FAILED;
    }
    bridge_log(LOG_INFO, "node %s bridges namespace %s as cluster %s (%s)", b.cfg.node,
               b.cfg.ns != NULL ? b.cfg.ns : mbx_default_namespace(), b.cfg.cluster,
               b.cfg.durable ? "durable: JetStream" : "core NATS: at most once");
    if (atomic_load(&b.connected)) {
        if (b.cfg.durable)
            durable_on_connected(&b);
        topics_say_hello(&b);
    }
    directory_start(&b);
    int code = run(&b, sigfd);

    atomic_store(&b.stopping, true);
    directory_stop(&b);
    outbound_close_all(&b);
    if (b.cfg.durable)
        durable_stop();
    /* A delivery thread that did not end may still be sending with the control client:
     * then it is left to the exit (the broker frees its slot). */
    if (nats_link_close(&b)) {
        mbx_close(b.ctl);
        mbx_message_free(b.ctl_msg);
        mbx_message_free(b.ctl_parked);
    }
    return code;
}
