/* run_options.c: what mbx run takes, on every system (cmd_run_posix.c, cmd_run_win32.c):
 * its parser's table, also what `mbx options` prints (cli_commands.c), and the mailboxd
 * option each of its options is passed on as. */
#include "cli.h"

const char cmd_run_short[] = "+:h"; /* '+': options end at CMD, whose own are its own */
const struct option cmd_run_long[] = {
    {"slots", required_argument, NULL, 's'},
    {"depth", required_argument, NULL, 'd'},
    {"max-message", required_argument, NULL, 'm'},
    {"mailbox-bytes", required_argument, NULL, 'b'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

const char *run_broker_option(int ch)
{
    switch (ch) {
    case 's':
        return "--slots";
    case 'd':
        return "--depth";
    case 'm':
        return "--max-message";
    case 'b':
        return "--mailbox-bytes";
    default:
        return NULL;
    }
}
