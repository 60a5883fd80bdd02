/* mbx list: the broker, the namespace's geometry and its clients, as a table or JSON. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "Usage: mbx list [-N NS] [--json]\n"
    "Show the broker (pid, uptime, epoch), the namespace's geometry and each client:\n"
    "name, pid ('linger' for a mailbox waiting for its client to come back), messages\n"
    "waiting, sent, received, refused as full, topic subscriptions and publications\n"
    "missed (dropped); then each subscription: client, pattern and policy.\n"
    "\n"
    "  -N, --namespace NS  namespace (default: $MBX_NAMESPACE, else 'default')\n"
    "      --json          print one JSON object (schemas/list.schema.json)\n"
    "  -h, --help          show this help\n";

static const struct option long_options[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int print_row(const mbx_client_info *ci, void *arg)
{
    (void)arg;
    char pid[24];
    if (ci->lingering)
        snprintf(pid, sizeof pid, "linger");
    else
        snprintf(pid, sizeof pid, "%" PRId64, ci->pid);
    printf("%-24s %5u %8s %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %5u %8" PRIu64
           "%s\n",
           ci->name, ci->slot, pid, ci->waiting, ci->sent, ci->received, ci->refused_full,
           ci->subscriptions, ci->dropped, ci->group ? "  group" : "");
    return 0;
}

static const char *policy_name(int policy)
{
    return policy == MBX_SUB_BLOCK ? "block" : "drop";
}

static int print_subscription(const mbx_subscription_info *si, void *arg)
{
    bool *first = arg;
    if (*first)
        printf("\n%-24s %-40s %s\n", "SUBSCRIBER", "PATTERN", "POLICY");
    *first = false;
    printf("%-24s %-40s %s\n", si->client, si->pattern, policy_name(si->policy));
    return 0;
}

/* The namespace's subscriptions, as a JSON array of {slot, pattern, policy}. */
static int add_json_subscription(const mbx_subscription_info *si, void *arg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "slot", si->slot);
    cJSON_AddStringToObject(o, "pattern", si->pattern);
    cJSON_AddStringToObject(o, "policy", policy_name(si->policy));
    cJSON_AddItemToArray((cJSON *)arg, o);
    return 0;
}

typedef struct json_walk {
    cJSON *clients;
    const cJSON *subscriptions; /* every subscription, with its slot */
} json_walk;

static int add_json_client(const mbx_client_info *ci, void *arg)
{
    json_walk *w = arg;
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
    cJSON_AddNumberToObject(o, "dropped", (double)ci->dropped);
    cJSON *mine = cJSON_AddArrayToObject(o, "subscriptions");
    const cJSON *s;
    cJSON_ArrayForEach(s, w->subscriptions)
    {
        if (cJSON_GetObjectItem(s, "slot")->valuedouble != (double)ci->slot)
            continue;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "pattern", cJSON_GetObjectItem(s, "pattern")->valuestring);
        cJSON_AddStringToObject(p, "policy", cJSON_GetObjectItem(s, "policy")->valuestring);
        cJSON_AddItemToArray(mine, p);
    }
    cJSON_AddItemToArray(w->clients, o);
    return 0;
}

static int list_json(const char *ns, mbx_namespace_info *info)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *clients = cJSON_CreateArray();
    cJSON *subscriptions = cJSON_CreateArray();
    json_walk w = {.clients = clients, .subscriptions = subscriptions};
    /* Subscriptions first: a client's list is complete, or it ends (a snapshot). */
    mbx_err err = mbx_inspect_subscriptions(ns, add_json_subscription, subscriptions);
    if (err == MBX_OK)
        err = mbx_inspect(ns, info, add_json_client, &w);
    cJSON_Delete(subscriptions);
    if (err != MBX_OK) {
        cJSON_Delete(root);
        cJSON_Delete(clients);
        return cli_fail_err("list", err,
                            info->namespace_name[0] ? info->namespace_name : "namespace");
    }
    cJSON_AddStringToObject(root, "namespace", info->namespace_name);
    cJSON *broker = cJSON_AddObjectToObject(root, "broker");
    cJSON_AddNumberToObject(broker, "pid", (double)info->broker_pid);
    cJSON_AddNumberToObject(broker, "uptime_s", (double)info->uptime_s);
    cJSON_AddNumberToObject(broker, "epoch", (double)info->epoch);
    cJSON *geo = cJSON_AddObjectToObject(root, "geometry");
    cJSON_AddNumberToObject(geo, "slots", info->slots);
    cJSON_AddNumberToObject(geo, "depth", info->depth);
    cJSON_AddNumberToObject(geo, "max_message", info->max_message);
    cJSON_AddNumberToObject(geo, "segment_bytes", (double)info->segment_bytes);
    cJSON_AddNumberToObject(root, "discarded", (double)info->discarded);
    cJSON *topics = cJSON_AddObjectToObject(root, "topics");
    cJSON_AddNumberToObject(topics, "subscriptions", info->subscriptions);
    cJSON_AddNumberToObject(topics, "max_subscriptions", info->max_subscriptions);
    cJSON_AddNumberToObject(topics, "retained", info->retained);
    cJSON_AddNumberToObject(topics, "max_retained", info->max_retained);
    cJSON_AddItemToObject(root, "clients", clients);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL)
        return cli_fail("list", EXIT_FAILURE_, "out of memory");
    puts(text);
    free(text);
    return EXIT_OK_;
}

int cmd_list(int argc, char **argv)
{
    const char *ns = NULL;
    bool json = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:N:h", long_options, NULL)) != -1) {
        switch (ch) {
        case 'N':
            ns = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("list", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_fail("list", EXIT_USAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_fail("list", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return cli_fail("list", EXIT_USAGE, "invalid namespace name '%s'", ns);
    mbx_namespace_info info;
    memset(&info, 0, sizeof info);
    if (json)
        return list_json(ns, &info);
    mbx_err err = mbx_inspect(ns, &info, NULL, NULL);
    if (err != MBX_OK)
        return cli_fail_namespace("list", err, ns);
    int64_t up = info.uptime_s;
    printf("namespace  %s\n", info.namespace_name);
    printf("broker     pid %" PRId64 ", up %" PRId64 "h%02" PRId64 "m%02" PRId64 "s, epoch %" PRIu64
           "\n",
           info.broker_pid, up / 3600, up / 60 % 60, up % 60, info.epoch);
    printf("geometry   %u slots x %u messages x %u bytes, %" PRIu64 " bytes reserved\n", info.slots,
           info.depth, info.max_message, info.segment_bytes);
    printf("clients    %u of %u; %" PRIu64 " messages discarded with their recipient\n",
           info.clients, info.slots, info.discarded);
    printf("topics     %u of %u subscriptions, %u of %u retained messages\n", info.subscriptions,
           info.max_subscriptions, info.retained, info.max_retained);
    printf("\n%-24s %5s %8s %8s %10s %10s %8s %5s %8s\n", "NAME", "SLOT", "PID", "WAITING", "SENT",
           "RECEIVED", "FULL", "SUBS", "DROPPED");
    err = mbx_inspect(ns, &info, print_row, NULL);
    bool first = true;
    if (err == MBX_OK)
        err = mbx_inspect_subscriptions(ns, print_subscription, &first);
    return err == MBX_OK ? EXIT_OK_ : cli_fail_err("list", err, ns);
}
