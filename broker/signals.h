/* signals.h: stop requests (SIGTERM, SIGINT) turned into a flag and a readable handle. */
#ifndef BROKER_SIGNALS_H
#define BROKER_SIGNALS_H

#include <stdbool.h>

#include "platform/platform.h"

/* Installs the handlers; *wake becomes readable when a stop is requested. 0 or -1. */
int signals_install(plat_handle *wake);
bool signals_stop_requested(void);
/* True once after SIGHUP (POSIX): reopen the log file. */
bool signals_take_reopen(void);
/* The signal that asked us to stop (for the log), 0 if none. */
int signals_last(void);

#endif
