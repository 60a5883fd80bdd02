/* log_sink_posix.c: syslog and local time on POSIX systems. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "log_sink.h"

int log_sink_open_system(void)
{
    /* syslog() drops lines silently without a listener: a container often has none. */
    struct stat st;
    if (stat("/dev/log", &st) != 0 || !S_ISSOCK(st.st_mode))
        return -1;
    openlog("mailboxd", LOG_PID, LOG_DAEMON);
    return 0;
}

void log_sink_system(enum log_level level, const char *ns, const char *text, const char *more)
{
    static const int syslog_levels[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    syslog(syslog_levels[level], "%s %s%s", ns, text, more);
}

void log_sink_stamp(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char date[32], zone[8];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof zone, "%z", &tm); /* +hhmm */
    snprintf(buf, cap, "%s.%03ld%.3s:%.2s", date, ts.tv_nsec / 1000000, zone, zone + 3);
}
