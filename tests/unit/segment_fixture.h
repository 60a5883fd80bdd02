/* A segment in anonymous shared memory, for unit tests of the layers that read it. */
#ifndef MBX_SEGMENT_FIXTURE_H
#define MBX_SEGMENT_FIXTURE_H

#include <string.h>
#include <sys/mman.h>

#include "segment.h"

static inline seg_view fixture_segment(uint32_t slots, uint32_t depth, uint32_t max_message)
{
    seg_view v;
    assert_int_equal(segment_geometry(slots, depth, max_message, &v), MBX_OK);
    void *base =
        mmap(NULL, v.total_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    v.base = base;
    assert_int_equal(segment_init(&v, "unit", 0600), MBX_OK);
    atomic_store(&segment_header(&v)->state, SEG_READY);
    return v;
}

static inline void fixture_free(seg_view *v)
{
    munmap(v->base, v->total_size);
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
