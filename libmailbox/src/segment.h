/*
 * segment.h: the layout of a namespace's shared segment.
 *
 *   offset 0                 header (SEG_HEADER_SIZE bytes)
 *   dir_off                  directory: one seg_dir_entry (192 bytes) per slot
 *   sub_off                  subscription table: seg_sub entries (topics.c, subs.c)
 *   retain_off + i*r_stride  retained messages: seg_retained, then topic and body
 *   mailbox_off + i*stride   mailbox of slot i: seg_mailbox, then a ring of ring_bytes
 *
 * Shared memory holds no pointers, only offsets and indices (every process maps the
 * segment at another address). Every process keeps its own copy of the geometry in a
 * seg_view, taken once from a header that passed segment_validate(), and never re-reads
 * sizes or offsets from shared memory afterwards.
 *
 * Who writes what:
 * - header: geometry fields are written once by the creating broker before `state`
 *   becomes SEG_READY and never change; the rest is written by the broker only.
 * - directory entries: written by the broker only. `generation` is a sequence lock: odd
 *   while the broker rewrites the entry, even when stable; freeing a slot adds 2.
 * - mailbox: `lock` guards `tail` and the ring's bytes from tail to head + ring_bytes;
 *   `head` is written by the mailbox's owner (its single consumer) only; counters are
 *   atomics.
 */
#ifndef MBX_SEGMENT_H
#define MBX_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mailbox.h"
#include "platform/platform.h"

#define SEG_MAGIC 0x31584f424c49414dULL /* "MAILBOX1" in little-endian bytes */
/* 8: monitors (a header table every sender looks at, and CELL_MONITOR copies);
 * 7: a directory entry names the node a remote name is served on (mailbox-bridge), and a
 *    record may carry the node it came from and a reply's error;
 * 6: a lock keeps its holder's thread id and start time in one 64-bit word (review M2);
 * 5: a mailbox can close to senders; returned requests */
#define SEG_LAYOUT_VERSION 8u
#define SEG_HEADER_SIZE 4096u
#define SEG_CACHE_LINE 64u

/* Limits on geometry; segment_geometry() refuses anything outside them. */
#define SEG_MIN_SLOTS 1u
#define SEG_MAX_SLOTS 16384u
#define SEG_MIN_DEPTH 1u
#define SEG_MAX_DEPTH 1048576u
#define SEG_MIN_MESSAGE 16u
#define SEG_MAX_MESSAGE (1u << 20)
#define SEG_MAX_TOTAL (16ull << 30)
#define SEG_MAX_SUBSCRIPTIONS 65536u
#define SEG_MAX_RETAINED 65536u
/* Bytes of sender name and node a record carries at most. */
#define SEG_MAX_LABELS (2u * MBX_NAME_MAX)
/* A mailbox's ring: a power of two, at least two records of the largest message (so an
 * empty ring takes one wherever its free space starts), at most SEG_MAX_RING. */
#define SEG_MAX_RING (1u << 30)
/* What the default ring is sized for: `depth` records of this size, a 200-byte message
 * from a sender with the longest name (the goal of issue 16: 64 of them per mailbox). */
#define SEG_TYPICAL_RECORD 384u
#define SEG_DEFAULT_SUBSCRIPTIONS 1024u
#define SEG_DEFAULT_RETAINED 64u

enum seg_state { SEG_INITIALIZING = 0, SEG_READY = 1, SEG_CLOSING = 2 };
enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
#define DIR_GROUP 1u   /* seg_dir_entry.flags: one of the members serving this name */
#define DIR_REMOTE 2u  /* served on another host, through the bridge that holds the slot */
#define DIR_MONITOR 4u /* a monitor: gets a copy of every message sent (monitor.h) */
/* Monitors a namespace has at most at once. */
#define SEG_MONITORS 4u

typedef struct seg_header {
    /* Never change after creation. */
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t slots;
    uint32_t depth;
    uint32_t max_message;
    uint32_t ring_bytes; /* bytes of each mailbox's ring of records */
    uint64_t dir_off;
    uint64_t mailbox_off;
    uint64_t mailbox_stride;
    uint32_t mode;
    uint32_t reserved0;
    uint32_t subscriptions; /* entries in the subscription table */
    uint32_t retained;      /* entries in the retained-message table */
    uint64_t sub_off;
    uint64_t retain_off;
    uint64_t retain_stride;
    char namespace_name[MBX_NAME_MAX + 1];
    /* Written by the broker only. */
    _Atomic uint32_t state;
    uint32_t reserved1;
    _Atomic int64_t broker_pid;
    _Atomic uint64_t broker_start_time; /* plat_proc_start_time() of broker_pid */
    _Atomic int64_t started_us;         /* wall clock when this broker took over */
    _Atomic uint64_t epoch;             /* adoptions so far */
    /* Was a heartbeat (layouts 1-5) that nothing read: a client judges its broker by the
     * broker's end of its control channel, which is exact. Zero. */
    int64_t reserved_heartbeat;
    _Atomic uint64_t discarded; /* messages dropped with their recipient */
    /* Presence (presence.c): the broker adds one to dir_changes at every change of the
     * directory, then posts dir_sem once per waiter announced in dir_waiters. Hints,
     * like every wake-up: waiters re-read the directory. */
    _Atomic uint32_t dir_changes;
    _Atomic uint32_t dir_waiters;
    _Alignas(64) plat_sem dir_sem;
    /* Topics (subs.c): any member changes the two tables under topics_lock, and adds one to
     * topics_version after each change (publishers cache what they matched). */
    _Alignas(64) plat_mutex topics_lock;
    _Atomic uint32_t topics_version;
    _Atomic uint32_t sub_high;     /* entries past this one are all free (a hint) */
    _Atomic uint64_t retain_clock; /* stamps retained entries: the oldest goes first */
    /* Namespace totals (broker): the counters of mailboxes given back, added up when
     * they are emptied (mbx_inspect adds the living ones), and registrations so far. */
    _Atomic uint64_t gone_sent;
    _Atomic uint64_t gone_received;
    _Atomic uint64_t gone_refused_full;
    _Atomic uint64_t clients_seen;
    /* Monitors (broker: attach and detach; every sender: reads). Bit i of `monitors` says
     * monitor[i] is in use; monitor[i] holds the monitor's slot in its low 32 bits and
     * its generation in the high ones. A sender loads `monitors` once per message and,
     * only when it is not zero, puts a copy of the message into each monitor's mailbox
     * (monitor.c). A line of its own: it is read by every send and written only when a
     * monitor comes or goes. */
    _Alignas(64) _Atomic uint32_t monitors;
    uint32_t reserved2;
    _Atomic uint64_t monitor[SEG_MONITORS];
} seg_header;

typedef struct seg_dir_entry {
    _Atomic uint32_t state;      /* enum slot_state */
    _Atomic uint32_t generation; /* sequence lock, see above */
    _Atomic int64_t pid;
    _Atomic uint64_t start_time;
    char name[MBX_NAME_MAX + 1];
    _Atomic int64_t linger_until_us; /* wall clock; set while the mailbox outlives its owner */
    _Atomic uint32_t linger_ms;      /* how long it may outlive its owner (asked at connect) */
    _Atomic uint32_t flags;          /* DIR_GROUP, DIR_REMOTE, DIR_MONITOR */
    char node[MBX_NAME_MAX + 1];     /* DIR_REMOTE: the node (host) serving the name */
    uint8_t reserved[24];
} seg_dir_entry;

typedef struct seg_mailbox {
    /* Producers' cache line. Positions (`tail`, `head`) pack two wrapping counters: the
     * high 32 bits count records, the low 32 bits count bytes (ring_bytes divides 2^32,
     * so the low half modulo ring_bytes is the offset in the ring). */
    plat_mutex lock;
    /* Monotonic milliseconds (low 32 bits) until which a sender that has waited long for
     * space asks newcomers to queue behind the sleepers (ring_send.c, "starving"); a hint. */
    _Atomic uint32_t tx_starving_until_ms;
    /* Nonzero once the owner stopped taking new messages (a group member leaving: what is
     * unread is handed on, see group.c); set by the owner under `lock`, so a sender that
     * holds the lock and sees zero publishes to an owner that will still look. Cleared by
     * the broker when it empties the mailbox for a new owner. */
    _Atomic uint32_t closing;
    /* Monotonic milliseconds (low 32 bits) until which monitors' copies try this mailbox's
     * lock once instead of polling it while copy_stall_holder holds it (ring.h,
     * RING_COPY_STALL_MS); 0: not stalled. A hint: a value further off than twice the
     * stall is ignored. */
    _Atomic uint32_t copy_stall_until_ms;
    /* Written by the lock's holder, watched by the owner: a line of its own, so that taking
     * the lock does not have to take the line back from an owner spinning on `tail`. */
    _Alignas(64) _Atomic uint64_t tail; /* next position to fill; guarded by lock */
    /* Senders' copy of `head`, under `lock`: a sender reads the owner's line only when
     * this says the mailbox is too full for its record (ring_send.c). Never ahead of
     * `head` (it is only ever set from it, and head only moves on), and within a ring of
     * `tail` (whoever moves tail under the lock checked the fill against it, or refreshed
     * it); reset with the mailbox. A scribbled value that frames no valid fill is read
     * again from `head`; one between head and tail (a member's forgery) lets senders
     * overwrite unread records, as a forged tail would: the scrub puts it back. */
    _Atomic uint64_t head_cache;
    /* The consumer's cache line: written at every take, read by senders only when full. */
    _Alignas(64) _Atomic uint64_t head; /* next position to take; owner only */
    /* Records in [head, tail) the owner took out of order (CELL_TAKEN), not yet passed by
     * head: what waits is the records between head and tail less these. Owner only. */
    _Atomic uint32_t taken_ahead;
    /* Senders sleeping on `space`. Read by the owner at every take (ring_recv.c, consume),
     * so here on the owner's line, not on the lock's: there every send would take that
     * line back from the owner (a cache-line transfer on the sender's path per message).
     * Written by senders only when they sleep. */
    _Atomic uint32_t tx_waiting;
    /* The lock's holder (plat_mutex_owner) when a copy last gave up on it: while that one
     * holds it, copies do not poll (ring_send.c). Written only then: rarely. */
    _Atomic uint64_t copy_stall_holder;
    /* Wake-up hints: state is always re-checked after a wake. */
    _Alignas(64) plat_sem items;
    plat_sem space;
    /* Statistics. */
    _Alignas(64) _Atomic uint64_t sent; /* by the owner, to anyone */
    _Atomic uint64_t received;          /* taken by the owner */
    _Atomic uint64_t refused_full;      /* sends to this mailbox refused as full */
    /* The owner's wake handle for event loops (wake.c), as senders reach it. */
    plat_wake wake;
    _Atomic uint64_t late_replies; /* replies to requests the owner had given up: dropped */
    /* Topics: publications this mailbox missed being full (drop policy), in all and
     * since the last one delivered (that one carries the count, and resets it). */
    _Atomic uint64_t dropped;
    _Atomic uint64_t missed;
    /* mailbox-bridge's durable deliveries (mbx_send_options.once): the highest number one
     * of them carried, written under `lock` with the record, so that a delivery repeated
     * after a crash is recognised whatever moment the crash hit. Reset with the mailbox
     * for a new owner; kept while it lingers. (In what was padding: the layout is
     * unchanged, and an older library leaves it alone.) */
    _Atomic uint64_t once;
    /* Read by every sender after its publish, written by the owner only when it goes to
     * sleep or arms its handle: away from `head`, which it writes at every take. */
    _Atomic uint32_t rx_sleeping; /* 1 while the owner sleeps on `items` */
    _Atomic uint32_t rx_wake;     /* enum wake_state (wake.c): idle/armed/notified */
} seg_mailbox;

/* The ring holds records: this header, then from_len bytes of the sender's name (no
 * terminator), node_len bytes of the node it came from (a bridge's deliveries), topic_len
 * bytes of topic and len bytes of body, the whole rounded up to
 * SEG_RECORD_ALIGN. A record never wraps: when the space left before the ring's end is
 * too short for it, the sender fills that space with a CELL_PAD record first. */
enum cell_kind {
    CELL_PLAIN = 0,
    CELL_REQUEST = 1,  /* corr: the request's id, chosen by its sender */
    CELL_REPLY = 2,    /* corr: the id of the request it answers */
    CELL_TOPIC = 3,    /* a publication: topic_len bytes of topic before the body; corr:
                          publications missed just before it */
    CELL_PAD = 4,      /* no message: filler from here to the ring's end */
    CELL_RETURNED = 5, /* a request given back unread by a group member that left, to its
                          requester, to send again; corr: the request's id */
    CELL_MONITOR = 6,  /* a monitor's copy of a message sent: flags' REC_KIND bits hold
                          the kind it was sent as (CELL_PLAIN to CELL_TOPIC), topic_len
                          bytes before the body its topic (a publication) or the name it
                          was sent to (may be empty); corr and error as the original's;
                          `missed`: copies this monitor missed just before it */
};
/* Set by the mailbox's owner (the only writer of records in [head, tail)) on a record it
 * took out of order (a reply mbx_request() was waiting for): skipped when head reaches it. */
#define CELL_TAKEN 0x80000000u
#define SEG_RECORD_ALIGN 64u

typedef struct seg_record {
    uint32_t size;            /* bytes of the whole record, a multiple of SEG_RECORD_ALIGN */
    uint32_t kind;            /* enum cell_kind, | CELL_TAKEN */
    uint32_t len;             /* body bytes */
    uint16_t topic_len;       /* CELL_TOPIC: bytes of topic before the body */
    uint8_t from_len;         /* bytes of the sender's name, 1..MBX_NAME_MAX */
    uint8_t node_len;         /* bytes of the node it came from through a bridge, 0..MBX_NAME_MAX */
    uint32_t from_slot;       /* sender's slot ... */
    uint32_t from_generation; /* ... and generation: where a reply goes */
    uint32_t sender_cpu;      /* CPU the sender ran on, plus one (0: unknown); a hint only */
    uint32_t error;           /* CELL_REPLY: the mbx_err the request ended with instead of an
                                 answer (told by a bridge), or 0 */
    uint64_t seq;             /* sender's sequence number */
    int64_t ts_us;            /* wall clock at send */
    uint64_t corr;            /* request id (requests and replies), else 0 */
    uint32_t flags;           /* REC_RETAINED, REC_KIND; other bits ignored */
    uint32_t missed;          /* CELL_MONITOR: see above (saturated); else 0 */
    /* char from[from_len], topic[topic_len], body[len]; follow */
} seg_record;

/* seg_record.flags: a publication published retained, or a retained value handed to a
 * new subscription (a bridge republishes it retained). */
#define REC_RETAINED 1u
/* seg_record.flags of a CELL_MONITOR copy: the kind the original was sent as. */
#define REC_KIND_SHIFT 8u
#define REC_KIND_MASK 0xff00u

#define SEG_RECORD_HEADER ((uint32_t)sizeof(seg_record))
/* Bytes of a record holding `payload` bytes of name, topic and body. */
#define SEG_RECORD_SIZE(payload)                                                                   \
    (((uint64_t)SEG_RECORD_HEADER + (payload) + SEG_RECORD_ALIGN - 1) / SEG_RECORD_ALIGN *         \
     SEG_RECORD_ALIGN)

/* A process-local, trusted copy of a segment's geometry. */
typedef struct seg_view {
    unsigned char *base;
    uint64_t total_size;
    uint32_t slots;
    uint32_t depth;
    uint32_t max_message;
    uint32_t ring_bytes;
    uint64_t dir_off;
    uint64_t mailbox_off;
    uint64_t mailbox_stride;
    uint32_t subscriptions;
    uint32_t retained;
    uint64_t sub_off;
    uint64_t retain_off;
    uint64_t retain_stride;
    plat_wake_place wake_place; /* how this process reaches wake handles (zero: not at all) */
    bool stop_on_signal;        /* a signal ends a sleep of a call on this view with
                                   MBX_ESIGNAL (the client's option `signals`) */
} seg_view;

/* One subscription. Written under topics_lock with `seq` odd meanwhile (a sequence lock:
 * publishers read without the lock). Any member may write it, so a reader checks all. */
enum sub_state { SUB_FREE = 0, SUB_USED = 1 };
typedef struct seg_sub {
    _Atomic uint32_t seq;
    _Atomic uint32_t state;      /* enum sub_state */
    _Atomic uint32_t slot;       /* the subscriber ... */
    _Atomic uint32_t generation; /* ... while it holds this generation */
    _Atomic uint32_t policy;     /* mbx_sub_policy */
    _Atomic uint32_t pattern_len;
    uint64_t reserved;
    char pattern[MBX_TOPIC_MAX + 1];
} seg_sub;

/* One retained message: this header, then topic_len bytes of topic and len bytes of body
 * (together at most max_message). Read and written under topics_lock only. */
typedef struct seg_retained {
    uint32_t state; /* enum sub_state: SUB_USED when it holds a message */
    uint32_t topic_len;
    uint32_t len;
    uint32_t reserved0;
    uint64_t seq;   /* the publisher's sequence number */
    int64_t ts_us;  /* when it was published */
    uint64_t stamp; /* retain_clock when stored */
    char from[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1]; /* the node it came from through a bridge, or "" */
    uint8_t reserved1[24];
} seg_retained;

/* What a namespace's layout is computed from. */
typedef struct seg_params {
    uint32_t slots;
    uint32_t depth;         /* records one mailbox holds at most */
    uint32_t max_message;   /* body (and topic) bytes of one message at most */
    uint32_t ring_bytes;    /* 0: the default (segment_default_ring); else rounded up to a
                               power of two, and at least segment_min_ring */
    uint32_t subscriptions; /* 1..SEG_MAX_SUBSCRIPTIONS */
    uint32_t retained;      /* 1..SEG_MAX_RETAINED */
} seg_params;

/* The smallest ring a mailbox may have: two records of the largest message. */
uint64_t segment_min_ring(uint32_t max_message);
/* The default ring: depth typical records (SEG_TYPICAL_RECORD, or the largest record when
 * that is smaller), at least the minimum, rounded up to a power of two. */
uint64_t segment_default_ring(uint32_t depth, uint32_t max_message);

/* Computes the layout for p into *out (base NULL). MBX_EINVAL when out of limits or when
 * the total would exceed SEG_MAX_TOTAL. */
mbx_err segment_layout(const seg_params *p, seg_view *out);

/* segment_layout with the default ring and topic tables (tests, fuzzers). */
mbx_err segment_geometry(uint32_t slots, uint32_t depth, uint32_t max_message, seg_view *out);

/*
 * Writes a fresh segment into view->base (view from segment_geometry, base set): header,
 * empty directory and empty mailboxes with their locks and semaphores. The state is left
 * SEG_INITIALIZING; the broker publishes SEG_READY last.
 */
mbx_err segment_init(seg_view *view, const char *ns, unsigned mode);

/*
 * Checks a mapped segment before anything else reads it: magic, layout version, sizes,
 * and that the stored geometry is exactly the one segment_geometry() derives from the
 * stored slots/depth/max_message and fits the mapping. Fills *view.
 * Errors: MBX_EVERSION (another layout), MBX_ECORRUPT.
 */
mbx_err segment_validate(void *base, size_t size, seg_view *view);

static inline seg_header *segment_header(const seg_view *v)
{
    return (seg_header *)(void *)v->base;
}

/* Callers pass slot < v->slots (checked with assert in debug builds). */
seg_dir_entry *segment_dir(const seg_view *v, uint32_t slot);
seg_mailbox *segment_mailbox(const seg_view *v, uint32_t slot);
/* The record at `position` (a packed position, see seg_mailbox): its header is within the
 * ring; callers check its size before reading past the header. */
seg_record *segment_record(const seg_view *v, seg_mailbox *mb, uint64_t position);
/* Callers pass i < v->subscriptions, resp. i < v->retained. */
seg_sub *segment_sub(const seg_view *v, uint32_t i);
seg_retained *segment_retained(const seg_view *v, uint32_t i);

/*
 * Reads a directory entry consistently (sequence lock). On success copies the name into
 * name_out (MBX_NAME_MAX + 1 bytes) and returns true with the entry's generation and pid;
 * false when the slot is free, being rewritten, or holds an invalid name.
 */
bool segment_read_entry(const seg_view *v, uint32_t slot, char *name_out, uint32_t *generation,
                        int64_t *pid);

/* The node slot's remote name is served on, copied under the entry's sequence lock as of
 * `generation` (from segment_read_entry), into node_out (MBX_NAME_MAX + 1 bytes): true
 * for a remote name with a valid node; false (node_out "") for a local one or garbage. */
bool segment_read_node(const seg_view *v, uint32_t slot, uint32_t generation, char *node_out);

/* True when slot is active under `name` (a valid name of length len); sets *generation. */
bool segment_entry_is(const seg_view *v, uint32_t slot, const char *name, size_t len,
                      uint32_t *generation);

/* Finds the active slot named `name`. MBX_OK with *slot and *generation, or
 * MBX_ENORECIPIENT. */
mbx_err segment_find(const seg_view *v, const char *name, uint32_t *slot, uint32_t *generation);

#endif /* MBX_SEGMENT_H */
