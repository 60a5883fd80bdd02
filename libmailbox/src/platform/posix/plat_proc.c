/* Process identity and exact death notices on Linux: /proc start times and pidfds. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "posix.h"

int64_t plat_pid(void)
{
    return (int64_t)getpid();
}

void plat_yield(void)
{
    sched_yield();
}

_Static_assert(sizeof(sigset_t) <= sizeof(((plat_signal_hold *)0)->saved), "a mask fits");

void plat_signals_hold(plat_signal_hold *h)
{
    if (h->held)
        return;
    sigset_t all;
    sigfillset(&all);
    h->held = pthread_sigmask(SIG_BLOCK, &all, (sigset_t *)(void *)h->saved) == 0;
}

bool plat_signals_came(const plat_signal_hold *h)
{
    sigset_t pending;
    if (!h->held || sigpending(&pending) != 0)
        return false;
    const sigset_t *own = (const sigset_t *)(const void *)h->saved;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&pending, sig) == 1 && sigismember(own, sig) == 0)
            return true;
    return false;
}

void plat_signals_release(plat_signal_hold *h)
{
    if (!h->held)
        return;
    (void)pthread_sigmask(SIG_SETMASK, (const sigset_t *)(const void *)h->saved, NULL);
    h->held = false;
}

void plat_sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int plat_current_cpu(void)
{
    return sched_getcpu();
}

/* The fallback's mix: splitmix64's finaliser, so that nearby inputs give unrelated bits. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t plat_random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r || r == 0)
        r = mix64((uint64_t)plat_now_ns() ^ (uint64_t)getpid() << 40 ^ (uintptr_t)&r);
    return r != 0 ? r : 1;
}

bool posix_task_stat(int64_t id, char *state, uint64_t *start_time)
{
    if (id <= 0 || id > INT32_MAX)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may itself hold spaces or ')':
     * fields are counted from the last ')'. The state is field 3, starttime field 22. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return false;
    *state = p[2];
    int field = 2;
    while (*p != '\0' && field < 22) {
        if (*p == ' ')
            field++;
        p++;
    }
    unsigned long long start = 0;
    if (field != 22 || sscanf(p, "%llu", &start) != 1)
        return false;
    *start_time = (uint64_t)start;
    return true;
}

uint64_t plat_proc_start_time(int64_t pid)
{
    char state;
    uint64_t start;
    return posix_task_stat(pid, &state, &start) ? start : 0;
}

/* /proc/PID/status, open for reading, or NULL (no such process, or a pid out of range). */
static FILE *open_status(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return NULL;
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/status", (long long)pid);
    return fopen(path, "re");
}

bool plat_proc_has_uid(int64_t pid, uint32_t uid)
{
    FILE *f = open_status(pid);
    if (f == NULL)
        return false;
    /* "Uid:\treal\teffective\tsaved\tfs". */
    char line[256];
    bool match = false;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long real, effective;
        if (sscanf(line, "Uid: %lu %lu", &real, &effective) == 2) {
            match = (real == uid && effective == uid) || (real == 0 && effective == 0);
            break;
        }
    }
    fclose(f);
    return match;
}

bool plat_proc_in_group(int64_t pid, uint32_t gid)
{
    FILE *f = open_status(pid);
    if (f == NULL)
        return false;
    /* "Gid:\treal\teffective\tsaved\tfs" and "Groups:\tg1 g2 ...": any of them counts. */
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char *p;
        if (strncmp(line, "Gid:", 4) == 0)
            p = line + 4;
        else if (strncmp(line, "Groups:", 7) == 0)
            p = line + 7;
        else
            continue;
        char *end;
        for (unsigned long g = strtoul(p, &end, 10); end != p; g = strtoul(p, &end, 10)) {
            if (g == gid) {
                found = true;
                break;
            }
            p = end;
        }
    }
    fclose(f);
    return found;
}

bool plat_proc_alive(int64_t pid, uint64_t start_time)
{
    uint64_t now = plat_proc_start_time(pid);
    return now != 0 && now == start_time;
}

mbx_err plat_proc_watch(int64_t pid, plat_handle *out)
{
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0)
        return errno == ESRCH ? MBX_EGONE : plat_map_errno(errno);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    *out = fd;
    return MBX_OK;
}

long plat_raise_handle_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

void plat_kill_self(void)
{
    raise(SIGKILL);
}

void plat_at_fork_child(void (*fn)(void))
{
    pthread_atfork(NULL, NULL, fn);
}

/* An eventfd: one descriptor, readable while its count is not zero, and write() is
 * async-signal-safe. */
mbx_err plat_notifier_create(plat_handle *out)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return plat_map_errno(errno);
    *out = fd;
    return MBX_OK;
}

void plat_notifier_post(plat_handle h)
{
    uint64_t one = 1;
    int saved = errno;
    (void)!write((int)h, &one, sizeof one);
    errno = saved;
}
