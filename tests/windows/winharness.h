/*
 * winharness.h: multi-process tests on Windows (run under Wine in CI).
 *
 * Windows has no fork: a test's child processes are the test program itself, started
 * again with "--role NAME NS ARG" and dispatched by winharness_main() to the role's
 * function. Every child ends itself after WH_CHILD_TIMEOUT_S; the parent waits with a
 * deadline and then calls TerminateProcess; winharness_cleanup() ends whatever is left.
 * And the test runs under mbx-testdrv, whose kill-on-close job object holds all of them.
 */
#ifndef MBX_WINHARNESS_H
#define MBX_WINHARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <windows.h>

#include "mailbox.h"

#define WH_CHILD_TIMEOUT_S 60

typedef struct wh_role {
    const char *name;
    int (*fn)(const char *ns, const char *arg); /* the child's exit code */
} wh_role;

/* In main(): runs the role named on the command line and returns its exit code, or -1
 * when this is no child invocation (then run the tests). */
int winharness_main(int argc, char **argv, const wh_role *roles);

/* A unique namespace "mbxtest-<tag>-<pid>-<n>" into ns (64 bytes). */
void wh_namespace(char *ns, const char *tag);

/* Starts mailboxd.exe -N ns plus extra (a command-line tail, may be NULL) and waits until
 * it serves the namespace; fails the test when it does not within 10 s. */
HANDLE wh_start_broker(const char *ns, const char *extra);
/* Runs mailboxd.exe with args to its end (10 s at most); its exit code, -1 on timeout. */
int wh_run_broker(const char *args);

/* Starts program (an .exe beside this one) with args; cleaned up like every child. */
HANDLE wh_start_program(const char *program, const char *args);

/* Starts this program as role with ns and arg; fault (may be NULL) goes to the child's
 * MBX_FAULT. */
HANDLE wh_spawn(const char *role, const char *ns, const char *arg, const char *fault);

/* Waits up to timeout_ms: the exit code, or -1 after TerminateProcess for running late.
 * Closes h. */
int wh_wait(HANDLE h, int timeout_ms);
/* TerminateProcess (the SIGKILL of this world) and wait for the end. Closes h. */
void wh_kill(HANDLE h);

/* For children: connects under name or returns NULL. */
mbx_client *wh_connect(const char *ns, const char *name, int linger_ms);
/* Connects, retrying while the result is retry_on, up to timeout_ms. */
mbx_err wh_connect_retry(const char *ns, const char *name, mbx_err retry_on, int timeout_ms,
                         mbx_client **out);

/* Ends every process this harness started. */
void winharness_cleanup(void);

#endif
