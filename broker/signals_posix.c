/* signals_posix.c: the handler only sets a flag and writes a byte to a self-pipe; the
 * event loop wakes on the pipe and acts on the flag. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"

static volatile sig_atomic_t stop_signal;
static int wake_pipe[2] = {-1, -1};

static void on_stop(int sig)
{
    int saved = errno;
    stop_signal = sig;
    if (wake_pipe[1] >= 0)
        (void)!write(wake_pipe[1], "x", 1);
    errno = saved;
}

int signals_install(plat_handle *wake)
{
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    *wake = wake_pipe[0];
    return 0;
}

bool signals_stop_requested(void)
{
    return stop_signal != 0;
}

int signals_last(void)
{
    return stop_signal;
}
