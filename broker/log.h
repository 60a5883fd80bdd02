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
/* Logs up to level (--log-level). */
void log_set_level(enum log_level level);
/* "error", "warn", "info", "debug" to a level, or -1. */
int log_parse_level(const char *name);
/* The namespace every line names. */
void log_set_namespace(const char *ns);
/* Sends further lines to path (appended; remembered for log_reopen). 0, or -1 (errno). */
int log_open_file(const char *path);
/* Opens the file again (SIGHUP: after a rotation). 0, or -1 (errno; the old one stays). */
int log_reopen(void);
/* Sends further lines to the system log. 0, or -1 where there is none (no /dev/log). */
int log_use_syslog(void);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(MBX_PRINTF_ARCHETYPE, 2, 3)));

/* As log_msg, but at most one line a second per key (a string naming the kind of event):
 * what a flood of bad connections triggers cannot flood the log. The next line that goes
 * out says how many were held back. */
void log_limited(enum log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(MBX_PRINTF_ARCHETYPE, 3, 4)));

#endif
