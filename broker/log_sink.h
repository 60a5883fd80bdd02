/* log_sink.h: what the log needs from the system: a system log and local time stamps. */
#ifndef BROKER_LOG_SINK_H
#define BROKER_LOG_SINK_H

#include <stdarg.h>
#include <stddef.h>

#include "log.h"

/* Opens the system log (syslog); -1 where there is none: no /dev/log (a container),
 * Windows (use --log). */
int log_sink_open_system(void);
/* One record: "<ns> <text><more>" at level. */
void log_sink_system(enum log_level level, const char *ns, const char *text, const char *more);
/* The local time now, RFC 3339 with milliseconds and the zone:
 * "YYYY-MM-DDTHH:MM:SS.mmm+hh:mm". */
void log_sink_stamp(char *buf, size_t cap);

#endif
