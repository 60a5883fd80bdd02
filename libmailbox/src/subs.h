/*
 * subs.h: the namespace's topic tables in shared memory, the subscription table and the
 * retained messages (segment.h has their layout). Used by the library (subscribe,
 * publish) and by the broker (clean-up, its own events).
 *
 * Invariants:
 * - Any member may write the tables, always under the header's topics_lock; so readers
 *   check everything they read: a subscription is used only when its sequence lock read
 *   stable, its pattern is valid and its (slot, generation) is a live client's.
 * - A subscription belongs to a (slot, generation): once that client is gone the entry is
 *   dead, whatever it says, and whoever next holds the lock may free it.
 * - Publishers read the subscription table without the lock; they cache what a topic
 *   matched until topics_version changes.
 */
#ifndef MBX_SUBS_H
#define MBX_SUBS_H

#include "segment.h"

/* One subscriber a publication goes to. */
typedef struct subs_target {
    uint32_t slot;
    uint32_t generation;
    uint32_t policy; /* mbx_sub_policy; MBX_SUB_BLOCK when any of its patterns says so */
} subs_target;

/* A stable copy of a used, valid subscription entry. */
typedef struct subs_entry {
    uint32_t slot;
    uint32_t generation;
    uint32_t policy;
    uint32_t pattern_len;
    char pattern[MBX_TOPIC_MAX + 1];
} subs_entry;

/* Takes topics_lock, waiting up to timeout_ms (negative: no limit) in slices that
 * re-check the namespace; a dead holder's half-written entries are repaired. MBX_OK,
 * MBX_ETIMEDOUT, MBX_ESHUTDOWN, MBX_ECORRUPT. */
mbx_err subs_lock(const seg_view *v, int timeout_ms, plat_lock_token *tok);
void subs_unlock(const seg_view *v, plat_lock_token *tok);

/* Copies entry i when it is used, stable and valid (any live state is not checked). */
bool subs_read(const seg_view *v, uint32_t i, subs_entry *out);

/* Room for subs_match: out and where of v->slots entries each, where set up as it wants. */
typedef struct subs_scratch {
    subs_target *targets;
    uint32_t *where;
} subs_scratch;

/* MBX_OK, or MBX_ENOMEM with nothing held. */
mbx_err subs_scratch_init(subs_scratch *s, uint32_t slots);
void subs_scratch_free(subs_scratch *s); /* safe on a zeroed or freed one */

/*
 * The live subscribers whose patterns match topic: at most one target per client (a
 * client's block policy wins over drop). out holds v->slots targets; where is scratch of
 * v->slots entries, all UINT32_MAX, left so. Returns how many.
 */
uint32_t subs_match(const seg_view *v, const char *topic, size_t len, subs_target *out,
                    uint32_t *where);

/* A publication slot's mailbox missed, being full: counted in all and until its next
 * publication (which says how many). */
static inline void subs_count_drop(const seg_view *v, uint32_t slot)
{
    seg_mailbox *mb = segment_mailbox(v, slot);
    atomic_fetch_add_explicit(&mb->dropped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&mb->missed, 1, memory_order_relaxed);
}

/* Under the lock: adds (or, for the same pattern, updates) a subscription. MBX_ENOSLOTS
 * when the table or the client's share (MBX_SUBSCRIPTIONS_PER_CLIENT) is full. Entries
 * of clients that are gone are freed on the way. */
mbx_err subs_add(const seg_view *v, uint32_t slot, uint32_t gen, const char *pattern, size_t len,
                 uint32_t policy);

/* Under the lock: removes that subscription; false when there was none. */
bool subs_remove(const seg_view *v, uint32_t slot, uint32_t gen, const char *pattern, size_t len);

/* Under the lock: frees the entries of slot (any generation; UINT32_MAX: none) and
 * those of clients gone. Returns how many were freed. */
uint32_t subs_purge(const seg_view *v, uint32_t slot);

/* The live subscriptions of slot (no lock; a snapshot). */
uint32_t subs_count(const seg_view *v, uint32_t slot, uint32_t gen);

/* Under the lock: keeps body as topic's retained message (replacing the topic's, else in
 * a free entry, else over the oldest); a body of "null" clears the topic's instead. */
void subs_retain(const seg_view *v, const char *topic, size_t tlen, const char *body, size_t len,
                 const char *from, const char *node, uint64_t seq, int64_t ts_us);

/* Retained messages held (no lock; a snapshot). */
uint32_t subs_retained_count(const seg_view *v);

/* A retained message, as read (validated) under the lock. */
typedef struct subs_retained {
    const char *topic;
    size_t topic_len;
    const char *body;
    size_t len;
    char from[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1]; /* "" unless it came through a bridge */
    uint64_t seq;
    int64_t ts_us;
} subs_retained;

/* Under the lock: calls visit for each valid retained message whose topic pattern
 * matches (pattern NULL: all). buf: scratch of max_message + 1 bytes. Returns the count. */
uint32_t subs_each_retained(const seg_view *v, const char *pattern, size_t plen, char *buf,
                            void (*visit)(const subs_retained *r, void *arg), void *arg);

#endif
