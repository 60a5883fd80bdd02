/* mbx monitor: every message sent in a namespace, as it is sent, one line each. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "monotonic.h"

static const char usage_text[] =
    "Usage: mbx monitor [-N NS] [--json] [--no-body] [-c COUNT] [-t MS] [--ready]\n"
    "                   [NAME|PATTERN...]\n"
    "Print every message sent in the namespace as it is sent (sends, requests, replies,\n"
    "publications), one line each: its time, kind, sender, recipient or topic, size and\n"
    "body. With NAME or PATTERN arguments, only the messages from or to such a name, or\n"
    "published on such a topic ('*': one token, '>': the rest). For the namespace's owner\n"
    "only. A monitor that cannot keep up misses messages, and says how many: it never\n"
    "slows a sender down.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --json          print one JSON object per message (its schema:\n"
    "                      " MBX_SCHEMA_DIR "/monitor.schema.json)\n"
    "      --no-body       leave the bodies out\n"
    "  -c, --count N       exit 0 after N messages shown (default 0: no limit)\n"
    "  -t, --timeout MS    give up after MS in all: exit 4 if COUNT was not reached,\n"
    "                      0 when no COUNT was given (default: no limit)\n"
    "      --ready         once attached, print 'ready NAME' on standard error\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_monitor_short[] = ":N:c:t:h";
const struct option cmd_monitor_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"json", no_argument, NULL, 'j'},
    {"no-body", no_argument, NULL, 'B'},
    {"count", required_argument, NULL, 'c'},
    {"timeout", required_argument, NULL, 't'},
    {"ready", no_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct monitor_view {
    bool json;
    bool no_body;
    char **filters; /* names and patterns; none: everything */
    int n_filters;
} monitor_view;

static const char *kind_word(mbx_kind kind)
{
    switch (kind) {
    case MBX_KIND_REQUEST:
        return "request";
    case MBX_KIND_REPLY:
        return "reply";
    case MBX_KIND_PUBLICATION:
        return "publish";
    case MBX_KIND_PLAIN:
        break;
    }
    return "send";
}

/* One filter argument against one label (a name or a topic; "" matches nothing). */
static bool filter_matches(const char *filter, const char *label)
{
    if (label == NULL || label[0] == '\0')
        return false;
    return strcmp(filter, label) == 0 || mbx_pattern_match(filter, label) == 1;
}

static bool wanted(const monitor_view *mv, const mbx_message_fields *f)
{
    if (mv->n_filters == 0)
        return true;
    for (int i = 0; i < mv->n_filters; i++)
        if (filter_matches(mv->filters[i], f->from) || filter_matches(mv->filters[i], f->to) ||
            filter_matches(mv->filters[i], f->topic))
            return true;
    return false;
}

/* HH:MM:SS.uuuuuu, local time. */
static void clock_text(int64_t ts_us, char *out, size_t cap)
{
    time_t secs = (time_t)(ts_us / 1000000);
    struct tm tm;
#ifdef _WIN32
    bool ok = localtime_s(&tm, &secs) == 0;
#else
    bool ok = localtime_r(&secs, &tm) != NULL;
#endif
    if (!ok) {
        snprintf(out, cap, "%" PRId64, ts_us);
        return;
    }
    snprintf(out, cap, "%02d:%02d:%02d.%06d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts_us % 1000000));
}

/* Names, nodes and topics the library handed out are checked: no character in them needs
 * escaping in JSON. */
/* f->missed is the copies missed just before this one: with filters, also those before
 * the copies not shown since the last line (the caller adds them up). */
static bool print_json(const monitor_view *mv, const mbx_message_fields *f)
{
    mbx_kind kind = (mbx_kind)f->kind;
    int rc = printf("{\"ts\":%" PRId64 ",\"kind\":\"%s\",\"from\":\"%s\"", f->ts_us,
                    kind_word(kind), f->from);
    if (rc >= 0 && f->node != NULL)
        rc = printf(",\"node\":\"%s\"", f->node);
    if (rc >= 0 && f->topic != NULL)
        rc = printf(",\"topic\":\"%s\"", f->topic);
    else if (rc >= 0 && f->to[0] != '\0')
        rc = printf(",\"to\":\"%s\"", f->to);
    if (rc >= 0 && (kind == MBX_KIND_REQUEST || kind == MBX_KIND_REPLY))
        rc = printf(",\"corr\":%" PRIu64, f->correlation);
    if (rc >= 0 && f->retained)
        rc = printf(",\"retained\":true");
    if (rc >= 0 && f->missed > 0)
        rc = printf(",\"missed\":%" PRIu64, f->missed);
    if (rc >= 0)
        rc = printf(",\"size\":%zu", f->len);
    if (rc >= 0 && !mv->no_body)
        rc = printf(",\"body\":%s", f->body);
    return rc >= 0 && fputs("}\n", stdout) >= 0;
}

static bool print_text(const monitor_view *mv, const mbx_message_fields *f)
{
    char when[32];
    clock_text(f->ts_us, when, sizeof when);
    mbx_kind kind = (mbx_kind)f->kind;
    int rc = 0;
    if (f->missed > 0)
        rc = printf("-- missed %" PRIu64 " message%s\n", f->missed, f->missed == 1 ? "" : "s");
    if (rc >= 0)
        rc = printf("%s %-7s %s%s%s", when, kind_word(kind), f->from, f->node != NULL ? "@" : "",
                    f->node != NULL ? f->node : "");
    if (rc >= 0 && f->topic != NULL)
        rc = printf(" on %s%s", f->topic, f->retained ? " (retained)" : "");
    else if (rc >= 0)
        rc = printf(" -> %s", f->to[0] != '\0' ? f->to : "?");
    if (rc >= 0 && (kind == MBX_KIND_REQUEST || kind == MBX_KIND_REPLY))
        rc = printf(" #%" PRIu64, f->correlation);
    if (rc >= 0)
        rc = printf(" %zu B", f->len);
    if (rc >= 0 && !mv->no_body)
        rc = printf(" %s", f->body);
    return rc >= 0 && fputc('\n', stdout) != EOF;
}

/* The copies this monitor missed in all, as the namespace counts them (mbx list's
 * DROPPED of its mailbox): those after the last copy it got are told by nothing else. */
typedef struct own_count {
    const char *name;
    uint64_t dropped;
} own_count;

static int find_own(const mbx_client_info *info, void *arg)
{
    own_count *own = arg;
    if (strcmp(info->name, own->name) != 0)
        return 0;
    own->dropped = info->dropped;
    return 1;
}

static int watch(mbx_client *c, const char *ns, const monitor_view *mv, long long count,
                 long long deadline)
{
    mbx_message *m = mbx_message_new();
    if (m == NULL)
        return cli_fail("monitor", EXIT_FAILURE_, "out of memory");
    cli_stop_on_signals(c); /* installed before connecting; now it can interrupt */
    int rc = EXIT_OK_;
    long long shown = 0;
    uint64_t missed = 0; /* told by copies not shown (filters), for the next line shown */
    while ((count == 0 || shown < count) && !cli_stop_requested()) {
        /* Copies are observations, not deliveries: taken as read, and the output is
         * flushed whenever the monitor has caught up (not once per line). The time limit
         * holds however much comes (or is filtered out). */
        mbx_err err =
            deadline >= 0 && monotonic_ms() >= deadline ? MBX_ETIMEDOUT : mbx_recv(c, m, 0);
        if (err == MBX_ETIMEDOUT && (deadline < 0 || monotonic_ms() < deadline)) {
            if (fflush(stdout) != 0) {
                rc = cli_fail("monitor", EXIT_OUTPUT, "cannot write to standard output");
                break;
            }
            int wait_ms = -1;
            if (deadline >= 0) {
                long long left = deadline - monotonic_ms();
                wait_ms = left > 0 ? (int)left : 0;
            }
            err = mbx_recv(c, m, wait_ms);
        }
        if (err == MBX_ETIMEDOUT && count == 0)
            break; /* no count asked for: the time limit is the normal end */
        if (err == MBX_EINTR && cli_stop_requested())
            break;
        if (err != MBX_OK) {
            rc = err == MBX_ETIMEDOUT
                     ? cli_fail("monitor", EXIT_TIMEOUT, "timed out after %lld of %lld messages",
                                shown, count)
                     : cli_fail_err("monitor", err, "receive failed");
            break;
        }
        mbx_message_fields f;
        mbx_message_fields_get(m, &f);
        missed += f.missed;
        if (!wanted(mv, &f))
            continue;
        f.missed = missed;
        missed = 0;
        if (!(mv->json ? print_json(mv, &f) : print_text(mv, &f))) {
            rc = cli_fail("monitor", EXIT_OUTPUT, "cannot write to standard output");
            break;
        }
        shown++;
    }
    if (fflush(stdout) != 0 && rc == EXIT_OK_)
        rc = cli_fail("monitor", EXIT_OUTPUT, "cannot write to standard output");
    cli_stop_signals_off();
    mbx_message_free(m);
    own_count own = {.name = mbx_client_name(c)};
    mbx_namespace_info info;
    if (mbx_inspect(ns, &info, find_own, &own) == MBX_OK && own.dropped > 0)
        fprintf(stderr, "mbx monitor: missed %" PRIu64 " message%s: it could not keep up\n",
                own.dropped, own.dropped == 1 ? "" : "s");
    return rc;
}

int cmd_monitor(int argc, char **argv)
{
    mbx_connect_options opts;
    mbx_connect_options_init(&opts);
    opts.monitor = 1;
    monitor_view mv = {0};
    long long count = 0, timeout = -1;
    bool ready = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_monitor_short, cmd_monitor_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            opts.namespace_name = optarg;
            break;
        case 'j':
            mv.json = true;
            break;
        case 'B':
            mv.no_body = true;
            break;
        case 'c':
            if (!cli_opt_count("monitor", optarg, &count))
                return EXIT_USAGE;
            break;
        case 't':
            if (!cli_opt_ms("monitor", "--timeout", optarg, -1, &timeout))
                return EXIT_USAGE;
            break;
        case 'r':
            ready = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("monitor", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("monitor", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        if (mbx_check_name(argv[i]) != MBX_OK && mbx_check_pattern(argv[i]) != MBX_OK)
            return cli_fail("monitor", EXIT_USAGE,
                            "'%s' is neither a client name nor a topic pattern ('*': one token, "
                            "a last '>': the rest)",
                            argv[i]);
    mv.filters = argv + optind;
    mv.n_filters = argc - optind;
    const char *ns = opts.namespace_name != NULL ? opts.namespace_name : mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return cli_fail("monitor", EXIT_USAGE, "invalid namespace name '%s'", ns);

#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a closed output is an error we report */
#endif
    long long deadline = timeout < 0 ? -1 : monotonic_ms() + timeout;
    if (timeout > 0 && timeout < opts.timeout_ms)
        opts.timeout_ms = (int)timeout;
    /* SIGINT and SIGTERM end the command with exit 0 from the moment it may say it is
     * ready: a stop before there is a client to interrupt ends the loop before it starts. */
    cli_stop_on_signals(NULL);
    mbx_client *c;
    mbx_err err = mbx_connect(&opts, &c);
    if (err == MBX_EPERM)
        return cli_fail("monitor", EXIT_PERMISSION,
                        "%s: permission denied: only the namespace's owner (the user its broker "
                        "runs as) or root may monitor it",
                        ns);
    if (err == MBX_ENOSLOTS)
        return cli_fail("monitor", EXIT_NAME,
                        "%s: no room: at most 4 monitors at once, or every slot is taken", ns);
    if (err != MBX_OK)
        return cli_fail_connect("monitor", err, &opts);
    if (ready) {
        fprintf(stderr, "ready %s\n", mbx_client_name(c));
        fflush(stderr);
    }
    int rc = watch(c, ns, &mv, count, deadline);
    mbx_close(c);
    return rc;
}
