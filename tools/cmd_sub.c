/* mbx sub: subscribe to topic patterns and print each publication, one line each. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "monotonic.h"

static const char usage_text[] =
    "Usage: mbx sub [-N NS] [--name NAME] [-c COUNT] [-t MS] [-v | --envelope] [--block]\n"
    "               [--ready] PATTERN...\n"
    "Subscribe to the topics PATTERN selects ('*': one token, '>': the rest) and print each\n"
    "publication as one line of compact JSON.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --name NAME     connect as NAME (default: an assigned name)\n"
    "  -c, --count N       exit 0 after N messages (default 0: no limit)\n"
    "  -t, --timeout MS    give up after MS in all: exit 4 if COUNT was not reached,\n"
    "                      0 when no COUNT was given (default: no limit)\n"
    "  -v, --topic         print 'TOPIC BODY' per message (the topic, a space, the body)\n"
    "      --envelope      print {\"from\",\"to\",\"seq\",\"ts\",\"topic\",\"body\"} per message\n"
    "                      (and \"missed\" when publications were dropped before it)\n"
    "      --block         publishers wait for room in a full mailbox instead of this\n"
    "                      subscriber missing messages\n"
    "      --ready         once subscribed, print 'ready NAME' on standard error\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_sub_short[] = ":N:c:t:vh";
const struct option cmd_sub_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"name", required_argument, NULL, 'n'},
    {"count", required_argument, NULL, 'c'},
    {"timeout", required_argument, NULL, 't'},
    {"envelope", no_argument, NULL, 'e'},
    {"topic", no_argument, NULL, 'v'},
    {"block", no_argument, NULL, 'b'},
    {"ready", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_sub(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    mbx_subscribe_options so;
    mbx_subscribe_options_init(&so);
    long long count = 0, timeout = -1;
    bool ready = false;
    cli_print_format format = CLI_PRINT_BODY;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_sub_short, cmd_sub_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'n':
            opts.client_name = optarg;
            break;
        case 'c':
            if (!cli_opt_count("sub", optarg, &count))
                return EXIT_USAGE;
            break;
        case 't':
            if (!cli_opt_ms("sub", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'e':
        case 'v':
            if (format != CLI_PRINT_BODY &&
                format != (ch == 'e' ? CLI_PRINT_ENVELOPE : CLI_PRINT_TOPIC))
                return cli_fail("sub", EXIT_USAGE, "-v/--topic and --envelope exclude each other");
            format = ch == 'e' ? CLI_PRINT_ENVELOPE : CLI_PRINT_TOPIC;
            break;
        case 'b':
            so.policy = MBX_SUB_BLOCK;
            break;
        case 'r':
            ready = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("sub", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("sub", argv[optind - 1]);
        }
    }
    if (argc - optind < 1)
        return cli_fail("sub", EXIT_USAGE, "expected PATTERN... (see mbx sub --help)");
    if (argc - optind > MBX_SUBSCRIPTIONS_PER_CLIENT)
        return cli_fail("sub", EXIT_USAGE, "at most %d patterns", MBX_SUBSCRIPTIONS_PER_CLIENT);
    for (int i = optind; i < argc; i++)
        if (mbx_check_pattern(argv[i]) != MBX_OK)
            return cli_fail("sub", EXIT_USAGE,
                            "invalid pattern '%s': use dot-separated tokens of A-Z a-z 0-9 _ -, "
                            "'*' for one token and a last '>' for the rest, at most %d bytes",
                            argv[i], MBX_TOPIC_MAX);
    if (opts.client_name != NULL && mbx_check_name(opts.client_name) != MBX_OK)
        return cli_fail("sub", EXIT_USAGE, "invalid name '%s'", opts.client_name);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("sub", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);

#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* as mbx recv: a closed output is an error we report */
#endif
    long long deadline = timeout < 0 ? -1 : monotonic_ms() + timeout;
    if (timeout > 0 && timeout < opts.timeout_ms)
        opts.timeout_ms = (int)timeout;
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_connect("sub", err, &opts);
    for (int i = optind; i < argc; i++) {
        err = mbx_subscribe(c, argv[i], &so);
        if (err != MBX_OK) {
            int rc = cli_fail("sub", cli_exit_code(err), "%s: %s", argv[i], mbx_strerror(err));
            mbx_close(c);
            return rc;
        }
    }
    if (ready) {
        fprintf(stderr, "ready %s\n", mbx_client_name(c));
        fflush(stderr);
    }
    int rc = cli_print_messages(c, "sub", count, deadline, format);
    mbx_close(c);
    return rc;
}
