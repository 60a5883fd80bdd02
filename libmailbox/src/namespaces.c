/* namespaces.c: the machine's namespaces (mbx_namespaces) and cleaning up after a dead
 * broker (mbx_clean). */
#include <string.h>

#include "client.h"

typedef struct walk {
    mbx_namespace_visitor visit;
    void *arg;
    bool stopped;
} walk;

static void found(const char *ns, const char *where, void *arg)
{
    walk *w = arg;
    if (w->stopped)
        return;
    mbx_namespace_entry e;
    memset(&e, 0, sizeof e);
    strncpy(e.name, ns, MBX_NAME_MAX);
    strncpy(e.where, where, sizeof e.where - 1);
    mbx_namespace_info info;
    mbx_err err = mbx_inspect(ns, &info, NULL, NULL);
    if (err == MBX_OK) {
        e.state = MBX_NS_SERVED;
        e.broker_pid = info.broker_pid;
        e.clients = info.clients;
    } else if (err == MBX_ENOBROKER && info.broker_pid != 0) {
        e.state = MBX_NS_ORPHANED;
        e.broker_pid = info.broker_pid;
    } else if (err == MBX_ENOBROKER) {
        e.state = MBX_NS_STALE;
    } else {
        e.state = MBX_NS_SERVED; /* a broker answers, but not to us (EPERM) */
    }
    w->stopped = w->visit(&e, w->arg) != 0;
}

mbx_err mbx_namespaces(mbx_namespace_visitor visit, void *arg)
{
    if (visit == NULL)
        return MBX_EINVAL;
    walk w = {.visit = visit, .arg = arg};
    return plat_ns_each(found, &w);
}

mbx_err mbx_where(const char *ns, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return MBX_EINVAL;
    out[0] = '\0';
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return MBX_EINVAL;
    plat_chan_where_clients(ns, out, cap);
    return MBX_OK;
}

mbx_err mbx_clean(const char *ns, unsigned *cleaned)
{
    unsigned dummy;
    if (cleaned == NULL)
        cleaned = &dummy;
    *cleaned = 0;
    if (ns == NULL || mbx_check_name(ns) != MBX_OK)
        return MBX_EINVAL;
    return plat_ns_clean(ns, cleaned);
}
