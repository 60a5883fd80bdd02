/* adopt.c: see adopt.h. */
#include <string.h>

#include "adopt.h"
#include "log.h"
#include "names.h"
#include "ring.h"

/* Reads what the directory says of a slot; false when the entry is not a plausible live
 * one (free, half-written, invalid name, a duplicate name, a dead or recycled pid). */
static bool entry_is_live(registry *reg, uint32_t slot, char *name, int64_t *pid, uint32_t *gen)
{
    seg_dir_entry *e = segment_dir(reg->view, slot);
    if (atomic_load(&e->state) != SLOT_ACTIVE || (*gen & 1u) != 0)
        return false;
    memcpy(name, e->name, MBX_NAME_MAX + 1);
    if (!names_valid_bounded(name, MBX_NAME_MAX + 1) || registry_find(reg, name) >= 0)
        return false;
    *pid = atomic_load(&e->pid);
    return plat_proc_alive(*pid, atomic_load(&e->start_time));
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
        int64_t pid = 0;
        if (!half_written && entry_is_live(reg, slot, name, &pid, &gen)) {
            registry_adopt(reg, slot, name, pid, gen);
            client_rec *rec = &reg->recs[slot];
            if (plat_proc_watch(pid, &rec->watch) == MBX_OK) {
                uint64_t tail = atomic_load(&segment_mailbox(v, slot)->tail);
                uint64_t head = atomic_load(&segment_mailbox(v, slot)->head);
                if (tail - head > v->depth) {
                    log_msg(LOG_LEVEL_WARN, "slot %u ('%s'): indices out of range, emptied", slot,
                            name);
                    report->discarded += ring_reset(v, slot, NULL, NULL);
                    report->repaired++;
                }
                report->messages_kept += ring_waiting(v, slot);
                report->kept++;
                continue;
            }
            /* It died just now: free it below like any other. */
            rec->watch = PLAT_NO_HANDLE;
        } else {
            registry_set_generation(reg, slot, gen);
            if (state == SLOT_FREE)
                continue;
            /* Active but gone (or not plausible): free it through the normal path. */
            registry_adopt(reg, slot, "", 0, gen);
        }
        report->discarded += registry_release(reg, slot);
        report->freed++;
    }
}
