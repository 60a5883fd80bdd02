/* mailboxd: parse options, go to the background if asked, run the broker. */
#include "broker.h"
#include "daemon.h"
#include "options.h"

int main(int argc, char **argv)
{
    broker_options opt;
    int rc = options_parse(argc, argv, &opt);
    if (rc >= 0)
        return rc;
    if (opt.daemon && daemon_start() != 0)
        return BROKER_EXIT_FAILURE;
    rc = broker_run(&opt);
    /* In the background child: a start-up failure must release the waiting parent. */
    daemon_failed(rc);
    return rc;
}
