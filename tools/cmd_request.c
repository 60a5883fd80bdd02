/* mbx request: send one request and print its reply. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "Usage: mbx request [-N NS] [-t MS] [--wait MS] [--envelope] TO [JSON]\n"
    "Send JSON (else the first line of standard input) to TO as a request, wait for the\n"
    "reply and print its body (or its envelope) as one line.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "  -t, --timeout MS    wait up to MS for the reply (default 5000)\n"
    "      --wait MS       first wait up to MS for TO (and the broker) to be there\n"
    "      --envelope      print {\"from\",\"to\",\"seq\",\"ts\",\"kind\",\"corr\",\"body\"}\n"
    "  -h, --help          show this help\n"
    "Exit status: 0 replied, 4 no reply in time, 5 nobody serves TO or the responder went\n"
    "away, 6 invalid JSON; as mbx otherwise.\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_request_short[] = ":N:t:h";
const struct option cmd_request_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"timeout", required_argument, NULL, 't'},
    {"envelope", no_argument, NULL, 'e'},
    {"wait", required_argument, NULL, 'w'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_request(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    long long timeout = 5000, wait = 0;
    bool envelope = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_request_short, cmd_request_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 't':
            if (!cli_opt_ms("request", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'e':
            envelope = true;
            break;
        case 'w':
            if (!cli_opt_ms("request", "--wait", optarg, 0, &wait))
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("request", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("request", argv[optind - 1]);
        }
    }
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return cli_fail("request", EXIT_USAGE, "expected TO [JSON] (see mbx request --help)");
    const char *to = argv[optind];
    if (mbx_check_name(to) != MBX_OK)
        return cli_fail("request", EXIT_USAGE, "invalid recipient name '%s'", to);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("request", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);
    char line[65536];
    const char *json;
    if (rest == 2) {
        json = argv[optind + 1];
    } else {
        if (fgets(line, sizeof line, stdin) == NULL)
            return cli_fail("request", EXIT_BAD_MESSAGE, "no request on standard input");
        line[strcspn(line, "\r\n")] = '\0';
        json = line;
    }

    if (wait > 0) {
        mbx_err err = mbx_wait_for(opts.namespace_name, to, (int)wait);
        if (err == MBX_ETIMEDOUT)
            return cli_fail_wait("request", opts.namespace_name, to, wait, EXIT_NO_RECIPIENT);
        if (err != MBX_OK)
            return cli_fail_namespace("request", err, opts.namespace_name);
    }
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_namespace("request", err, opts.namespace_name);
    mbx_message *reply = mbx_message_new();
    int rc = EXIT_OK_;
    err = reply == NULL ? MBX_ENOMEM : mbx_request(c, to, json, strlen(json), reply, (int)timeout);
    if (err == MBX_EGONE) {
        rc = cli_fail("request", EXIT_NO_RECIPIENT, "%s: the responder went away without replying",
                      to);
    } else if (err == MBX_ETIMEDOUT) {
        rc = cli_fail("request", EXIT_TIMEOUT, "%s: no reply in %lld ms", to, timeout);
    } else if (err != MBX_OK) {
        rc = cli_fail_message("request", err, to, json, strlen(json), mbx_max_message(c));
    } else {
        char *env = envelope ? mbx_message_envelope_json(reply) : NULL;
        const char *text = env != NULL ? env : mbx_message_body(reply, NULL);
        if (printf("%s\n", text) < 0 || fflush(stdout) != 0)
            rc = cli_fail("request", EXIT_OUTPUT, "cannot write to standard output");
        mbx_free(env);
    }
    mbx_message_free(reply);
    mbx_close(c);
    return rc;
}
