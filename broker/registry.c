/* registry.c: claiming and releasing slots; see registry.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "monitors.h"
#include "presence.h"
#include "registry.h"
#include "ring.h"

mbx_err registry_init(registry *reg, const seg_view *view)
{
    memset(reg, 0, sizeof *reg);
    reg->view = view;
    reg->recs = calloc(view->slots, sizeof *reg->recs);
    if (reg->recs == NULL)
        return MBX_ENOMEM;
    for (uint32_t i = 0; i < view->slots; i++) {
        reg->recs[i].chan = PLAT_NO_HANDLE;
        reg->recs[i].watch = PLAT_NO_HANDLE;
    }
    return MBX_OK;
}

void registry_destroy(registry *reg)
{
    free(reg->recs);
    reg->recs = NULL;
}

int64_t registry_find(const registry *reg, const char *name)
{
    for (uint32_t i = 0; i < reg->view->slots; i++)
        if (reg->recs[i].active && strcmp(reg->recs[i].name, name) == 0)
            return i;
    return -1;
}

static void generate_name(registry *reg, int64_t pid, char *out)
{
    do {
        snprintf(out, MBX_NAME_MAX + 1, "anon.%" PRId64 ".%" PRIu64, pid, ++reg->anon_counter);
    } while (registry_find(reg, out) >= 0);
}

/* Writes the node a name is served on into the entry (the caller holds its sequence
 * lock odd, or the slot is its alone) and into the record; with the flags that go with it. */
static void set_node(registry *reg, uint32_t slot, const char *node, bool group, bool monitor)
{
    client_rec *rec = &reg->recs[slot];
    seg_dir_entry *e = segment_dir(reg->view, slot);
    snprintf(rec->node, sizeof rec->node, "%s", node != NULL ? node : "");
    memset(e->node, 0, sizeof e->node);
    memcpy(e->node, rec->node, strlen(rec->node));
    atomic_store(&e->flags, (group ? DIR_GROUP : 0u) | (rec->node[0] != '\0' ? DIR_REMOTE : 0u) |
                                (monitor ? DIR_MONITOR : 0u));
}

mbx_err registry_claim(registry *reg, const char *wanted, int64_t pid, uint32_t linger_ms,
                       bool group, const char *node, bool monitor, uint32_t *slot)
{
    uint32_t i = 0;
    while (i < reg->view->slots && (reg->recs[i].active || reg->recs[i].dirty))
        i++;
    if (i == reg->view->slots)
        return MBX_ENOSLOTS;
    client_rec *rec = &reg->recs[i];
    if (wanted[0] != '\0')
        snprintf(rec->name, sizeof rec->name, "%s", wanted);
    else
        generate_name(reg, pid, rec->name);

    /* Rewrite the entry under its sequence lock: odd while writing, even after. */
    seg_dir_entry *e = segment_dir(reg->view, i);
    uint32_t gen = rec->generation; /* our own copy, not what shared memory says */
    atomic_store(&e->generation, gen + 1);
    atomic_thread_fence(memory_order_release);
    memset(e->name, 0, sizeof e->name);
    FAULT_POINT("registry.claim.writing"); /* the entry is half written */
    memcpy(e->name, rec->name, strlen(rec->name));
    uint64_t start_time = plat_proc_start_time(pid);
    atomic_store(&e->pid, pid);
    atomic_store(&e->start_time, start_time);
    atomic_store(&e->linger_ms, linger_ms);
    atomic_store(&e->linger_until_us, 0);
    set_node(reg, i, node, group, monitor);
    gen += 2;
    atomic_store(&e->generation, gen);
    atomic_store(&e->state, SLOT_ACTIVE);

    rec->active = true;
    rec->pid = pid;
    rec->start_time = start_time;
    rec->generation = gen;
    rec->linger_ms = linger_ms;
    rec->lingering = false;
    rec->group = group;
    rec->monitor = 0; /* monitors_attach lists it */
    reg->active++;
    atomic_fetch_add(&segment_header(reg->view)->clients_seen, 1);
    *slot = i;
    presence_changed(reg->view);
    return MBX_OK;
}

void registry_linger(registry *reg, uint32_t slot, int64_t until_ns)
{
    client_rec *rec = &reg->recs[slot];
    seg_dir_entry *e = segment_dir(reg->view, slot);
    rec->lingering = true;
    rec->pid = 0;
    rec->start_time = 0;
    rec->linger_until_ns = until_ns;
    rec->chan = PLAT_NO_HANDLE;
    rec->watch = PLAT_NO_HANDLE;
    atomic_store(&e->linger_until_us, plat_wall_us() + (until_ns - plat_now_ns()) / 1000);
    atomic_store(&e->start_time, 0);
    atomic_store(&e->pid, 0);
    presence_changed(reg->view);
}

void registry_take_over(registry *reg, uint32_t slot, int64_t pid, uint32_t linger_ms)
{
    client_rec *rec = &reg->recs[slot];
    seg_dir_entry *e = segment_dir(reg->view, slot);
    /* Name and generation stay: it is the same mailbox, and senders that looked it up
     * while it lingered still reach it. A monitor never lingers: nothing to take over. */
    monitors_detach(reg, slot);
    rec->lingering = false;
    rec->pid = pid;
    rec->start_time = plat_proc_start_time(pid);
    rec->linger_ms = linger_ms;
    atomic_store(&segment_mailbox(reg->view, slot)->rx_sleeping, 0);
    atomic_store(&e->start_time, rec->start_time);
    atomic_store(&e->linger_ms, linger_ms);
    atomic_store(&e->linger_until_us, 0);
    atomic_store(&e->pid, pid);
    presence_changed(reg->view);
    atomic_fetch_add(&segment_header(reg->view)->clients_seen, 1);
}

void registry_adopt(registry *reg, uint32_t slot, const char *name, int64_t pid, uint32_t gen)
{
    client_rec *rec = &reg->recs[slot];
    snprintf(rec->name, sizeof rec->name, "%s", name);
    rec->active = true;
    rec->pid = pid;
    rec->start_time = pid > 0 ? plat_proc_start_time(pid) : 0; /* the adopter checked it */
    rec->generation = gen;
    rec->chan = PLAT_NO_HANDLE;
    rec->watch = PLAT_NO_HANDLE;
    reg->active++;
}

void registry_set_generation(registry *reg, uint32_t slot, uint32_t gen)
{
    reg->recs[slot].generation = gen;
    atomic_store(&segment_dir(reg->view, slot)->generation, gen);
}

struct free_entry {
    seg_dir_entry *entry;
    uint32_t next_generation;
};

/* Marks the entry free under its next generation. Run with the mailbox lock held when
 * the broker has it, so no sender is between its check and its publish. */
static void mark_free(void *arg)
{
    struct free_entry *f = arg;
    atomic_store(&f->entry->state, SLOT_FREE);
    atomic_store(&f->entry->generation, f->next_generation);
}

uint64_t registry_release(registry *reg, uint32_t slot)
{
    client_rec *rec = &reg->recs[slot];
    if (!rec->active)
        return 0;
    monitors_detach(reg, slot); /* senders stop copying to it before it is freed */
    rec->generation += 2;
    struct free_entry f = {segment_dir(reg->view, slot), rec->generation};
    uint64_t dropped = 0;
    if (!ring_empty(reg->view, slot, mark_free, &f, &dropped)) {
        /* A sender stopped inside the lock: the name is free at once, the mailbox only
         * once that sender has gone on or died (registry_retry_dirty). */
        mark_free(&f);
        rec->dirty = true;
    }
    ring_wake_all(reg->view, slot);
    atomic_fetch_add(&segment_header(reg->view)->discarded, dropped);
    rec->active = false;
    rec->lingering = false;
    rec->group = false;
    rec->node[0] = '\0';
    rec->linger_ms = 0;
    memset(f.entry->node, 0, sizeof f.entry->node);
    atomic_store(&f.entry->linger_until_us, 0);
    atomic_store(&f.entry->linger_ms, 0);
    atomic_store(&f.entry->flags, 0);
    rec->chan = PLAT_NO_HANDLE;
    rec->watch = PLAT_NO_HANDLE;
    reg->active--;
    presence_changed(reg->view);
    return dropped;
}

void registry_mark_dirty(registry *reg, uint32_t slot)
{
    reg->recs[slot].dirty = true;
}

/* Empties one dirty slot if its lock can be had without waiting; adds what it dropped. */
static bool empty_dirty(registry *reg, uint32_t slot, uint64_t *dropped)
{
    uint64_t n = 0;
    if (!ring_empty(reg->view, slot, NULL, NULL, &n))
        return false;
    reg->recs[slot].dirty = false;
    *dropped += n;
    atomic_fetch_add(&segment_header(reg->view)->discarded, n);
    return true;
}

uint32_t registry_retry_dirty(registry *reg, uint64_t *dropped)
{
    uint32_t slots = reg->view->slots, left = 0;
    int64_t until = plat_now_ns() + REGISTRY_DIRTY_BUDGET_NS;
    bool out_of_time = false;
    *dropped = 0;
    for (uint32_t k = 0; k < slots; k++) {
        uint32_t i = (reg->dirty_cursor + k) % slots;
        if (!reg->recs[i].dirty)
            continue;
        if (!out_of_time && plat_now_ns() >= until) {
            out_of_time = true;
            reg->dirty_cursor = i; /* the next pass starts here */
        }
        if (out_of_time || !empty_dirty(reg, i, dropped))
            left++;
    }
    return left;
}
