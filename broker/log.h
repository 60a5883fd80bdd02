/* log.h: the broker's log: one line per event, to stderr, a file, or syslog. */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

/* Format strings are checked against the C library in use (gnu_printf with mingw-w64's
 * C99 stdio; see CMakeLists.txt). */
#ifndef MBX_PRINTF_ARCHETYPE
#define MBX_PRINTF_ARCHETYPE printf
#endif

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* verbosity 0 logs up to INFO, 1 and more everything. */
void log_set_verbosity(int verbosity);
/* Sends further lines to path (append), or to syslog when path is NULL. Returns 0 or -1. */
int log_redirect(const char *path, int use_syslog);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(MBX_PRINTF_ARCHETYPE, 2, 3)));

/* As log_msg, but at most one line a second per key (a string naming the kind of event):
 * what a flood of bad connections triggers cannot flood the log. The next line that goes
 * out says how many were held back. */
void log_limited(enum log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(MBX_PRINTF_ARCHETYPE, 3, 4)));

#endif
