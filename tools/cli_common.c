/* cli_common.c: exit codes, error lines, number parsing and line input for every
 * subcommand. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_hint.h"
#include "cli.h"
#include "escape.h"

int cli_exit_code(mbx_err err)
{
    switch (err) {
    case MBX_OK:
        return EXIT_OK_;
    case MBX_ENOBROKER:
        return EXIT_NO_BROKER;
    case MBX_EFULL:
    case MBX_ETIMEDOUT:
        return EXIT_TIMEOUT;
    case MBX_ENORECIPIENT:
    case MBX_EGONE:
        return EXIT_NO_RECIPIENT;
    case MBX_EINVALJSON:
    case MBX_ETOOLARGE:
        return EXIT_BAD_MESSAGE;
    case MBX_ESHUTDOWN:
        return EXIT_SHUTDOWN;
    case MBX_EPERM:
        return EXIT_PERMISSION;
    case MBX_ENAMETAKEN:
    case MBX_ENOSLOTS:
        return EXIT_NAME;
    case MBX_EVERSION:
    case MBX_ECORRUPT:
        return EXIT_CORRUPT;
    case MBX_EINVAL:
        return EXIT_USAGE;
    case MBX_EEXIST:
        return EXIT_BUSY;
    default:
        return EXIT_FAILURE_;
    }
}

int cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    /* The message may quote what the user typed (a name with a line break or an escape
     * sequence in it): it is escaped as a whole, so it stays one line of plain text. */
    char raw[1024], safe[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_text(raw, safe, sizeof safe);
    fprintf(stderr, "mbx %s: %s\n", cmd, safe);
    return code;
}

int cli_fail_err(const char *cmd, mbx_err err, const char *what)
{
    if (err == MBX_ESYSTEM && mbx_os_error() != 0)
        return cli_fail(cmd, cli_exit_code(err), "%s: %s (system error %d)", what,
                        mbx_strerror(err), mbx_os_error());
    return cli_fail(cmd, cli_exit_code(err), "%s: %s", what, mbx_strerror(err));
}

int cli_fail_namespace(const char *cmd, mbx_err err, const char *ns)
{
    if (ns == NULL)
        ns = mbx_default_namespace();
    mbx_namespace_info info;
    if (err == MBX_ENOBROKER && mbx_inspect(ns, &info, NULL, NULL) == MBX_ENOBROKER &&
        info.broker_pid > 0)
        return cli_fail(cmd, EXIT_NO_BROKER,
                        "%s: %s (its broker, pid %lld, is gone; start mailboxd to adopt it)", ns,
                        mbx_strerror(err), (long long)info.broker_pid);
    char where[600];
#ifdef _WIN32
    const char *elsewhere = ""; /* a pipe's name is the same for every user */
#else
    const char *elsewhere = "; MBX_RUNTIME_DIR names another place";
#endif
    char hint[700];
    if (err == MBX_ENOBROKER) {
        access_elsewhere_hint(ns, hint, sizeof hint);
        if (hint[0] != '\0')
            return cli_fail(cmd, EXIT_NO_BROKER, "%s: %s here (%s)", ns, mbx_strerror(err), hint);
    }
    if (err == MBX_ENOBROKER && mbx_where(ns, where, sizeof where) == MBX_OK)
        return cli_fail(cmd, EXIT_NO_BROKER, "%s: %s (looked for %s%s)", ns, mbx_strerror(err),
                        where, elsewhere);
    if (err == MBX_EPERM) {
        access_denied_hint(ns, hint, sizeof hint);
        if (hint[0] != '\0')
            return cli_fail(cmd, EXIT_PERMISSION, "%s: %s (%s)", ns, mbx_strerror(err), hint);
    }
    return cli_fail_err(cmd, err, ns);
}

typedef struct holder {
    const char *name;
    bool found, group, remote;
    char node[MBX_NAME_MAX + 1];
} holder;

static int find_holder(const mbx_client_info *ci, void *arg)
{
    holder *h = arg;
    if (strcmp(ci->name, h->name) != 0)
        return 0;
    h->found = true;
    h->group = ci->group != 0;
    h->remote = ci->remote != 0;
    memcpy(h->node, ci->node, sizeof h->node);
    return 1;
}

int cli_fail_connect(const char *cmd, mbx_err err, const mbx_connect_options *opts)
{
    const char *name = opts->client_name;
    mbx_namespace_info info;
    holder h = {.name = name};
    if (err != MBX_ENAMETAKEN || name == NULL ||
        mbx_inspect(opts->namespace_name, &info, find_holder, &h) != MBX_OK || !h.found)
        return cli_fail_namespace(cmd, err, opts->namespace_name);
    if (h.remote)
        return cli_fail(cmd, EXIT_NAME,
                        "%s: name already taken on node %s (through mailbox-bridge; a name is "
                        "served on one host only, except by a service group)",
                        name, h.node);
    if (h.group && opts->group == 0)
        return cli_fail(cmd, EXIT_NAME,
                        "%s: name already taken by a service group (join it with --group)", name);
    return cli_fail(cmd, EXIT_NAME, "%s: %s", name, mbx_strerror(err));
}

bool cli_parse_long(const char *s, long long lo, long long hi, long long *out)
{
    if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool cli_opt_ms(const char *cmd, const char *opt, const char *arg, long long lo, long long *out)
{
    if (cli_parse_long(arg, lo, CLI_MAX_MS, out))
        return true;
    cli_fail(cmd, EXIT_USAGE, "%s: '%s' is not a number of milliseconds (%lld..%d)", opt, arg, lo,
             CLI_MAX_MS);
    return false;
}

bool cli_opt_count(const char *cmd, const char *arg, long long *out)
{
    if (cli_parse_long(arg, 0, 1000000000000L, out))
        return true;
    cli_fail(cmd, EXIT_USAGE, "--count: '%s' is not a number >= 0", arg);
    return false;
}

/* Standard input, a line at a time, in bounded memory (see cli.h). */
bool cli_read_line(FILE *in, char *buf, size_t max, size_t *len, bool *too_long)
{
    size_t cap = max + 2; /* room for a CR before the newline, and the NUL */
    size_t n = 0;
    int c;
    bool any = false;
    *too_long = false;
    while ((c = getc(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = (char)c;
        else
            *too_long = true;
    }
    if (!any)
        return false;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > max)
        *too_long = true;
    buf[n] = '\0';
    *len = n;
    return true;
}

bool cli_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

int cli_each_line(mbx_client *c, const char *cmd,
                  int (*one)(mbx_client *c, const char *buf, size_t len, unsigned long line,
                             void *arg),
                  void *arg)
{
    size_t max = mbx_max_message(c);
    char *buf = malloc(max + 2);
    if (buf == NULL)
        return cli_fail(cmd, EXIT_FAILURE_, "out of memory");
    unsigned long line = 0, messages = 0;
    size_t len;
    bool too_long;
    int rc = EXIT_OK_;
    while (rc == EXIT_OK_ && cli_read_line(stdin, buf, max, &len, &too_long)) {
        line++;
        if (too_long) {
            rc = cli_fail(cmd, EXIT_BAD_MESSAGE,
                          "line %lu: longer than the namespace's limit of %zu bytes (mailboxd "
                          "--max-message)",
                          line, max);
        } else if (!cli_blank(buf, len)) {
            messages++;
            rc = one(c, buf, len, line, arg);
        }
    }
    if (rc == EXIT_OK_ && ferror(stdin))
        rc = cli_fail(cmd, EXIT_FAILURE_, "error reading standard input");
    else if (rc == EXIT_OK_ && messages == 0) /* not an error, but not silent either */
        fprintf(stderr, "mbx %s: standard input held no message: nothing sent\n", cmd);
    free(buf);
    return rc;
}

int cli_unknown_option(const char *cmd, const char *arg)
{
    if (arg[0] == '-' && (arg[1] == '.' || (arg[1] >= '0' && arg[1] <= '9')))
        return cli_fail(cmd, EXIT_USAGE,
                        "unknown option '%s' (an argument that starts with '-' goes after "
                        "'--': mbx %s ... -- %s)",
                        arg, cmd, arg);
    return cli_fail(cmd, EXIT_USAGE, "unknown option '%s'", arg);
}

int cli_fail_wait(const char *cmd, const char *ns, const char *name, long long ms, int code)
{
    /* mbx_wait_for waits for the broker as well: when none serves the namespace after
     * all, that is what to say (exit 3), not that the name did not come. */
    mbx_namespace_info info;
    mbx_err probe = mbx_inspect(ns, &info, NULL, NULL);
    if (probe != MBX_OK)
        return cli_fail_namespace(cmd, probe, ns);
    return cli_fail(cmd, code, "%s: not there after %lld ms", name, ms);
}

int cli_fail_sender(const char *cmd, mbx_err err, const mbx_connect_options *opts)
{
    if (err == MBX_ENAMETAKEN && opts->client_name != NULL)
        return cli_fail(cmd, EXIT_USAGE,
                        "--from %s: a client of this namespace has that name; a label must not "
                        "be another client's (choose another)",
                        opts->client_name);
    return cli_fail_namespace(cmd, err, opts->namespace_name);
}
