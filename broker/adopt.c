/* adopt.c: see adopt.h. */
#include <stdio.h>
#include <string.h>

#include "adopt.h"
#include "log.h"
#include "monitors.h"
#include "names.h"
#include "ring.h"

/* Reads an active entry's name; false when it is not a plausible one (invalid, or a
 * name another kept slot already has). */
static bool entry_name(registry *reg, const seg_dir_entry *e, char *name)
{
    memcpy(name, e->name, MBX_NAME_MAX + 1);
    if (!names_valid_bounded(name, MBX_NAME_MAX + 1))
        return false;
    /* Members of one group share their name; anyone else's name is its own. */
    int64_t other = registry_find(reg, name);
    return other < 0 || ((atomic_load(&e->flags) & DIR_GROUP) != 0 && reg->recs[other].group);
}

/* Takes a kept slot's group flag and node from its entry into its record: the node a
 * remote name is served on is kept when it is a valid name; anything else is rewritten as
 * a name served here (what its bridge learns again from its peers). */
static void adopt_flags(registry *reg, uint32_t slot)
{
    seg_dir_entry *e = segment_dir(reg->view, slot);
    client_rec *rec = &reg->recs[slot];
    uint32_t flags = atomic_load(&e->flags);
    rec->group = (flags & DIR_GROUP) != 0;
    /* A monitor stays one (monitors_scrub lists it again); never a group's or remote. */
    rec->monitor =
        (flags & (DIR_MONITOR | DIR_GROUP | DIR_REMOTE)) == DIR_MONITOR ? MONITOR_UNLISTED : 0;
    char node[MBX_NAME_MAX + 1];
    memcpy(node, e->node, sizeof node);
    if ((flags & DIR_REMOTE) == 0 || !names_valid_bounded(node, sizeof node))
        node[0] = '\0';
    snprintf(rec->node, sizeof rec->node, "%s", node);
    char padded[MBX_NAME_MAX + 1] = {0};
    memcpy(padded, node, strlen(node));
    uint32_t want = (rec->group ? DIR_GROUP : 0u) | (node[0] != '\0' ? DIR_REMOTE : 0u) |
                    (rec->monitor != 0 ? DIR_MONITOR : 0u);
    if (flags == want && memcmp(e->node, padded, sizeof padded) == 0)
        return; /* as it should be: live readers may be copying it */
    /* Rewritten as the broker writes entries: readers skip it while the generation is odd. */
    atomic_store(&e->generation, rec->generation + 1);
    atomic_thread_fence(memory_order_release);
    memcpy(e->node, padded, sizeof padded);
    atomic_store(&e->flags, want);
    atomic_store(&e->generation, rec->generation);
}

/* Keeps a slot whose client still lives: watches it, mends out-of-range indices. */
static bool keep_live(registry *reg, uint32_t slot, const char *name, int64_t pid, uint32_t gen,
                      uint32_t linger_ms, adopt_report *report)
{
    const seg_view *v = reg->view;
    registry_adopt(reg, slot, name, pid, gen);
    client_rec *rec = &reg->recs[slot];
    adopt_flags(reg, slot);
    rec->linger_ms = linger_ms;
    if (plat_proc_watch(pid, &rec->watch) != MBX_OK) {
        rec->watch = PLAT_NO_HANDLE; /* it died just now */
        return false;
    }
    if (!ring_indices_valid(v, slot)) {
        log_msg(LOG_LEVEL_WARN, "slot %u ('%s'): indices out of range, emptying", slot, name);
        registry_mark_dirty(reg, slot);
        report->repaired++;
    }
    report->messages_kept += ring_waiting(v, slot);
    report->kept++;
    return true;
}

void adopt_clients(registry *reg, adopt_report *report)
{
    memset(report, 0, sizeof *report);
    const seg_view *v = reg->view;
    for (uint32_t slot = 0; slot < v->slots; slot++) {
        seg_dir_entry *e = segment_dir(v, slot);
        uint32_t gen = atomic_load(&e->generation);
        bool half_written = (gen & 1u) != 0;
        if (half_written) {
            /* The broker died while rewriting this entry: it never became anyone's. */
            gen++;
            report->repaired++;
        }
        uint32_t state = atomic_load(&e->state);
        char name[MBX_NAME_MAX + 1];
        if (half_written || state != SLOT_ACTIVE || !entry_name(reg, e, name)) {
            registry_set_generation(reg, slot, gen);
            if (state == SLOT_FREE && !half_written) {
                /* A free mailbox is empty, unless the dead broker was killed while
                 * emptying it or a stopped sender published into it since. */
                seg_mailbox *mb = segment_mailbox(v, slot);
                if (atomic_load(&mb->tail) != atomic_load(&mb->head))
                    registry_mark_dirty(reg, slot);
                continue;
            }
            registry_adopt(reg, slot, "", 0, gen); /* to free it through the normal path */
        } else {
            int64_t pid = atomic_load(&e->pid);
            uint32_t linger_ms = atomic_load(&e->linger_ms);
            if (linger_ms > MBX_LINGER_MAX_MS)
                linger_ms = MBX_LINGER_MAX_MS;
            if (pid != 0 && plat_proc_alive(pid, atomic_load(&e->start_time)) &&
                keep_live(reg, slot, name, pid, gen, linger_ms, report))
                continue;
            /* Gone. A mailbox that lingers, or whose client asked for it and died while no
             * broker ran, lingers on for the rest of its time. */
            int64_t until_us = atomic_load(&e->linger_until_us), now_us = plat_wall_us();
            /* Any value may be there: subtract only what cannot overflow. */
            int64_t left_us = pid != 0            ? (int64_t)linger_ms * 1000
                              : until_us > now_us ? until_us - now_us
                                                  : 0;
            if (!reg->recs[slot].active)
                registry_adopt(reg, slot, name, 0, gen);
            if (linger_ms > 0 && left_us > 0 && left_us <= (int64_t)linger_ms * 1000) {
                adopt_flags(reg, slot); /* a lingering remote name stays remote */
                reg->recs[slot].linger_ms = linger_ms;
                registry_linger(reg, slot, plat_now_ns() + left_us * 1000);
                report->lingering++;
                continue;
            }
        }
        report->discarded += registry_release(reg, slot);
        report->freed++;
    }
    uint64_t dropped;
    report->dirty = registry_retry_dirty(reg, &dropped);
    report->discarded += dropped;
}
