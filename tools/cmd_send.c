/*
 * mbx send: one message from the command line, or one per line of standard input.
 * Lines are sent in order; the first line that fails stops the command, so everything
 * before it was delivered and nothing after it was sent. Blank lines are skipped.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "monotonic.h"

#define SEND_DEFAULT_TIMEOUT_MS 5000

static const char usage_text[] =
    "Usage: mbx send [-N NS] [--from NAME] [-t MS] [--wait MS] [-f FILE | --whole] TO\n"
    "                [JSON]\n"
    "Send one JSON message to the client TO; without JSON, send each line of standard\n"
    "input as one message (blank lines are skipped; the first bad line stops).\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --from NAME     send under this client name (default: an assigned one)\n"
    "  -t, --timeout MS    wait up to MS for space in a full mailbox (default 5000)\n"
    "      --wait MS       wait up to MS for TO (and the broker) to be there, then send\n"
    "                      (default 0: fail at once when TO is not connected)\n"
    "  -f, --file FILE     send the whole of FILE as one message ('-': standard input)\n"
    "      --whole         send the whole of standard input as one message (so that\n"
    "                      pretty-printed JSON, e.g. from jq, goes as it is)\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_send_short[] = ":N:t:f:h";
const struct option cmd_send_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"from", required_argument, NULL, 'o'},
    {"timeout", required_argument, NULL, 't'},
    {"wait", required_argument, NULL, 'w'},
    {"file", required_argument, NULL, 'f'},
    {"whole", no_argument, NULL, 'W'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Reads all of in (at most max bytes) into a new buffer; NULL with *too_long or errno. */
static char *read_whole(FILE *in, size_t max, size_t *len, bool *too_long)
{
    char *buf = malloc(max + 1);
    *too_long = false;
    if (buf == NULL)
        return NULL;
    *len = fread(buf, 1, max + 1, in);
    if (ferror(in)) {
        free(buf);
        return NULL;
    }
    if (*len > max) {
        *too_long = true;
        free(buf);
        return NULL;
    }
    return buf;
}

/* -f FILE or --whole: one message of a whole file or of all of standard input. */
static int send_whole(mbx_client *c, const char *to, const char *path, const mbx_send_options *so)
{
    bool from_stdin = path == NULL || strcmp(path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(path, "rb");
    if (in == NULL)
        return cli_fail("send", EXIT_USAGE, "cannot open '%s': %s", path, strerror(errno));
    size_t max = mbx_max_message(c), len = 0;
    bool too_long;
    char *buf = read_whole(in, max, &len, &too_long);
    int err_no = errno;
    if (!from_stdin)
        fclose(in);
    const char *what = from_stdin ? "standard input" : path;
    if (buf == NULL && too_long)
        return cli_fail("send", EXIT_BAD_MESSAGE,
                        "%s: longer than the namespace's limit of %zu bytes (mailboxd "
                        "--max-message)",
                        what, max);
    if (buf == NULL)
        return cli_fail("send", EXIT_FAILURE_, "cannot read %s: %s", what, strerror(err_no));
    mbx_err err = mbx_send_ex(c, to, buf, len, so);
    int rc = err == MBX_OK ? EXIT_OK_
                           : cli_fail_message("send", err, what, buf, len, mbx_max_message(c));
    free(buf);
    return rc;
}

/* One line of standard input: sent to the recipient. */
typedef struct send_line {
    const char *to;
    const mbx_send_options *so;
} send_line;

static int send_one_line(mbx_client *c, const char *buf, size_t len, unsigned long line, void *arg)
{
    const send_line *sl = arg;
    mbx_err err = mbx_send_ex(c, sl->to, buf, len, sl->so);
    if (err == MBX_OK)
        return EXIT_OK_;
    char what[32];
    snprintf(what, sizeof what, "line %lu", line);
    return cli_fail_message("send", err, what, buf, len, mbx_max_message(c));
}

int cmd_send(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    long long timeout = SEND_DEFAULT_TIMEOUT_MS, wait = 0;
    const char *file = NULL;
    bool whole = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_send_short, cmd_send_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'o':
            opts.client_name = optarg;
            break;
        case 't':
            if (!cli_opt_ms("send", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'w':
            if (!cli_opt_ms("send", "--wait", optarg, 0, &wait))
                return EXIT_USAGE;
            break;
        case 'f':
            file = optarg;
            break;
        case 'W':
            whole = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("send", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("send", argv[optind - 1]);
        }
    }
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return cli_fail("send", EXIT_USAGE, "expected TO [JSON] (see mbx send --help)");
    const char *to = argv[optind];
    if (mbx_check_name(to) != MBX_OK)
        return cli_fail("send", EXIT_USAGE, "invalid recipient name '%s'", to);
    if ((file != NULL || whole) && rest == 2)
        return cli_fail("send", EXIT_USAGE, "JSON on the command line and %s: choose one",
                        file != NULL ? "--file" : "--whole");
    if (file != NULL && whole)
        return cli_fail("send", EXIT_USAGE, "--file and --whole: choose one");
    if (opts.client_name != NULL && mbx_check_name(opts.client_name) != MBX_OK)
        return cli_fail("send", EXIT_USAGE, "invalid --from name '%s'", opts.client_name);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("send", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);

    /* --wait: the recipient (and the broker, if none runs yet) first, so that sender,
     * receiver and broker may start in any order; then connect and send. */
    long long wait_until = monotonic_ms() + wait;
    if (wait > 0) {
        mbx_err err = mbx_wait_for(opts.namespace_name, to, (int)wait);
        if (err == MBX_ETIMEDOUT)
            return cli_fail_wait("send", opts.namespace_name, to, wait, EXIT_NO_RECIPIENT);
        if (err != MBX_OK)
            return cli_fail_namespace("send", err, opts.namespace_name);
    }
    /* A sender takes no slot: any number of them may run at once. */
    opts.send_only = 1;
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_sender("send", err, &opts);
    mbx_send_options so;
    mbx_send_options_init(&so);
    so.timeout_ms = (int)timeout;
    if (wait > 0) {
        long long left = wait_until - monotonic_ms();
        so.wait_ms = left > 0 ? (int)left : 1;
    }
    int rc;
    if (rest == 2) {
        const char *json = argv[optind + 1];
        err = mbx_send_ex(c, to, json, strlen(json), &so);
        rc = err == MBX_OK
                 ? EXIT_OK_
                 : cli_fail_message("send", err, to, json, strlen(json), mbx_max_message(c));
    } else if (file != NULL || whole) {
        rc = send_whole(c, to, file, &so);
    } else {
        if (isatty(fileno(stdin))) /* not a hang: say what it waits for */
            fprintf(stderr, "mbx send: reading messages from the terminal, one JSON value per "
                            "line; end with Ctrl-D\n");
        send_line sl = {to, &so};
        rc = cli_each_line(c, "send", send_one_line, &sl);
    }
    mbx_close(c);
    return rc;
}
