/*
 * cmd_run_unavailable.c: mbx run on Windows, not built yet (cmd_run_posix.c is the Linux
 * one: fork, exec and signals; Windows wants CreateProcess, a job object so that the
 * broker ends with mbx run, and console control events). Refused with a clear line.
 */
#include "cli.h"

int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("run", EXIT_FAILURE_, "not available on Windows yet (see docs/windows.md)");
}
