/* client.c: connecting to a namespace and giving the mailbox back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fault.h"
#include "group.h"
#include "names.h"
#include "proto.h"

_Atomic uint32_t client_forks;

static void count_fork(void)
{
    atomic_fetch_add(&client_forks, 1);
}

/* The child of a fork gets a new count (client_ours); the handler is installed with the
 * first connection. */
static void watch_forks(void)
{
    static atomic_flag installed = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&installed))
        plat_at_fork_child(count_fork);
}

/* The receive path's table (client.h): which feature looks at a record of each kind. */
const receive_filter client_receive_filters[RECEIVE_KINDS] = {
    [CELL_TOPIC] = pubsub_incoming,
    [CELL_REPLY] = request_incoming,
    [CELL_RETURNED] = request_incoming,
    [CELL_MONITOR] = monitor_incoming,
};

void mbx_connect_options_init(mbx_connect_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
}

mbx_err client_check_reply(const proto_reply *rep, size_t got)
{
    if (got == 0)
        return MBX_ENOBROKER; /* the broker closed the channel */
    if (got != sizeof *rep || rep->magic != PROTO_MAGIC || rep->version != PROTO_VERSION ||
        rep->layout_version != SEG_LAYOUT_VERSION)
        return MBX_EVERSION;
    if (rep->status != MBX_OK)
        return (rep->status > 0 && rep->status < MBX_ERR_COUNT_) ? (mbx_err)rep->status
                                                                 : MBX_ESYSTEM;
    return MBX_OK;
}

mbx_err client_attach_segment(const char *ns, plat_handle passed, bool read_only, plat_shm *shm,
                              seg_view *view)
{
    memset(shm, 0, sizeof *shm);
    mbx_err err = passed != PLAT_NO_HANDLE ? plat_shm_map(passed, read_only, SEG_MAX_TOTAL, shm)
                                           : plat_shm_open(ns, read_only, SEG_MAX_TOTAL, shm);
    if (err != MBX_OK)
        return err;
    err = segment_validate(shm->base, shm->size, view);
    if (err == MBX_OK && strcmp(segment_header(view)->namespace_name, ns) != 0)
        err = MBX_ECORRUPT;
    if (err != MBX_OK)
        plat_shm_close(shm);
    return err;
}

/* Whether the segment just mapped is served, and by the broker that handed it over:
 * MBX_OK, MBX_ESHUTDOWN (closing), MBX_ENOBROKER (not ours to trust yet). */
static mbx_err served_by(const seg_view *v, int64_t broker_pid)
{
    seg_header *h = segment_header(v);
    uint32_t state = atomic_load(&h->state);
    if (state == SEG_CLOSING)
        return MBX_ESHUTDOWN;
    if (state != SEG_READY || atomic_load(&h->broker_pid) != broker_pid)
        return MBX_ENOBROKER;
    return MBX_OK;
}

/* Where this client reaches its peers' wake handles (platform.h), once it is a member:
 * without it (no wake directory) it sends no wake-ups, and mbx_wait_handle fails. */
static void open_wake_place(mbx_client *c)
{
    (void)plat_wake_place_open(c->namespace_name, &c->view.wake_place);
}

/* Asks for a slot, and maps the segment the broker passes with its answer (Windows: the
 * one of the namespace's name). Everything the broker says is checked against the
 * segment, and the segment like anything else. */
static mbx_err registration(mbx_client *c, const char *wanted, const mbx_connect_options *opts,
                            int64_t deadline, int64_t broker_pid)
{
    proto_request req = {.magic = PROTO_MAGIC,
                         .version = PROTO_VERSION,
                         .op = PROTO_REGISTER,
                         .flags = (opts->group != 0 ? PROTO_FLAG_GROUP : 0u) |
                                  (opts->node != NULL ? PROTO_FLAG_REMOTE : 0u) |
                                  (opts->monitor != 0 ? PROTO_FLAG_MONITOR : 0u),
                         .linger_ms = (uint32_t)opts->linger_ms};
    if (wanted != NULL)
        strncpy(req.name, wanted, MBX_NAME_MAX);
    if (opts->node != NULL)
        strncpy(req.node, opts->node, MBX_NAME_MAX);
    mbx_err err = plat_chan_send(c->chan, &req, sizeof req);
    if (err != MBX_OK)
        return err;
    FAULT_POINT("client.register.sent"); /* the broker gives a slot to a dying client */
    proto_reply rep;
    size_t got = 0;
    plat_handle passed = PLAT_NO_HANDLE;
    err = plat_chan_recv_handle(c->chan, &rep, sizeof rep, &got, deadline, &passed);
    if (err == MBX_OK)
        err = client_check_reply(&rep, got);
    if (err != MBX_OK) {
        plat_handle_close(passed);
        return err;
    }
    err = client_attach_segment(c->namespace_name, passed, false, &c->shm, &c->view);
    if (err != MBX_OK)
        return err;
    err = served_by(&c->view, broker_pid);
    if (err != MBX_OK)
        return err;
    /* The broker's answer is checked against the segment like anything else. */
    if (rep.slot >= c->view.slots || !names_valid_bounded(rep.name, sizeof rep.name))
        return MBX_ECORRUPT;
    char name[MBX_NAME_MAX + 1];
    uint32_t gen;
    int64_t pid;
    if (!segment_read_entry(&c->view, rep.slot, name, &gen, &pid) || gen != rep.generation ||
        pid != plat_pid() || strcmp(name, rep.name) != 0)
        return MBX_ECORRUPT;
    c->slot = rep.slot;
    c->generation = rep.generation;
    memcpy(c->name, name, sizeof name);
    open_wake_place(c);
    return MBX_OK;
}

/* A send-only client: the segment, as mbx_inspect gets it (the broker checks who may),
 * mapped for writing, and no slot. */
static mbx_err attach_send_only(mbx_client *c, const char *wanted, int64_t *broker_pid,
                                int64_t deadline)
{
    /* Many senders may start at once (a script's loop): a connection the broker refused
     * for the while is tried again, a little later each time, until the deadline. */
    mbx_err err;
    int64_t pause_ns = 1000000;
    while ((err = client_inspect_segment(c->namespace_name, false, broker_pid, &c->shm,
                                         &c->view)) == MBX_EAGAIN_INTERNAL &&
           plat_now_ns() + pause_ns < deadline) {
        plat_sleep_ns(pause_ns);
        pause_ns = pause_ns < 64000000 ? pause_ns * 2 : pause_ns;
    }
    if (err == MBX_EAGAIN_INTERNAL)
        err = MBX_ETIMEDOUT;
    if (err != MBX_OK)
        return err;
    err = served_by(&c->view, *broker_pid);
    if (err != MBX_OK)
        return err;
    /* Its name is a label, not authenticated; but not the name of a client the namespace
     * holds (live, lingering or standing for another node): nobody impersonates another
     * by accident. (The directory may change the moment after: a check, not a lock.) */
    uint32_t holder, holder_generation;
    if (wanted != NULL && wanted[0] != '\0' &&
        segment_find(&c->view, wanted, &holder, &holder_generation) == MBX_OK)
        return MBX_ENAMETAKEN;
    open_wake_place(c);
    c->send_only = true;
    c->slot = UINT32_MAX;
    c->generation = 0;
    if (wanted != NULL && wanted[0] != '\0') {
        strncpy(c->name, wanted, MBX_NAME_MAX);
    } else {
        static _Atomic unsigned counter;
        snprintf(c->name, sizeof c->name, "send.%lld.%u", (long long)plat_pid(),
                 atomic_fetch_add(&counter, 1) + 1);
    }
    return MBX_OK;
}

mbx_err mbx_connect(const mbx_connect_options *opts, mbx_client **out)
{
    mbx_connect_options defaults;
    if (opts == NULL) {
        mbx_connect_options_init(&defaults);
        opts = &defaults;
    }
    if (out == NULL)
        return MBX_EINVAL;
    *out = NULL;
    const char *ns = opts->namespace_name ? opts->namespace_name : mbx_default_namespace();
    const char *wanted = opts->client_name;
    if (mbx_check_name(ns) != MBX_OK)
        return MBX_EINVAL;
    if (wanted != NULL && wanted[0] != '\0' && mbx_check_name(wanted) != MBX_OK)
        return MBX_EINVAL;
    if (opts->linger_ms < 0 || opts->linger_ms > MBX_LINGER_MAX_MS)
        return MBX_EINVAL;
    if (opts->group != 0 && (wanted == NULL || wanted[0] == '\0' || opts->linger_ms != 0))
        return MBX_EINVAL;
    if (opts->send_only != 0 && (opts->group != 0 || opts->linger_ms != 0))
        return MBX_EINVAL;
    /* A monitor's mailbox is its own: no group, no linger, no slot-less monitor. */
    if (opts->monitor != 0 &&
        (opts->group != 0 || opts->linger_ms != 0 || opts->send_only != 0 || opts->node != NULL))
        return MBX_EINVAL;
    /* A remote name is a name, served by a client that has a mailbox. */
    if (opts->node != NULL && (mbx_check_name(opts->node) != MBX_OK || wanted == NULL ||
                               wanted[0] == '\0' || opts->send_only != 0))
        return MBX_EINVAL;
    int64_t deadline = plat_deadline(opts->timeout_ms);
    watch_forks();

    mbx_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MBX_ENOMEM;
    c->chan = PLAT_NO_HANDLE;
    c->wake = PLAT_NO_HANDLE;
    c->last_sender_cpu = -1;
    c->timeout_ms = opts->timeout_ms;
    strncpy(c->namespace_name, ns, MBX_NAME_MAX);
    atomic_flag_clear(&c->receiving);
    atomic_flag_clear(&c->lookup_lock);
    c->group = opts->group != 0;
    c->monitor = opts->monitor != 0;
    c->fork_epoch = atomic_load(&client_forks);
    /* Request ids start at random: a reply meant for an earlier run of this name (which a
     * lingering mailbox may still receive) can never match one of ours (outstanding.h). */
    atomic_store(&c->next_request, plat_random64());
    outstanding_init(&c->requests);
    c->spin.budget_ns = RING_SPIN_MIN_NS * 8;

    /* The broker first: no broker, no namespace. */
    int64_t broker_pid = 0;
    mbx_err err;
    if (opts->send_only != 0)
        err = attach_send_only(c, wanted, &broker_pid, deadline);
    else
        err = plat_chan_connect(ns, deadline, &c->chan, &broker_pid);
    if (err == MBX_OK && opts->send_only == 0)
        err = registration(c, wanted, opts, deadline, broker_pid);
    if (err != MBX_OK) {
        plat_handle_close(c->chan);
        plat_wake_place_close(&c->view.wake_place);
        plat_shm_close(&c->shm);
        free(c);
        return err;
    }
    c->view.stop_on_signal = opts->signals != 0;
    *out = c;
    return MBX_OK;
}

/* Sends UNREGISTER on h and waits for the answer until the deadline; true when the
 * broker answered. */
static bool unregister_on(mbx_client *c, plat_handle h, int64_t deadline)
{
    proto_request req = {.magic = PROTO_MAGIC,
                         .version = PROTO_VERSION,
                         .op = PROTO_UNREGISTER,
                         .slot = c->slot,
                         .generation = c->generation};
    if (plat_chan_send(h, &req, sizeof req) != MBX_OK)
        return false;
    proto_reply rep;
    size_t got = 0;
    return plat_chan_recv(h, &rep, sizeof rep, &got, deadline) == MBX_OK && got == sizeof rep;
}

/* In a process that did not connect c (a forked child): this copy is freed, and nothing
 * the owner holds is touched: no unregistration, no hand-off, no wake entry removed. */
static void forget_copy(mbx_client *c)
{
    plat_handle_close(c->chan);
    plat_handle_close(c->wake);
    plat_wake_place_close(&c->view.wake_place);
    pubsub_close(c);
    outstanding_free(&c->requests);
    plat_shm_close(&c->shm);
    free(c);
}

void mbx_close(mbx_client *c)
{
    if (c == NULL)
        return;
    if (!client_ours(c)) {
        forget_copy(c);
        return;
    }
    /* Ask the broker to free the slot and wait for the answer, so that the name can be
     * taken again as soon as we return. If our channel died with an earlier broker, ask
     * the current one over a new connection. Both attempts share one deadline (the
     * client's timeout, 5 s when it has none): a broker that is gone, stopped or slow
     * does not hold us up longer, and our exit frees the slot too. */
    int64_t deadline = plat_deadline(c->timeout_ms < 0 ? 5000 : c->timeout_ms);
    /* A group member hands on what it has not taken before it goes (group.h): requests
     * back to their requesters, plain messages to a sibling. */
    c->view.stop_on_signal = false; /* a hand-off cut short would lose what it carries */
    if (c->group)
        (void)group_handoff(&c->view, c->slot, c->generation, c->name, deadline, false);
    if (!c->send_only && !unregister_on(c, c->chan, deadline)) {
        plat_handle h;
        int64_t broker_pid;
        if (plat_now_ns() < deadline &&
            plat_chan_connect(c->namespace_name, deadline, &h, &broker_pid) == MBX_OK) {
            (void)unregister_on(c, h, deadline);
            plat_handle_close(h);
        }
    }
    plat_handle_close(c->chan);
    plat_wake_close(&c->view.wake_place, c->wake);
    plat_wake_place_close(&c->view.wake_place);
    pubsub_close(c);
    outstanding_free(&c->requests);
    plat_shm_close(&c->shm);
    free(c);
}

mbx_err client_confirm_shutdown(mbx_client *c)
{
    /* The words in shared memory say "closing" or "your slot was freed", and any member
     * can write those. The broker, when it means it, also closes our control channel,
     * which nobody else can do: wait a moment for that end of file. */
    unsigned char scratch[sizeof(proto_reply)];
    size_t got = 1;
    int64_t deadline = plat_now_ns() + CLIENT_CONFIRM_NS;
    while (plat_now_ns() < deadline) {
        mbx_err err = plat_chan_recv(c->chan, scratch, sizeof scratch, &got, deadline);
        if (err != MBX_OK || got == 0)
            break;
    }
    return got == 0 || c->chan == PLAT_NO_HANDLE ? MBX_ESHUTDOWN : MBX_ECORRUPT;
}

const char *mbx_client_name(const mbx_client *c)
{
    return c->name;
}

size_t mbx_max_message(const mbx_client *c)
{
    return c->view.max_message;
}
