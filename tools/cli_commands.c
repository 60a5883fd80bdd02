/*
 * cli_commands.c: the commands of mbx and, for each, its parser's option table (the
 * `struct option` array and short-option string its getopt_long call uses). The one
 * source of what a command takes:
 *   - `mbx options [CMD]` prints it (one option per line: its long name, then its short
 *     one if it has one), and the bash completion offers what it prints;
 *   - the `cli.options` test checks `mbx CMD --help`, `mbx --help`, mbx(1) and
 *     docs/cli.md against it, and fails on any option missing from one of them or any
 *     option one of them names that the parser does not take.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct option no_long[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

static const cli_command commands[] = {
    {"send", cmd_send, cmd_send_long, cmd_send_short},
    {"recv", cmd_recv, cmd_recv_long, cmd_recv_short},
    {"request", cmd_request, cmd_request_long, cmd_request_short},
    {"reply", cmd_reply, cmd_reply_long, cmd_reply_short},
    {"pub", cmd_pub, cmd_pub_long, cmd_pub_short},
    {"sub", cmd_sub, cmd_sub_long, cmd_sub_short},
    {"monitor", cmd_monitor, cmd_monitor_long, cmd_monitor_short},
    {"wait", cmd_wait, cmd_wait_long, cmd_wait_short},
    {"list", cmd_list, cmd_list_long, cmd_list_short},
    {"namespaces", cmd_namespaces, cmd_namespaces_long, cmd_namespaces_short},
    {"clean", cmd_clean, no_long, "h"},
    {"run", cmd_run, cmd_run_long, cmd_run_short},
    {"bench", cmd_bench, cmd_bench_long, cmd_bench_short},
};

const cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* The short option that getopt_long maps to the same value as o, or 0. */
static int short_of(const cli_command *c, const struct option *o)
{
    if (o->flag != NULL || o->val <= ' ' || o->val > '~' || o->val == ':' || o->val == '+')
        return 0;
    return strchr(c->short_options, o->val) != NULL ? o->val : 0;
}

static void print_options(const cli_command *c, bool with_name)
{
    for (const struct option *o = c->long_options; o->name != NULL; o++) {
        int s = short_of(c, o);
        printf("%s%s--%s", with_name ? c->name : "", with_name ? " " : "", o->name);
        if (s != 0)
            printf(" -%c", s);
        putchar('\n');
    }
}

int cmd_options(int argc, char **argv)
{
    if (argc > 2)
        return cli_fail("options", EXIT_USAGE, "expected at most one COMMAND");
    if (argc == 2) {
        const cli_command *c = cli_find_command(argv[1]);
        if (c == NULL)
            return cli_fail("options", EXIT_USAGE, "unknown command '%s'", argv[1]);
        print_options(c, false);
        return EXIT_OK_;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        print_options(&commands[i], true);
    return EXIT_OK_;
}
