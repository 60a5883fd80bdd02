/*
 * mbx pub: publish one message on a topic from the command line, or one per line of
 * standard input (as mbx send: in order, blank lines skipped, the first failure stops).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "Usage: mbx pub [-N NS] [--from NAME] [-t MS] [--retain] TOPIC [JSON]\n"
    "Publish JSON on TOPIC to every client subscribed to it; without JSON, publish each\n"
    "line of standard input (blank lines are skipped; the first bad line stops).\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --from NAME     publish under this client name (default: an assigned one)\n"
    "  -t, --timeout MS    how long a full subscriber of mbx sub --block may hold each\n"
    "                      publication up (default 5000)\n"
    "      --retain        keep it as TOPIC's retained message, for later subscribers\n"
    "                      (a retained null clears it)\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_pub_short[] = ":N:t:h";
const struct option cmd_pub_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"from", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"retain", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Publishes one message; on failure prints the line (prefix: "" or "line N: "). */
static int publish_one(mbx_client *c, const char *topic, const char *json, size_t len,
                       mbx_publish_options *po, const char *where)
{
    mbx_publish_result res;
    po->result = &res;
    mbx_err err = mbx_publish(c, topic, json, len, po);
    if (err == MBX_OK)
        return EXIT_OK_;
    if (err == MBX_EFULL)
        return cli_fail("pub", EXIT_TIMEOUT,
                        "%s%s: subscriber '%s' stayed full (%u others received it)", where, topic,
                        res.full, res.delivered);
    if (err == MBX_ETOOLARGE)
        return cli_fail("pub", EXIT_BAD_MESSAGE,
                        "%s%s: %zu bytes: topic and message together exceed the namespace's "
                        "limit of %zu bytes (mailboxd --max-message)",
                        where, topic, len, mbx_max_message(c));
    char what[MBX_TOPIC_MAX + 32];
    snprintf(what, sizeof what, "%s%s", where, topic);
    return cli_fail_message("pub", err, what, json, len, mbx_max_message(c));
}

/* One line of standard input: published on the topic. */
typedef struct pub_line {
    const char *topic;
    mbx_publish_options *po;
} pub_line;

static int publish_one_line(mbx_client *c, const char *buf, size_t len, unsigned long line,
                            void *arg)
{
    pub_line *pl = arg;
    char where[48];
    snprintf(where, sizeof where, "line %lu: ", line);
    return publish_one(c, pl->topic, buf, len, pl->po, where);
}

int cmd_pub(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    mbx_publish_options po;
    mbx_publish_options_init(&po);
    long long timeout = po.timeout_ms;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_pub_short, cmd_pub_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'f':
            opts.client_name = optarg;
            break;
        case 't':
            if (!cli_opt_ms("pub", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'r':
            po.retain = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("pub", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("pub", argv[optind - 1]);
        }
    }
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return cli_fail("pub", EXIT_USAGE, "expected TOPIC [JSON] (see mbx pub --help)");
    const char *topic = argv[optind];
    if (mbx_check_topic(topic) != MBX_OK)
        return cli_fail("pub", EXIT_USAGE,
                        "invalid topic '%s': use dot-separated tokens of A-Z a-z 0-9 _ -, at "
                        "most %d bytes, not starting with '$mbx.'",
                        topic, MBX_TOPIC_MAX);
    if (opts.client_name != NULL && mbx_check_name(opts.client_name) != MBX_OK)
        return cli_fail("pub", EXIT_USAGE, "invalid --from name '%s'", opts.client_name);
    if (opts.namespace_name != NULL && mbx_check_name(opts.namespace_name) != MBX_OK)
        return cli_fail("pub", EXIT_USAGE, "invalid namespace name '%s'", opts.namespace_name);
    po.timeout_ms = (int)timeout;
    /* A sender takes no slot: any number of them may run at once. */
    opts.send_only = 1;
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err != MBX_OK)
        return cli_fail_sender("pub", err, &opts);
    int rc = rest == 2 ? publish_one(c, topic, argv[optind + 1], strlen(argv[optind + 1]), &po, "")
                       : cli_each_line(c, "pub", publish_one_line, &(pub_line){topic, &po});
    mbx_close(c);
    return rc;
}
