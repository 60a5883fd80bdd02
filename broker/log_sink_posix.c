/* log_sink_posix.c: syslog and local time on POSIX systems. */
#include <syslog.h>
#include <time.h>

#include "log_sink.h"

int log_sink_open_system(void)
{
    openlog("mailboxd", LOG_PID, LOG_DAEMON);
    return 0;
}

void log_sink_system(enum log_level level, const char *fmt, va_list ap)
{
    static const int syslog_levels[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    vsyslog(syslog_levels[level], fmt, ap);
}

void log_sink_stamp(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
}
