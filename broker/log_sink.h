/* log_sink.h: what the log needs from the system: a system log and local time stamps. */
#ifndef BROKER_LOG_SINK_H
#define BROKER_LOG_SINK_H

#include <stdarg.h>
#include <stddef.h>

#include "log.h"

/* Opens the system log (syslog); -1 where there is none (Windows: use --log). */
int log_sink_open_system(void);
void log_sink_system(enum log_level level, const char *fmt, va_list ap);
/* The local time now as "YYYY-MM-DDTHH:MM:SS". */
void log_sink_stamp(char *buf, size_t cap);

#endif
