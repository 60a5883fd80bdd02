/* list_prometheus.h: mbx list --format prometheus (list_prometheus.c). */
#ifndef MBX_LIST_PROMETHEUS_H
#define MBX_LIST_PROMETHEUS_H

#include <stddef.h>
#include <stdio.h>

#include "mailbox.h"

/* The namespace's totals and each client's counters in the Prometheus text exposition
 * format (what node_exporter's textfile collector reads), to out. */
void list_prometheus(FILE *out, const mbx_namespace_info *info, const mbx_client_info *clients,
                     size_t nclients);
/* What to write when no broker serves ns: mbx_up 0, so that a scrape sees the outage. */
void list_prometheus_down(FILE *out, const char *ns);

#endif
