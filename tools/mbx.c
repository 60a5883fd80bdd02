/* mbx: send, receive and list from the shell, over the public libmailbox API only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "escape.h"

static const char usage_text[] =
    "Usage: mbx COMMAND [OPTION]... [ARG]...\n"
    "Send, receive and list messages of a mailbox namespace.\n"
    "\n"
    "Commands:\n"
    "  send [-N NS] [--from NAME] [-t MS] [--wait MS] [-f FILE | --whole] TO [JSON]\n"
    "                 send JSON to TO, or each line of standard input when JSON is absent\n"
    "  recv [-N NS] [-c COUNT] [-t MS] [--envelope] [--linger SECONDS] [--ready] NAME\n"
    "                 take the mailbox NAME and print each message on one line\n"
    "  request [-N NS] [-t MS] [--wait MS] [--envelope] TO [JSON]\n"
    "                 send a request to TO and print its reply\n"
    "  reply [-N NS] [-c N] [--group] NAME (--exec CMD | --echo | JSON)\n"
    "                 answer the requests made to NAME\n"
    "  pub [-N NS] [--from NAME] [-t MS] [--retain] TOPIC [JSON]\n"
    "                 publish JSON on TOPIC, or each line of standard input\n"
    "  sub [-N NS] [--name NAME] [-c COUNT] [-t MS] [-v | --envelope] [--block]\n"
    "      [--ready] PATTERN...\n"
    "                 subscribe to the topics PATTERN selects and print each publication\n"
    "  monitor [-N NS] [--json] [--no-body] [-c COUNT] [-t MS] [--ready]\n"
    "          [NAME|PATTERN...]\n"
    "                 print every message sent in the namespace (its owner only)\n"
    "  wait [-N NS] [-t MS] NAME...\n"
    "                 wait until every NAME is there (and the broker, if none runs yet)\n"
    "  list [-N NS] [--json | --format table|json|prometheus] [--watch [-i SECONDS]]\n"
    "                 show the broker, the namespace's geometry, totals and clients\n"
    "  namespaces [--json]\n"
    "                 list this machine's namespaces and their brokers\n"
    "  clean NS       remove what a dead broker left of NS\n"
    "  run [--slots N] [--depth N] [--max-message BYTES] [--mailbox-bytes BYTES]\n"
    "      [--] CMD [ARG]...\n"
    "                 run CMD on a throwaway namespace of its own (MBX_NAMESPACE)\n"
    "  bench [-N NS] [--mode pingpong|throughput|request|fanout] [--senders N]\n"
    "        [--responders M] [--subscribers N] [--size BYTES] [--count N]\n"
    "        [--pin none|same|split] [--no-validate] [--poll [--busy-poll US]]\n"
    "        [--peer-namespace NS2] [--json]\n"
    "                 measure the namespace with benchmark processes of its own\n"
    "  help CMD       show CMD's help (as mbx CMD --help)\n"
    "  options [CMD]  list the options each command takes (one per line)\n"
    "\n"
    "  -h, --help     show help (also: mbx COMMAND --help)\n"
    "      --version  show the version\n"
    "\n"
    "Options may come before or after the arguments; -- ends them (mbx send x -- -1).\n"
    "The namespace defaults to $MBX_NAMESPACE, else 'default'.\n"
    "Exit status: 0 ok, 1 failure, 2 usage, 3 no broker, 4 timed out or mailbox full,\n"
    "5 no such recipient, 6 invalid or too large message, 7 shut down, 8 permission\n"
    "denied, 9 name taken or no free slot, 10 version mismatch or corrupt segment,\n"
    "11 output failed (the message stays queued), 12 a broker serves it (clean).\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        fputs(usage_text, stdout);
        return EXIT_OK_;
    }
    if (strcmp(cmd, "help") == 0) {
        /* mbx help CMD: the command's own help, as mbx CMD --help prints it. */
        const cli_command *c = cli_find_command(argv[2]);
        if (c == NULL || argc > 3) {
            char safe[256];
            escape_text(argv[2], safe, sizeof safe);
            fprintf(stderr, "mbx help: unknown command '%s' (see mbx --help)\n", safe);
            return EXIT_USAGE;
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->run(2, help_argv);
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("mbx %s\n", mbx_version());
        return EXIT_OK_;
    }
    if (strcmp(cmd, "options") == 0)
        return cmd_options(argc - 1, argv + 1);
    const cli_command *c = cli_find_command(cmd);
    if (c != NULL)
        return c->run(argc - 1, argv + 1);
    char safe[256];
    escape_text(cmd, safe, sizeof safe);
    fprintf(stderr, "mbx: unknown command '%s' (see mbx --help)\n", safe);
    return EXIT_USAGE;
}
