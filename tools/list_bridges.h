/* list_bridges.h: the mailbox-bridges of a namespace, for mbx list (list_bridges.c). */
#ifndef MBX_LIST_BRIDGES_H
#define MBX_LIST_BRIDGES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "mailbox.h"

/* [{"name":"bridge.<node>","state":{...} or null}], or NULL when no client is a bridge. */
cJSON *list_bridges(const char *ns, const mbx_client_info *clients, size_t n);
/* The table's lines for them. */
void print_bridges(const cJSON *bridges);

#endif
