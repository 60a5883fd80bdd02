/*
 * daemon_win32.c: Windows has no fork and no NOTIFY_SOCKET. Running in the background is
 * the job of `start /b`, a scheduled task or a service wrapper there, so -d is refused
 * with a clear message (see docs/windows.md).
 */
#include <stdio.h>

#include "daemon.h"

int daemon_start(void)
{
    fprintf(stderr, "mailboxd: -d is not available on Windows; start mailboxd with "
                    "'start /b' or as a service instead\n");
    return -1;
}

void daemon_ready(void) {}

void daemon_failed(int code)
{
    (void)code;
}

void daemon_notify(const char *state)
{
    (void)state;
}

void daemon_notify_ready(const char *status)
{
    (void)status;
}

long long daemon_watchdog_usec(void)
{
    return 0;
}

int daemon_log_fallback(const char *ns, char *path, size_t cap)
{
    (void)ns;
    (void)path;
    (void)cap;
    return -1;
}
