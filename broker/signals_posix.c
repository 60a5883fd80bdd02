/* signals_posix.c: the handler only sets a flag and posts a notifier; the event loop
 * wakes on the notifier and acts on the flag. */
#include <signal.h>
#include <string.h>

#include "signals.h"

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reopen_asked;
static plat_handle wake_handle = PLAT_NO_HANDLE;

static void on_stop(int sig)
{
    stop_signal = sig;
    if (wake_handle != PLAT_NO_HANDLE)
        plat_notifier_post(wake_handle);
}

static void on_hup(int sig)
{
    (void)sig;
    reopen_asked = 1;
    if (wake_handle != PLAT_NO_HANDLE)
        plat_notifier_post(wake_handle);
}

int signals_install(plat_handle *wake)
{
    if (plat_notifier_create(&wake_handle) != MBX_OK)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    *wake = wake_handle;
    return 0;
}

bool signals_take_reopen(void)
{
    if (!reopen_asked)
        return false;
    reopen_asked = 0;
    return true;
}

bool signals_stop_requested(void)
{
    return stop_signal != 0;
}

int signals_last(void)
{
    return stop_signal;
}
