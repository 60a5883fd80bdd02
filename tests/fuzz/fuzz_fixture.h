/*
 * A small valid segment that fuzz targets then overwrite: the input is read as pairs of
 * (16-bit offset, byte), so the fuzzer reaches deep into a structure that passes the
 * first checks instead of being stopped by the magic number.
 */
#ifndef MBX_FUZZ_FIXTURE_H
#define MBX_FUZZ_FIXTURE_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "segment.h"

static inline seg_view fuzz_segment(void)
{
    seg_view v;
    if (segment_geometry(3, 4, 64, &v) != MBX_OK)
        abort();
    v.base = mmap(NULL, v.total_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (v.base == MAP_FAILED || segment_init(&v, "fuzz", 0600) != MBX_OK)
        abort();
    atomic_store(&segment_header(&v)->state, SEG_READY);
    /* Slot 1 holds a client with two messages waiting. */
    seg_dir_entry *e = segment_dir(&v, 1);
    strcpy(e->name, "rx");
    atomic_store(&e->generation, 2);
    atomic_store(&e->state, SLOT_ACTIVE);
    seg_mailbox *mb = segment_mailbox(&v, 1);
    uint32_t size = (uint32_t)SEG_RECORD_SIZE(2 + 2);
    for (uint64_t i = 0; i < 2; i++) {
        seg_record *c = segment_record(&v, mb, i * size);
        c->size = size;
        c->from_len = 2;
        c->len = 2;
        memcpy((char *)c + SEG_RECORD_HEADER, "tx{}", 4);
    }
    atomic_store(&mb->tail, 2ull << 32 | (2 * size));
    return v;
}

/* Applies the input's (offset, byte) pairs to bytes [lo, hi) of the segment. */
static inline void fuzz_overwrite_range(seg_view *v, const uint8_t *data, size_t size, size_t lo,
                                        size_t hi)
{
    for (size_t i = 0; i + 2 < size; i += 3) {
        size_t off = lo + ((size_t)data[i] << 8 | data[i + 1]) % (hi - lo);
        v->base[off] = data[i + 2];
    }
}

static inline void fuzz_overwrite(seg_view *v, const uint8_t *data, size_t size)
{
    fuzz_overwrite_range(v, data, size, 0, v->total_size);
}

#endif
