/* subs.c: see subs.h. */
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "shared.h"
#include "subs.h"
#include "topics.h"

/* A reader gives an entry that keeps changing under it this many tries, then skips it:
 * a member rewriting it without end must not hold publishers up. */
#define SUBS_READ_TRIES 4

/* Slices of a wait for topics_lock: between them the namespace is looked at again. */
#define SUBS_LOCK_SLICE_NS (250LL * 1000 * 1000)

static bool live(const seg_view *v, uint32_t slot, uint32_t gen)
{
    if (slot >= v->slots)
        return false;
    seg_dir_entry *e = segment_dir(v, slot);
    return atomic_load_explicit(&e->state, memory_order_acquire) == SLOT_ACTIVE &&
           atomic_load_explicit(&e->generation, memory_order_acquire) == gen;
}

/* The live high-water mark of used entries, bounded by the table (a hint any member
 * could scribble: at worst a reader scans the whole table). */
static uint32_t scan_limit(const seg_view *v)
{
    uint32_t high = atomic_load_explicit(&segment_header(v)->sub_high, memory_order_acquire);
    return high < v->subscriptions ? high : v->subscriptions;
}

static void write_begin(seg_sub *e)
{
    uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, (seq | 1u), memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void write_end(seg_sub *e)
{
    uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, (seq | 1u) + 1, memory_order_release);
}

static void free_entry(seg_sub *e)
{
    write_begin(e);
    atomic_store_explicit(&e->state, SUB_FREE, memory_order_relaxed);
    write_end(e);
}

static void changed(const seg_view *v)
{
    atomic_fetch_add_explicit(&segment_header(v)->topics_version, 1, memory_order_release);
}

/* After a holder died with the lock: an entry it left half-written is dropped. */
static void repair(const seg_view *v)
{
    for (uint32_t i = 0; i < v->subscriptions; i++) {
        seg_sub *e = segment_sub(v, i);
        if ((atomic_load(&e->seq) & 1u) != 0)
            free_entry(e);
    }
    changed(v);
}

mbx_err subs_lock(const seg_view *v, int timeout_ms, plat_lock_token *tok)
{
    seg_header *h = segment_header(v);
    int64_t deadline = plat_deadline(timeout_ms);
    for (;;) {
        uint32_t state = atomic_load(&h->state);
        if (state != SEG_READY)
            return state == SEG_CLOSING ? MBX_ESHUTDOWN : MBX_ECORRUPT;
        int64_t now = plat_now_ns();
        int64_t until = deadline - now > SUBS_LOCK_SLICE_NS ? now + SUBS_LOCK_SLICE_NS : deadline;
        plat_lock_rc rc = plat_mutex_lock(&h->topics_lock, until, tok);
        if (rc == PLAT_LOCKED)
            return MBX_OK;
        if (rc == PLAT_LOCK_OWNER_DIED) {
            repair(v);
            return MBX_OK;
        }
        if (rc == PLAT_LOCK_BROKEN)
            return MBX_ECORRUPT;
        if (plat_now_ns() >= deadline)
            return MBX_ETIMEDOUT;
    }
}

void subs_unlock(const seg_view *v, plat_lock_token *tok)
{
    plat_mutex_unlock(&segment_header(v)->topics_lock, tok);
}

bool subs_read(const seg_view *v, uint32_t i, subs_entry *out)
{
    seg_sub *e = segment_sub(v, i);
    for (int tries = 0; tries < SUBS_READ_TRIES; tries++) {
        uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != SUB_USED)
            return false;
        if ((s1 & 1u) != 0)
            continue;
        out->slot = atomic_load_explicit(&e->slot, memory_order_relaxed);
        out->generation = atomic_load_explicit(&e->generation, memory_order_relaxed);
        out->policy = atomic_load_explicit(&e->policy, memory_order_relaxed);
        out->pattern_len = atomic_load_explicit(&e->pattern_len, memory_order_relaxed);
        if (out->pattern_len == 0 || out->pattern_len > MBX_TOPIC_MAX)
            return false;
        memcpy(out->pattern, e->pattern, out->pattern_len);
        out->pattern[out->pattern_len] = '\0';
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1)
            continue;
        /* Stable; it may still be garbage written by a hostile member. */
        return out->slot < v->slots && out->policy <= MBX_SUB_BLOCK &&
               topics_valid_pattern(out->pattern, out->pattern_len);
    }
    return false;
}

uint32_t subs_match(const seg_view *v, const char *topic, size_t len, subs_target *out,
                    uint32_t *where)
{
    uint32_t n = 0;
    uint32_t limit = scan_limit(v);
    for (uint32_t i = 0; i < limit; i++) {
        subs_entry s;
        if (!subs_read(v, i, &s) || !topics_match(s.pattern, s.pattern_len, topic, len) ||
            !live(v, s.slot, s.generation))
            continue;
        uint32_t k = where[s.slot];
        if (k != UINT32_MAX) { /* another pattern of the same client */
            if (s.policy == MBX_SUB_BLOCK)
                out[k].policy = MBX_SUB_BLOCK;
            continue;
        }
        where[s.slot] = n;
        out[n++] = (subs_target){.slot = s.slot, .generation = s.generation, .policy = s.policy};
    }
    for (uint32_t k = 0; k < n; k++)
        where[out[k].slot] = UINT32_MAX;
    return n;
}

mbx_err subs_add(const seg_view *v, uint32_t slot, uint32_t gen, const char *pattern, size_t len,
                 uint32_t policy)
{
    uint32_t mine = 0, free_at = UINT32_MAX;
    for (uint32_t i = 0; i < v->subscriptions; i++) {
        seg_sub *e = segment_sub(v, i);
        subs_entry s;
        bool used = atomic_load(&e->state) == SUB_USED;
        if (used && (!subs_read(v, i, &s) || !live(v, s.slot, s.generation))) {
            free_entry(e); /* its client is gone, or it is garbage */
            used = false;
        }
        if (!used) {
            if (free_at == UINT32_MAX)
                free_at = i;
            continue;
        }
        if (s.slot != slot || s.generation != gen)
            continue;
        if (s.pattern_len == len && memcmp(s.pattern, pattern, len) == 0) {
            write_begin(e);
            atomic_store_explicit(&e->policy, policy, memory_order_relaxed);
            write_end(e);
            changed(v);
            return MBX_OK;
        }
        mine++;
    }
    if (free_at == UINT32_MAX || mine >= MBX_SUBSCRIPTIONS_PER_CLIENT)
        return MBX_ENOSLOTS;
    seg_sub *e = segment_sub(v, free_at);
    write_begin(e);
    atomic_store_explicit(&e->slot, slot, memory_order_relaxed);
    atomic_store_explicit(&e->generation, gen, memory_order_relaxed);
    atomic_store_explicit(&e->policy, policy, memory_order_relaxed);
    atomic_store_explicit(&e->pattern_len, (uint32_t)len, memory_order_relaxed);
    memset(e->pattern, 0, sizeof e->pattern);
    memcpy(e->pattern, pattern, len);
    atomic_store_explicit(&e->state, SUB_USED, memory_order_relaxed);
    write_end(e);
    /* Publishers look no further than the high-water mark; garbage in it means the whole
     * table (the broker's next purge makes it exact again). */
    seg_header *h = segment_header(v);
    uint32_t high = atomic_load(&h->sub_high);
    if (high > v->subscriptions)
        atomic_store(&h->sub_high, v->subscriptions);
    else if (high <= free_at)
        atomic_store(&h->sub_high, free_at + 1);
    changed(v);
    return MBX_OK;
}

bool subs_remove(const seg_view *v, uint32_t slot, uint32_t gen, const char *pattern, size_t len)
{
    bool found = false;
    for (uint32_t i = 0; i < v->subscriptions; i++) {
        subs_entry s;
        if (subs_read(v, i, &s) && s.slot == slot && s.generation == gen && s.pattern_len == len &&
            memcmp(s.pattern, pattern, len) == 0) {
            free_entry(segment_sub(v, i));
            found = true;
        }
    }
    if (found)
        changed(v);
    return found;
}

uint32_t subs_purge(const seg_view *v, uint32_t slot)
{
    uint32_t freed = 0, high = 0;
    for (uint32_t i = 0; i < v->subscriptions; i++) {
        seg_sub *e = segment_sub(v, i);
        if (atomic_load(&e->state) != SUB_USED)
            continue;
        subs_entry s;
        if (!subs_read(v, i, &s) || s.slot == slot || !live(v, s.slot, s.generation)) {
            free_entry(e);
            freed++;
        } else {
            high = i + 1;
        }
    }
    atomic_store(&segment_header(v)->sub_high, high);
    if (freed > 0)
        changed(v);
    return freed;
}

uint32_t subs_count(const seg_view *v, uint32_t slot, uint32_t gen)
{
    uint32_t n = 0;
    uint32_t limit = scan_limit(v);
    for (uint32_t i = 0; i < limit; i++) {
        subs_entry s;
        if (subs_read(v, i, &s) && s.slot == slot && s.generation == gen)
            n++;
    }
    return n;
}

/* The retained entry's topic and body, or NULL when it holds none or garbage. */
/* Whether the header `h` (a local copy) describes a stored message that fits. */
static bool retained_fits(const seg_view *v, const seg_retained *h)
{
    return h->state == SUB_USED && h->topic_len != 0 && h->topic_len <= MBX_TOPIC_MAX &&
           h->len != 0 && h->len <= v->max_message - h->topic_len;
}

/* The topic and body of entry r, with its header copied into *h once (shared.h), or NULL
 * when it holds nothing valid. Everything after uses *h, never r's own words. */
static const char *retained_data(const seg_view *v, seg_retained *r, seg_retained *h)
{
    shm_copy(h, r, sizeof *h);
    return retained_fits(v, h) ? (const char *)r + sizeof(seg_retained) : NULL;
}

void subs_retain(const seg_view *v, const char *topic, size_t tlen, const char *body, size_t len,
                 const char *from, const char *node, uint64_t seq, int64_t ts_us)
{
    bool clear = len == 4 && memcmp(body, "null", 4) == 0;
    seg_retained *target = NULL, *oldest = NULL, *empty = NULL;
    uint64_t oldest_stamp = 0;
    for (uint32_t i = 0; i < v->retained; i++) {
        seg_retained *r = segment_retained(v, i);
        seg_retained h;
        const char *data = retained_data(v, r, &h);
        if (data == NULL) {
            r->state = SUB_FREE;
            if (empty == NULL)
                empty = r;
            continue;
        }
        if (h.topic_len == tlen && memcmp(data, topic, tlen) == 0) {
            target = r;
            break;
        }
        if (oldest == NULL || h.stamp < oldest_stamp) {
            oldest = r;
            oldest_stamp = h.stamp;
        }
    }
    if (clear) {
        if (target != NULL)
            target->state = SUB_FREE;
        return;
    }
    if (target == NULL)
        target = empty != NULL ? empty : oldest;
    if (target == NULL)
        return;
    target->state = SUB_FREE; /* until it is whole again */
    char *data = (char *)target + sizeof(seg_retained);
    memcpy(data, topic, tlen);
    memcpy(data + tlen, body, len);
    target->topic_len = (uint32_t)tlen;
    target->len = (uint32_t)len;
    target->seq = seq;
    target->ts_us = ts_us;
    target->stamp = atomic_fetch_add(&segment_header(v)->retain_clock, 1) + 1;
    memset(target->from, 0, sizeof target->from);
    strncpy(target->from, from, MBX_NAME_MAX);
    memset(target->node, 0, sizeof target->node);
    if (node != NULL)
        strncpy(target->node, node, MBX_NAME_MAX);
    target->state = SUB_USED;
}

uint32_t subs_retained_count(const seg_view *v)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->retained; i++) {
        seg_retained h;
        n += retained_data(v, segment_retained(v, i), &h) != NULL;
    }
    return n;
}

uint32_t subs_each_retained(const seg_view *v, const char *pattern, size_t plen, char *buf,
                            void (*visit)(const subs_retained *r, void *arg), void *arg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->retained; i++) {
        seg_retained h;
        const char *data = retained_data(v, segment_retained(v, i), &h);
        if (data == NULL)
            continue;
        /* Copied first: what is checked is what is handed out, and the lengths are those
         * of the one copy of the header that was checked. */
        subs_retained out = {
            .topic_len = h.topic_len, .len = h.len, .seq = h.seq, .ts_us = h.ts_us};
        memcpy(buf, data, out.topic_len + out.len);
        buf[out.topic_len + out.len] = '\0';
        memcpy(out.from, h.from, sizeof out.from);
        memcpy(out.node, h.node, sizeof out.node);
        out.topic = buf;
        out.body = buf + out.topic_len;
        if (!topics_valid_topic(out.topic, out.topic_len, true) ||
            !names_valid_bounded(out.from, sizeof out.from) ||
            (out.node[0] != '\0' && !names_valid_bounded(out.node, sizeof out.node)) ||
            memchr(out.body, '\0', out.len) != NULL)
            continue;
        if (pattern != NULL && !topics_match(pattern, plen, out.topic, out.topic_len))
            continue;
        n++;
        if (visit != NULL)
            visit(&out, arg);
    }
    return n;
}

mbx_err subs_scratch_init(subs_scratch *s, uint32_t slots)
{
    s->targets = malloc(sizeof(subs_target) * slots);
    s->where = malloc(sizeof(uint32_t) * slots);
    if (s->targets == NULL || s->where == NULL) {
        subs_scratch_free(s);
        return MBX_ENOMEM;
    }
    memset(s->where, 0xff, sizeof(uint32_t) * slots); /* UINT32_MAX: no slot placed yet */
    return MBX_OK;
}

void subs_scratch_free(subs_scratch *s)
{
    free(s->targets);
    free(s->where);
    s->targets = NULL;
    s->where = NULL;
}
