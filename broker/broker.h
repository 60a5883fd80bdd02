/* broker.h: running one namespace's broker from start to clean stop. */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include "options.h"

/* Serves the namespace until SIGTERM/SIGINT. Returns an enum broker_exit code; start-up
 * failures are reported on stderr in one line. */
int broker_run(const broker_options *opt);

#endif
