/*
 * bridge.h: mailbox-bridge's shared state (docs/bridge.md).
 *
 * Threads. The main thread owns every mailbox the bridge receives from: the control
 * client `bridge.<node>` (replies to requests it delivered for other hosts, local
 * publications to export, presence events, `mbx list`'s state requests) and one proxy
 * client per remote name (what local clients send to that name). It alone connects and
 * closes proxies and keeps the remote directory. cnats calls back on its own threads,
 * one per subscription: the callbacks for exported names and topics deliver into the
 * local namespace themselves (a full mailbox then holds up only its own name's thread),
 * and hand everything else (directory news, acknowledgements, replies for proxies) to
 * the main thread through the event queue (events.c).
 *
 * Main-thread work is done under `main_mu`, which the main thread holds at all times
 * except around its sleep in poll (`main_asleep` says when). A delivery thread that takes
 * it then (trylock only, never waiting) may do a bounded share of main-thread work
 * meanwhile: watching for the answer to what it just delivered and forwarding it
 * (answer_watch.c). Everything marked "main thread" below is under main_mu.
 *
 * Everything else in here that NATS threads touch is either atomic or under `mu`.
 */
#ifndef MBX_BRIDGE_H
#define MBX_BRIDGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "mailbox.h"

#define BRIDGE_PATTERNS_MAX 32
/* A node name leaves room for the bridge's own client name, "bridge.<node>". */
#define BRIDGE_NODE_MAX (MBX_NAME_MAX - 7)
/* Plain messages one proxy may have on the network unacknowledged: what bounds the
 * receiving side's queue for one name, and so what a full remote mailbox can hold up. */
#define BRIDGE_WINDOW 1024
/* A directory is sent whole this often, and a node not heard from for three periods is
 * taken for gone (its names leave this namespace). */
#define BRIDGE_SNAPSHOT_MS 10000
#define BRIDGE_NODE_EXPIRY_MS 30000
/* Longest a request waits for its answer from another host: the requester's own
 * timeout ends it earlier (the library drops a late answer); this frees the entry. */
#define BRIDGE_REQUEST_MAX_MS 120000

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

typedef struct bridge_config {
    const char *ns;   /* NULL: the default namespace */
    const char *nats; /* comma-separated URLs */
    char node[MBX_NAME_MAX + 1];
    char cluster[MBX_NAME_MAX + 1];
    const char *names[BRIDGE_PATTERNS_MAX];
    int n_names;
    const char *topics[BRIDGE_PATTERNS_MAX];
    int n_topics;
    bool durable;
    const char *creds, *tls_ca, *tls_cert, *tls_key;
    log_level level;
} bridge_config;

/* The figures `mbx list` shows (a request {"state":true} to bridge.<node>). */
typedef struct bridge_counters {
    _Atomic uint64_t forwarded;   /* messages, requests, replies, publications sent out */
    _Atomic uint64_t delivered;   /* ... and brought in, into local mailboxes */
    _Atomic uint64_t dropped;     /* lost on the way (core mode: at most once) */
    _Atomic uint64_t redelivered; /* durable mode: delivered again after a failure */
    _Atomic uint64_t conflicts;   /* names served here and on another node */
} bridge_counters;

typedef struct proxy proxy;             /* outbound.c: one remote name's local mailbox */
typedef struct remote_node remote_node; /* directory.c */
typedef struct export_name export_name; /* directory.c: a local name served to others */

/* msg_release.c: received messages are destroyed this many at a time, or once they hold
 * this many bytes */
#define RELEASE_MAX 64
#define RELEASE_BYTES (1u << 20)

typedef struct bridge {
    bridge_config cfg;
    char self[MBX_NAME_MAX + 8];   /* "bridge.<node>", a valid name (BRIDGE_NODE_MAX) */
    uint64_t instance;             /* random per run: tells two bridges of one node apart */
    char prefix[MBX_NAME_MAX + 8]; /* "mbx.<cluster>." */
    mbx_client *ctl;
    natsConnection *nc;
    _Atomic bool connected; /* to a NATS server now */
    /* Connections made to NATS so far: bumped (by cnats' thread) before `connected`
     * turns true, so a node heard from on an earlier connection is not "fresh" even for
     * the moment before the main thread hears of the reconnect (directory.c). */
    _Atomic uint64_t conn_gen;
    _Atomic bool stopping;
    bool stream_ready; /* durable: the JetStream stream exists (main thread) */
    bridge_counters count;
    pthread_mutex_t mu;
    pthread_mutex_t main_mu;  /* main-thread work (above, "Threads") */
    _Atomic bool main_asleep; /* the main thread is in (or about to be in) poll */
    /* Watches for an answer made by a delivery thread, and by the main thread when a
     * delivery thread asked it to (state.c shows them). */
    _Atomic uint64_t watches_delivery, watches_main;

    /* control.c (main thread) */
    mbx_message *ctl_msg;    /* reused for each receive */
    mbx_message *ctl_parked; /* taken by a delivery thread's drain, left for the main one */
    bool ctl_more;           /* the last drain stopped before the mailbox ran empty */
    mbx_err ctl_err;         /* a receive failed: the run ends (the namespace shut down...) */

    /* directory.c (main thread) */
    export_name *exports;
    int n_exports, cap_exports;
    remote_node *nodes;
    int n_nodes, cap_nodes;
    bool local_dirty; /* presence changed: scan the namespace again */
    int64_t next_scan_ns, next_snapshot_ns, next_reconcile_ns;

    /* outbound.c (main thread) */
    proxy **proxies;
    int n_proxies, cap_proxies;
    uint64_t next_proxy_id, round;
    uint64_t proxies_epoch; /* changes whenever proxies may have been freed */
    struct outbound_request *out_reqs;
    int n_out_reqs, cap_out_reqs;
    uint64_t next_token;

    /* inbound.c (under mu) */
    struct inbound_request *in_reqs;
    int n_in_reqs, cap_in_reqs;
    struct name_sub *name_subs; /* the exported names' subscriptions */

    /* topics.c (main thread) */
    struct retained_entry *retained;
    int n_retained, cap_retained;

    /* nats_link.c: the subscriptions that last the whole run (released at the end, or
     * nats_CloseAndWait waits for them in vain) */
    natsSubscription *subs[8];
    int n_subs;

    /* events.c */
    int event_fd;
    struct bridge_event *ev_head, *ev_tail;
    /* (under mu) a delivery that may be answered at once: the main thread watches where
     * the answer would come (events_watch) */
    int watch; /* WATCH_NONE, WATCH_CONTROL or WATCH_NAME */
    char watch_name[MBX_NAME_MAX + 1];

    /* msg_release.c (under rel_mu): received messages waiting to be destroyed */
    pthread_mutex_t rel_mu;
    natsMsg *rel[RELEASE_MAX];
    int rel_n;
    size_t rel_bytes;
    bool rel_closed;
} bridge;

/* log.c */
void bridge_log_init(log_level level);
void bridge_log(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t bridge_now_ns(void);

/* options.c: exits 2 with one line on a bad command line. */
void bridge_options(int argc, char **argv, bridge_config *cfg);
bool bridge_name_bridged(const bridge_config *cfg, const char *name);
bool bridge_topic_exported(const bridge_config *cfg, const char *topic);

/* events.c: what NATS threads hand to the main thread. */
typedef enum event_kind {
    EV_DIRECTORY,    /* a node's directory message */
    EV_HELLO,        /* a bridge started: send our directory and retained values */
    EV_ACK,          /* the far side took `count` plain messages of proxy `id` */
    EV_REPLY,        /* the answer to outbound request `id` (a token) */
    EV_CONNECTED,    /* (re)connected to NATS */
    EV_DISCONNECTED, /* lost NATS */
    EV_JS_ACK,       /* durable: JetStream's answer (count 1: stored) to a publish (msg) */
} event_kind;

typedef struct bridge_event {
    event_kind kind;
    uint64_t id;
    uint64_t count;
    natsMsg *msg; /* owned by the event */
    struct bridge_event *next;
} bridge_event;

/* What the main thread is asked to watch: nothing, the control client (a request was
 * delivered: its reply comes there), or the proxy of a remote name (a lone message from
 * it was delivered: an answer would go there). */
enum { WATCH_NONE, WATCH_CONTROL, WATCH_NAME };
/* How long a watch for an answer lasts (answer_watch.c). */
#define WATCH_SPIN_US 100

int events_init(bridge *b);
/* Any thread: asks the main thread to watch for an answer to `name` (a remote name's
 * proxy; NULL: the control client), unless a watch is asked for already. */
void events_watch(bridge *b, const char *name);
/* Main thread: the watch asked for since the last call (WATCH_*), its name in name. */
int events_take_watch(bridge *b, char name[MBX_NAME_MAX + 1]);
/* Any thread: wakes the main thread (it looks at everything again). */
void events_poke(bridge *b);
void events_post(bridge *b, event_kind kind, uint64_t id, uint64_t count, natsMsg *msg);
bridge_event *events_take_all(bridge *b);
void events_free(bridge *b, bridge_event *e);

/* msg_release.c: in place of natsMsg_Destroy for received messages (any thread); the
 * main loop's tick destroys what is held; after msg_release_close (nats_link_close calls
 * it), messages are destroyed at once. */
void msg_release(bridge *b, natsMsg *m);
void msg_release_tick(bridge *b);
void msg_release_close(bridge *b);

/* nats_link.c */
natsStatus nats_link_connect(bridge *b);
/* headers: key, value, key, value, ..., NULL (a NULL value skips its key). */
natsStatus nats_publish(bridge *b, const char *subject, const char *reply, const char *body,
                        size_t len, const char *const *headers);
const char *nats_header(natsMsg *m, const char *key);
/* A subscription for the whole run, without cnats' pending limits (the senders' windows
 * bound what queues); logs and returns -1 when it cannot be made. */
int nats_subscribe_for_run(bridge *b, const char *subject, natsMsgHandler cb);
/* At the end: sends the acknowledgements still due, flushes, releases those
 * subscriptions, closes the connection and waits for every cnats thread to end. false:
 * some did not end (one may still use the control client). */
bool nats_link_close(bridge *b);
/* "mbx.<cluster>.<kind>.<rest>" */
void bridge_subject(const bridge *b, char *out, size_t cap, const char *kind, const char *rest);

/* directory.c (main thread) */
void directory_start(bridge *b);
void directory_tick(bridge *b, int64_t now);
/* gen: the connection generation (conn_gen) the message was received on. */
void directory_on_message(bridge *b, natsMsg *m, uint64_t gen);
void directory_send_snapshot(bridge *b);
void directory_stop(bridge *b);
int directory_counts(bridge *b, int *nodes);
/* Heard from on the present connection to NATS: after a reconnect, its names are
 * forwarded to only once it was heard from again (its subscriptions are back). */
bool directory_node_fresh(bridge *b, const char *node);

/* outbound.c (main thread; proxies in outbound.h) */
int outbound_start(bridge *b);
void outbound_on_ack(bridge *b, uint64_t id, uint64_t count, bool no_responders);
void outbound_on_reply(bridge *b, uint64_t token, natsMsg *m);
void outbound_tick(bridge *b, int64_t now);
uint64_t outbound_in_flight(bridge *b);
int outbound_proxies(bridge *b); /* remote names standing here */

/* inbound.c */
int inbound_start(bridge *b);
natsSubscription *inbound_subscribe_name(bridge *b, const char *name);
void inbound_unsubscribe_name(bridge *b, natsSubscription *sub);
/* Main thread: sends reply m to whoever asked on the far side. may_wait: an entry not
 * there yet (its thread has not entered it) is waited for a moment; otherwise false is
 * returned at once and m is left as it was. */
bool inbound_on_ctl_reply(bridge *b, mbx_message *m, bool may_wait);
void inbound_tick(bridge *b, int64_t now); /* main thread */
void inbound_flush_acks(bridge *b);        /* all of them, now (at the end) */

/* topics.c */
int topics_start_local(bridge *b);               /* the local subscriptions */
int topics_start_nats(bridge *b);                /* the NATS ones */
void topics_on_local(bridge *b, mbx_message *m); /* main thread */
void topics_on_hello(bridge *b, natsMsg *m);     /* main thread */
void topics_say_hello(bridge *b);                /* main thread */

/* answer_watch.c. A delivery thread, after delivering a request (name NULL: its reply
 * comes to the control client) or a lone message from remote `name` (an answer would go
 * to name's proxy): watches there a moment and forwards the answer itself, or asks the
 * main thread to when that one is awake. */
void answer_watch(bridge *b, const char *name);
/* Main thread: the watch a delivery thread asked for, if any. */
void answer_watch_asked(bridge *b);

/* control.c (main thread): takes what the control client holds (sets ctl_more and
 * ctl_err). A delivery thread (answer_watch) drains with delivery true: a few messages,
 * only the work that never waits (replies whose entry is there, publications); anything
 * else is parked for the main thread (ctl_parked, ctl_more). */
void control_drain(bridge *b, bool delivery);

/* state.c */
void state_answer(bridge *b, mbx_message *request);

#endif
