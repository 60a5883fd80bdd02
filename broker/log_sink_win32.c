/* log_sink_win32.c: Windows has no syslog; the broker logs to stderr or to --log's file. */
#include <stdio.h>
#include <windows.h>

#include "log_sink.h"

int log_sink_open_system(void)
{
    return -1;
}

void log_sink_system(enum log_level level, const char *ns, const char *text, const char *more)
{
    (void)level;
    (void)ns;
    (void)text;
    (void)more;
}

void log_sink_stamp(char *buf, size_t cap)
{
    SYSTEMTIME t;
    GetLocalTime(&t);
    TIME_ZONE_INFORMATION tz;
    DWORD which = GetTimeZoneInformation(&tz);
    long bias = tz.Bias + (which == TIME_ZONE_ID_DAYLIGHT ? tz.DaylightBias : 0);
    long east = -bias; /* minutes east of UTC */
    snprintf(buf, cap, "%04u-%02u-%02uT%02u:%02u:%02u.%03u%c%02ld:%02ld", t.wYear, t.wMonth, t.wDay,
             t.wHour, t.wMinute, t.wSecond, t.wMilliseconds, east < 0 ? '-' : '+',
             (east < 0 ? -east : east) / 60, (east < 0 ? -east : east) % 60);
}
