/* run_command_posix.c: see run_command.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_command.h"

int run_command(const char *cmd, const char *input, size_t len, char *out, size_t cap,
                size_t *out_len, int *truncated)
{
    *out_len = 0;
    int in[2], res[2];
    *truncated = 0;
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(res, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(res[0]), close(res[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(res[1], 1);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(res[1]);
    /* Feed the input and read the output together, so that neither pipe can fill up and
     * stall the other side. */
    size_t written = 0, got = 0;
    int writing = 1;
    if (len == 0) {
        close(in[1]);
        writing = 0;
    }
    for (;;) {
        struct pollfd pfd[2] = {{.fd = res[0], .events = POLLIN}, {.fd = in[1], .events = POLLOUT}};
        if (poll(pfd, writing ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (writing && pfd[1].revents != 0) {
            ssize_t n = write(in[1], input + written, len - written);
            if (n > 0)
                written += (size_t)n;
            if (n < 0 || written == len) { /* done, or the command does not read: fine */
                close(in[1]);
                writing = 0;
            }
        }
        if (pfd[0].revents != 0) {
            char buf[4096];
            ssize_t n = read(res[0], buf, sizeof buf);
            if (n <= 0)
                break;
            size_t keep = got + 1 < cap ? cap - 1 - got : 0;
            if ((size_t)n > keep)
                *truncated = 1;
            memcpy(out + got, buf, (size_t)n < keep ? (size_t)n : keep);
            got += (size_t)n < keep ? (size_t)n : keep;
        }
    }
    if (writing)
        close(in[1]);
    close(res[0]);
    out[got] = '\0';
    *out_len = got;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
