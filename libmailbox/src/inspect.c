/* inspect.c: mbx_inspect(), a read-only view of a namespace for `mbx list`. */
#include <string.h>

#include "client.h"
#include "proto.h"
#include "ring.h"
#include "subs.h"

/* With no broker: the pid of the broker that left a segment behind (its keeper holds it,
 * POSIX; or it is still named, Windows), or 0 when nothing is left. */
static int64_t broker_left_behind(const char *ns)
{
    plat_handle h;
    int64_t keeper_pid, broker_pid = 0;
    if (plat_keep_connect(ns, plat_deadline(1000), &h, &keeper_pid) == MBX_OK) {
        char op = KEEPER_PROBE;
        size_t got = 0;
        if (plat_chan_send(h, &op, 1) != MBX_OK ||
            plat_chan_recv(h, &broker_pid, sizeof broker_pid, &got, plat_deadline(1000)) !=
                MBX_OK ||
            got != sizeof broker_pid)
            broker_pid = 0;
        plat_handle_close(h);
        return broker_pid;
    }
    plat_shm shm;
    seg_view v;
    if (client_attach_segment(ns, PLAT_NO_HANDLE, true, &shm, &v) == MBX_OK) {
        broker_pid = atomic_load(&segment_header(&v)->broker_pid);
        plat_shm_close(&shm);
    }
    return broker_pid;
}

mbx_err client_inspect_segment(const char *ns, bool read_only, int64_t *broker_pid, plat_shm *shm,
                               seg_view *v)
{
    plat_handle chan;
    int64_t deadline = plat_deadline(5000);
    mbx_err err = plat_chan_connect(ns, deadline, &chan, broker_pid);
    if (err != MBX_OK)
        return err;
    proto_request req = {.magic = PROTO_MAGIC, .version = PROTO_VERSION, .op = PROTO_INSPECT};
    proto_reply rep;
    size_t got = 0;
    plat_handle passed = PLAT_NO_HANDLE;
    err = plat_chan_send(chan, &req, sizeof req);
    if (err == MBX_OK)
        err = plat_chan_recv_handle(chan, &rep, sizeof rep, &got, deadline, &passed);
    plat_handle_close(chan);
    /* Connected, then closed without an answer: the broker refused the connection (too
     * many of this user's wait already), not "no broker". */
    if (err == MBX_OK && got == 0)
        err = MBX_EAGAIN_INTERNAL;
    if (err == MBX_OK)
        err = client_check_reply(&rep, got);
    if (err != MBX_OK) {
        plat_handle_close(passed);
        return err;
    }
    return client_attach_segment(ns, passed, read_only, shm, v);
}

/* Maps ns's segment read-only and fills *info's namespace part. */
static mbx_err open_namespace(const char *ns, mbx_namespace_info *info, plat_shm *shm, seg_view *vp)
{
    memset(info, 0, sizeof *info);
    if (ns == NULL)
        ns = mbx_default_namespace();
    if (mbx_check_name(ns) != MBX_OK)
        return MBX_EINVAL;
    strncpy(info->namespace_name, ns, MBX_NAME_MAX);
    int64_t chan_pid = 0;
    mbx_err err = client_inspect_segment(ns, true, &chan_pid, shm, vp);
    if (err == MBX_EAGAIN_INTERNAL)
        err = MBX_ENOBROKER;
    if (err == MBX_ENOBROKER)
        info->broker_pid = broker_left_behind(ns);
    if (err != MBX_OK)
        return err;
    const seg_view v = *vp;
    seg_header *h = segment_header(&v);
    int64_t broker_pid = atomic_load(&h->broker_pid);
    info->broker_pid = broker_pid;
    if (atomic_load(&h->state) != SEG_READY || broker_pid != chan_pid) {
        /* Not ready yet, or closing: no broker to speak of. */
        plat_shm_close(shm);
        return MBX_ENOBROKER;
    }
    /* started_us comes from shared memory: any value; subtract only what cannot overflow. */
    int64_t now = plat_wall_us(), started = atomic_load(&h->started_us);
    info->uptime_s = started >= 0 && started <= now ? (now - started) / 1000000 : 0;
    info->epoch = atomic_load(&h->epoch);
    info->slots = v.slots;
    info->depth = v.depth;
    info->max_message = v.max_message;
    info->mailbox_bytes = v.ring_bytes;
    info->segment_bytes = v.total_size;
    info->discarded = atomic_load(&h->discarded);
    info->max_subscriptions = v.subscriptions;
    info->max_retained = v.retained;
    info->retained = subs_retained_count(&v);
    info->total_sent = atomic_load(&h->gone_sent);
    info->total_received = atomic_load(&h->gone_received);
    info->total_refused_full = atomic_load(&h->gone_refused_full);
    info->clients_seen = atomic_load(&h->clients_seen);
    mbx_client_info ci;
    for (uint32_t i = 0; i < v.slots; i++) {
        /* Every mailbox, free ones too: one given back keeps its counts until emptied. */
        seg_mailbox *mb = segment_mailbox(&v, i);
        info->total_sent += atomic_load(&mb->sent);
        info->total_received += atomic_load(&mb->received);
        info->total_refused_full += atomic_load(&mb->refused_full);
        uint32_t gen;
        if (!segment_read_entry(&v, i, ci.name, &gen, &ci.pid))
            continue;
        info->clients++;
        info->subscriptions += subs_count(&v, i, gen);
    }
    return MBX_OK;
}

mbx_err mbx_inspect(const char *ns, mbx_namespace_info *info, mbx_client_visitor visit, void *arg)
{
    if (info == NULL)
        return MBX_EINVAL;
    plat_shm shm;
    seg_view v;
    mbx_err err = open_namespace(ns, info, &shm, &v);
    if (err != MBX_OK)
        return err;
    mbx_client_info ci;
    for (uint32_t i = 0; visit != NULL && i < v.slots; i++) {
        uint32_t gen;
        if (!segment_read_entry(&v, i, ci.name, &gen, &ci.pid))
            continue;
        seg_mailbox *mb = segment_mailbox(&v, i);
        ci.slot = i;
        ci.waiting = ring_waiting(&v, i);
        ci.sent = atomic_load(&mb->sent);
        ci.received = atomic_load(&mb->received);
        ci.refused_full = atomic_load(&mb->refused_full);
        ci.late_replies = atomic_load(&mb->late_replies);
        ci.group = (atomic_load(&segment_dir(&v, i)->flags) & DIR_GROUP) != 0;
        ci.lingering = ci.pid == 0;
        ci.subscriptions = subs_count(&v, i, gen);
        ci.dropped = atomic_load(&mb->dropped);
        ci.senders_waiting = atomic_load(&mb->tx_waiting);
        ci.remote = segment_read_node(&v, i, gen, ci.node);
        if (visit(&ci, arg) != 0)
            break;
    }
    plat_shm_close(&shm);
    return MBX_OK;
}

mbx_err mbx_inspect_subscriptions(const char *ns, mbx_subscription_visitor visit, void *arg)
{
    mbx_namespace_info info;
    plat_shm shm;
    seg_view v;
    mbx_err err = open_namespace(ns, &info, &shm, &v);
    if (err != MBX_OK)
        return err;
    for (uint32_t i = 0; visit != NULL && i < v.subscriptions; i++) {
        subs_entry s;
        uint32_t gen;
        mbx_subscription_info si;
        if (!subs_read(&v, i, &s) || !segment_read_entry(&v, s.slot, si.client, &gen, NULL) ||
            gen != s.generation)
            continue;
        si.slot = s.slot;
        memcpy(si.pattern, s.pattern, sizeof si.pattern);
        si.policy = (int)s.policy;
        if (visit(&si, arg) != 0)
            break;
    }
    plat_shm_close(&shm);
    return MBX_OK;
}
