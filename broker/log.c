/* log.c: timestamped log lines; the target is chosen once at start-up. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

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
        FILE *f = fopen(path, "ae");
        if (f == NULL)
            return -1;
        setvbuf(f, NULL, _IOLBF, 0);
        target = f;
        return 0;
    }
    if (use_syslog) {
        openlog("mailboxd", LOG_PID, LOG_DAEMON);
        to_syslog = 1;
    }
    return 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int syslog_levels[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if ((int)level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (to_syslog) {
        vsyslog(syslog_levels[level], fmt, ap);
    } else {
        FILE *out = target != NULL ? target : stderr;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
        fprintf(out, "%s mailboxd[%ld] %s: ", stamp, (long)getpid(), names[level]);
        vfprintf(out, fmt, ap);
        fputc('\n', out);
    }
    va_end(ap);
}
