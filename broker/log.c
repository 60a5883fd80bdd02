/* log.c: timestamped log lines; the target is chosen once at start-up. */
#include <stdarg.h>
#include <stdio.h>

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

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if ((int)level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (to_syslog) {
        log_sink_system(level, fmt, ap);
    } else {
        FILE *out = target != NULL ? target : stderr;
        char stamp[32];
        log_sink_stamp(stamp, sizeof stamp);
        fprintf(out, "%s mailboxd[%lld] %s: ", stamp, (long long)plat_pid(), names[level]);
        vfprintf(out, fmt, ap);
        fputc('\n', out);
    }
    va_end(ap);
}
