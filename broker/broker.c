/*
 * broker.c: mailboxd's life: claim the namespace, create the segment, serve
 * registrations and watch clients, then shut down cleanly.
 *
 * Start-up order matters: the control endpoint is bound first, because binding it is
 * exclusive and the kernel frees it when its holder dies, so success proves that no live
 * broker serves the namespace (and no second broker can race us past this point). Only
 * then is the segment created, filled, and marked ready, last.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admission.h"
#include "adopt.h"
#include "broker.h"
#include "daemon.h"
#include "events.h"
#include "group.h"
#include "keeper.h"
#include "log.h"
#include "monitors.h"
#include "pending.h"
#include "presence.h"
#include "proto.h"
#include "registry.h"
#include "ring.h"
#include "scrub.h"
#include "signals.h"

/* Keys in the poller: what kind of handle, and which slot or handle. */
enum key_kind { KEY_LISTENER = 1, KEY_SIGNAL, KEY_PENDING, KEY_CLIENT, KEY_WATCH };
#define KEY(kind, n) (((uint64_t)(kind) << 48) | (uint64_t)(n))
#define KEY_KIND(k) ((enum key_kind)((k) >> 48))
#define KEY_VALUE(k) ((k) & ((1ull << 48) - 1))

typedef struct broker {
    const broker_options *opt;
    plat_shm shm;
    seg_view view;
    plat_handle listener;
    plat_handle signal_wake;
    plat_poller *poller;
    registry reg;
    pending_set pending; /* accepted, not registered yet */
    scrubber scrub;
    events ev;    /* $mbx.client.* and the subscriptions of clients gone */
    bool adopted; /* the segment was taken over from a dead broker */
} broker;

static void describe_geometry(const broker *b)
{
    log_msg(LOG_LEVEL_INFO,
            "namespace '%s' ready: %u slots x %u messages x %u bytes in %u-byte mailboxes, %" PRIu64
            " bytes reserved, mode %04o",
            b->opt->namespace_name, b->view.slots, b->view.depth, b->view.max_message,
            b->view.ring_bytes, b->view.total_size, b->shm.mode);
}

/* How long a broker refused looks for the pid of the one in its way. */
#define BUSY_LOOK_MS 3000

/* The pid of the broker in the way: the lock's holder as it wrote it, else whoever
 * answers on the endpoint; 0 when neither says (yet). */
static int64_t busy_pid(const char *ns)
{
    int64_t pid = 0;
    if (plat_chan_holder(ns, &pid) == MBX_OK)
        return pid;
    plat_handle h;
    if (plat_chan_connect(ns, plat_deadline(100), &h, &pid) == MBX_OK) {
        plat_handle_close(h);
        return pid;
    }
    return 0;
}

/* Finds who is in the way when the namespace is taken, for a message that names it. The
 * loser of a start race gets here as soon as the winner holds the lock, which may be
 * before the winner has written its pid or made its endpoint: look again, a while. */
static int refuse_busy(const char *ns)
{
    int64_t pid = busy_pid(ns);
    for (int64_t end = plat_deadline(BUSY_LOOK_MS); pid == 0 && plat_now_ns() < end;) {
        plat_sleep_ns(5000000);
        pid = busy_pid(ns);
    }
    if (pid != 0) {
        fprintf(stderr, "mailboxd: namespace '%s' is already served by mailboxd pid %" PRId64 "\n",
                ns, pid);
    } else {
        fprintf(stderr, "mailboxd: namespace '%s' is already served by another broker\n", ns);
    }
    return BROKER_EXIT_BUSY;
}

/* Fills the header's broker fields: who serves the namespace now, since when. */
static void claim_header(broker *b, bool adopted)
{
    seg_header *h = segment_header(&b->view);
    int64_t me = plat_pid();
    atomic_store(&h->broker_pid, me);
    atomic_store(&h->broker_start_time, plat_proc_start_time(me));
    atomic_store(&h->started_us, plat_wall_us());
    if (adopted)
        atomic_fetch_add(&h->epoch, 1);
    else
        atomic_store(&h->epoch, 0);
}

/*
 * Takes over the segment a dead broker left (we hold the liveness lock, so it is dead):
 * from its keeper (POSIX) or by its name (Windows). Returns an exit code, or -1 when there
 * is nothing to adopt. The segment's own geometry wins over the command line's.
 */
static int adopt_segment(broker *b)
{
    const broker_options *o = b->opt;
    mbx_err err = keeper_adopt(o->namespace_name, &b->shm);
    if (err == MBX_ENOBROKER)
        return -1;
    if (err == MBX_OK) {
        err = segment_validate(b->shm.base, b->shm.size, &b->view);
        if (err == MBX_OK &&
            strcmp(segment_header(&b->view)->namespace_name, o->namespace_name) != 0)
            err = MBX_ECORRUPT;
        if (err != MBX_OK && o->fresh) {
            /* Not adoptable, and not wanted: the keeper lets it go. */
            keeper_release(o->namespace_name);
            plat_shm_close(&b->shm);
            return -1;
        }
        if (err != MBX_OK)
            plat_shm_close(&b->shm);
    }
    if (err == MBX_EVERSION) {
        fprintf(stderr,
                "mailboxd: namespace '%s' holds a segment of another layout version (this "
                "mailboxd speaks %u); start with --fresh to discard it\n",
                o->namespace_name, SEG_LAYOUT_VERSION);
        return BROKER_EXIT_STALE;
    }
    if (err != MBX_OK) {
        fprintf(stderr,
                "mailboxd: namespace '%s' holds a segment that cannot be adopted (%s); start "
                "with --fresh to discard it\n",
                o->namespace_name, mbx_strerror(err));
        return BROKER_EXIT_STALE;
    }
    if (o->fresh) {
        log_msg(LOG_LEVEL_WARN, "--fresh: discarding the segment a dead broker left behind");
        keeper_release(o->namespace_name);
        plat_shm_close(&b->shm);
        return -1;
    }
    /* The permissions the namespace was created with (POSIX segments carry none). */
    b->shm.mode = segment_header(&b->view)->mode & 0777;
    b->adopted = true;
    return BROKER_EXIT_OK;
}

static int create_segment(broker *b)
{
    const broker_options *o = b->opt;
    int rc = adopt_segment(b);
    if (rc != -1)
        return rc;
    seg_view v;
    (void)options_layout(o, &v); /* checked by options_parse */
    mbx_err err = plat_shm_create(o->namespace_name, v.total_size, o->mode, &b->shm);
    if (err != MBX_OK) {
        const char *advice = plat_shm_advice(err);
        char why[384] = "";
        if (advice != NULL)
            snprintf(why, sizeof why, " (%s)", advice);
        if (err == MBX_ENOMEM)
            fprintf(stderr,
                    "mailboxd: cannot reserve %" PRIu64
                    " bytes of shared memory for namespace '%s'%s\n",
                    v.total_size, o->namespace_name, why);
        else
            fprintf(stderr, "mailboxd: cannot create namespace '%s': %s%s\n", o->namespace_name,
                    mbx_strerror(err), why);
        return BROKER_EXIT_FAILURE;
    }
    v.base = b->shm.base;
    err = segment_init(&v, o->namespace_name, o->mode);
    if (err != MBX_OK) {
        fprintf(stderr, "mailboxd: cannot initialise the segment: %s\n", mbx_strerror(err));
        plat_shm_close(&b->shm);
        return BROKER_EXIT_FAILURE;
    }
    b->view = v;
    if (keeper_start(o->namespace_name, &b->shm) != 0) {
        plat_shm_close(&b->shm);
        return BROKER_EXIT_FAILURE;
    }
    return BROKER_EXIT_OK;
}

/* After adoption: watch the clients that were kept, and say what was found. */
static bool watch_adopted(broker *b)
{
    adopt_report r;
    adopt_clients(&b->reg, &r);
    /* The monitors kept: only live ones of the owner's (or root's), never lingering; the
     * directory's flag alone is a member's word. Then listed again. */
    for (uint32_t i = 0; i < b->view.slots; i++) {
        client_rec *rec = &b->reg.recs[i];
        if (rec->active && rec->monitor != 0 &&
            (rec->lingering || !plat_proc_has_uid(rec->pid, b->shm.uid))) {
            monitors_detach(&b->reg, i);
            r.repaired++;
        }
    }
    r.repaired += monitors_scrub(&b->reg);
    for (uint32_t i = 0; i < b->view.slots; i++) {
        client_rec *rec = &b->reg.recs[i];
        if (rec->active && !rec->lingering &&
            plat_poller_add(b->poller, rec->watch, KEY(KEY_WATCH, i)) != MBX_OK)
            return false;
    }
    log_msg(LOG_LEVEL_INFO,
            "adopted namespace '%s' (epoch %" PRIu64 "): %u clients kept with %" PRIu64
            " waiting messages, %u mailboxes lingering, %u gone (%" PRIu64
            " messages discarded), %u repairs",
            b->opt->namespace_name, atomic_load(&segment_header(&b->view)->epoch), r.kept,
            r.messages_kept, r.lingering, r.freed, r.discarded, r.repaired);
    return true;
}

/*
 * Who may take a slot: the segment's owner and root always; others as the segment's
 * permission bits say, with group membership read from the peer's own credentials. The
 * segment's permissions are the first gate (a client must open it); this keeps those
 * who cannot from taking slots anyway.
 */
static bool peer_allowed(const broker *b, int64_t pid, uint32_t uid)
{
    if (uid == b->shm.uid || uid == 0 || (b->shm.mode & 0006) == 0006)
        return true;
    return (b->shm.mode & 0060) == 0060 && plat_proc_in_group(pid, b->shm.gid);
}

static void reply_passing(plat_handle h, mbx_err status, uint32_t slot, uint32_t gen,
                          const char *name, plat_handle pass)
{
    proto_reply rep;
    memset(&rep, 0, sizeof rep);
    rep.magic = PROTO_MAGIC;
    rep.version = PROTO_VERSION;
    rep.layout_version = SEG_LAYOUT_VERSION;
    rep.status = status;
    rep.slot = slot;
    rep.generation = gen;
    if (name != NULL)
        snprintf(rep.name, sizeof rep.name, "%s", name);
    (void)plat_chan_send_handle(h, &rep, sizeof rep, pass);
}

static void reply(plat_handle h, mbx_err status, uint32_t slot, uint32_t gen, const char *name)
{
    reply_passing(h, status, slot, gen, name, PLAT_NO_HANDLE);
}

/* The segment, for a client to map (POSIX), or nothing where clients open it by name. */
static plat_handle segment_to_pass(const broker *b)
{
    return b->shm.has_handle ? b->shm.handle : PLAT_NO_HANDLE;
}

/* Stops watching a slot's client: its channel and its death notice. */
static void unwatch(broker *b, client_rec *rec)
{
    if (rec->chan != PLAT_NO_HANDLE) {
        (void)plat_poller_del(b->poller, rec->chan);
        plat_handle_close(rec->chan);
        rec->chan = PLAT_NO_HANDLE;
    }
    if (rec->watch != PLAT_NO_HANDLE) {
        (void)plat_poller_del(b->poller, rec->watch);
        plat_handle_close(rec->watch);
        rec->watch = PLAT_NO_HANDLE;
    }
}

/* What a $mbx.client.down event says for a reason the log gives. */
static const char *down_reason(const char *why)
{
    if (strcmp(why, "closed") == 0)
        return "closed";
    if (strcmp(why, "lingered long enough") == 0)
        return "linger expired";
    if (strcmp(why, "could not be watched") == 0)
        return "evicted";
    return "died"; /* exited, disconnected */
}

/* Frees a slot for good: its waiting messages are discarded and counted, its
 * subscriptions end, and subscribers of $mbx.client.down hear of it. */
static void release_slot(broker *b, uint32_t slot, const char *why)
{
    client_rec *rec = &b->reg.recs[slot];
    if (!rec->active)
        return;
    /* A group member that died could not hand on what it had not taken: the broker does
     * it for it (a member that closed did it itself), without waiting on anyone. Only
     * when its death is certain (its death notice fired): a live member (one that closed
     * its channel, or is evicted) may still be taking from that mailbox. */
    bool dead = rec->watch != PLAT_NO_HANDLE && plat_handle_ready(rec->watch);
    unwatch(b, rec);
    char name[MBX_NAME_MAX + 1];
    memcpy(name, rec->name, sizeof name);
    int64_t pid = rec->pid;
    char node[MBX_NAME_MAX + 1];
    memcpy(node, rec->node, sizeof node);
    bool group = rec->group;
    if (rec->group && dead && strcmp(why, "closed") != 0)
        (void)group_handoff(b->reg.view, slot, rec->generation, name, plat_now_ns(), true);
    uint64_t dropped = registry_release(&b->reg, slot);
    events_purge(&b->ev, slot);
    events_client_down(&b->ev, name, pid, node, group, down_reason(why));
    log_msg(LOG_LEVEL_DEBUG, "client '%s' (pid %" PRId64 ", slot %u) %s; %" PRIu64 " discarded",
            name, pid, slot, why, dropped);
}

/* A client went away (closed, exited, killed): its mailbox lingers if it asked for it,
 * else the slot is freed. */
static void client_gone(broker *b, uint32_t slot, const char *why)
{
    client_rec *rec = &b->reg.recs[slot];
    if (!rec->active || rec->lingering)
        return;
    if (rec->linger_ms == 0 || rec->monitor != 0) { /* a monitor never lingers */
        release_slot(b, slot, why);
        return;
    }
    unwatch(b, rec);
    events_purge(&b->ev, slot); /* subscriptions end with their client */
    log_msg(LOG_LEVEL_DEBUG, "client '%s' (pid %" PRId64 ", slot %u) %s; mailbox lingers %u ms",
            rec->name, rec->pid, slot, why, rec->linger_ms);
    registry_linger(&b->reg, slot, plat_now_ns() + (int64_t)rec->linger_ms * 1000000);
}

/* Closes connections that were accepted but never asked for anything. */
static void expire_pending(broker *b)
{
    plat_handle h;
    while (pending_take_expired(&b->pending, plat_now_ns(), &h)) {
        log_msg(LOG_LEVEL_DEBUG, "a connection sent no request in time; closed");
        (void)plat_poller_del(b->poller, h);
        plat_handle_close(h);
    }
}

/* Frees the mailboxes whose linger time is over. */
static void expire_lingering(broker *b)
{
    int64_t now = plat_now_ns();
    for (uint32_t i = 0; i < b->view.slots; i++) {
        client_rec *rec = &b->reg.recs[i];
        if (rec->active && rec->lingering && now >= rec->linger_until_ns)
            release_slot(b, i, "lingered long enough");
    }
}

/* The facts admission_decide needs about the name asked for (admission.h); *holder: its
 * slot, or -1. A holder whose death notice is already queued is settled first, rather than
 * refuse a legitimate successor. */
static admission_facts registration_facts(broker *b, const proto_request *req, int64_t pid,
                                          int64_t *holder)
{
    const char *wanted = req->name; /* checked by proto_check_request() */
    *holder = wanted[0] != '\0' ? registry_find(&b->reg, wanted) : -1;
    if (*holder >= 0 && !b->reg.recs[*holder].lingering &&
        plat_handle_ready(b->reg.recs[*holder].watch)) {
        client_gone(b, (uint32_t)*holder, "exited");
        *holder = b->reg.recs[*holder].active ? *holder : -1;
    }
    admission_facts f = {.held = *holder >= 0, .asks_group = (req->flags & PROTO_FLAG_GROUP) != 0};
    if (f.held) {
        const client_rec *rec = &b->reg.recs[*holder];
        f.holder_group = rec->group;
        f.holder_linger = rec->lingering;
        f.holder_channel = rec->chan != PLAT_NO_HANDLE;
        f.same_process = rec->pid == pid;
    }
    return f;
}

/* Handles REGISTER on a pending connection: the decision (admission.h), then its
 * execution. Returns true when the connection now belongs to a slot. */
static bool handle_register(broker *b, plat_handle h, const proto_request *req, int64_t pid,
                            uint32_t uid)
{
    int64_t holder;
    admission_facts facts = registration_facts(b, req, pid, &holder);
    admission decision = admission_decide(&facts);
    bool monitor = (req->flags & PROTO_FLAG_MONITOR) != 0;
    /* A monitor sees every message: the namespace's owner's (and root's) alone, whatever
     * the mode lets others do; it takes a new mailbox of its own, never another's. */
    if (monitor && uid != b->shm.uid && uid != 0) {
        reply(h, MBX_EPERM, 0, 0, NULL);
        return false;
    }
    if (decision == REFUSE_TAKEN || (monitor && decision != ADMIT_NEW)) {
        reply(h, MBX_ENAMETAKEN, 0, 0, NULL);
        return false;
    }
    if (monitor && !monitors_room(&b->reg)) {
        reply(h, MBX_ENOSLOTS, 0, 0, NULL);
        return false;
    }
    /* Checked by proto_check_request(). */
    const char *node = (req->flags & PROTO_FLAG_REMOTE) != 0 ? req->node : NULL;
    /* A lingering mailbox holds messages for the name as served where it was: a local
     * client does not take over a remote name's, nor a bridge a local one's. */
    if ((decision == ADMIT_TAKE_OVER || decision == ADMIT_RECLAIM) &&
        strcmp(b->reg.recs[holder].node, node != NULL ? node : "") != 0) {
        reply(h, MBX_ENAMETAKEN, 0, 0, NULL);
        return false;
    }
    if (decision == ADMIT_RECLAIM)
        unwatch(b, &b->reg.recs[holder]);
    plat_handle watch;
    mbx_err err = plat_proc_watch(pid, &watch);
    if (err != MBX_OK) {
        reply(h, err, 0, 0, NULL);
        return false;
    }
    uint32_t slot;
    if (decision == ADMIT_TAKE_OVER || decision == ADMIT_RECLAIM) {
        slot = (uint32_t)holder; /* the mailbox as it is: messages and all */
        registry_take_over(&b->reg, slot, pid, req->linger_ms);
    } else {
        err = registry_claim(&b->reg, req->name, pid, req->linger_ms, facts.asks_group, node,
                             monitor, &slot);
    }
    if (err != MBX_OK) {
        plat_handle_close(watch);
        reply(h, err, 0, 0, NULL);
        return false;
    }
    client_rec *rec = &b->reg.recs[slot];
    rec->chan = h;
    rec->watch = watch;
    (void)plat_poller_del(b->poller, h);
    if (plat_poller_add(b->poller, h, KEY(KEY_CLIENT, slot)) != MBX_OK ||
        plat_poller_add(b->poller, watch, KEY(KEY_WATCH, slot)) != MBX_OK) {
        release_slot(b, slot, "could not be watched");
        reply(h, MBX_ESYSTEM, 0, 0, NULL);
        return false;
    }
    if (monitor)
        monitors_attach(&b->reg, slot); /* copies from the next message sent */
    /* Announced first: whoever hears of it can reach the client at once, and hears of
     * it before anything the client itself does. */
    events_client_up(&b->ev, rec->name, pid, rec->node, rec->group);
    reply_passing(h, MBX_OK, slot, rec->generation, rec->name, segment_to_pass(b));
    log_msg(LOG_LEVEL_DEBUG, "client '%s' (pid %" PRId64 ") took slot %u (%s)", rec->name, pid,
            slot, admission_name(decision));
    return true;
}

/* Reads one request from h; false when there is none to act on, with *closed set when h
 * should be closed: at end of file or a transport error, and for a bad request only on a
 * connection that does not hold a slot yet (`registered` false). A registered client's
 * bad request (a newer library, a bug) is answered with an error and changes nothing:
 * it must not cost a live client its slot. */
static bool read_request(plat_handle h, proto_request *req, bool registered, bool *closed)
{
    size_t got = 0;
    *closed = false;
    mbx_err err = plat_chan_recv(h, req, sizeof *req, &got, plat_now_ns());
    if (err == MBX_ETIMEDOUT)
        return false; /* spurious readiness */
    if (err != MBX_OK || got == 0) {
        *closed = true;
        return false;
    }
    err = proto_check_request(req, got);
    if (err != MBX_OK) {
        reply(h, err, 0, 0, NULL);
        *closed = !registered;
        return false;
    }
    return true;
}

static void on_pending(broker *b, plat_handle h)
{
    proto_request req;
    bool closed;
    int64_t pid = 0;
    uint32_t uid = 0;
    if (!read_request(h, &req, false, &closed)) {
        if (closed) {
            pending_remove(&b->pending, h);
            (void)plat_poller_del(b->poller, h);
            plat_handle_close(h);
        }
        return;
    }
    pending_remove(&b->pending, h); /* answered below: registered or closed */
    if (req.op == PROTO_UNREGISTER) {
        /* A client whose channel died with an earlier broker gives its slot back: only
         * the process that holds the slot may. */
        mbx_err status = MBX_EINVAL;
        if (plat_chan_peer(h, &pid, &uid) == MBX_OK && req.slot < b->view.slots) {
            client_rec *rec = &b->reg.recs[req.slot];
            if (rec->active && !rec->lingering && rec->pid == pid &&
                rec->generation == req.generation) {
                client_gone(b, req.slot, "closed");
                status = MBX_OK;
            }
        }
        reply(h, status, req.slot, 0, NULL);
    } else if (req.op == PROTO_INSPECT) {
        /* `mbx list` and mbx_inspect(): the segment, for whoever may take a slot. */
        if (plat_chan_peer(h, &pid, &uid) != MBX_OK || !peer_allowed(b, pid, uid))
            reply(h, MBX_EPERM, 0, 0, NULL);
        else
            reply_passing(h, MBX_OK, 0, 0, NULL, segment_to_pass(b));
    } else if (req.op == PROTO_REGISTER) {
        /* The peer's identity as the kernel saw it at connect time. */
        if (plat_chan_peer(h, &pid, &uid) != MBX_OK || !peer_allowed(b, pid, uid)) {
            reply(h, MBX_EPERM, 0, 0, NULL);
        } else if (atomic_load(&segment_header(&b->view)->state) != SEG_READY) {
            reply(h, MBX_ESHUTDOWN, 0, 0, NULL);
        } else if (handle_register(b, h, &req, pid, uid)) {
            return;
        }
    } else {
        reply(h, MBX_EINVAL, 0, 0, NULL);
    }
    (void)plat_poller_del(b->poller, h);
    plat_handle_close(h);
}

static void on_client(broker *b, uint32_t slot)
{
    client_rec *rec = &b->reg.recs[slot];
    if (!rec->active)
        return;
    proto_request req;
    bool closed;
    plat_handle h = rec->chan;
    if (!read_request(h, &req, true, &closed)) {
        if (closed && rec->group && rec->watch != PLAT_NO_HANDLE &&
            !plat_handle_ready(rec->watch)) {
            /* A group member's channel ends a moment before its death notice fires (the
             * kernel closes a dying process's files first). Its mail is handed on only
             * once its death is certain (release_slot): wait for the notice. */
            rec->chan = PLAT_NO_HANDLE;
            (void)plat_poller_del(b->poller, h);
            plat_handle_close(h);
        } else if (closed) {
            client_gone(b, slot, "disconnected");
        }
        return;
    }
    if (req.op == PROTO_UNREGISTER) {
        rec->chan = PLAT_NO_HANDLE; /* keep it open for the answer */
        (void)plat_poller_del(b->poller, h);
        client_gone(b, slot, "closed");
        reply(h, MBX_OK, slot, 0, NULL);
        plat_handle_close(h);
    } else {
        reply(h, MBX_EINVAL, 0, 0, NULL);
    }
}

/* Accepts what is pending. Each connection is judged at once by the kernel-verified
 * credentials of its peer: a user the namespace does not admit is closed before it can
 * hold anything, one user may keep only PENDING_PER_UID connections waiting to register,
 * and what is refused is logged at most once a second per kind. */
static void on_listener(broker *b)
{
    for (int i = 0; i < 64; i++) {
        plat_handle h;
        mbx_err err = plat_chan_accept(b->listener, &h);
        if (err == MBX_ETIMEDOUT)
            return;
        if (err != MBX_OK) {
            log_limited(LOG_LEVEL_WARN, "accept", "accept failed: %s", mbx_strerror(err));
            return;
        }
        int64_t pid = 0;
        uint32_t uid = 0;
        if (plat_chan_peer(h, &pid, &uid) != MBX_OK || !peer_allowed(b, pid, uid)) {
            log_limited(LOG_LEVEL_WARN, "refused",
                        "refused a connection from pid %" PRId64 " (uid %u): not admitted by "
                        "the namespace's mode %04o",
                        pid, uid, b->shm.mode);
            reply(h, MBX_EPERM, 0, 0, NULL);
            plat_handle_close(h);
            continue;
        }
        pending_result added = pending_add(&b->pending, h, uid, plat_now_ns());
        if (added != PENDING_ADDED) {
            if (added == PENDING_FULL)
                log_limited(LOG_LEVEL_WARN, "pending-full",
                            "%d connections wait to register; refusing more", PENDING_MAX);
            else
                log_limited(LOG_LEVEL_WARN, "pending-uid",
                            "uid %u has %d connections waiting to register; refusing more", uid,
                            PENDING_PER_UID);
            plat_handle_close(h);
        } else if (plat_poller_add(b->poller, h, KEY(KEY_PENDING, (uint64_t)h)) != MBX_OK) {
            pending_remove(&b->pending, h);
            plat_handle_close(h);
        }
    }
}

static void dispatch(broker *b, uint64_t key)
{
    uint64_t v = KEY_VALUE(key);
    switch (KEY_KIND(key)) {
    case KEY_LISTENER:
        on_listener(b);
        break;
    case KEY_SIGNAL:
        break;
    case KEY_PENDING:
        on_pending(b, (plat_handle)v);
        break;
    case KEY_CLIENT:
        if (v < b->view.slots)
            on_client(b, (uint32_t)v);
        break;
    case KEY_WATCH:
        /* The event may be stale: an earlier event of this batch may have freed the slot
         * and a registration given it to someone else. Act only when the current owner's
         * watch says it has exited. */
        if (v < b->view.slots && b->reg.recs[v].active && !b->reg.recs[v].lingering &&
            plat_handle_ready(b->reg.recs[v].watch))
            client_gone(b, (uint32_t)v, "exited");
        break;
    }
}

static void shut_down(broker *b)
{
    daemon_notify("STOPPING=1\nSTATUS=stopping");
    seg_header *h = segment_header(&b->view);
    atomic_store(&h->state, SEG_CLOSING);
    /* Everyone blocked in the namespace wakes, re-checks and sees SEG_CLOSING. */
    for (uint32_t i = 0; i < b->view.slots; i++)
        ring_wake_all(&b->view, i);
    keeper_release(b->opt->namespace_name);
    for (uint32_t i = 0; i < b->view.slots; i++) {
        client_rec *rec = &b->reg.recs[i];
        if (rec->active) {
            plat_handle_close(rec->chan);
            plat_handle_close(rec->watch);
        }
    }
    plat_chan_unlisten(b->opt->namespace_name, b->listener);
    plat_wake_place_close(&b->view.wake_place);
    plat_wake_place_remove(b->opt->namespace_name); /* the owners were signalled above */
}

/* The liveness lock's file can be removed or replaced under us like the endpoint: a
 * broker started then would lock a new file (it then finds our socket and leaves, but
 * only while the socket is there). Take it again. False when another process holds it. */
static bool check_lock(broker *b)
{
    bool retaken = false;
    mbx_err err = plat_chan_relock(b->opt->namespace_name, &retaken);
    if (err != MBX_OK) {
        log_limited(LOG_LEVEL_ERROR, "lock", "cannot take the liveness lock of '%s' again: %s",
                    b->opt->namespace_name, mbx_strerror(err));
        return err != MBX_EEXIST;
    }
    if (retaken)
        log_msg(LOG_LEVEL_WARN, "the liveness lock of '%s' was removed or replaced; took it again",
                b->opt->namespace_name);
    return true;
}

/* The control endpoint can be removed under us (rm, a session manager clearing the
 * runtime directory): new clients would be told "no broker" for ever. Put it back, with
 * the lock first: an endpoint is never made again while another process holds the lock. */
static void check_endpoint(broker *b)
{
    if (!check_lock(b))
        return;
    plat_handle before = b->listener;
    mbx_err err = plat_chan_relisten(b->opt->namespace_name, b->opt->mode, &b->listener);
    char where[256];
    if (err != MBX_OK) {
        log_limited(LOG_LEVEL_ERROR, "endpoint",
                    "the control endpoint %s is gone and cannot be made again: %s",
                    plat_chan_where(b->opt->namespace_name, where, sizeof where),
                    mbx_strerror(err));
    } else if (b->listener != before) {
        (void)plat_poller_del(b->poller, before);
        if (plat_poller_add(b->poller, b->listener, KEY(KEY_LISTENER, 0)) != MBX_OK)
            log_msg(LOG_LEVEL_ERROR, "cannot watch the new control endpoint");
        log_msg(LOG_LEVEL_WARN, "the control endpoint %s was removed; made it again",
                plat_chan_where(b->opt->namespace_name, where, sizeof where));
    }
    /* The wake directory too (members that opened the old one keep their handles only
     * until they reconnect: docs/architecture.md). */
    (void)plat_wake_place_make(b->opt->namespace_name, b->shm.mode, &b->view.wake_place);
}

/* The service manager's status line, when what it says has changed. */
static void report_status(broker *b, uint32_t *last)
{
    if (*last == b->reg.active)
        return;
    *last = b->reg.active;
    char status[160];
    snprintf(status, sizeof status, "STATUS=serving namespace '%s': %u clients",
             b->opt->namespace_name, b->reg.active);
    daemon_notify(status);
}

static void loop(broker *b)
{
    int64_t next_scrub = plat_now_ns();
    /* A service manager's watchdog (WatchdogSec=) hears from us twice per interval. */
    long long watchdog_us = daemon_watchdog_usec();
    int wait_ms = watchdog_us > 0 && watchdog_us / 2000 < 1000 ? (int)(watchdog_us / 2000) : 1000;
    if (wait_ms < 1)
        wait_ms = 1;
    int64_t next_watchdog = plat_now_ns();
    uint32_t reported = UINT32_MAX;
    while (!signals_stop_requested()) {
        uint64_t keys[64];
        int n = plat_poller_wait(b->poller, wait_ms, keys, 64);
        if (n < 0) {
            log_msg(LOG_LEVEL_ERROR, "waiting for events failed; stopping");
            return;
        }
        for (int i = 0; i < n && !signals_stop_requested(); i++)
            dispatch(b, keys[i]);
        if (signals_take_reopen()) {
            if (log_reopen() == 0)
                log_msg(LOG_LEVEL_INFO, "SIGHUP: log file reopened");
            else
                log_msg(LOG_LEVEL_WARN,
                        "SIGHUP: cannot reopen the log file (%s); still writing "
                        "to the old one",
                        strerror(errno));
        }
        if (watchdog_us > 0 && plat_now_ns() >= next_watchdog) {
            daemon_notify("WATCHDOG=1");
            next_watchdog = plat_now_ns() + watchdog_us * 1000 / 2;
        }
        if (plat_now_ns() >= next_scrub) {
            check_endpoint(b);
            expire_lingering(b);
            expire_pending(b);
            scrub_segment(&b->scrub);
            events_purge(&b->ev, UINT32_MAX);
            report_status(b, &reported);
            next_scrub = plat_now_ns() + 1000000000LL;
        }
    }
}

/* Where the log goes, decided before anything else can go wrong: --log's file (which must
 * open), stderr in the foreground, and in the background syslog, or, without one, a file
 * named here (never nowhere). Returns an exit code. */
static int open_log(const broker_options *opt)
{
    log_set_namespace(opt->namespace_name);
    if (opt->log_level >= 0)
        log_set_level((enum log_level)opt->log_level);
    else
        log_set_verbosity(opt->verbosity);
    if (opt->log_path != NULL) {
        if (log_open_file(opt->log_path) == 0)
            return BROKER_EXIT_OK;
        fprintf(stderr, "mailboxd: cannot open log file '%s': %s\n", opt->log_path,
                strerror(errno));
        return BROKER_EXIT_FAILURE;
    }
    if (!opt->daemon || log_use_syslog() == 0)
        return BROKER_EXIT_OK;
    char path[4096] = "";
    if (daemon_log_fallback(opt->namespace_name, path, sizeof path) != 0 ||
        log_open_file(path) != 0) {
        fprintf(stderr,
                "mailboxd: no system log (/dev/log) and cannot write a log file%s%s%s; "
                "use --log PATH\n",
                path[0] ? " (" : "", path, path[0] ? ")" : "");
        return BROKER_EXIT_FAILURE;
    }
    fprintf(stderr, "mailboxd: no system log (/dev/log); logging to %s\n", path);
    return BROKER_EXIT_OK;
}

int broker_run(const broker_options *opt)
{
    broker b;
    memset(&b, 0, sizeof b);
    b.opt = opt;
    int log_rc = open_log(opt);
    if (log_rc != BROKER_EXIT_OK)
        return log_rc;
    plat_raise_handle_limit();

    mbx_err err = plat_chan_listen(opt->namespace_name, opt->mode, &b.listener);
    if (err == MBX_EEXIST)
        return refuse_busy(opt->namespace_name);
    if (err != MBX_OK) {
        char where[256];
        fprintf(stderr, "mailboxd: cannot open the control endpoint of '%s' (%s): %s%s\n",
                opt->namespace_name, plat_chan_where(opt->namespace_name, where, sizeof where),
                mbx_strerror(err),
                err == MBX_EPERM ? "; its directory must belong to this user and be writable by "
                                   "no one else (MBX_RUNTIME_DIR chooses another)"
                                 : "");
        return BROKER_EXIT_FAILURE;
    }
    int rc = create_segment(&b);
    if (rc != BROKER_EXIT_OK) {
        plat_chan_unlisten(opt->namespace_name, b.listener);
        return rc;
    }
    /* Where members' wake handles live, with the namespace's access (platform.h). */
    err = plat_wake_place_make(opt->namespace_name, b.shm.mode, &b.view.wake_place);
    if (err != MBX_OK) {
        fprintf(stderr, "mailboxd: cannot make the wake directory of '%s': %s\n",
                opt->namespace_name, mbx_strerror(err));
        plat_chan_unlisten(opt->namespace_name, b.listener);
        plat_shm_close(&b.shm);
        return BROKER_EXIT_FAILURE;
    }
    if (registry_init(&b.reg, &b.view) != MBX_OK || events_init(&b.ev, &b.view) != MBX_OK ||
        plat_poller_open(&b.poller) != MBX_OK || signals_install(&b.signal_wake) != 0 ||
        plat_poller_add(b.poller, b.listener, KEY(KEY_LISTENER, 0)) != MBX_OK ||
        plat_poller_add(b.poller, b.signal_wake, KEY(KEY_SIGNAL, 0)) != MBX_OK) {
        fprintf(stderr, "mailboxd: cannot set up the event loop\n");
        shut_down(&b);
        return BROKER_EXIT_FAILURE;
    }
    claim_header(&b, b.adopted);
    if (b.adopted && !watch_adopted(&b)) {
        fprintf(stderr, "mailboxd: cannot watch the adopted clients\n");
        shut_down(&b);
        return BROKER_EXIT_FAILURE;
    }
    if (pidfile_write(opt->pidfile) != 0) {
        fprintf(stderr, "mailboxd: cannot write pid file '%s'\n", opt->pidfile);
        shut_down(&b);
        return BROKER_EXIT_FAILURE;
    }
    /* Everything is in place: publish readiness, in shared memory first, and wake whoever
     * waits for a name (a namespace adopted with clients in it: they are there now). */
    atomic_store(&segment_header(&b.view)->state, SEG_READY);
    presence_changed(&b.view);
    scrub_init(&b.scrub, &b.reg);
    describe_geometry(&b);
    daemon_ready();
    char status[160];
    snprintf(status, sizeof status, "serving namespace '%s'", opt->namespace_name);
    daemon_notify_ready(status);

    loop(&b);

    log_msg(LOG_LEVEL_INFO, "stopping (signal %d): namespace '%s' closed, %u clients woken",
            signals_last(), opt->namespace_name, b.reg.active);
    shut_down(&b);
    pidfile_remove(opt->pidfile);
    plat_poller_close(b.poller);
    registry_destroy(&b.reg);
    events_destroy(&b.ev);
    plat_shm_close(&b.shm);
    return BROKER_EXIT_OK;
}
