/* mbx reply: serve requests made to NAME, in order. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_command.h"

#define REPLY_MAX 65536

static const char usage_text[] =
    "Usage: mbx reply [-N NS] [-c N] [--group] NAME (--exec CMD | --echo | JSON)\n"
    "Take the mailbox NAME and answer each request that arrives, in order:\n"
    "\n"
    "      --exec CMD      run CMD (sh -c; cmd.exe /c on Windows) with the request's body\n"
    "                      on standard input; its standard output, one JSON value, is the\n"
    "                      reply. A command that fails or prints something else is\n"
    "                      answered {\"error\":\"...\",\"status\":N}, and serving goes on\n"
    "      --echo          answer each request with its own body\n"
    "      JSON            answer every request with this JSON\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "  -c, --count N       exit 0 after N requests (default 0: no limit)\n"
    "      --group         join the group serving NAME: several servers may, and each\n"
    "                      request goes to the one with the fewest waiting\n"
    "  -h, --help          show this help\n"
    "Messages that are not requests are skipped.\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_reply_short[] = ":N:c:h";
const struct option cmd_reply_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"count", required_argument, NULL, 'c'},
    {"exec", required_argument, NULL, 'x'},
    {"echo", no_argument, NULL, 'o'},
    {"group", no_argument, NULL, 'g'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The reply a command's result makes: its output when it succeeded with one JSON value,
 * else an error object naming what went wrong. The output's length is what the command
 * wrote, NUL bytes and all: measured with strlen, `{"a":1}<NUL> not json` would pass for
 * `{"a":1}`; whole, it fails the JSON check like any other junk. */
static size_t command_reply(const char *cmd, const mbx_message *request, char *out, size_t cap)
{
    size_t len;
    const char *body = mbx_message_body(request, &len);
    int truncated = 0;
    size_t n = 0;
    int status = run_command(cmd, body, len, out, cap, &n, &truncated);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    const char *why = status < 0    ? "the command could not be run"
                      : status != 0 ? "the command failed"
                      : truncated   ? "the command's output is too long"
                      : n == 0      ? "the command printed nothing"
                                    : NULL;
    if (why == NULL)
        return n; /* checked as JSON when it is sent: invalid output gets its own error */
    return (size_t)snprintf(out, cap, "{\"error\":\"%s\",\"status\":%d}", why, status);
}

int cmd_reply(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    long long count = 0;
    const char *exec = NULL, *fixed = NULL;
    bool echo = false;
    optind = 1;
    opterr = 0;
    int ch;
    /* Options may follow NAME (mbx reply NAME --echo): no "+" here. */
    while ((ch = getopt_long(argc, argv, cmd_reply_short, cmd_reply_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'c':
            if (!cli_opt_count("reply", optarg, &count))
                return EXIT_USAGE;
            break;
        case 'x':
            exec = optarg;
            break;
        case 'o':
            echo = true;
            break;
        case 'g':
            opts.group = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("reply", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("reply", argv[optind - 1]);
        }
    }
    int rest = argc - optind;
    if (rest == 2)
        fixed = argv[optind + 1];
    if (rest < 1 || rest > 2 || (exec != NULL) + echo + (fixed != NULL) != 1)
        return cli_fail("reply", EXIT_USAGE,
                        "expected NAME and one of --exec CMD, --echo or JSON (see mbx reply "
                        "--help)");
    opts.client_name = argv[optind];
    if (mbx_check_name(opts.client_name) != MBX_OK)
        return cli_fail("reply", EXIT_USAGE, "invalid name '%s'", opts.client_name);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("reply", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a command that does not read its input is no reason to die */
#endif

    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_connect("reply", err, &opts);
    mbx_message *m = mbx_message_new();
    char *answer = malloc(REPLY_MAX);
    int rc = EXIT_OK_;
    for (long long served = 0; m != NULL && answer != NULL && (count == 0 || served < count);) {
        err = mbx_recv(c, m, -1);
        if (err != MBX_OK) {
            rc = cli_fail_err("reply", err, "receive failed");
            break;
        }
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            continue;
        size_t len;
        const char *text;
        if (echo) {
            text = mbx_message_body(m, &len);
        } else if (fixed != NULL) {
            text = fixed;
            len = strlen(fixed);
        } else {
            len = command_reply(exec, m, answer, REPLY_MAX);
            text = answer;
        }
        err = mbx_reply(c, m, text, len, 5000);
        if (err == MBX_EINVALJSON && exec != NULL) {
            len = (size_t)snprintf(answer, REPLY_MAX,
                                   "{\"error\":\"the command's output is not JSON\"}");
            err = mbx_reply(c, m, answer, len, 5000);
        }
        if (err == MBX_EINVALJSON || err == MBX_ETOOLARGE) {
            rc = cli_fail_err("reply", err, "the reply");
            break;
        }
        /* A requester that went away, or one whose mailbox stays full, does not stop the
         * service: the request is counted as served. */
        if (err != MBX_OK && err != MBX_EGONE && err != MBX_EFULL)
            fprintf(stderr, "mbx reply: answering %s: %s\n", mbx_message_from(m),
                    mbx_strerror(err));
        served++;
    }
    free(answer);
    mbx_message_free(m);
    mbx_close(c);
    return rc;
}
