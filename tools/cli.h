/* cli.h: what the mbx subcommands share: exit codes, number parsing, error lines. */
#ifndef MBX_CLI_H
#define MBX_CLI_H

/* Format strings are checked against the C library in use (gnu_printf with mingw-w64's
 * C99 stdio; see CMakeLists.txt). */
#ifndef MBX_PRINTF_ARCHETYPE
#define MBX_PRINTF_ARCHETYPE printf
#endif

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mailbox.h"

/* mbx's exit codes; docs/cli.md lists them. */
enum mbx_exit {
    EXIT_OK_ = 0,
    EXIT_FAILURE_ = 1,     /* anything not listed below */
    EXIT_USAGE = 2,        /* bad command line */
    EXIT_NO_BROKER = 3,    /* no broker serves the namespace */
    EXIT_TIMEOUT = 4,      /* recv: fewer than COUNT messages in time; send: mailbox full */
    EXIT_NO_RECIPIENT = 5, /* no such recipient, or it went away */
    EXIT_BAD_MESSAGE = 6,  /* invalid JSON or too large */
    EXIT_SHUTDOWN = 7,     /* the namespace shut down */
    EXIT_PERMISSION = 8,   /* permission denied */
    EXIT_NAME = 9,         /* name taken, or no free slot */
    EXIT_CORRUPT = 10,     /* version mismatch or corrupt shared memory */
    EXIT_OUTPUT = 11,      /* recv: a message could not be written out (it stays queued) */
    EXIT_BUSY = 12,        /* clean: a broker serves the namespace */
};

/* The exit code for a library error. */
int cli_exit_code(mbx_err err);

/* Prints "mbx CMD: message" on stderr (one line) and returns code. */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
    __attribute__((format(MBX_PRINTF_ARCHETYPE, 3, 4)));

/* Prints "mbx CMD: what: <mbx_strerror>" and returns cli_exit_code(err). */
int cli_fail_err(const char *cmd, mbx_err err, const char *what);
/* json_error.c: why text[0..len) is not one JSON value, as "invalid JSON at byte N:
 * WHAT" (what cJSON saw there, with a hint for single quotes and bare words). */
void cli_json_error(const char *text, size_t len, char *out, size_t cap);
/* A message refused by a send: invalid JSON said with its position, too large with the
 * limit (max) and the option that sets it; other errors as cli_fail_err. */
int cli_fail_message(const char *cmd, mbx_err err, const char *what, const char *text, size_t len,
                     size_t max);
/* mbx_wait_for(ns, name, ms) timed out: no broker serves ns (said as cli_fail_namespace,
 * exit 3 or as the error), else "NAME: not there after MS ms" with code. */
int cli_fail_wait(const char *cmd, const char *ns, const char *name, long long ms, int code);
/* A send-only connect (mbx send, mbx pub) failed: a --from label that is a client's name
 * is a usage error (exit 2, saying so); the rest as cli_fail_namespace. */
int cli_fail_sender(const char *cmd, mbx_err err, const mbx_connect_options *opts);
/* "unknown option 'ARG'" (exit 2), with a hint when ARG looks like a negative number:
 * options may come anywhere, so an argument that starts with '-' goes after "--". */
int cli_unknown_option(const char *cmd, const char *arg);

/* Reports a failure to reach namespace ns; for "no broker", names the broker that left
 * the namespace's segment behind, if one did. Returns the exit code. */
int cli_fail_namespace(const char *cmd, mbx_err err, const char *ns);
/* A failed mbx_connect for opts: as cli_fail_namespace, except that a name taken says by
 * whom (a service group: join it with --group; another node, through mailbox-bridge). */
int cli_fail_connect(const char *cmd, mbx_err err, const mbx_connect_options *opts);

/*
 * Reads one line (without its newline, and without a trailing CR) into buf, which holds
 * max + 2 bytes. Returns false at end of input. A line longer than max bytes is consumed
 * to its end and reported with *too_long, so memory stays bounded whatever the input.
 */
bool cli_read_line(FILE *in, char *buf, size_t max, size_t *len, bool *too_long);

/* True when s[0..len) holds only spaces and tabs. */
bool cli_blank(const char *s, size_t len);

/*
 * mbx send's and mbx pub's standard input: calls one() for each line that is not blank,
 * in order, and stops at the first that fails (everything before it went, nothing after
 * it is read); a line longer than the namespace's limit is refused without being held
 * whole. Returns the exit code, having printed what went wrong as cmd.
 */
int cli_each_line(mbx_client *c, const char *cmd,
                  int (*one)(mbx_client *c, const char *buf, size_t len, unsigned long line,
                             void *arg),
                  void *arg);

/* Parses a whole decimal number in [lo, hi]. */
bool cli_parse_long(const char *s, long long lo, long long hi, long long *out);

/* Option values shared by the subcommands. Each parses arg into *out, or says what is
 * wrong as cmd ("OPT: 'ARG' is not ...") and returns false: the caller exits with
 * EXIT_USAGE. */
#define CLI_MAX_MS 86400000 /* the longest time an option takes: a day */
bool cli_opt_ms(const char *cmd, const char *opt, const char *arg, long long lo, long long *out);
bool cli_opt_count(const char *cmd, const char *arg, long long *out); /* --count: 0.. */

/*
 * Prints the client's messages on standard output, one line each (as format says),
 * each acknowledged only once written and flushed. Stops after
 * count messages (0: no limit) or at deadline (monotonic_ms(); -1: none). Returns the
 * exit code, having printed what went wrong as cmd.
 */
typedef enum cli_print_format {
    CLI_PRINT_BODY,     /* the body */
    CLI_PRINT_ENVELOPE, /* the envelope as one line of JSON */
    CLI_PRINT_TOPIC,    /* "TOPIC BODY" (an empty topic for a message that is not a
                         * publication: the line starts with the space) */
} cli_print_format;
int cli_print_messages(mbx_client *c, const char *cmd, long long count, long long deadline,
                       cli_print_format format);

/* SIGINT and SIGTERM end a receiving command cleanly (print_messages.c): once
 * cli_stop_on_signals(c) ran, either sets cli_stop_requested() and interrupts c's
 * receive (c may be NULL before it connects: call again with the client once there is
 * one); cli_stop_signals_off() restores the defaults. */
void cli_stop_on_signals(mbx_client *c);
bool cli_stop_requested(void);
void cli_stop_signals_off(void);

int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_request(int argc, char **argv);
int cmd_reply(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_namespaces(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_options(int argc, char **argv);

/* Each command's parser table (cli_commands.c): what its getopt_long call uses. */
extern const struct option cmd_send_long[], cmd_recv_long[], cmd_request_long[], cmd_reply_long[],
    cmd_pub_long[], cmd_sub_long[], cmd_monitor_long[], cmd_wait_long[], cmd_list_long[],
    cmd_namespaces_long[], cmd_run_long[], cmd_bench_long[];
extern const char cmd_send_short[], cmd_recv_short[], cmd_request_short[], cmd_reply_short[],
    cmd_pub_short[], cmd_sub_short[], cmd_monitor_short[], cmd_wait_short[], cmd_list_short[],
    cmd_namespaces_short[], cmd_run_short[], cmd_bench_short[];

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const struct option *long_options; /* ends with a NULL name */
    const char *short_options;         /* getopt's string */
} cli_command;

/* run_options.c: the mailboxd option that mbx run's option ch (its getopt value) is
 * passed on as, or NULL. */
const char *run_broker_option(int ch);

/* The command called name, or NULL. */
const cli_command *cli_find_command(const char *name);

#endif
