/* mbx list: the broker, the namespace's geometry and totals, its clients and their
 * subscriptions, as a table or JSON, once or (--watch) again every interval. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "list_bridges.h"
#include "list_prometheus.h"

static const char usage_text[] =
    "Usage: mbx list [-N NS] [--json | --format table|json|prometheus] [--watch [-i S]]\n"
    "Show the broker (pid, uptime, epoch), the namespace's geometry and totals, and each\n"
    "client: name, pid ('linger' for a mailbox waiting for its client to come back),\n"
    "messages waiting, sent, received, refused as full, topic subscriptions and\n"
    "publications missed (dropped); then each subscription: client, pattern and policy.\n"
    "Names served on other hosts through mailbox-bridge say 'remote on NODE', and each\n"
    "bridge (a client bridge.NODE) is asked for its state: NATS server, forwarded,\n"
    "delivered, queued, dropped, redelivered.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --json          print one JSON object (its schema: " MBX_SCHEMA_DIR
    "/list.schema.json)\n"
    "      --format F      table (default), json (as --json), or prometheus: the\n"
    "                      totals and each client's counters as Prometheus metrics, for\n"
    "                      node_exporter's textfile collector (no broker: mbx_up 0, exit 3)\n"
    "  -w, --watch         show it again every interval until interrupted (a live table;\n"
    "                      with --json, one object per line)\n"
    "  -i, --interval S    seconds between two looks (default 1; 0.1..3600)\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_list_short[] = ":N:wi:h";
const struct option cmd_list_long[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"json", no_argument, NULL, 'j'},
    {"format", required_argument, NULL, 'f'},
    {"watch", no_argument, NULL, 'w'},
    {"interval", required_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One look at the namespace: what mbx_inspect and mbx_inspect_subscriptions report. */
typedef struct snapshot {
    const char *ns;
    mbx_namespace_info info;
    mbx_client_info *clients;
    size_t nclients, cap_clients;
    mbx_subscription_info *subs;
    size_t nsubs, cap_subs;
} snapshot;

/* Room for one more item of `size` bytes in items (n in use, *cap allocated): the array,
 * moved if it had to grow, or NULL when memory ran out (items is then still valid). */
static void *grow(void *items, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return items;
    size_t more = *cap ? 2 * *cap : 16;
    void *p = realloc(items, more * size);
    if (p != NULL)
        *cap = more;
    return p;
}

static int add_client(const mbx_client_info *ci, void *arg)
{
    snapshot *s = arg;
    mbx_client_info *p = grow(s->clients, s->nclients, &s->cap_clients, sizeof *p);
    if (p == NULL)
        return 1;
    s->clients = p;
    s->clients[s->nclients++] = *ci;
    return 0;
}

static int add_subscription(const mbx_subscription_info *si, void *arg)
{
    snapshot *s = arg;
    mbx_subscription_info *p = grow(s->subs, s->nsubs, &s->cap_subs, sizeof *p);
    if (p == NULL)
        return 1;
    s->subs = p;
    s->subs[s->nsubs++] = *si;
    return 0;
}

static mbx_err take_snapshot(const char *ns, snapshot *s)
{
    s->ns = ns;
    s->nclients = s->nsubs = 0;
    /* Subscriptions first: a client's list is then complete, or it has ended. */
    mbx_err err = mbx_inspect_subscriptions(ns, add_subscription, s);
    if (err == MBX_OK)
        err = mbx_inspect(ns, &s->info, add_client, s);
    return err;
}

static const char *policy_name(int policy)
{
    return policy == MBX_SUB_BLOCK ? "block" : "drop";
}

/* Width of the name columns: the longest name, at least the heading's. */
static int name_width(const snapshot *s, int least)
{
    int w = least;
    for (size_t i = 0; i < s->nclients; i++)
        if ((int)strlen(s->clients[i].name) > w)
            w = (int)strlen(s->clients[i].name);
    for (size_t i = 0; i < s->nsubs; i++)
        if ((int)strlen(s->subs[i].client) > w)
            w = (int)strlen(s->subs[i].client);
    return w;
}

static void print_table(const snapshot *s)
{
    const mbx_namespace_info *info = &s->info;
    int64_t up = info->uptime_s;
    printf("namespace  %s\n", info->namespace_name);
    printf("broker     pid %" PRId64 ", up %" PRId64 "h%02" PRId64 "m%02" PRId64 "s, epoch %" PRIu64
           "\n",
           info->broker_pid, up / 3600, up / 60 % 60, up % 60, info->epoch);
    printf("geometry   %u slots x %u messages x %u bytes in %u-byte mailboxes, %" PRIu64
           " bytes reserved\n",
           info->slots, info->depth, info->max_message, info->mailbox_bytes, info->segment_bytes);
    printf("clients    %u of %u; %" PRIu64 " seen since the namespace was made\n", info->clients,
           info->slots, info->clients_seen);
    printf("totals     %" PRIu64 " sent, %" PRIu64 " received, %" PRIu64
           " refused as full, %" PRIu64 " discarded with their recipient\n",
           info->total_sent, info->total_received, info->total_refused_full, info->discarded);
    printf("topics     %u of %u subscriptions, %u of %u retained messages\n", info->subscriptions,
           info->max_subscriptions, info->retained, info->max_retained);
    cJSON *bridges = list_bridges(s->ns, s->clients, s->nclients);
    print_bridges(bridges);
    cJSON_Delete(bridges);
    int w = name_width(s, 4);
    printf("\n%-*s %5s %8s %8s %10s %10s %8s %5s %8s\n", w, "NAME", "SLOT", "PID", "WAITING",
           "SENT", "RECEIVED", "FULL", "SUBS", "DROPPED");
    for (size_t i = 0; i < s->nclients; i++) {
        const mbx_client_info *ci = &s->clients[i];
        char pid[24];
        if (ci->lingering)
            snprintf(pid, sizeof pid, "linger");
        else
            snprintf(pid, sizeof pid, "%" PRId64, ci->pid);
        printf("%-*s %5u %8s %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %5u %8" PRIu64
               "%s%s%s\n",
               w, ci->name, ci->slot, pid, ci->waiting, ci->sent, ci->received, ci->refused_full,
               ci->subscriptions, ci->dropped, ci->group ? "  group" : "",
               ci->remote ? "  remote on " : "", ci->remote ? ci->node : "");
    }
    if (s->nsubs == 0)
        return;
    int sw = name_width(s, 10);
    printf("\n%-*s %-40s %s\n", sw, "SUBSCRIBER", "PATTERN", "POLICY");
    for (size_t i = 0; i < s->nsubs; i++)
        printf("%-*s %-40s %s\n", sw, s->subs[i].client, s->subs[i].pattern,
               policy_name(s->subs[i].policy));
}

static char *to_json(const snapshot *s)
{
    const mbx_namespace_info *info = &s->info;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "namespace", info->namespace_name);
    cJSON *broker = cJSON_AddObjectToObject(root, "broker");
    cJSON_AddNumberToObject(broker, "pid", (double)info->broker_pid);
    cJSON_AddNumberToObject(broker, "uptime_s", (double)info->uptime_s);
    cJSON_AddNumberToObject(broker, "epoch", (double)info->epoch);
    cJSON *geo = cJSON_AddObjectToObject(root, "geometry");
    cJSON_AddNumberToObject(geo, "slots", info->slots);
    cJSON_AddNumberToObject(geo, "depth", info->depth);
    cJSON_AddNumberToObject(geo, "max_message", info->max_message);
    cJSON_AddNumberToObject(geo, "mailbox_bytes", info->mailbox_bytes);
    cJSON_AddNumberToObject(geo, "segment_bytes", (double)info->segment_bytes);
    cJSON_AddNumberToObject(root, "discarded", (double)info->discarded);
    cJSON *totals = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(totals, "sent", (double)info->total_sent);
    cJSON_AddNumberToObject(totals, "received", (double)info->total_received);
    cJSON_AddNumberToObject(totals, "refused_full", (double)info->total_refused_full);
    cJSON_AddNumberToObject(totals, "discarded", (double)info->discarded);
    cJSON_AddNumberToObject(totals, "clients_seen", (double)info->clients_seen);
    cJSON *topics = cJSON_AddObjectToObject(root, "topics");
    cJSON_AddNumberToObject(topics, "subscriptions", info->subscriptions);
    cJSON_AddNumberToObject(topics, "max_subscriptions", info->max_subscriptions);
    cJSON_AddNumberToObject(topics, "retained", info->retained);
    cJSON_AddNumberToObject(topics, "max_retained", info->max_retained);
    cJSON *clients = cJSON_AddArrayToObject(root, "clients");
    for (size_t i = 0; i < s->nclients; i++) {
        const mbx_client_info *ci = &s->clients[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ci->name);
        cJSON_AddNumberToObject(o, "slot", ci->slot);
        cJSON_AddNumberToObject(o, "pid", (double)ci->pid);
        cJSON_AddNumberToObject(o, "waiting", (double)ci->waiting);
        cJSON_AddNumberToObject(o, "sent", (double)ci->sent);
        cJSON_AddNumberToObject(o, "received", (double)ci->received);
        cJSON_AddNumberToObject(o, "refused_full", (double)ci->refused_full);
        cJSON_AddNumberToObject(o, "late_replies", (double)ci->late_replies);
        cJSON_AddBoolToObject(o, "group", ci->group != 0);
        cJSON_AddBoolToObject(o, "lingering", ci->lingering != 0);
        if (ci->remote)
            cJSON_AddStringToObject(o, "node", ci->node);
        cJSON_AddNumberToObject(o, "dropped", (double)ci->dropped);
        cJSON_AddNumberToObject(o, "senders_waiting", ci->senders_waiting);
        cJSON *mine = cJSON_AddArrayToObject(o, "subscriptions");
        for (size_t k = 0; k < s->nsubs; k++) {
            if (s->subs[k].slot != ci->slot)
                continue;
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "pattern", s->subs[k].pattern);
            cJSON_AddStringToObject(p, "policy", policy_name(s->subs[k].policy));
            cJSON_AddItemToArray(mine, p);
        }
        cJSON_AddItemToArray(clients, o);
    }
    cJSON *bridges = list_bridges(s->ns, s->clients, s->nclients);
    if (bridges != NULL)
        cJSON_AddItemToObject(root, "bridges", bridges);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

typedef enum list_format { FORMAT_TABLE, FORMAT_JSON, FORMAT_PROMETHEUS } list_format;

static int show(const snapshot *s, list_format format)
{
    if (format == FORMAT_TABLE) {
        print_table(s);
        return EXIT_OK_;
    }
    if (format == FORMAT_PROMETHEUS) {
        list_prometheus(stdout, &s->info, s->clients, s->nclients);
        return fflush(stdout) == 0
                   ? EXIT_OK_
                   : cli_fail("list", EXIT_OUTPUT, "cannot write to standard output");
    }
    char *text = to_json(s);
    if (text == NULL)
        return cli_fail("list", EXIT_FAILURE_, "out of memory");
    puts(text);
    free(text);
    return EXIT_OK_;
}

static volatile sig_atomic_t watch_stop;

static void on_watch_stop(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* --watch: a look every interval until SIGINT or SIGTERM (exit 0). A namespace without
 * a broker for a while (a restart) is said, and watched for again. */
static int watch(const char *ns, list_format format, double interval_s)
{
    signal(SIGINT, on_watch_stop);
    signal(SIGTERM, on_watch_stop);
    bool json = format != FORMAT_TABLE;
    bool tty = !json && isatty(fileno(stdout));
    snapshot s = {0};
    while (!watch_stop) {
        mbx_err err = take_snapshot(ns, &s);
        if (tty)
            fputs("\033[H\033[2J", stdout); /* the table in place */
        if (err == MBX_OK) {
            if (!json) {
                time_t now = time(NULL);
                char stamp[32];
                strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
                printf("every %gs, %s\n\n", interval_s, stamp);
            }
            (void)show(&s, format);
        } else if (json) {
            printf("{\"namespace\":\"%s\",\"error\":\"%s\"}\n", ns, mbx_strerror(err));
        } else {
            printf("%s: %s (watching)\n", ns, mbx_strerror(err));
        }
        if (fflush(stdout) != 0)
            break; /* nobody reads any more */
        long long ms = (long long)(interval_s * 1000);
        for (long long slept = 0; slept < ms && !watch_stop; slept += 50)
            usleep(50 * 1000);
    }
    free(s.clients);
    free(s.subs);
    return EXIT_OK_;
}

int cmd_list(int argc, char **argv)
{
    const char *ns = NULL;
    list_format format = FORMAT_TABLE;
    bool watching = false;
    double interval_s = 1.0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_list_short, cmd_list_long, NULL)) != -1) {
        switch (ch) {
        case 'N':
            ns = optarg;
            break;
        case 'j':
            format = FORMAT_JSON;
            break;
        case 'f':
            if (strcmp(optarg, "table") == 0)
                format = FORMAT_TABLE;
            else if (strcmp(optarg, "json") == 0)
                format = FORMAT_JSON;
            else if (strcmp(optarg, "prometheus") == 0)
                format = FORMAT_PROMETHEUS;
            else
                return cli_fail("list", EXIT_USAGE,
                                "--format: '%s' is not one of table, json, prometheus", optarg);
            break;
        case 'w':
            watching = true;
            break;
        case 'i': {
            char *end = NULL;
            interval_s = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(interval_s >= 0.1 && interval_s <= 3600))
                return cli_fail("list", EXIT_USAGE,
                                "--interval: '%s' is not a number of seconds in 0.1..3600", optarg);
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("list", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("list", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_fail("list", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return cli_fail("list", EXIT_USAGE, "invalid namespace name '%s'", ns);
    if (watching && format == FORMAT_PROMETHEUS)
        return cli_fail("list", EXIT_USAGE,
                        "--watch and --format prometheus: a scrape is one look (run it again)");
    if (watching)
        return watch(ns, format, interval_s);
    snapshot s = {0};
    mbx_err err = take_snapshot(ns, &s);
    if (err != MBX_OK && format == FORMAT_PROMETHEUS)
        list_prometheus_down(stdout, ns); /* whatever the reason: a scrape sees it */
    int rc = err == MBX_OK ? show(&s, format) : cli_fail_namespace("list", err, ns);
    free(s.clients);
    free(s.subs);
    return rc;
}
