/* mbx recv: take a mailbox and print its messages, one compact JSON line each. */
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

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_recv_short[] = ":N:c:t:h";
const struct option cmd_recv_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"count", required_argument, NULL, 'c'},
    {"timeout", required_argument, NULL, 't'},
    {"envelope", no_argument, NULL, 'e'},
    {"linger", required_argument, NULL, 'l'},
    {"ready", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_recv(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    long long count = 0, timeout = -1;
    bool envelope = false, ready = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_recv_short, cmd_recv_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'c':
            if (!cli_opt_count("recv", optarg, &count))
                return EXIT_USAGE;
            break;
        case 't':
            if (!cli_opt_ms("recv", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
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
            return cli_unknown_option("recv", argv[optind - 1]);
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
        return cli_fail_connect("recv", err, &opts);
    if (ready) {
        fprintf(stderr, "ready %s\n", mbx_client_name(c));
        fflush(stderr);
    }
    int rc = cli_print_messages(c, "recv", count, deadline,
                                envelope ? CLI_PRINT_ENVELOPE : CLI_PRINT_BODY);
    mbx_close(c);
    return rc;
}
