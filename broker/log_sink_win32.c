/* log_sink_win32.c: Windows has no syslog; the broker logs to stderr or to --log's file. */
#include <time.h>

#include "log_sink.h"

int log_sink_open_system(void)
{
    return -1;
}

void log_sink_system(enum log_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
}

void log_sink_stamp(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_s(&tm, &now) != 0 || strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        buf[0] = '\0';
}
