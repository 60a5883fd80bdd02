/* A real segment from the platform layer, for unit tests of the layers that read it: on
 * Windows its mutexes and semaphores are then the named kernel objects too. On Linux it
 * is a memfd, which no crashed test can leave behind. */
#ifndef MBX_SEGMENT_FIXTURE_H
#define MBX_SEGMENT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"
#include "segment.h"

/* A segment whose mailboxes have rings of ring_bytes (0: the default). */
static inline seg_view fixture_segment_ring(uint32_t slots, uint32_t depth, uint32_t max_message,
                                            uint32_t ring_bytes)
{
    seg_view v;
    seg_params p = {.slots = slots,
                    .depth = depth,
                    .max_message = max_message,
                    .ring_bytes = ring_bytes,
                    .subscriptions = SEG_DEFAULT_SUBSCRIPTIONS,
                    .retained = SEG_DEFAULT_RETAINED};
    assert_int_equal(segment_layout(&p, &v), MBX_OK);
    static int count;
    const char *run = getenv("MBX_TEST_TAG");
    char ns[64];
    snprintf(ns, sizeof ns, "mbxtest-%s-unit-%lld-%d", run != NULL ? run : "x",
             (long long)plat_pid(), count++);
    plat_shm shm;
    assert_int_equal(plat_shm_create(ns, v.total_size, 0600, &shm), MBX_OK);
    /* No handle is passed to anyone here; the mapping lives until fixture_free(). */
    if (shm.has_handle)
        plat_handle_close(shm.handle);
    v.base = shm.base;
    assert_int_equal(segment_init(&v, "unit", 0600), MBX_OK);
    atomic_store(&segment_header(&v)->state, SEG_READY);
    return v;
}

static inline seg_view fixture_segment(uint32_t slots, uint32_t depth, uint32_t max_message)
{
    return fixture_segment_ring(slots, depth, max_message, 0);
}

/* The record `index` records past head (pads stepped over), for tests that scribble on
 * one. The ring must be intact up to it. */
static inline seg_record *fixture_record(const seg_view *v, seg_mailbox *mb, uint32_t index)
{
    uint64_t at = atomic_load(&mb->head);
    for (;;) {
        seg_record *c = segment_record(v, mb, at);
        if (c->kind != CELL_PAD && index-- == 0)
            return c;
        uint32_t records = (uint32_t)(at >> 32) + (c->kind == CELL_PAD ? 0 : 1);
        uint32_t bytes = (uint32_t)at + c->size;
        at = (uint64_t)records << 32 | bytes;
    }
}

static inline void fixture_free(seg_view *v)
{
    plat_shm shm = {.base = v->base, .size = (size_t)v->total_size};
    plat_shm_close(&shm);
}

/* Marks a slot active under name, as the broker does; returns its generation. */
static inline uint32_t fixture_activate(seg_view *v, uint32_t slot, const char *name)
{
    seg_dir_entry *e = segment_dir(v, slot);
    uint32_t gen = atomic_load(&e->generation) + 2;
    memset(e->name, 0, sizeof e->name);
    strcpy(e->name, name);
    atomic_store(&e->pid, 1);
    atomic_store(&e->generation, gen);
    atomic_store(&e->state, SLOT_ACTIVE);
    return gen;
}

#endif
