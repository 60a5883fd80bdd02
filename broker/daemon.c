/* daemon.c: background start with a readiness hand-shake, sd_notify, pid files. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"

static int report_fd = -1;

static void redirect_to_null(int fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, fd);
        close(null);
    }
}

int daemon_start(void)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(pipefd[1]);
        unsigned char code = 1;
        ssize_t n;
        do {
            n = read(pipefd[0], &code, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) {
            /* The child died before reporting: its own error line is on stderr. */
            int status = 0;
            waitpid(pid, &status, 0);
            _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
        }
        if (code == 0) {
            printf("%ld\n", (long)pid);
            fflush(stdout);
        }
        _exit(code);
    }
    close(pipefd[0]);
    report_fd = pipefd[1];
    setsid();
    /* stdout must not keep a `$(mailboxd -d)` waiting; stderr stays until ready so start-up
     * errors reach the terminal. */
    redirect_to_null(STDIN_FILENO);
    redirect_to_null(STDOUT_FILENO);
    return 0;
}

static void report(unsigned char code)
{
    if (report_fd < 0)
        return;
    ssize_t n;
    do {
        n = write(report_fd, &code, 1);
    } while (n < 0 && errno == EINTR);
    close(report_fd);
    report_fd = -1;
}

void daemon_ready(void)
{
    if (report_fd < 0)
        return;
    redirect_to_null(STDERR_FILENO);
    report(0);
}

void daemon_failed(int code)
{
    report((unsigned char)code);
}

void daemon_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= 108)
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

void daemon_notify_ready(const char *status)
{
    char msg[256];
    snprintf(msg, sizeof msg, "READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), status);
    daemon_notify(msg);
}

long long daemon_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (usec == NULL || (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()))
        return 0;
    long long v = strtoll(usec, NULL, 10);
    return v > 0 ? v : 0;
}

/* Makes path's folders (mode 0755 for root's, 0700 otherwise); 0 or -1. */
static int make_dirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, mode);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

int daemon_log_fallback(const char *ns, char *path, size_t cap)
{
    int n;
    if (geteuid() == 0) {
        n = snprintf(path, cap, "/var/log/mailbox/%s.log", ns);
    } else {
        const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (state != NULL && state[0] == '/')
            n = snprintf(path, cap, "%s/mailbox/%s.log", state, ns);
        else if (home != NULL && home[0] == '/')
            n = snprintf(path, cap, "%s/.local/state/mailbox/%s.log", home, ns);
        else
            return -1;
    }
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return make_dirs(path, geteuid() == 0 ? 0755 : 0700);
}
