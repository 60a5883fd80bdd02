/* mbx recv: take a mailbox and print its messages, one compact JSON line each. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "monotonic.h"

static const char usage_text[] =
    "Usage: mbx recv [-N NS] [-c COUNT] [-t MS] [--envelope] [--linger SECONDS] [--ready]\n"
    "                NAME\n"
    "Connect as NAME and print each message received as one line of compact JSON.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "  -c, --count N       exit 0 after N messages (default 0: no limit)\n"
    "  -t, --timeout MS    give up after MS in all: exit 4 if COUNT was not reached,\n"
    "                      0 when no COUNT was given (default: no limit)\n"
    "      --envelope      print {\"from\",\"to\",\"seq\",\"ts\",\"body\"} per message\n"
    "      --linger S      keep the mailbox and what arrives in it for S seconds after\n"
    "                      this command ends, for the next 'mbx recv NAME' (0..86400)\n"
    "      --ready         once the mailbox is taken, print 'ready NAME' on standard\n"
    "                      error (for scripts and tests to wait on)\n"
    "  -h, --help          show this help\n";

static const struct option long_options[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"count", required_argument, NULL, 'c'},
    {"timeout", required_argument, NULL, 't'},
    {"envelope", no_argument, NULL, 'e'},
    {"linger", required_argument, NULL, 'l'},
    {"ready", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Writes one message as a line and flushes it; false (errno set) when it could not be
 * written out whole. */
static bool print_message(const mbx_message *m, bool envelope)
{
    if (envelope) {
        char *line = mbx_message_envelope_json(m);
        if (line == NULL)
            return false;
        bool ok = fputs(line, stdout) >= 0 && fputc('\n', stdout) != EOF;
        mbx_free(line);
        return ok && fflush(stdout) == 0;
    }
    size_t len;
    const char *body = mbx_message_body(m, &len);
    return fwrite(body, 1, len, stdout) == len && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
}

int cmd_recv(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    long long count = 0, timeout = -1;
    bool envelope = false, ready = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:N:c:t:h", long_options, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'c':
            if (!cli_parse_long(optarg, 0, 1000000000000L, &count))
                return cli_fail("recv", EXIT_USAGE, "--count: '%s' is not a number >= 0", optarg);
            break;
        case 't':
            if (!cli_parse_long(optarg, -1, 86400000, &timeout))
                return cli_fail("recv", EXIT_USAGE,
                                "--timeout: '%s' is not a number of milliseconds (-1..86400000)",
                                optarg);
            break;
        case 'e':
            envelope = true;
            break;
        case 'r':
            ready = true;
            break;
        case 'l': {
            long long seconds;
            if (!cli_parse_long(optarg, 0, MBX_LINGER_MAX_MS / 1000, &seconds))
                return cli_fail("recv", EXIT_USAGE,
                                "--linger: '%s' is not a number of seconds (0..%d)", optarg,
                                MBX_LINGER_MAX_MS / 1000);
            opts.linger_ms = (int)seconds * 1000;
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("recv", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_fail("recv", EXIT_USAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return cli_fail("recv", EXIT_USAGE, "expected NAME (see mbx recv --help)");
    opts.client_name = argv[optind];
    if (mbx_check_name(opts.client_name) != MBX_OK)
        return cli_fail("recv", EXIT_USAGE, "invalid name '%s'", opts.client_name);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("recv", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);

#ifdef SIGPIPE
    /* A closed output is a write error we report (and the message stays queued), not a
     * signal that ends us with the message taken. */
    signal(SIGPIPE, SIG_IGN);
#endif
    long long deadline = timeout < 0 ? -1 : monotonic_ms() + timeout;
    /* -t bounds talking to the broker too: connecting, and closing at the end. */
    if (timeout > 0 && timeout < opts.timeout_ms)
        opts.timeout_ms = (int)timeout;
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_namespace("recv", err, opts.namespace_name);
    if (ready) {
        fprintf(stderr, "ready %s\n", mbx_client_name(c));
        fflush(stderr);
    }
    mbx_message *m = mbx_message_new();
    int rc = EXIT_OK_;
    if (m == NULL)
        rc = cli_fail("recv", EXIT_FAILURE_, "out of memory");
    for (long long got = 0; m != NULL && (count == 0 || got < count); got++) {
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
        if (err != MBX_OK) {
            rc = err == MBX_ETIMEDOUT
                     ? cli_fail("recv", EXIT_TIMEOUT, "timed out after %lld of %lld messages", got,
                                count)
                     : cli_fail_err("recv", err, "receive failed");
            break;
        }
        if (!print_message(m, envelope)) {
            rc = cli_fail("recv", EXIT_OUTPUT,
                          "cannot write to standard output (%s); the message stays in the "
                          "mailbox",
                          strerror(errno));
            break;
        }
        err = mbx_ack(c, m);
        if (err != MBX_OK) {
            rc = cli_fail_err("recv", err, "receive failed");
            break;
        }
    }
    mbx_message_free(m);
    mbx_close(c);
    return rc;
}
