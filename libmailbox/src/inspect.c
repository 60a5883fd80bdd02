/* inspect.c: mbx_inspect(), a read-only view of a namespace for `mbx list`. */
#include <string.h>

#include "client.h"
#include "ring.h"

mbx_err mbx_inspect(const char *ns, mbx_namespace_info *info, mbx_client_visitor visit, void *arg)
{
    if (info == NULL)
        return MBX_EINVAL;
    memset(info, 0, sizeof *info);
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return MBX_EINVAL;
    plat_shm shm;
    seg_view v;
    mbx_err err = client_open_segment(ns, true, &shm, &v);
    if (err != MBX_OK)
        return err;
    seg_header *h = segment_header(&v);
    int64_t broker_pid = atomic_load(&h->broker_pid);
    strncpy(info->namespace_name, ns, MBX_NAME_MAX);
    info->broker_pid = broker_pid;
    if (atomic_load(&h->state) != SEG_READY ||
        !plat_proc_alive(broker_pid, atomic_load(&h->broker_start_time))) {
        /* A segment without its broker: info names the broker that left it. */
        plat_shm_close(&shm);
        return MBX_ENOBROKER;
    }
    /* started_us comes from shared memory: any value; subtract only what cannot overflow. */
    int64_t now = plat_wall_us(), started = atomic_load(&h->started_us);
    info->uptime_s = started >= 0 && started <= now ? (now - started) / 1000000 : 0;
    info->epoch = atomic_load(&h->epoch);
    info->slots = v.slots;
    info->depth = v.depth;
    info->max_message = v.max_message;
    info->segment_bytes = v.total_size;
    info->discarded = atomic_load(&h->discarded);

    mbx_client_info ci;
    for (uint32_t i = 0; i < v.slots; i++) {
        if (!segment_read_entry(&v, i, ci.name, NULL, &ci.pid))
            continue;
        info->clients++;
    }
    for (uint32_t i = 0; visit != NULL && i < v.slots; i++) {
        if (!segment_read_entry(&v, i, ci.name, NULL, &ci.pid))
            continue;
        seg_mailbox *mb = segment_mailbox(&v, i);
        ci.slot = i;
        ci.waiting = ring_waiting(&v, i);
        ci.sent = atomic_load(&mb->sent);
        ci.received = atomic_load(&mb->received);
        ci.refused_full = atomic_load(&mb->refused_full);
        ci.lingering = ci.pid == 0;
        if (visit(&ci, arg) != 0)
            break;
    }
    plat_shm_close(&shm);
    return MBX_OK;
}
