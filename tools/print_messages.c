/* print_messages.c: what mbx recv and mbx sub share: a message a line on standard
 * output, each taken from the mailbox only once it is written out. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "monotonic.h"

/* Writes one message as a line and flushes it; false (errno set) when it could not be
 * written out whole. */
static bool print_message(const mbx_message *m, cli_print_format format)
{
    if (format == CLI_PRINT_ENVELOPE) {
        char *line = mbx_message_envelope_json(m);
        if (line == NULL)
            return false;
        bool ok = fputs(line, stdout) >= 0 && fputc('\n', stdout) != EOF;
        mbx_free(line);
        return ok && fflush(stdout) == 0;
    }
    size_t len;
    const char *body = mbx_message_body(m, &len);
    const char *topic = mbx_message_topic(m);
    if (format == CLI_PRINT_TOPIC &&
        (fputs(topic != NULL ? topic : "", stdout) < 0 || fputc(' ', stdout) == EOF))
        return false;
    return fwrite(body, 1, len, stdout) == len && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
}

/* SIGINT and SIGTERM end the command cleanly: the handler asks the receive to return
 * (mbx_interrupt is async-signal-safe), the message being written is finished, exit 0. */
static mbx_client *volatile interrupted_client;
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (interrupted_client != NULL)
        (void)mbx_interrupt(interrupted_client);
}

void cli_stop_on_signals(mbx_client *c)
{
    interrupted_client = c;
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}

bool cli_stop_requested(void)
{
    return stop_requested != 0;
}

void cli_stop_signals_off(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    interrupted_client = NULL;
}

int cli_print_messages(mbx_client *c, const char *cmd, long long count, long long deadline,
                       cli_print_format format)
{
    mbx_err err;
    mbx_message *m = mbx_message_new();
    int rc = EXIT_OK_;
    if (m == NULL)
        rc = cli_fail(cmd, EXIT_FAILURE_, "out of memory");
    cli_stop_on_signals(c);
    for (long long got = 0; m != NULL && (count == 0 || got < count) && !stop_requested; got++) {
        int wait_ms = -1;
        if (deadline >= 0) {
            long long left = deadline - monotonic_ms();
            wait_ms = left > 0 ? (int)left : 0;
        }
        /* A message leaves the mailbox only once it is written out: peek, write, then
         * acknowledge. Killed in between, we leave it queued (a --linger mailbox hands it
         * to the next 'mbx recv NAME'); at worst a line is written twice, never lost. */
        err = mbx_peek(c, m, wait_ms);
        if (err == MBX_ETIMEDOUT && count == 0)
            break; /* no count asked for: the time limit is the normal end */
        if (err == MBX_EINTR && stop_requested)
            break; /* stopped by a signal, between messages: a clean end */
        if (err != MBX_OK) {
            rc = err == MBX_ETIMEDOUT
                     ? cli_fail(cmd, EXIT_TIMEOUT, "timed out after %lld of %lld messages", got,
                                count)
                     : cli_fail_err(cmd, err, "receive failed");
            break;
        }
        if (!print_message(m, format)) {
            rc = cli_fail(cmd, EXIT_OUTPUT,
                          "cannot write to standard output (%s); the message stays in the "
                          "mailbox",
                          strerror(errno));
            break;
        }
        err = mbx_ack(c, m);
        if (err != MBX_OK) {
            rc = cli_fail_err(cmd, err, "receive failed");
            break;
        }
    }
    cli_stop_signals_off();
    mbx_message_free(m);
    return rc;
}
