/* mbx namespaces: the namespaces of this machine that this user can reach, with their
 * brokers; mbx clean: remove what a dead broker left of one. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char namespaces_usage[] =
    "Usage: mbx namespaces [--json]\n"
    "List the namespaces this user's clients can reach: name, state (served: a broker\n"
    "runs; orphaned: its broker died and a keeper holds its messages for the next one;\n"
    "stale: files a dead broker left), broker pid, clients, and where it lives.\n"
    "\n"
    "      --json          print one JSON object (its schema: " MBX_SCHEMA_DIR
    "/namespaces.schema.json)\n"
    "  -h, --help          show this help\n";

static const char clean_usage[] =
    "Usage: mbx clean NS\n"
    "Remove what a dead broker left of namespace NS: the keeper holding its segment (and\n"
    "the messages in it) and its files. Refused (exit 12) while a broker serves NS.\n"
    "\n"
    "  -h, --help          show this help\n";

/* The parser's table: also what `mbx options` prints (cli_commands.c). */
const char cmd_namespaces_short[] = ":h";
const struct option cmd_namespaces_long[] = {
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *state_name(int state)
{
    return state == MBX_NS_SERVED ? "served" : state == MBX_NS_ORPHANED ? "orphaned" : "stale";
}

static int print_entry(const mbx_namespace_entry *e, void *arg)
{
    (void)arg;
    char pid[24] = "-", clients[24] = "-";
    if (e->broker_pid != 0)
        snprintf(pid, sizeof pid, "%" PRId64, e->broker_pid);
    if (e->state == MBX_NS_SERVED)
        snprintf(clients, sizeof clients, "%u", e->clients);
    printf("%-32s %-9s %8s %8s  %s\n", e->name, state_name(e->state), pid, clients, e->where);
    return 0;
}

static int add_entry(const mbx_namespace_entry *e, void *arg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "state", state_name(e->state));
    cJSON_AddNumberToObject(o, "broker_pid", (double)e->broker_pid);
    cJSON_AddNumberToObject(o, "clients", e->clients);
    cJSON_AddStringToObject(o, "where", e->where);
    cJSON_AddItemToArray((cJSON *)arg, o);
    return 0;
}

int cmd_namespaces(int argc, char **argv)
{
    bool json = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_namespaces_short, cmd_namespaces_long, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(namespaces_usage, stdout);
            return EXIT_OK_;
        default:
            return cli_unknown_option("namespaces", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_fail("namespaces", EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!json) {
        printf("%-32s %-9s %8s %8s  %s\n", "NAMESPACE", "STATE", "BROKER", "CLIENTS", "WHERE");
        mbx_err err = mbx_namespaces(print_entry, NULL);
        return err == MBX_OK ? EXIT_OK_ : cli_fail_err("namespaces", err, "listing");
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "namespaces");
    mbx_err err = mbx_namespaces(add_entry, list);
    char *text = err == MBX_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (err != MBX_OK)
        return cli_fail_err("namespaces", err, "listing");
    if (text == NULL)
        return cli_fail("namespaces", EXIT_FAILURE_, "out of memory");
    puts(text);
    free(text);
    return EXIT_OK_;
}

int cmd_clean(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(clean_usage, stdout);
        return EXIT_OK_;
    }
    if (argc != 2 || argv[1][0] == '-')
        return cli_fail("clean", EXIT_USAGE, "expected NS (see mbx clean --help)");
    const char *ns = argv[1];
    if (mbx_check_name(ns) != MBX_OK)
        return cli_fail("clean", EXIT_USAGE, "invalid namespace name '%s'", ns);
    unsigned cleaned = 0;
    mbx_err err = mbx_clean(ns, &cleaned);
    if (err == MBX_EEXIST)
        return cli_fail("clean", EXIT_BUSY, "%s: a broker serves it; stop it first", ns);
    if (err != MBX_OK)
        return cli_fail_err("clean", err, ns);
    if (cleaned == 0)
        printf("%s: nothing to clean\n", ns);
    else
        printf("%s:%s%s\n", ns,
               (cleaned & MBX_CLEAN_KEEPER) ? " its keeper let the segment go;" : "",
               (cleaned & MBX_CLEAN_FILES) ? " removed the files its broker left" : "");
    return EXIT_OK_;
}
