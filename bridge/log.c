/*
 * log.c: one line per event on standard error ("mailbox-bridge: LEVEL: text"), which
 * systemd's journal takes as it is. The bridge logs a state once when it changes (NATS
 * connected or lost, a conflict found), never once per message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "bridge.h"

static log_level threshold = LOG_INFO;

void bridge_log_init(log_level level)
{
    threshold = level;
}

void bridge_log(log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > threshold)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line: lines of several threads never interleave. */
    fprintf(stderr, "mailbox-bridge: %s: %s\n", names[level], line);
}

int64_t bridge_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
