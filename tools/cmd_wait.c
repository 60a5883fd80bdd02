/* mbx wait: block until every NAME given is there (connected, or its mailbox lingers). */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "monotonic.h"

static const char usage_text[] =
    "Usage: mbx wait [-N NS] [-t MS] NAME...\n"
    "Wait until a client of every NAME is there (a send to it would be accepted), also\n"
    "waiting for the broker when none runs yet; exit 0 then, 4 on timeout (3 when still\n"
    "no broker serves the namespace).\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "  -t, --timeout MS    give up after MS in all (default: no limit)\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_wait_short[] = ":N:t:h";
const struct option cmd_wait_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_wait(int argc, char **argv)
{
    const char *ns = NULL;
    long long timeout = -1;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_wait_short, cmd_wait_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            ns = optarg;
            break;
        case 't':
            if (!cli_opt_ms("wait", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("wait", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("wait", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_fail("wait", EXIT_USAGE, "expected NAME... (see mbx wait --help)");
    if (ns != NULL && mbx_check_name(ns) != MBX_OK)
        return cli_fail("wait", EXIT_USAGE, "invalid namespace name '%s'", ns);
    for (int i = optind; i < argc; i++)
        if (mbx_check_name(argv[i]) != MBX_OK)
            return cli_fail("wait", EXIT_USAGE, "invalid name '%s'", argv[i]);
    long long deadline = timeout < 0 ? -1 : monotonic_ms() + timeout;
    for (int i = optind; i < argc; i++) {
        int left = -1;
        if (deadline >= 0) {
            long long ms = deadline - monotonic_ms();
            left = ms > 0 ? (int)ms : 0;
        }
        mbx_err err = mbx_wait_for(ns, argv[i], left);
        if (err == MBX_ETIMEDOUT)
            return cli_fail_wait("wait", ns, argv[i], timeout, EXIT_TIMEOUT);
        if (err != MBX_OK)
            return cli_fail_namespace("wait", err, ns);
    }
    return EXIT_OK_;
}
