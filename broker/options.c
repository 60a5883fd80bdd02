/* options.c: mailboxd's options, their defaults and their checks. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "options.h"
#include "segment.h"
#include "size_suffix.h"

static const char usage_text[] =
    "Usage: mailboxd [OPTION]...\n"
    "Serve a mailbox namespace: one shared mapping holding a mailbox per client.\n"
    "\n"
    "  -N, --namespace NAME   namespace to serve (default: $MBX_NAMESPACE, else 'default')\n"
    "      --slots N          clients the namespace holds (default 64, 1..16384)\n"
    "      --depth N          messages one mailbox holds (default 64, 1..1048576)\n"
    "      --max-message N    largest message in bytes (default 4096, 16..1048576; sizes\n"
    "                         take K, M, G: 64K, 1M)\n"
    "      --mailbox-bytes N  bytes of each mailbox's ring of messages, rounded up to a\n"
    "                         power of two (default: room for depth messages of 200\n"
    "                         bytes; at least two of the largest; at most 1073741824)\n"
    "      --subscriptions N  topic subscriptions the namespace holds (default 1024,\n"
    "                         1..65536)\n"
    "      --retained N       retained topic messages it keeps (default 64, 1..65536)\n"
    "      --mode OCTAL       permissions of the namespace (default 0600)\n"
    "      --fresh            discard a segment a dead broker left (default: adopt it)\n"
    "  -d, --daemon           run in the background; return once clients can connect,\n"
    "                         printing the broker's pid\n"
    "      --pidfile PATH     write the broker's pid to PATH while it runs\n"
    "      --log PATH         append log lines to PATH, reopened on SIGHUP (default:\n"
    "                         stderr; with -d, syslog, or a file named at start when\n"
    "                         there is no /dev/log)\n"
    "      --log-level LEVEL  error, warn, info (default) or debug\n"
    "  -v, --verbose          log everything (as --log-level debug)\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "Exit status: 0 stopped cleanly, 1 failure, 2 usage error, 3 namespace served by\n"
    "another live broker, 4 a segment left behind cannot be adopted (see --fresh).\n";

enum {
    OPT_SLOTS = 256,
    OPT_DEPTH,
    OPT_MAX_MESSAGE,
    OPT_MAILBOX_BYTES,
    OPT_SUBSCRIPTIONS,
    OPT_RETAINED,
    OPT_MODE,
    OPT_FRESH,
    OPT_PIDFILE,
    OPT_LOG,
    OPT_LOG_LEVEL,
    OPT_VERSION
};

static const struct option long_options[] = {
    {"namespace", required_argument, NULL, 'N'},
    {"slots", required_argument, NULL, OPT_SLOTS},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"mailbox-bytes", required_argument, NULL, OPT_MAILBOX_BYTES},
    {"subscriptions", required_argument, NULL, OPT_SUBSCRIPTIONS},
    {"retained", required_argument, NULL, OPT_RETAINED},
    {"mode", required_argument, NULL, OPT_MODE},
    {"fresh", no_argument, NULL, OPT_FRESH},
    {"daemon", no_argument, NULL, 'd'},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, const char *a, const char *b)
{
    /* Escaped as a whole: the arguments quoted may hold line breaks or escape sequences. */
    char raw[1024], safe[1024];
    snprintf(raw, sizeof raw, fmt, a, b);
    escape_text(raw, safe, sizeof safe);
    fprintf(stderr, "mailboxd: %s (see mailboxd --help)\n", safe);
    return BROKER_EXIT_USAGE;
}

/* Whole-string, in-range unsigned parse: no sign, no junk, no overflow. */
static bool parse_u32(const char *s, int base, unsigned long lo, unsigned long hi, uint32_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, base);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

mbx_err options_layout(const broker_options *opt, seg_view *out)
{
    seg_params p = {.slots = opt->slots,
                    .depth = opt->depth,
                    .max_message = opt->max_message,
                    .ring_bytes = opt->mailbox_bytes,
                    .subscriptions = opt->subscriptions,
                    .retained = opt->retained};
    return segment_layout(&p, out);
}

/* A decimal option's value, in lo..hi, into *out; false after the usage error that names
 * the option and its range. */
static bool number_option(const char *option, const char *arg, uint32_t lo, uint32_t hi,
                          uint32_t *out)
{
    if (parse_u32(arg, 10, lo, hi, out))
        return true;
    char fmt[96];
    snprintf(fmt, sizeof fmt, "--%s: '%%s' is not a number in %u..%u%%s", option, lo, hi);
    (void)usage_error(fmt, arg, "");
    return false;
}

/* A size option's value (bytes, or with a K, M or G suffix), in lo..hi. */
static bool size_option(const char *option, const char *arg, uint32_t lo, uint32_t hi,
                        uint32_t *out)
{
    uint64_t v;
    if (size_parse(arg, lo, hi, &v)) {
        *out = (uint32_t)v;
        return true;
    }
    char fmt[128];
    snprintf(fmt, sizeof fmt, "--%s: '%%s' is not a size in %u..%u bytes (K, M, G allowed)%%s",
             option, lo, hi);
    (void)usage_error(fmt, arg, "");
    return false;
}

int options_parse(int argc, char **argv, broker_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->slots = BROKER_DEFAULT_SLOTS;
    opt->depth = BROKER_DEFAULT_DEPTH;
    opt->max_message = BROKER_DEFAULT_MAX_MESSAGE;
    opt->subscriptions = SEG_DEFAULT_SUBSCRIPTIONS;
    opt->retained = SEG_DEFAULT_RETAINED;
    opt->mode = BROKER_DEFAULT_MODE;
    opt->log_level = -1;
    const char *ns = mbx_default_namespace();

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":N:dvh", long_options, NULL)) != -1) {
        uint32_t v;
        switch (c) {
        case 'N':
            ns = optarg;
            break;
        case OPT_SLOTS:
            if (!number_option("slots", optarg, SEG_MIN_SLOTS, SEG_MAX_SLOTS, &opt->slots))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_DEPTH:
            if (!number_option("depth", optarg, SEG_MIN_DEPTH, SEG_MAX_DEPTH, &opt->depth))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_MAX_MESSAGE:
            if (!size_option("max-message", optarg, SEG_MIN_MESSAGE, SEG_MAX_MESSAGE,
                             &opt->max_message))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_MAILBOX_BYTES:
            if (!size_option("mailbox-bytes", optarg, 1, SEG_MAX_RING, &opt->mailbox_bytes))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_SUBSCRIPTIONS:
            if (!number_option("subscriptions", optarg, 1, SEG_MAX_SUBSCRIPTIONS,
                               &opt->subscriptions))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_RETAINED:
            if (!number_option("retained", optarg, 1, SEG_MAX_RETAINED, &opt->retained))
                return BROKER_EXIT_USAGE;
            break;
        case OPT_MODE:
            /* Owner read-write is required: the broker itself must open the segment. */
            if (!parse_u32(optarg, 8, 0, 0777, &v) || (v & 0600) != 0600)
                return usage_error("--mode: '%s' is not an octal mode from 0600 to 0777%s", optarg,
                                   "");
            opt->mode = v;
            break;
        case OPT_FRESH:
            opt->fresh = true;
            break;
        case 'd':
            opt->daemon = true;
            break;
        case OPT_PIDFILE:
            opt->pidfile = optarg;
            break;
        case OPT_LOG:
            opt->log_path = optarg;
            break;
        case OPT_LOG_LEVEL:
            opt->log_level = log_parse_level(optarg);
            if (opt->log_level < 0)
                return usage_error("--log-level: '%s' is not error, warn, info or debug%s", optarg,
                                   "");
            break;
        case 'v':
            opt->verbosity++;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return BROKER_EXIT_OK;
        case OPT_VERSION:
            printf("mailboxd %s\n", mbx_version());
            return BROKER_EXIT_OK;
        case ':':
            return usage_error("option '%s' needs a value%s", argv[optind - 1], "");
        default:
            return usage_error("unknown option '%s'%s", argv[optind - 1], "");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'%s", argv[optind], "");
    if (mbx_check_name(ns) != MBX_OK)
        return usage_error("invalid namespace name '%s': use 1-63 of A-Z a-z 0-9 . _ - "
                           "(not starting with . or -, no '..')%s",
                           ns, "");
    strncpy(opt->namespace_name, ns, MBX_NAME_MAX);
    uint64_t min_ring = segment_min_ring(opt->max_message);
    if (opt->mailbox_bytes != 0 && opt->mailbox_bytes < min_ring) {
        char given[16], least[24];
        snprintf(given, sizeof given, "%u", opt->mailbox_bytes);
        snprintf(least, sizeof least, "%llu", (unsigned long long)min_ring);
        return usage_error("--mailbox-bytes: %s is less than two of the largest messages "
                           "(%s bytes with the records' headers; see --max-message)",
                           given, least);
    }
    seg_view probe;
    if (options_layout(opt, &probe) != MBX_OK)
        return usage_error("geometry too large: slots x depth x max-message exceeds %s%s", "16 GiB",
                           "");
    return -1;
}
