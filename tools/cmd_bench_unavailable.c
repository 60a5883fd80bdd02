/*
 * cmd_bench_unavailable.c: mbx bench on Windows. The benchmark's roles are forked
 * processes sharing an anonymous mapping (cmd_bench.c); there is no fork on Windows, and
 * the figures that matter (docs/performance.md) are Linux's. Refused with a clear line.
 */
#include "cli.h"

/* Nothing to parse: only --help, so that `mbx options` has a table for every command. */
const char cmd_bench_short[] = "h";
const struct option cmd_bench_long[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("bench", EXIT_USAGE, "not available on Windows (see docs/windows.md)");
}
