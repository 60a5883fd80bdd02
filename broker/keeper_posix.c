/* keeper_posix.c: the process that holds a namespace's segment while no broker runs; see
 * keeper.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "keeper.h"
#include "proto.h"
#include "subs.h"

/* How long a broker waits for the keeper it forked to say it is ready. */
#define KEEPER_READY_MS 10000

/* The broker's side: its link to the keeper, and the keeper's pid when we forked it. */
static int link_fd = -1;
static pid_t child_keeper;

/* ---- the keeper process ------------------------------------------------------------- */

/* True while something in the segment may still be wanted by a broker to come: a client
 * that lives, a mailbox that lingers, or a retained message (api.md promises that these
 * outlive a broker restart, and no client need be connected for that: a namespace of
 * retained configuration is often idle). Everything read is checked like anywhere else;
 * what cannot be read is not worth keeping. */
static bool worth_keeping(const seg_view *v)
{
    /* Read without the topics lock (a keeper takes no lock a member could hold): when no
     * client lives, nobody publishes, and while one does the segment is kept anyway. */
    if (subs_retained_count(v) > 0)
        return true;
    int64_t now_us = plat_wall_us();
    for (uint32_t i = 0; i < v->slots; i++) {
        seg_dir_entry *e = segment_dir(v, i);
        if (atomic_load(&e->state) != SLOT_ACTIVE)
            continue;
        int64_t pid = atomic_load(&e->pid);
        if (pid != 0 && plat_proc_alive(pid, atomic_load(&e->start_time)))
            return true;
        if (pid == 0 && atomic_load(&e->linger_until_us) > now_us)
            return true;
    }
    return false;
}

/* Closes every descriptor but those in keep[0..2]. */
static void close_all_but(int keep[3])
{
    for (int i = 0; i < 3; i++) /* sort the three */
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned from = 0;
    for (int i = 0; i < 3; i++) {
        if ((unsigned)keep[i] > from)
            close_range(from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    close_range(from, ~0u, 0);
}

/* Serves one connection on the keeper's endpoint. */
static void serve(int conn, int segment, int64_t *last_broker, int *link)
{
    int64_t pid = 0;
    uint32_t uid = UINT32_MAX;
    char op = 0;
    size_t got = 0;
    if (plat_chan_peer(conn, &pid, &uid) != MBX_OK || uid != (uint32_t)geteuid() ||
        plat_chan_recv(conn, &op, 1, &got, plat_deadline(1000)) != MBX_OK || got != 1) {
        close(conn);
        return;
    }
    if (op == KEEPER_PROBE) {
        (void)plat_chan_send(conn, last_broker, sizeof *last_broker);
        close(conn);
    } else if (op == KEEPER_ADOPT && *link < 0) {
        char yes = KEEPER_ADOPT;
        if (plat_chan_send_handle(conn, &yes, 1, segment) == MBX_OK) {
            *link = conn;
            *last_broker = pid;
        } else {
            close(conn);
        }
    } else {
        close(conn); /* a second broker while one is linked cannot be: it holds no lock */
    }
}

static volatile sig_atomic_t keeper_stop;

static void on_term(int sig)
{
    (void)sig;
    keeper_stop = 1;
}

static void keeper_main(const char *ns, int listener, int link, int segment, size_t size,
                        int64_t broker)
{
    setsid();
    signal(SIGINT, SIG_IGN); /* a terminal's Ctrl+C is for the broker */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM: whoever sends it wants the keeper gone; it leaves no socket file behind. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    (void)prctl(PR_SET_NAME, "mailboxd-keep");
    int keep[3] = {listener, link, segment};
    FAULT_POINT("keeper.inherited"); /* still holding the broker's lock and socket */
    close_all_but(keep);
    /* The broker waits for this before it says it is ready: until now this process held
     * copies of the broker's liveness lock and socket, and a broker killed meanwhile
     * would have looked alive to the next one. */
    char ready = KEEPER_READY;
    if (send(link, &ready, 1, MSG_NOSIGNAL) != 1)
        _exit(1);
    seg_view v;
    void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, segment, 0);
    if (base == MAP_FAILED || segment_validate(base, size, &v) != MBX_OK)
        _exit(1);
    int64_t last_broker = broker;
    while (!keeper_stop) {
        struct pollfd pfd[2] = {{.fd = listener, .events = POLLIN}, {.fd = link, .events = POLLIN}};
        int n = poll(pfd, link >= 0 ? 2 : 1, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (n < 0)
            continue; /* a signal: keeper_stop says whether to go */
        if (link >= 0 && pfd[1].revents != 0) {
            char b = 0;
            ssize_t r = recv(link, &b, 1, MSG_DONTWAIT);
            if (r == 1 && b == KEEPER_BYE)
                break;
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(link); /* the broker died: keep the segment for the next one */
                link = -1;
            }
        }
        if (pfd[0].revents != 0) {
            int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            if (conn >= 0)
                serve(conn, segment, &last_broker, &link);
        }
        if (link < 0 && !worth_keeping(&v))
            break;
        /* Our endpoint can be removed like the broker's (rm, a cleaner of runtime
         * directories): without it a broker to come would start a fresh namespace. */
        bool remade = false;
        plat_handle l = listener;
        if (plat_keep_relisten(ns, &l, &remade) == MBX_OK && remade)
            listener = (int)l;
    }
    plat_keep_unlink(ns);
    if (link < 0)
        plat_chan_remove_stale(ns); /* a killed broker's socket and lock, if none runs */
    _exit(0);
}

/* ---- the broker's side -------------------------------------------------------------- */

int keeper_start(const char *ns, const plat_shm *shm)
{
    plat_handle listener;
    int pair[2];
    if (plat_keep_listen(ns, &listener) != MBX_OK) {
        fprintf(stderr, "mailboxd: cannot make the keeper's endpoint of '%s'\n", ns);
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        plat_handle_close(listener);
        fprintf(stderr, "mailboxd: cannot start the keeper: %s\n", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        keeper_main(ns, (int)listener, pair[1], (int)shm->handle, shm->size, getppid());
    plat_handle_close(listener);
    close(pair[1]);
    if (pid < 0) {
        close(pair[0]);
        fprintf(stderr, "mailboxd: cannot start the keeper: %s\n", strerror(errno));
        return -1;
    }
    /* Its READY: it no longer holds our lock and socket (keeper_main). */
    struct pollfd pfd = {.fd = pair[0], .events = POLLIN};
    char ready = 0;
    int n;
    do {
        n = poll(&pfd, 1, KEEPER_READY_MS);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || recv(pair[0], &ready, 1, MSG_DONTWAIT) != 1 || ready != KEEPER_READY) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        close(pair[0]);
        fprintf(stderr, "mailboxd: the keeper did not start\n");
        return -1;
    }
    link_fd = pair[0];
    child_keeper = pid;
    return 0;
}

mbx_err keeper_adopt(const char *ns, plat_shm *shm)
{
    plat_handle h;
    int64_t keeper_pid;
    mbx_err err = plat_keep_connect(ns, plat_deadline(2000), &h, &keeper_pid);
    if (err != MBX_OK)
        return err;
    char op = KEEPER_ADOPT, answer = 0;
    size_t got = 0;
    plat_handle segment = PLAT_NO_HANDLE;
    err = plat_chan_send(h, &op, 1);
    if (err == MBX_OK)
        err = plat_chan_recv_handle(h, &answer, 1, &got, plat_deadline(2000), &segment);
    if (err == MBX_OK && (got != 1 || answer != KEEPER_ADOPT || segment == PLAT_NO_HANDLE))
        err = MBX_ENOBROKER;
    if (err == MBX_OK) {
        /* Keep our own copy of the handle: clients get it from us. */
        int copy = fcntl((int)segment, F_DUPFD_CLOEXEC, 0);
        err = copy < 0 ? MBX_ESYSTEM : plat_shm_map(segment, false, SEG_MAX_TOTAL, shm);
        segment = PLAT_NO_HANDLE;
        if (err == MBX_OK) {
            shm->has_handle = true;
            shm->handle = copy;
        } else if (copy >= 0) {
            close(copy);
        }
    }
    if (segment != PLAT_NO_HANDLE)
        close((int)segment);
    if (err != MBX_OK) {
        plat_handle_close(h);
        return err;
    }
    link_fd = (int)h;
    return MBX_OK;
}

void keeper_release(const char *ns)
{
    (void)ns;
    if (link_fd >= 0) {
        char bye = KEEPER_BYE;
        (void)send(link_fd, &bye, 1, MSG_NOSIGNAL);
        close(link_fd);
        link_fd = -1;
    }
    if (child_keeper > 0) {
        (void)waitpid(child_keeper, NULL, 0);
        child_keeper = 0;
    }
}
