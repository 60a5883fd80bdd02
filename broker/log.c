/* log.c: one line per event, to stderr, a file (reopened on SIGHUP) or syslog. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "log_sink.h"
#include "platform/platform.h"

static int max_level = LOG_LEVEL_INFO;
static FILE *target; /* NULL: stderr */
static char target_path[4096];
static int to_syslog;
static char ns_name[MBX_NAME_MAX + 1] = "-";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_verbosity(int verbosity)
{
    max_level = verbosity > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
}

void log_set_level(enum log_level level)
{
    max_level = (int)level;
}

int log_parse_level(const char *name)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_set_namespace(const char *ns)
{
    snprintf(ns_name, sizeof ns_name, "%s", ns);
}

static FILE *open_append(const char *path)
{
    FILE *f = fopen(path, "a");
    if (f != NULL)
        setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

int log_open_file(const char *path)
{
    FILE *f = open_append(path);
    if (f == NULL)
        return -1;
    if (target != NULL)
        fclose(target);
    target = f;
    snprintf(target_path, sizeof target_path, "%s", path);
    to_syslog = 0;
    return 0;
}

int log_reopen(void)
{
    if (target == NULL)
        return 0; /* stderr or syslog: nothing to reopen */
    FILE *f = open_append(target_path);
    if (f == NULL)
        return -1; /* keep writing where we were: a line lost is worse than a late rotation */
    fclose(target);
    target = f;
    return 0;
}

int log_use_syslog(void)
{
    if (log_sink_open_system() != 0)
        return -1;
    to_syslog = 1;
    return 0;
}

static void log_line(enum log_level level, unsigned long suppressed, const char *fmt, va_list ap)
{
    char text[1024];
    vsnprintf(text, sizeof text, fmt, ap);
    char more[64] = "";
    if (suppressed > 0)
        snprintf(more, sizeof more, " (%lu more like this in the last second)", suppressed);
    if (to_syslog) {
        log_sink_system(level, ns_name, text, more);
        return;
    }
    /* One greppable line: time (RFC 3339, milliseconds, zone), program[pid], namespace,
     * level, message. */
    char stamp[40];
    log_sink_stamp(stamp, sizeof stamp);
    FILE *out = target != NULL ? target : stderr;
    fprintf(out, "%s mailboxd[%lld] %s %s: %s%s\n", stamp, (long long)plat_pid(), ns_name,
            level_names[level], text, more);
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
