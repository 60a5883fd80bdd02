/* scrub.c: see scrub.h. */
#include <string.h>

#include "log.h"
#include "monitors.h"
#include "ring.h"
#include "scrub.h"

void scrub_init(scrubber *s, registry *reg)
{
    const seg_header *h = segment_header(reg->view);
    s->reg = reg;
    memcpy(s->pristine_header, h, sizeof s->pristine_header);
    s->broker_pid = atomic_load(&h->broker_pid);
    s->broker_start_time = atomic_load(&h->broker_start_time);
    s->started_us = atomic_load(&h->started_us);
    s->epoch = atomic_load(&h->epoch);
}

static unsigned scrub_header(scrubber *s)
{
    seg_header *h = segment_header(s->reg->view);
    unsigned repaired = 0;
    if (memcmp(h, s->pristine_header, sizeof s->pristine_header) != 0) {
        log_msg(LOG_LEVEL_WARN, "segment header overwritten (geometry or identity); restored");
        memcpy(h, s->pristine_header, sizeof s->pristine_header);
        repaired++;
    }
    if (atomic_load(&h->state) != SEG_READY || atomic_load(&h->broker_pid) != s->broker_pid ||
        atomic_load(&h->broker_start_time) != s->broker_start_time ||
        atomic_load(&h->started_us) != s->started_us || atomic_load(&h->epoch) != s->epoch) {
        log_msg(LOG_LEVEL_WARN, "segment header overwritten (broker fields); restored");
        atomic_store(&h->broker_pid, s->broker_pid);
        atomic_store(&h->broker_start_time, s->broker_start_time);
        atomic_store(&h->started_us, s->started_us);
        atomic_store(&h->epoch, s->epoch);
        atomic_store(&h->state, SEG_READY);
        repaired++;
    }
    return repaired;
}

/* The flags the registry says an active slot's entry has. */
static uint32_t expected_flags(const client_rec *rec)
{
    return (rec->group ? DIR_GROUP : 0u) | (rec->node[0] != '\0' ? DIR_REMOTE : 0u) |
           (rec->monitor != 0 ? DIR_MONITOR : 0u);
}

/* The directory entry the registry says slot should have. */
static bool entry_matches(const seg_dir_entry *e, const client_rec *rec)
{
    if (atomic_load(&e->generation) != rec->generation)
        return false;
    if (!rec->active)
        return atomic_load(&e->state) == SLOT_FREE;
    char expect[MBX_NAME_MAX + 1] = {0}, node[MBX_NAME_MAX + 1] = {0};
    memcpy(expect, rec->name, strlen(rec->name));
    memcpy(node, rec->node, strlen(rec->node));
    return atomic_load(&e->state) == SLOT_ACTIVE && atomic_load(&e->pid) == rec->pid &&
           atomic_load(&e->flags) == expected_flags(rec) &&
           memcmp(e->name, expect, sizeof expect) == 0 && memcmp(e->node, node, sizeof node) == 0;
}

static void rewrite_entry(seg_dir_entry *e, const client_rec *rec)
{
    /* Readers skip the entry while the generation is odd. */
    atomic_store(&e->generation, rec->generation + 1);
    atomic_thread_fence(memory_order_release);
    memset(e->name, 0, sizeof e->name);
    memset(e->node, 0, sizeof e->node);
    if (rec->active) {
        memcpy(e->name, rec->name, strlen(rec->name));
        memcpy(e->node, rec->node, strlen(rec->node));
        atomic_store(&e->pid, rec->pid);
        atomic_store(&e->start_time, rec->start_time); /* no /proc read per entry */
        atomic_store(&e->flags, expected_flags(rec));
    } else {
        atomic_store(&e->flags, 0);
        atomic_store(&e->pid, 0);
        atomic_store(&e->start_time, 0);
    }
    atomic_store(&e->generation, rec->generation);
    atomic_store(&e->state, rec->active ? SLOT_ACTIVE : SLOT_FREE);
}

unsigned scrub_segment(scrubber *s)
{
    const seg_view *v = s->reg->view;
    unsigned repaired = scrub_header(s);
    repaired += monitors_scrub(s->reg);
    for (uint32_t slot = 0; slot < v->slots; slot++) {
        const client_rec *rec = &s->reg->recs[slot];
        seg_dir_entry *e = segment_dir(v, slot);
        if (!entry_matches(e, rec)) {
            log_limited(LOG_LEVEL_WARN, "scrub.directory",
                        "slot %u: directory entry overwritten; restored", slot);
            rewrite_entry(e, rec);
            repaired++;
        }
        seg_mailbox *mb = segment_mailbox(v, slot);
        if (ring_mend_head_cache(v, slot)) {
            log_limited(LOG_LEVEL_WARN, "scrub.head_cache",
                        "slot %u: senders' copy of head overwritten; restored", slot);
            repaired++;
        }
        /* A starving sender asks for at most 2 * RING_STARVE_MS: anything further off is
         * a scribble that would make newcomers queue for nothing. */
        uint32_t starve = atomic_load(&mb->tx_starving_until_ms);
        if (starve != 0 && (int32_t)(starve - (uint32_t)(plat_now_ns() / 1000000)) > 1000) {
            atomic_store(&mb->tx_starving_until_ms, 0);
            repaired++;
        }
        uint64_t head = atomic_load(&mb->head), tail = atomic_load(&mb->tail);
        if (!rec->dirty && (!ring_indices_valid(v, slot) || (!rec->active && tail != head))) {
            /* Out of range, or messages in a free mailbox (written there by a scribbler,
             * or published by a sender that was stopped holding the lock). */
            log_limited(LOG_LEVEL_WARN, "scrub.indices",
                        "slot %u: mailbox indices overwritten (head %llu, tail %llu); emptying",
                        slot, (unsigned long long)head, (unsigned long long)tail);
            registry_mark_dirty(s->reg, slot);
            repaired++;
        }
    }
    /* Dirty mailboxes: those just found, and free ones a stopped sender still locks.
     * Never a wait, and a bounded time in all (see registry_retry_dirty): this runs in
     * the broker's only thread, and a member decides how many mailboxes are dirty. */
    uint64_t dropped;
    (void)registry_retry_dirty(s->reg, &dropped);
    return repaired;
}
