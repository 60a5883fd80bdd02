/* harness.c: see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_TRACKED 256

static pid_t tracked[MAX_TRACKED];
static int n_tracked;
static char namespaces[32][64];
static int n_namespaces;
static bool cleanup_registered;

static void track(pid_t pid)
{
    if (n_tracked < MAX_TRACKED)
        tracked[n_tracked++] = pid;
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < n_tracked; i++)
        if (tracked[i] == pid)
            tracked[i] = tracked[--n_tracked];
}

/* Removes a directory and the entries in it (a wake directory: sockets, no subfolders). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    (void)rmdir(path);
}

/* The runtime directory of docs/architecture.md, for this user. */
static void runtime_dir(char *out, size_t cap)
{
    const char *env = getenv("MBX_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (env != NULL && env[0] != '\0')
        snprintf(out, cap, "%s", env);
    else if (geteuid() == 0)
        snprintf(out, cap, "/run/mailbox");
    else if (xdg != NULL && xdg[0] == '/')
        snprintf(out, cap, "%s/mailbox", xdg);
    else
        snprintf(out, cap, "/tmp/mailbox-%u", (unsigned)geteuid());
}

unsigned harness_socket_addr(const char *ns, struct sockaddr_un *addr)
{
    char dir[64];
    runtime_dir(dir, sizeof dir);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    snprintf(addr->sun_path, sizeof addr->sun_path, "%s/%s.sock", dir, ns);
    return (unsigned)(offsetof(struct sockaddr_un, sun_path) + strlen(addr->sun_path) + 1);
}

const char *harness_runtime_file(const char *ns, const char *ext, char *buf, size_t cap)
{
    char dir[64];
    runtime_dir(dir, sizeof dir);
    snprintf(buf, cap, "%s/%s.%s", dir, ns, ext);
    return buf;
}

/* A connection to ns's keeper endpoint, or -1. */
static int keeper_connect(const char *ns)
{
    char dir[64];
    runtime_dir(dir, sizeof dir);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s.keep", dir, ns);
    if (len < 0 || (size_t)len >= sizeof addr.sun_path)
        return -1; /* no such path: no keeper to reach */
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

pid_t harness_keeper_probe(const char *ns)
{
    int fd = keeper_connect(ns);
    if (fd < 0)
        return 0;
    int64_t broker = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    /* 'P' is KEEPER_PROBE (libmailbox/src/proto.h); the answer is the broker's pid. */
    if (send(fd, "P", 1, MSG_NOSIGNAL) != 1 || poll(&pfd, 1, 5000) != 1 ||
        recv(fd, &broker, sizeof broker, 0) != (ssize_t)sizeof broker)
        broker = 0;
    close(fd);
    return (pid_t)broker;
}

pid_t harness_keeper_pid(const char *ns)
{
    int fd = keeper_connect(ns);
    pid_t pid = 0;
    if (fd >= 0) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
            pid = cred.pid;
    }
    if (fd >= 0)
        close(fd);
    return pid;
}

/* Kills the children of pid (a broker's keeper): they are reparented once pid dies. The
 * keeper socket cannot name a keeper (its listener is made by the broker before the fork,
 * so SO_PEERCRED gives the broker's pid), and a keeper whose broker was killed keeps the
 * segment while any of its clients lives, the test itself included. */
static void kill_children(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    int child;
    while (fscanf(f, "%d", &child) == 1)
        kill(child, SIGKILL);
    fclose(f);
}

void harness_cleanup(void)
{
    for (int i = 0; i < n_tracked; i++) {
        kill(tracked[i], SIGSTOP); /* so that it forks nothing more */
        kill_children(tracked[i]);
        kill(tracked[i], SIGKILL);
        waitpid(tracked[i], NULL, 0);
    }
    n_tracked = 0;
    for (int i = 0; i < n_namespaces; i++) {
        char path[96];
        snprintf(path, sizeof path, "/mailbox.%.63s", namespaces[i]);
        shm_unlink(path);
        /* What a killed broker left: its keeper, and its files in the runtime directory. */
        pid_t keeper = harness_keeper_pid(namespaces[i]);
        if (keeper > 0)
            kill(keeper, SIGKILL);
        char dir[64], file[160];
        runtime_dir(dir, sizeof dir);
        snprintf(file, sizeof file, "%s/%.63s.keep", dir, namespaces[i]);
        unlink(file);
        snprintf(file, sizeof file, "%s/%.63s.sock", dir, namespaces[i]);
        unlink(file);
        snprintf(file, sizeof file, "%s/%.63s.lock", dir, namespaces[i]);
        unlink(file);
        snprintf(file, sizeof file, "%s/%.63s.wake", dir, namespaces[i]);
        remove_tree(file);
    }
    n_namespaces = 0;
}

void harness_namespace(char *ns, const char *tag)
{
    static int counter;
    const char *run = getenv("MBX_TEST_TAG");
    snprintf(ns, 64, "mbxtest-%.8s-%.12s-%ld-%d", run != NULL ? run : "local", tag, (long)getpid(),
             ++counter);
    if (n_namespaces < 32)
        snprintf(namespaces[n_namespaces++], 64, "%s", ns);
    if (!cleanup_registered) {
        atexit(harness_cleanup);
        cleanup_registered = true;
    }
}

long long harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gauge_read {
    const char *name;
    harness_gauge gauge;
    uint64_t value;
};

static int read_gauge(const mbx_client_info *ci, void *arg)
{
    struct gauge_read *g = arg;
    if (strcmp(ci->name, g->name) != 0)
        return 0;
    g->value = g->gauge == HARNESS_SENDERS_ASLEEP ? ci->senders_waiting : ci->waiting;
    return 1;
}

static int find_visit(const mbx_client_info *ci, void *arg)
{
    mbx_client_info *want = arg;
    if (strcmp(ci->name, want->name) != 0)
        return 0;
    *want = *ci;
    return 1;
}

bool harness_find_client(const char *ns, const char *name, mbx_client_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, find_visit, out), MBX_OK);
    return out->pid != 0;
}

void harness_wait_gauge(const char *ns, const char *name, harness_gauge gauge, uint64_t at_least,
                        int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    struct gauge_read g = {.name = name, .gauge = gauge};
    for (;;) {
        mbx_namespace_info info;
        g.value = 0;
        assert_int_equal(mbx_inspect(ns, &info, read_gauge, &g), MBX_OK);
        if (g.value >= at_least)
            return;
        if (harness_now_ms() >= deadline)
            fail_msg("%s: %s is %llu after %d ms, expected at least %llu", name,
                     gauge == HARNESS_SENDERS_ASLEEP ? "senders asleep" : "messages waiting",
                     (unsigned long long)g.value, timeout_ms, (unsigned long long)at_least);
        usleep(2000);
    }
}

/* In a fresh child: die with the parent, and never outlive timeout_s. */
static void bound_child(unsigned timeout_s)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(timeout_s);
}

static int collect_args(const char **argv, int first, va_list ap)
{
    int n = first;
    const char *a;
    while (n < 30 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = a;
    argv[n] = NULL;
    return n;
}

pid_t harness_start_broker(const char *ns, ...)
{
    const char *argv[32] = {MAILBOXD_PATH, "-N", ns};
    va_list ap;
    va_start(ap, ns);
    collect_args(argv, 3, ap);
    va_end(ap);

    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(sock >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char notify[64];
    snprintf(notify, sizeof notify, "@mbxtest-notify-%ld-%s", (long)getpid(), ns);
    snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "%s", notify + 1);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(notify));
    assert_int_equal(bind(sock, (struct sockaddr *)&addr, len), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bound_child(120);
        setenv("NOTIFY_SOCKET", notify, 1);
        execv(MAILBOXD_PATH, (char *const *)argv);
        _exit(127);
    }
    track(pid);
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int ready = poll(&pfd, 1, 10000);
    char buf[128] = {0};
    if (ready == 1)
        (void)!read(sock, buf, sizeof buf - 1);
    close(sock);
    if (strstr(buf, "READY=1") == NULL)
        fail_msg("broker for %s did not get ready", ns);
    return pid;
}

int harness_run_broker(char *err, size_t cap, ...)
{
    const char *argv[32] = {MAILBOXD_PATH};
    va_list ap;
    va_start(ap, cap);
    collect_args(argv, 1, ap);
    va_end(ap);
    int pipefd[2];
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bound_child(10);
        dup2(pipefd[1], STDERR_FILENO);
        execv(MAILBOXD_PATH, (char *const *)argv);
        _exit(127);
    }
    track(pid);
    close(pipefd[1]);
    size_t got = 0;
    ssize_t n;
    char sink[256];
    while ((n = read(pipefd[0], err != NULL && got + 1 < cap ? err + got : sink,
                     err != NULL && got + 1 < cap ? cap - 1 - got : sizeof sink)) > 0)
        if (err != NULL && got + 1 < cap)
            got += (size_t)n;
    if (err != NULL && cap > 0)
        err[got] = '\0';
    close(pipefd[0]);
    return harness_wait(pid, 10000);
}

int harness_wait(pid_t pid, int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (harness_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            untrack(pid);
            return -1;
        }
        usleep(2000);
    }
    untrack(pid);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int harness_stop(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    return harness_wait(pid, timeout_ms);
}

pid_t harness_spawn(int (*fn)(void *arg), void *arg, unsigned timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bound_child(timeout_s);
        _exit(fn(arg));
    }
    track(pid);
    return pid;
}

struct idle_client {
    const char *ns;
    const char *name;
    int linger_ms;
    int report_fd;
};

static int idle_client_main(void *p)
{
    const struct idle_client *a = p;
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = a->ns;
    o.client_name = a->name;
    o.linger_ms = a->linger_ms;
    mbx_client *c;
    if (mbx_connect(&o, &c) != MBX_OK)
        return 10;
    (void)!write(a->report_fd, "c", 1);
    for (;;)
        pause();
}

pid_t harness_spawn_idle_client(const char *ns, const char *name, int linger_ms)
{
    int up[2];
    assert_int_equal(pipe(up), 0);
    struct idle_client a = {ns, name, linger_ms, up[1]};
    pid_t pid = harness_spawn(idle_client_main, &a, 60);
    close(up[1]);
    char b;
    ssize_t n = read(up[0], &b, 1);
    close(up[0]);
    if (n != 1)
        fail_msg("client %s could not connect to %s", name, ns);
    return pid;
}

static mbx_err try_connect(const char *ns, const char *name, mbx_client **out)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    *out = NULL;
    return mbx_connect(&o, out);
}

mbx_client *harness_child_connect(const char *ns, const char *name)
{
    mbx_client *c;
    return try_connect(ns, name, &c) == MBX_OK ? c : NULL;
}

mbx_client *harness_connect(const char *ns, const char *name)
{
    mbx_client *c;
    mbx_err err = try_connect(ns, name, &c);
    if (err != MBX_OK)
        fail_msg("connect %s as %s: %s", ns, name ? name : "(anonymous)", mbx_strerror(err));
    return c;
}

mbx_err harness_connect_retry(const char *ns, const char *name, mbx_err retry_on, int timeout_ms,
                              mbx_client **out)
{
    long long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        mbx_err err = try_connect(ns, name, out);
        if (err != retry_on || harness_now_ms() >= deadline)
            return err;
        usleep(5000);
    }
}
