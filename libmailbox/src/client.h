/* client.h: the client handle, shared by the files that implement the public API. */
#ifndef MBX_CLIENT_H
#define MBX_CLIENT_H

#include <stdatomic.h>

#include "outstanding.h"
#include "platform/platform.h"
#include "proto.h"
#include "ring.h"
#include "segment.h"
#include "subs.h"

/* One of the client's own subscriptions, as it asked for it: what it receives is checked
 * against these (the shared table could have been written by anyone). */
typedef struct client_pattern {
    char text[MBX_TOPIC_MAX + 1];
    uint32_t len;
} client_pattern;

struct mbx_client {
    plat_shm shm;
    seg_view view;
    plat_handle chan; /* open for as long as we hold the slot */
    bool send_only;   /* no slot (slot is UINT32_MAX): sends only */
    uint32_t slot;
    uint32_t generation;
    char name[MBX_NAME_MAX + 1];
    char namespace_name[MBX_NAME_MAX + 1];
    _Atomic uint64_t next_seq;
    atomic_flag receiving;        /* guards against two concurrent mbx_recv() */
    bool corrupt_pending;         /* a batch met a corrupt message: the next receive reports it */
    _Atomic uint32_t interrupted; /* set by mbx_interrupt(), taken by the next receive */
    plat_handle wake;             /* the wake handle (mbx_wait_handle), or PLAT_NO_HANDLE */
    /* The receiving thread's (under `receiving`), for wake.c. client_wake_arm: a signal
     * may sit in the handle (mbx_busy_poll replaced a NOTIFIED word), and how far the
     * last arm had looked. mbx_busy_poll: the CPU the sender of the last message
     * received ran on (-1: unknown), where it expects the next one to come from. */
    bool wake_dirty;
    uint64_t wake_armed_at;
    int last_sender_cpu;
    /* The receiving thread's: the last sender's name a received record carried that was
     * found valid ("": none yet), so that a stream from one sender checks it once. */
    char valid_from[MBX_NAME_MAX + 1];
    bool group;                    /* one of a group's members (mbx_connect_options.group) */
    bool monitor;                  /* a monitor: receives CELL_MONITOR copies only */
    uint32_t fork_epoch;           /* client_forks when it connected (see client_ours) */
    _Atomic uint64_t next_request; /* the last request id given out; starts at random */
    outstanding requests;          /* requests that wait for their reply (outstanding.h) */
    ring_spinner spin;             /* used by the one receiving thread */
    int timeout_ms;
    /* The last recipient looked up, so that a stream of sends to one peer does not scan
     * the directory. Only a hint: every use checks it against the directory entry. */
    atomic_flag lookup_lock;
    bool lookup_valid;
    uint32_t lookup_slot;
    char lookup_name[MBX_NAME_MAX + 1];
    /* Topics (pubsub.c): our patterns, guarded by patterns_lock (held for a copy or a
     * scan, never across a wait) ... */
    atomic_flag patterns_lock;
    uint32_t npatterns;
    client_pattern patterns[MBX_SUBSCRIPTIONS_PER_CLIENT];
    /* ... and, for publishing, the subscribers the last topic matched while the table's
     * version stays the same; guarded by pub_lock (a publisher that finds it taken
     * matches on its own). */
    atomic_flag pub_lock;
    bool pub_valid;
    uint32_t pub_version;
    uint32_t pub_topic_len;
    char pub_topic[MBX_TOPIC_MAX + 1];
    uint32_t pub_n;
    subs_scratch pub_scratch; /* allocated at the first publication */
};

struct mbx_message {
    char *body; /* max_message + 1 bytes once used */
    size_t cap;
    size_t len;
    char from[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1]; /* the node it came from through a bridge, or "" */
    uint32_t error;              /* CELL_REPLY: the mbx_err it stands for (checked), or 0 */
    char to[MBX_NAME_MAX + 1];
    uint64_t seq;
    int64_t ts_us;
    uint32_t kind;     /* enum cell_kind */
    uint32_t mirrored; /* CELL_MONITOR: the kind the original was sent as */
    uint64_t corr;
    uint32_t from_slot; /* where a reply goes */
    uint32_t from_generation;
    _Atomic bool replied;          /* CELL_REQUEST: mbx_reply answered it already */
    char topic[MBX_TOPIC_MAX + 1]; /* CELL_TOPIC: the topic it came on */
    uint64_t missed;               /* CELL_TOPIC: publications missed just before it;
                                      CELL_MONITOR: copies missed just before it */
    bool retained;                 /* CELL_TOPIC: published retained */
    /* Set by mbx_peek(): the message's place in the mailbox, for mbx_ack(). */
    bool peeked;
    uint32_t peek_slot;
    uint32_t peek_generation;
    uint64_t peek_position;
    uint64_t peek_next; /* where the message after it starts (mbx_peek_after) */
};

/* fork(): a client belongs to the process that connected it. The library counts forks
 * (an at-fork handler in the child adds one); a client made before the last fork of
 * this process is its parent's, and every call on it returns MBX_EINVAL, except
 * mbx_close, which only frees this process's copy (client.c). One load per call. */
extern _Atomic uint32_t client_forks;

static inline bool client_ours(const mbx_client *c)
{
    return atomic_load_explicit(&client_forks, memory_order_relaxed) == c->fork_epoch;
}

/* Where a send goes, and as what (messaging.c). */
typedef struct send_route {
    const char *to; /* a name to look up, or NULL: slot and generation below */
    uint32_t slot;  /* the recipient when to is NULL (checked against the view) */
    uint32_t generation;
    uint32_t kind;      /* enum cell_kind */
    uint64_t corr;      /* request id, for requests and replies */
    uint32_t error;     /* a reply: the mbx_err it ends its request with (0: an answer) */
    uint32_t *slot_out; /* where it went (may be NULL) ... */
    uint32_t *generation_out;
    /* Told where the message goes just before it is put there (may be NULL): a request's
     * table entry must know its responder before a reply can come. */
    void (*routed)(mbx_client *c, uint64_t corr, uint32_t slot, uint32_t generation);
} send_route;

/* Counts one message sent: in the client's mailbox, or (send-only) in the namespace's
 * totals. */
static inline void client_count_sent(mbx_client *c)
{
    _Atomic uint64_t *counter = c->send_only ? &segment_header(&c->view)->gone_sent
                                             : &segment_mailbox(&c->view, c->slot)->sent;
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* mbx_send_ex() for every kind of message (request.c sends requests and replies). */
mbx_err messaging_send(mbx_client *c, const send_route *r, const char *json, size_t len,
                       const mbx_send_options *opts);

/* Whether what a take copied out of a record is fit to hand out, beyond its framing,
 * which the ring checked: a valid sender name, a valid topic for a publication, and a
 * body that is exactly one compact JSON value (any member could have written the record,
 * and a trusted sender skipped the check). Called under the receive flag: it remembers
 * the last valid sender name (c->valid_from). */
bool client_incoming_valid(mbx_client *c, const ring_incoming *in);

/* Checks and, unless trusted, compacts a body for sending: *body and *body_len are what
 * to send (json itself, stack when it fits, else *heap, which the caller frees). */
/* The error a reply from the far side (mbx_reply_error) ends its request with: the codes
 * that tell of the far side as they are, anything else (read from shared memory: any
 * value) MBX_EGONE. MBX_OK stays MBX_OK. */
mbx_err request_far_error(uint32_t error);

/* Whether a send's node and sender name (mbx_send_options: from needs node) are valid. */
bool messaging_labels_valid(const char *node, const char *from);

mbx_err messaging_prepare(const mbx_client *c, const char *json, size_t len, bool trusted,
                          char *stack, size_t stack_cap, char **heap, const char **body,
                          size_t *body_len);

/*
 * What a receive does with a record of one kind before it hands it out: true to hand it
 * to the caller; false when the kind's feature dealt with it (dropped and counted, or sent
 * again), and the receive goes on. `keep`: the record stays in the mailbox until mbx_ack
 * (mbx_peek). The receive path (messaging.c) dispatches through client_receive_filters,
 * indexed by the record's kind, and knows none of the features: the table is made where
 * the client is put together (client.c). A kind without a filter is handed out as it is.
 */
typedef bool (*receive_filter)(mbx_client *c, const ring_incoming *in, const char *body, bool keep);
#define RECEIVE_KINDS (CELL_MONITOR + 1)
extern const receive_filter client_receive_filters[RECEIVE_KINDS];

/* A publication: handed out when its topic is one this client asked for (pubsub.c). */
bool pubsub_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep);

/* A monitor's copy (monitor.c): handed out to a monitor, dropped by anyone else. */
bool monitor_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep);

/* Frees what publishing allocated (pubsub.c). */
void pubsub_close(mbx_client *c);

/* A reply or a returned request (request.c): a reply is handed out when it answers an
 * outstanding request (answered now, or at mbx_ack when kept); anything else is dropped
 * and counted, and a returned request is sent again. */
bool request_incoming(mbx_client *c, const ring_incoming *in, const char *body, bool keep);

/* Re-arms the wake handle, if there is one (wake.c): the caller has looked at the mailbox
 * up to position `seen` (ring_incoming.scanned), so the handle turns readable again only
 * for what arrived after it, or a shutdown or eviction. */
void client_wake_arm(mbx_client *c, uint64_t seen);

/* Asks ns's broker for the segment (INSPECT), as a client registering would, and maps it
 * (read-only or not) without taking a slot; *broker_pid: the broker's, kernel-verified.
 * Errors as mbx_connect(). */
/* client_inspect_segment's "the broker closed the connection without answering": it
 * refused it (too many of this user's connections wait), try again soon. Never returned
 * by the public API. */
#define MBX_EAGAIN_INTERNAL ((mbx_err)1000)

mbx_err client_inspect_segment(const char *ns, bool read_only, int64_t *broker_pid, plat_shm *shm,
                               seg_view *v);

/* How long a client waits for the broker to close its channel before it believes a
 * shutdown or an eviction that shared memory reports. */
#define CLIENT_CONFIRM_NS (1000LL * 1000 * 1000)

/*
 * Called when shared memory says the namespace is closing or the client's slot was taken
 * back: MBX_ESHUTDOWN when the broker confirms it by closing the client's control channel
 * (within CLIENT_CONFIRM_NS), else MBX_ECORRUPT: a forged word, which the broker's scrub
 * puts back, so the caller may go on. A channel that died with an earlier broker cannot
 * confirm anything and is believed.
 */
mbx_err client_confirm_shutdown(mbx_client *c);

/* The broker's answer of got bytes, checked: MBX_OK, or what it says went wrong
 * (MBX_ENOBROKER for a closed channel, MBX_EVERSION for another protocol or layout). */
mbx_err client_check_reply(const proto_reply *rep, size_t got);

/* Maps a namespace's segment (read-only or not) into shm and view and validates it: the
 * handle passed by the broker, or (PLAT_NO_HANDLE, Windows) the segment of that name. */
mbx_err client_attach_segment(const char *ns, plat_handle passed, bool read_only, plat_shm *shm,
                              seg_view *view);

#endif
