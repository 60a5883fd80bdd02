/*
 * ring.h: the bounded multi-producer, single-consumer queue of cells in one mailbox.
 *
 * Protocol (see docs/architecture.md, "Synchronisation"):
 * - Producers serialise on the mailbox's crash-safe lock, check that the slot still belongs
 *   to the recipient they looked up (state and generation), check the room left against
 *   their shared copy of `head` (`head_cache`, never ahead of head; the owner's `head` is
 *   read, and the copy refreshed, only when that says too full), copy the message into a
 *   record at `tail` (segment.h: a byte ring of variable-length records), then publish it
 *   by advancing `tail`. A producer killed before that
 *   store leaves no message; after it, a whole one (invariant 3).
 * - The consumer reads the record at `head` without the lock (only it moves `head`, and
 *   producers never touch bytes in [head, tail)), then advances `head`. A record whose
 *   size cannot be stepped over (a scribble) costs the records after it, never a wedge.
 * - Semaphores are wake-up hints only. A sleeper announces itself in a flag or counter,
 *   re-checks the indices, then sleeps with a timeout; the other side posts only when it
 *   sees the announcement. Every wake is followed by a re-check, so a lost or extra post
 *   costs at most one time slice, never correctness.
 */
#ifndef MBX_RING_H
#define MBX_RING_H

#include "segment.h"

/* A sender that has waited this long for space in a full mailbox is starving: newcomers
 * queue behind the sleepers until the mailbox drains to half (see ring_put). */
#define RING_STARVE_MS 10

typedef struct ring_outgoing {
    const char *body; /* compact, validated JSON */
    uint32_t len;
    uint32_t from_slot;
    uint32_t from_generation;
    const char *from_name;
    const char *node; /* the node (host) it came from through a bridge, or NULL: here */
    uint32_t error;   /* CELL_REPLY: the mbx_err the request ended with, instead of an
                         answer (a bridge telling what happened on the far side), or 0 */
    int64_t ts_us;
    int sender_cpu;               /* plat_current_cpu() at send */
    _Atomic uint64_t *seq_source; /* the sender's counter, incremented under the lock;
                                     NULL: the message carries `seq` (a publication's copies
                                     share one) */
    uint64_t seq;
    uint32_t kind;      /* enum cell_kind */
    uint32_t mirrored;  /* CELL_MONITOR: the kind the original was sent as */
    uint64_t corr;      /* request id (requests and replies) */
    const char *topic;  /* CELL_TOPIC: the topic (validated); CELL_MONITOR: the topic or
                           the recipient's name ... */
    uint32_t topic_len; /* ... and its length; topic_len + len <= max_message */
    bool never_wait;    /* not even for the lock (the broker): MBX_ETIMEDOUT */
    bool copy;          /* a monitor's copy (monitor.h), put with timeout 0: waits for
                           the lock only RING_BRIEF_LOCK_POLLS polls, and not at all while
                           the mailbox is marked stalled (RING_COPY_STALL_MS); a copy that
                           does not go in (MBX_EFULL, MBX_ETIMEDOUT) is counted in the
                           mailbox's `dropped` and `missed`, not its `refused_full` */
    bool retained;      /* CELL_TOPIC: published retained (REC_RETAINED) */
    uint64_t once;      /* 0, or put only if above the mailbox's `once` (which it becomes);
                           not above: MBX_REPEATED_INTERNAL, nothing put (a delivery
                           repeated after a crash: in already) */
} ring_outgoing;

/*
 * A receiver's adaptive spin, kept per client in its own process. Before sleeping, the
 * receiver watches the mailbox for up to budget_ns: a message that arrives in that time
 * costs no wake-up on either side (a wake-up across CPUs costs ~25-30 us here). It learns:
 * - a message caught while spinning: the budget doubles (up to RING_SPIN_MAX_NS);
 * - a spin that ran out: the budget halves, down to zero;
 * - a message that came while we slept, sooner than RING_SPIN_MAX_NS: spinning that long
 *   would have caught it, so the budget becomes about that long;
 * - a message from a sender on our own CPU: spinning cannot pay (the sender cannot run
 *   while we spin), so the receiver yields the CPU instead, a few times, which lets that
 *   sender run at once without the cost of a sleep and a wake-up.
 * An idle receiver spins at most RING_SPIN_MAX_NS per message it waits for.
 */
#define RING_SPIN_MAX_NS 40000
#define RING_SPIN_MIN_NS 500

#define RING_YIELDS 8

/*
 * Watching for space: a sender that finds the mailbox full watches head, off the lock, for
 * up to RING_SPACE_POLLS looks (yielding the CPU every RING_SPACE_YIELD_EVERY), and tries
 * again when it moves, up to RING_SPACE_ROUNDS times per send, before it sleeps until the
 * mailbox drains to half. Not for a send that may not wait (timeout 0): that one is
 * refused at once. A round lasts some tens of microseconds at most.
 */
#define RING_SPACE_ROUNDS 4
#define RING_SPACE_POLLS 512
#define RING_SPACE_YIELD_EVERY 16

/* How many times a monitor's copy polls a mailbox lock another sender holds before it
 * counts the copy as missed (some tens of microseconds: the holder copies one message).
 * A copy that gave up marks the mailbox stalled for RING_COPY_STALL_MS, naming the
 * holder: until then copies that find that same holder there try the lock once, so that
 * a holder stopped in the middle of its copy (a debugger, SIGSTOP) costs the namespace's
 * senders one look each, not a poll each, while a lock that changes hands (contention)
 * is still polled. Windows cannot name the holder: there copies always poll. */
#define RING_BRIEF_LOCK_POLLS 1024
#define RING_COPY_STALL_MS 50

typedef struct ring_spinner {
    uint32_t budget_ns;
    bool peer_here; /* the last sender we waited for ran on our CPU */
} ring_spinner;

typedef struct ring_incoming {
    char *body;        /* caller's buffer of at least max_message + 1 bytes */
    uint64_t position; /* where the message is in the mailbox (for ring_commit) */
    uint64_t next;     /* ring_peek, ring_peek_at: where the record after it starts */
    uint32_t len;
    char from[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1]; /* the node it came from through a bridge, or "" */
    uint32_t error;              /* CELL_REPLY: see ring_outgoing.error (unchecked) */
    bool retained;               /* CELL_TOPIC: see ring_outgoing.retained */
    uint64_t seq;
    int64_t ts_us;
    int sender_cpu;    /* from the cell, -1 when unknown */
    uint32_t kind;     /* enum cell_kind */
    uint32_t mirrored; /* CELL_MONITOR: the kind the original was sent as (unchecked) */
    uint64_t missed;   /* CELL_MONITOR: copies missed just before it */
    uint64_t corr;
    uint32_t from_slot; /* where a reply goes: checked when it is sent, not here */
    uint32_t from_generation;
    char topic[MBX_TOPIC_MAX + 1]; /* CELL_TOPIC: the topic (unchecked); corr: missed;
                                      CELL_MONITOR: the topic or the recipient (unchecked) */
    /* How far the call looked: the position past the last record it read, or the tail it
     * saw when it found nothing (for the wake handle: what arrived after this is news). */
    uint64_t scanned;
} ring_incoming;

/* What ring_find does with a record, from its header (a local copy: kind without
 * CELL_TAKEN, corr, from_slot, from_generation, all unchecked): take it (the one looked
 * for), pass it (left for a receive), or drop it (nobody will ever take it: a reply to a
 * request given up; without this, a client that only makes requests would keep such
 * replies at the head of its ring forever, and its mailbox would fill behind them). */
typedef enum ring_verdict { RING_PASS, RING_TAKE, RING_DROP } ring_verdict;
typedef ring_verdict (*ring_match)(const seg_record *hdr, void *arg);
/* Called between waits of ring_find: MBX_OK to go on waiting, any error to end with it
 * (a request's responder gone, say). */
typedef mbx_err (*ring_still)(void *arg);

/* ring_put's "the owner closed its mailbox to senders" (ring_close): a group's sender
 * picks another member. Never returned by the public API. */
#define MBX_ECLOSED_INTERNAL ((mbx_err)1001)
/* ring_put's "a delivery with this `once` is in already": nothing put, as good as done.
 * Never returned by the public API. */
#define MBX_REPEATED_INTERNAL ((mbx_err)1002)

/*
 * Puts a message into mailbox `slot`, provided it still belongs to generation `gen`.
 * Waits for space up to timeout_ms (0: not at all; negative: without limit); the clock is
 * read only when it has to wait. Errors: MBX_ENORECIPIENT (slot not that recipient's
 * any more), MBX_EGONE (recipient left while we waited), MBX_EFULL, MBX_ESHUTDOWN,
 * MBX_ECORRUPT, MBX_ETIMEDOUT (the lock stayed held past the deadline),
 * MBX_ECLOSED_INTERNAL (the owner closed the mailbox to senders), MBX_REPEATED_INTERNAL
 * (msg->once: in already).
 */
mbx_err ring_put(const seg_view *v, uint32_t slot, uint32_t gen, const ring_outgoing *msg,
                 int timeout_ms);

/*
 * Takes the oldest message of mailbox `slot` (owned by the caller, generation `gen`),
 * waiting up to timeout_ms (as ring_put). spin (may be NULL: no spinning) adapts how long
 * to watch the mailbox before sleeping. interrupt (may be NULL): a word that, once set
 * (and the owner's `items` posted), ends the take with MBX_EINTR; the take clears it.
 * Errors: MBX_ETIMEDOUT, MBX_ESHUTDOWN (namespace closing, or the slot no longer ours),
 * MBX_ECORRUPT, MBX_EINTR.
 */
mbx_err ring_take(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt);

/* As ring_take, but a good message stays in the mailbox until ring_commit() (a corrupt
 * one is removed at once). */
mbx_err ring_peek(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_spinner *spin, _Atomic uint32_t *interrupt);

/*
 * Takes the first message that `match` accepts, wherever it is in the mailbox, leaving
 * the others where they are, in order, for later takes (the cell taken out of order is
 * marked CELL_TAKEN and skipped when head reaches it). Waits up to timeout_ms as
 * ring_take (spinning first as spin says, may be NULL), calling still(arg) between waits. Errors as
 * ring_take, and still's.
 */
mbx_err ring_find(const seg_view *v, uint32_t slot, uint32_t gen, ring_incoming *out,
                  int timeout_ms, ring_match match, ring_still still, void *arg, ring_spinner *spin,
                  _Atomic uint32_t *interrupt);

/* Reads the first message at or after `position` (a position ring_peek or ring_peek_at
 * gave as `next`) without waiting and without removing anything: records taken out of
 * order and padding are passed over. MBX_ETIMEDOUT when there is none (out->scanned: the
 * tail seen), MBX_EINVAL when position is not between head and tail (the owner took the
 * mailbox past it), MBX_ECORRUPT for a record that cannot be read (left in place: a
 * receive at head removes it). */
mbx_err ring_peek_at(const seg_view *v, uint32_t slot, uint32_t gen, uint64_t position,
                     ring_incoming *out);

/* Removes the message at `position`, which ring_peek returned. MBX_EINVAL when it is not
 * the oldest message any more; MBX_ESHUTDOWN or MBX_ECORRUPT as ring_take. */
mbx_err ring_commit(const seg_view *v, uint32_t slot, uint32_t gen, uint64_t position);

/*
 * The owner closes its mailbox to senders (a group member leaving): under the lock, so
 * that every message published before is in [head, tail) when this returns, and none
 * after. MBX_ETIMEDOUT when the lock stayed held (a stopped sender) until deadline_ns;
 * a deadline already past never waits (plat_mutex_try_take: the broker's way).
 */
mbx_err ring_close(const seg_view *v, uint32_t slot, uint32_t gen, int64_t deadline_ns);

/* False once the mailbox's owner closed it to senders (a hint for choosing a member;
 * ring_put checks it again under the lock). */
bool ring_open(const seg_view *v, uint32_t slot);

/*
 * The owner appends to its own mailbox as one batch (the retained messages handed over
 * when it subscribes), so that it can take the mailbox lock first, before a namespace-wide
 * lock, and never wait on another member while holding that one:
 *   ring_hold     takes the lock (waiting until deadline_ns, in slices, as a sender does);
 *   ring_append   adds a message if there is room, without waiting (MBX_EFULL, else as
 *                 ring_put); the batch becomes visible at ring_release;
 *   ring_release  publishes what was appended, unlocks, and wakes a receiving thread.
 */
typedef struct ring_batch {
    uint32_t slot;
    uint32_t gen;
    uint64_t tail; /* where the next record goes; published by ring_release */
    bool appended;
    plat_lock_token tok;
} ring_batch;

mbx_err ring_hold(const seg_view *v, uint32_t slot, uint32_t gen, int64_t deadline_ns,
                  ring_batch *b);
mbx_err ring_append(const seg_view *v, ring_batch *b, const ring_outgoing *msg);
void ring_release(const seg_view *v, ring_batch *b);

/* Messages waiting in a mailbox, bounded by the depth (0 when indices are corrupt). */
uint64_t ring_waiting(const seg_view *v, uint32_t slot);

/* False when a mailbox's head and tail are no state the protocol produces (a scribble):
 * the broker then empties it. Safe to call while the mailbox is in use. */
bool ring_indices_valid(const seg_view *v, uint32_t slot);

/*
 * Broker side. Empties the mailbox for a new owner, under its lock: head moves up to
 * tail (old cells never look valid again), the counters and the owner's wake-up state
 * are reset, and under_lock (may be NULL) runs with the lock held, so that no sender is
 * between its check of the slot and its publish. Never waits: the lock is taken if it
 * is free within a short spin, or if its holder died (judged once). A holder that lives
 * (a sender stopped mid-copy, or a word a member pointed at a live thread) keeps it:
 * then nothing changes and false is returned, and the caller keeps the slot out of use
 * and tries again later. The broker's only thread calls this, and any member can hold a
 * mailbox lock for as long as it likes: a wait here would be a wait on a member. A lock
 * is never rebuilt. *dropped: the messages discarded.
 */
bool ring_empty(const seg_view *v, uint32_t slot, void (*under_lock)(void *arg), void *arg,
                uint64_t *dropped);

/* Broker side: puts the senders' copy of head (segment.h, head_cache) back to head when
 * it is ahead of head or more than a ring behind (a scribble: senders would overwrite
 * unread records). Any value at or behind head is safe, so no lock is needed. True when
 * it mended it. */
bool ring_mend_head_cache(const seg_view *v, uint32_t slot);

/* Broker side: wakes the owner and every sender sleeping on the mailbox. */
void ring_wake_all(const seg_view *v, uint32_t slot);

#endif /* MBX_RING_H */
