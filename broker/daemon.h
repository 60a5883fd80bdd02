/* daemon.h: running in the background and telling whoever started us that we are ready. */
#ifndef BROKER_DAEMON_H
#define BROKER_DAEMON_H

#include <stddef.h>

/*
 * Forks. The parent waits until the child reports (daemon_ready() or daemon_failed()),
 * prints the child's pid and exits 0 on ready, or exits with the child's code; it never
 * returns. The child returns 0, in a new session, with stdin and stdout on /dev/null.
 * Returns -1 when the fork itself fails.
 */
int daemon_start(void);
/* In the child: detaches stderr (to /dev/null) and releases the waiting parent. */
void daemon_ready(void);
/* In the child: releases the waiting parent with exit code `code`. */
void daemon_failed(int code);

/* Tells a service manager that uses $NOTIFY_SOCKET (systemd's protocol) something:
 * "READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1" (nothing without the socket). */
void daemon_notify(const char *state);
/* Tells it we are ready, with a status line. */
void daemon_notify_ready(const char *status);
/* The service manager's watchdog interval in microseconds ($WATCHDOG_USEC, for us:
 * $WATCHDOG_PID unset or ours), or 0 when there is no watchdog. */
long long daemon_watchdog_usec(void);
/* Where a broker in the background logs when there is no system log: fills path (root:
 * /var/log/mailbox/<ns>.log; others: $XDG_STATE_HOME or ~/.local/state, then
 * mailbox/<ns>.log), making the folder. 0, or -1 when there is no such place. */
int daemon_log_fallback(const char *ns, char *path, size_t cap);

/* pidfile.c: writes our pid to path (nothing when path is NULL); 0 or -1. */
int pidfile_write(const char *path);
void pidfile_remove(const char *path);

#endif
