/* log.c: timestamped log lines; the target is chosen once at start-up. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "log_sink.h"
#include "platform/platform.h"

static int max_level = LOG_LEVEL_INFO;
static FILE *target; /* NULL: stderr */
static int to_syslog;

void log_set_verbosity(int verbosity)
{
    max_level = verbosity > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
}

int log_redirect(const char *path, int use_syslog)
{
    if (path != NULL) {
        FILE *f = fopen(path, "a");
        if (f == NULL)
            return -1;
        setvbuf(f, NULL, _IOLBF, 0);
        target = f;
        return 0;
    }
    if (use_syslog && log_sink_open_system() == 0)
        to_syslog = 1;
    return 0;
}

static void log_line(enum log_level level, unsigned long suppressed, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (to_syslog) {
        log_sink_system(level, fmt, ap);
        return;
    }
    FILE *out = target != NULL ? target : stderr;
    char stamp[32];
    log_sink_stamp(stamp, sizeof stamp);
    fprintf(out, "%s mailboxd[%lld] %s: ", stamp, (long long)plat_pid(), names[level]);
    vfprintf(out, fmt, ap);
    if (suppressed > 0)
        fprintf(out, " (%lu more like this in the last second)", suppressed);
    fputc('\n', out);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, 0, fmt, ap);
    va_end(ap);
}

/* Per key: when its last line went out, and how many were held back since. */
#define LIMIT_KEYS 16
static struct {
    const char *key;
    int64_t last_ns;
    unsigned long held;
} limits[LIMIT_KEYS];

void log_limited(enum log_level level, const char *key, const char *fmt, ...)
{
    if ((int)level > max_level)
        return;
    int i = 0;
    while (i < LIMIT_KEYS && limits[i].key != NULL && strcmp(limits[i].key, key) != 0)
        i++;
    if (i == LIMIT_KEYS)
        i = LIMIT_KEYS - 1; /* more kinds than slots: the last one is shared */
    int64_t now = plat_now_ns();
    if (limits[i].key != NULL && now - limits[i].last_ns < 1000000000LL) {
        limits[i].held++;
        return;
    }
    unsigned long held = limits[i].key != NULL ? limits[i].held : 0;
    limits[i].key = key;
    limits[i].last_ns = now;
    limits[i].held = 0;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, held, fmt, ap);
    va_end(ap);
}
