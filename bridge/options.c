/*
 * options.c: mailbox-bridge's command line (mailbox-bridge(8), docs/bridge.md). Bad input
 * ends the program with one line and exit 2 before anything starts.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: mailbox-bridge [-N NS] [--nats URL[,URL...]] [--node NAME] [--cluster NAME]\n"
    "                      [--names PATTERN]... [--topics PATTERN]... [--durable]\n"
    "                      [--creds FILE] [--tls-ca FILE] [--tls-cert FILE] [--tls-key FILE]\n"
    "                      [--log-level error|warn|info|debug]\n"
    "Joins the namespace NS with the namespaces of the same cluster on other hosts, over\n"
    "NATS (see mailbox-bridge(8)).\n"
    "  -N, --namespace NS   the namespace (default $MBX_NAMESPACE, then the default)\n"
    "  --nats URL[,URL...]  NATS servers (default $NATS_URL, then nats://127.0.0.1:4222)\n"
    "  --node NAME          this host's name among the bridged hosts (default: host name)\n"
    "  --cluster NAME       subject prefix mbx.NAME. (default: the namespace's name)\n"
    "  --names PATTERN      names this host exports (default '>': all)\n"
    "  --topics PATTERN     topics this host exports (default '>': all but $mbx.)\n"
    "  --durable            messages to names through a JetStream stream\n"
    "  --creds FILE         NATS credentials file\n"
    "  --tls-ca FILE        CA certificates to trust (turns TLS on)\n"
    "  --tls-cert FILE      client certificate (with --tls-key)\n"
    "  --tls-key FILE       client key\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "Environment: NATS_URL, NATS_USER and NATS_PASSWORD, NATS_TOKEN, MBX_NAMESPACE,\n"
    "MBX_RUNTIME_DIR.\n";

static void fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "mailbox-bridge: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see mailbox-bridge --help)\n");
    exit(EXIT_USAGE);
}

/* A node or cluster name: a mailbox name that is one subject token (no '.'). */
static void set_token(char *dst, const char *value, const char *what)
{
    if (mbx_check_name(value) != MBX_OK || strchr(value, '.') != NULL)
        fail(what, value);
    snprintf(dst, MBX_NAME_MAX + 1, "%s", value);
}

/* Appends the comma-separated patterns of value to list. */
static void add_patterns(const char **list, int *n, char *value, const char *option)
{
    for (char *save = NULL, *p = strtok_r(value, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        if (mbx_check_pattern(p) != MBX_OK) {
            fprintf(stderr,
                    "mailbox-bridge: %s: invalid pattern '%s' (see mailbox-bridge --help)\n",
                    option, p);
            exit(EXIT_USAGE);
        }
        if (*n == BRIDGE_PATTERNS_MAX) {
            fprintf(stderr, "mailbox-bridge: %s: at most %d patterns\n", option,
                    BRIDGE_PATTERNS_MAX);
            exit(EXIT_USAGE);
        }
        list[(*n)++] = p;
    }
}

static log_level parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return (log_level)i;
    fail("--log-level: '%s' is not one of error, warn, info, debug", s);
    return LOG_INFO;
}

static void default_node(char *dst)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        fail("--node: the host name cannot be read%s: give --node", "");
    host[strcspn(host, ".")] = '\0'; /* the first label: a subject token */
    if (mbx_check_name(host) != MBX_OK)
        fail("the host name '%s' is not a valid node name: give --node", host);
    /* mbx_check_name bounded the length by MBX_NAME_MAX; copy exactly that much so no
     * build's format-truncation check has anything to say. */
    size_t len = strnlen(host, MBX_NAME_MAX);
    memcpy(dst, host, len);
    dst[len] = '\0';
}

void bridge_options(int argc, char **argv, bridge_config *cfg)
{
    enum {
        O_NATS = 256,
        O_NODE,
        O_CLUSTER,
        O_NAMES,
        O_TOPICS,
        O_DURABLE,
        O_CREDS,
        O_CA,
        O_CERT,
        O_KEY,
        O_LEVEL
    };
    static const struct option longs[] = {{"namespace", required_argument, NULL, 'N'},
                                          {"nats", required_argument, NULL, O_NATS},
                                          {"node", required_argument, NULL, O_NODE},
                                          {"cluster", required_argument, NULL, O_CLUSTER},
                                          {"names", required_argument, NULL, O_NAMES},
                                          {"topics", required_argument, NULL, O_TOPICS},
                                          {"durable", no_argument, NULL, O_DURABLE},
                                          {"creds", required_argument, NULL, O_CREDS},
                                          {"tls-ca", required_argument, NULL, O_CA},
                                          {"tls-cert", required_argument, NULL, O_CERT},
                                          {"tls-key", required_argument, NULL, O_KEY},
                                          {"log-level", required_argument, NULL, O_LEVEL},
                                          {"help", no_argument, NULL, 'h'},
                                          {"version", no_argument, NULL, 'V'},
                                          {NULL, 0, NULL, 0}};
    memset(cfg, 0, sizeof *cfg);
    cfg->level = LOG_INFO;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":N:hV", longs, NULL)) != -1) {
        switch (c) {
        case 'N':
            if (mbx_check_name(optarg) != MBX_OK)
                fail("-N: invalid namespace name '%s'", optarg);
            cfg->ns = optarg;
            break;
        case O_NATS:
            if (optarg[0] == '\0')
                fail("--nats: no URL%s", "");
            cfg->nats = optarg;
            break;
        case O_NODE:
            set_token(cfg->node, optarg,
                      "--node: '%s' is not a valid node name (letters, digits, "
                      "'-' and '_', no '.')");
            break;
        case O_CLUSTER:
            set_token(cfg->cluster, optarg,
                      "--cluster: '%s' is not a valid cluster name (letters, digits, '-' and '_', "
                      "no '.')");
            break;
        case O_NAMES:
            add_patterns(cfg->names, &cfg->n_names, optarg, "--names");
            break;
        case O_TOPICS:
            add_patterns(cfg->topics, &cfg->n_topics, optarg, "--topics");
            break;
        case O_DURABLE:
            cfg->durable = true;
            break;
        case O_CREDS:
            cfg->creds = optarg;
            break;
        case O_CA:
            cfg->tls_ca = optarg;
            break;
        case O_CERT:
            cfg->tls_cert = optarg;
            break;
        case O_KEY:
            cfg->tls_key = optarg;
            break;
        case O_LEVEL:
            cfg->level = parse_level(optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        case 'V':
            printf("mailbox-bridge %s\n", mbx_version());
            exit(0);
        case ':':
            fail("option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            fail("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        fail("unexpected argument '%s'", argv[optind]);
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        fail("--tls-cert and --tls-key go together%s", "");
    const char *files[] = {cfg->creds, cfg->tls_ca, cfg->tls_cert, cfg->tls_key};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i] != NULL && access(files[i], R_OK) != 0)
            fail("cannot read '%s'", files[i]);
    if (cfg->nats == NULL) {
        const char *env = getenv("NATS_URL");
        cfg->nats = env != NULL && env[0] != '\0' ? env : "nats://127.0.0.1:4222";
    }
    if (cfg->node[0] == '\0')
        default_node(cfg->node);
    if (strlen(cfg->node) > BRIDGE_NODE_MAX)
        fail("--node: '%s' is too long (the bridge's own name, bridge.NODE, must be a valid "
             "name: at most 56 bytes)",
             cfg->node);
    if (cfg->cluster[0] == '\0') {
        const char *ns = cfg->ns != NULL ? cfg->ns : mbx_default_namespace();
        if (strchr(ns, '.') != NULL)
            fail("the namespace '%s' has a '.': give --cluster", ns);
        snprintf(cfg->cluster, sizeof cfg->cluster, "%s", ns);
    }
    if (cfg->n_names == 0)
        cfg->names[cfg->n_names++] = ">";
    if (cfg->n_topics == 0)
        cfg->topics[cfg->n_topics++] = ">";
}

/* Names become one subject token each after mbx.<c>.n.: a name with an empty token
 * (ending or starting with '.') cannot, and the bridge's own are not served. */
bool bridge_name_bridged(const bridge_config *cfg, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || name[0] == '.' || name[len - 1] == '.')
        return false;
    /* Names the broker assigns (anon.<pid>.<n>) are nobody's address: their replies
     * travel by slot, not by name. Bridging them would only churn every directory. */
    if (strncmp(name, "anon.", 5) == 0)
        return false;
    for (int i = 0; i < cfg->n_names; i++)
        if (mbx_pattern_match(cfg->names[i], name))
            return true;
    return false;
}

bool bridge_topic_exported(const bridge_config *cfg, const char *topic)
{
    if (strncmp(topic, "$mbx.", 5) == 0)
        return false;
    for (int i = 0; i < cfg->n_topics; i++)
        if (mbx_pattern_match(cfg->topics[i], topic))
            return true;
    return false;
}
