/* daemon.h: running in the background and telling whoever started us that we are ready. */
#ifndef BROKER_DAEMON_H
#define BROKER_DAEMON_H

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

/* Tells a service manager that uses $NOTIFY_SOCKET (systemd's protocol) we are ready. */
void daemon_notify_ready(void);

/* pidfile.c: writes our pid to path (nothing when path is NULL); 0 or -1. */
int pidfile_write(const char *path);
void pidfile_remove(const char *path);

#endif
