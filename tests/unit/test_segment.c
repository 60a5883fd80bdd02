/* Unit tests: segment geometry, initialisation and validation of everything read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "segment_fixture.h"

static void test_geometry_limits(void **state)
{
    (void)state;
    seg_view v;
    assert_int_equal(segment_geometry(64, 64, 4096, &v), MBX_OK);
    assert_true(v.total_size % 4096 == 0);
    /* The default ring holds 64 messages of 200 bytes, and two of the largest. */
    assert_true((v.ring_bytes & (v.ring_bytes - 1)) == 0);
    assert_true(v.ring_bytes >= 64 * SEG_RECORD_SIZE(MBX_NAME_MAX + 200));
    assert_true(v.ring_bytes >= 2 * SEG_RECORD_SIZE(MBX_NAME_MAX + 4096));
    /* Issue 16: a mailbox reserves at most 64 KiB at the default limits, and a namespace
     * of 1,024 clients fits in 64 MiB. */
    assert_true(v.mailbox_stride <= 64u << 10);
    assert_true(v.mailbox_off >= v.dir_off + 64 * sizeof(seg_dir_entry));
    assert_true(v.total_size >= v.mailbox_off + 64 * v.mailbox_stride);
    /* The default namespace stays well under 64 MiB. */
    assert_true(v.total_size <= 64u << 20);
    assert_int_equal(segment_geometry(1024, 64, 4096, &v), MBX_OK);
    assert_true(v.total_size <= 64u << 20);
    assert_int_equal(segment_geometry(0, 64, 4096, &v), MBX_EINVAL);
    assert_int_equal(segment_geometry(SEG_MAX_SLOTS + 1, 1, 16, &v), MBX_EINVAL);
    assert_int_equal(segment_geometry(1, 0, 4096, &v), MBX_EINVAL);
    assert_int_equal(segment_geometry(1, 1, SEG_MIN_MESSAGE - 1, &v), MBX_EINVAL);
    assert_int_equal(segment_geometry(1, 1, SEG_MAX_MESSAGE + 1, &v), MBX_EINVAL);
    assert_int_equal(segment_geometry(SEG_MAX_SLOTS, SEG_MAX_DEPTH, SEG_MAX_MESSAGE, &v),
                     MBX_EINVAL);
}

static void test_ring_size(void **state)
{
    (void)state;
    seg_view v;
    seg_params p = {.slots = 2, .depth = 8, .max_message = 1000, .subscriptions = 1, .retained = 1};
    /* Asked sizes are rounded up to a power of two; too small for two of the largest
     * records, or past the limit, is refused. */
    p.ring_bytes = 5000;
    assert_int_equal(segment_layout(&p, &v), MBX_OK);
    assert_int_equal(v.ring_bytes, 8192);
    assert_true(v.mailbox_stride >= sizeof(seg_mailbox) + 8192);
    p.ring_bytes = (uint32_t)segment_min_ring(1000);
    assert_int_equal(segment_layout(&p, &v), MBX_OK);
    p.ring_bytes = (uint32_t)segment_min_ring(1000) / 2;
    assert_int_equal(segment_layout(&p, &v), MBX_EINVAL);
    p.ring_bytes = SEG_MAX_RING + 1;
    assert_int_equal(segment_layout(&p, &v), MBX_EINVAL);
    /* The default grows with the depth and with the largest message. */
    p.ring_bytes = 0;
    assert_int_equal(segment_layout(&p, &v), MBX_OK);
    assert_int_equal(v.ring_bytes, segment_default_ring(8, 1000));
    assert_true(segment_default_ring(1024, 1000) >= 1024 * SEG_TYPICAL_RECORD);
    assert_true(segment_default_ring(1, SEG_MAX_MESSAGE) >= segment_min_ring(SEG_MAX_MESSAGE));
}

static void test_validate_round_trip(void **state)
{
    (void)state;
    seg_view v = fixture_segment(4, 8, 128);
    seg_view w;
    assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_OK);
    assert_int_equal(w.slots, 4);
    assert_int_equal(w.depth, 8);
    assert_int_equal(w.max_message, 128);
    assert_int_equal(w.mailbox_stride, v.mailbox_stride);
    assert_string_equal(segment_header(&w)->namespace_name, "unit");
    fixture_free(&v);
}

static void test_validate_refuses_corruption(void **state)
{
    (void)state;
    seg_view v = fixture_segment(4, 8, 128);
    seg_header *h = segment_header(&v);
    seg_view w;
    assert_int_equal(segment_validate(v.base, SEG_HEADER_SIZE - 1, &w), MBX_ECORRUPT);
    assert_int_equal(segment_validate(v.base, v.total_size - 1, &w), MBX_ECORRUPT);
    assert_int_equal(segment_validate(NULL, v.total_size, &w), MBX_ECORRUPT);

    h->layout_version = 99;
    assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_EVERSION);
    h->layout_version = SEG_LAYOUT_VERSION;

    h->magic ^= 1;
    assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
    h->magic ^= 1;

    /* Any change to geometry that does not re-derive exactly is refused. (A change that
     * re-derives the same layout, such as another depth within the same ring, is harmless:
     * every reader bounds itself by its own copy of the geometry.) */
    uint32_t *fields[] = {&h->slots, &h->max_message, &h->ring_bytes, &h->header_size};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint32_t saved = *fields[i];
        *fields[i] = saved + 64;
        assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
        *fields[i] = 0xffffffffu;
        assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
        *fields[i] = saved;
    }
    h->depth = 0;
    assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
    h->depth = 8;
    uint64_t *offsets[] = {&h->dir_off, &h->mailbox_off, &h->mailbox_stride, &h->total_size};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        uint64_t saved = *offsets[i];
        *offsets[i] = saved + 64;
        assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
        *offsets[i] = saved;
    }
    memset(h->namespace_name, 'x', sizeof h->namespace_name); /* no terminator */
    assert_int_equal(segment_validate(v.base, v.total_size, &w), MBX_ECORRUPT);
    fixture_free(&v);
}

static void test_directory_reads_are_checked(void **state)
{
    (void)state;
    seg_view v = fixture_segment(4, 8, 128);
    char name[MBX_NAME_MAX + 1];
    uint32_t gen, slot;
    assert_false(segment_read_entry(&v, 0, name, &gen, NULL)); /* free */
    uint32_t g = fixture_activate(&v, 2, "alice");
    assert_true(segment_read_entry(&v, 2, name, &gen, NULL));
    assert_string_equal(name, "alice");
    assert_int_equal(gen, g);
    assert_int_equal(segment_find(&v, "alice", &slot, &gen), MBX_OK);
    assert_int_equal(slot, 2);
    assert_int_equal(segment_find(&v, "bob", &slot, &gen), MBX_ENORECIPIENT);

    seg_dir_entry *e = segment_dir(&v, 2);
    atomic_store(&e->generation, g + 1); /* being rewritten */
    assert_false(segment_read_entry(&v, 2, name, &gen, NULL));
    atomic_store(&e->generation, g);
    memset(e->name, 'a', sizeof e->name); /* unterminated */
    assert_false(segment_read_entry(&v, 2, name, &gen, NULL));
    strcpy(e->name, "../x");
    assert_false(segment_read_entry(&v, 2, name, &gen, NULL));
    fixture_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_limits),
        cmocka_unit_test(test_ring_size),
        cmocka_unit_test(test_validate_round_trip),
        cmocka_unit_test(test_validate_refuses_corruption),
        cmocka_unit_test(test_directory_reads_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
