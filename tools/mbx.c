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
    "  send [-N NS] [--from NAME] [-t MS] [--wait MS] TO [JSON]\n"
    "                 send JSON to TO, or each line of standard input when JSON is absent\n"
    "  recv [-N NS] [-c COUNT] [-t MS] [--envelope] [--ready] NAME\n"
    "                 take the mailbox NAME and print each message on one line\n"
    "  request [-N NS] [-t MS] [--wait MS] [--envelope] TO [JSON]\n"
    "                 send a request to TO and print its reply\n"
    "  reply [-N NS] [-c N] NAME (--exec CMD | --echo | JSON)\n"
    "                 answer the requests made to NAME\n"
    "  pub [-N NS] [--retain] TOPIC [JSON]\n"
    "                 publish JSON on TOPIC, or each line of standard input\n"
    "  sub [-N NS] [-c COUNT] [-t MS] [-v | --envelope] [--block] [--ready] PATTERN...\n"
    "                 subscribe to the topics PATTERN selects and print each publication\n"
    "  wait [-N NS] [-t MS] NAME...\n"
    "                 wait until every NAME is there (and the broker, if none runs yet)\n"
    "  list [-N NS] [--json | --format prometheus] [--watch [-i SECONDS]]\n"
    "                 show the broker, the namespace's geometry, totals and clients\n"
    "  namespaces [--json]\n"
    "                 list this machine's namespaces and their brokers\n"
    "  clean NS       remove what a dead broker left of NS\n"
    "  run [--slots N ...] [--] CMD [ARG]...\n"
    "                 run CMD on a throwaway namespace of its own (MBX_NAMESPACE)\n"
    "  bench [-N NS] [--mode pingpong|throughput|request|fanout] [--senders N]\n"
    "        [--subscribers N] [--size BYTES] [--count N]\n"
    "        [--pin none|same|split] [--no-validate] [--json]\n"
    "                 measure the namespace with benchmark processes of its own\n"
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
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK_;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("mbx %s\n", mbx_version());
        return EXIT_OK_;
    }
    if (strcmp(cmd, "send") == 0)
        return cmd_send(argc - 1, argv + 1);
    if (strcmp(cmd, "recv") == 0)
        return cmd_recv(argc - 1, argv + 1);
    if (strcmp(cmd, "namespaces") == 0)
        return cmd_namespaces(argc - 1, argv + 1);
    if (strcmp(cmd, "clean") == 0)
        return cmd_clean(argc - 1, argv + 1);
    if (strcmp(cmd, "pub") == 0)
        return cmd_pub(argc - 1, argv + 1);
    if (strcmp(cmd, "sub") == 0)
        return cmd_sub(argc - 1, argv + 1);
    if (strcmp(cmd, "request") == 0)
        return cmd_request(argc - 1, argv + 1);
    if (strcmp(cmd, "reply") == 0)
        return cmd_reply(argc - 1, argv + 1);
    if (strcmp(cmd, "wait") == 0)
        return cmd_wait(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    char safe[256];
    escape_text(cmd, safe, sizeof safe);
    fprintf(stderr, "mbx: unknown command '%s' (see mbx --help)\n", safe);
    return EXIT_USAGE;
}
