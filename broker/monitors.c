/* monitors.c: see monitors.h. */
#include <string.h>

#include "log.h"
#include "monitors.h"

/* A table word: the monitor's slot and generation (segment.h). */
static uint64_t entry_word(const client_rec *rec, uint32_t slot)
{
    return (uint64_t)slot | (uint64_t)rec->generation << 32;
}

/* The table entry of no monitor: a slot no namespace has. */
#define NO_MONITOR ((uint64_t)UINT32_MAX)

/* Which entries the records hold, as a mask. */
static uint32_t entries_used(const registry *reg)
{
    uint32_t used = 0;
    for (uint32_t i = 0; i < reg->view->slots; i++) {
        uint8_t m = reg->recs[i].monitor;
        if (reg->recs[i].active && m != 0 && m != MONITOR_UNLISTED)
            used |= 1u << (m - 1);
    }
    return used;
}

static int free_entry(const registry *reg)
{
    uint32_t used = entries_used(reg);
    for (uint32_t i = 0; i < SEG_MONITORS; i++)
        if ((used & (1u << i)) == 0)
            return (int)i;
    return -1;
}

bool monitors_room(const registry *reg)
{
    return free_entry(reg) >= 0;
}

void monitors_attach(registry *reg, uint32_t slot)
{
    int i = free_entry(reg);
    if (i < 0)
        return;
    client_rec *rec = &reg->recs[slot];
    seg_header *h = segment_header(reg->view);
    rec->monitor = (uint8_t)(i + 1);
    /* The word before the bit: a sender that sees the bit finds the word written. */
    atomic_store_explicit(&h->monitor[i], entry_word(rec, slot), memory_order_release);
    atomic_fetch_or_explicit(&h->monitors, 1u << i, memory_order_release);
}

void monitors_detach(registry *reg, uint32_t slot)
{
    client_rec *rec = &reg->recs[slot];
    if (rec->monitor == 0)
        return;
    /* The entry is no monitor's any more, should the slot stay in use (a release clears
     * all its flags anyway). */
    atomic_fetch_and(&segment_dir(reg->view, slot)->flags, ~DIR_MONITOR);
    if (rec->monitor != MONITOR_UNLISTED) {
        uint32_t i = rec->monitor - 1u;
        seg_header *h = segment_header(reg->view);
        /* A sender that read the bit before this still finds the word; the slot's next
         * generation (its release follows) makes its copy fail under the lock. */
        atomic_fetch_and_explicit(&h->monitors, ~(1u << i), memory_order_release);
        atomic_store_explicit(&h->monitor[i], NO_MONITOR, memory_order_release);
    }
    rec->monitor = 0;
}

unsigned monitors_scrub(registry *reg)
{
    const seg_view *v = reg->view;
    for (uint32_t s = 0; s < v->slots; s++) {
        client_rec *rec = &reg->recs[s];
        if (!rec->active || rec->monitor != MONITOR_UNLISTED)
            continue;
        int i = rec->lingering ? -1 : free_entry(reg); /* a monitor never lingers */
        if (i >= 0) {
            rec->monitor = (uint8_t)(i + 1);
        } else {
            rec->monitor = 0; /* more than the table holds: an ordinary client now */
            atomic_fetch_and(&segment_dir(v, s)->flags, ~DIR_MONITOR);
            log_msg(LOG_LEVEL_WARN, "slot %u: a monitor beyond the table's %u; no longer one", s,
                    SEG_MONITORS);
        }
    }
    uint32_t mask = 0;
    uint64_t words[SEG_MONITORS];
    for (uint32_t i = 0; i < SEG_MONITORS; i++)
        words[i] = NO_MONITOR;
    for (uint32_t s = 0; s < v->slots; s++) {
        const client_rec *rec = &reg->recs[s];
        if (rec->active && rec->monitor != 0) {
            mask |= 1u << (rec->monitor - 1);
            words[rec->monitor - 1] = entry_word(rec, s);
        }
    }
    seg_header *h = segment_header(v);
    unsigned repaired = 0;
    for (uint32_t i = 0; i < SEG_MONITORS; i++)
        if (atomic_load(&h->monitor[i]) != words[i]) {
            atomic_store(&h->monitor[i], words[i]);
            repaired++;
        }
    if (atomic_load(&h->monitors) != mask) {
        atomic_store(&h->monitors, mask);
        repaired++;
    }
    return repaired;
}
