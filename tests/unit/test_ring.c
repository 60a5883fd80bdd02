/* Unit tests: the mailbox ring in one process, including corrupt indices and cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ring.h"
#include "segment_fixture.h"

static _Atomic uint64_t seq;

static mbx_err put(seg_view *v, uint32_t slot, uint32_t gen, const char *body, int timeout_ms)
{
    ring_outgoing m = {.body = body,
                       .len = (uint32_t)strlen(body),
                       .from_name = "tester",
                       .ts_us = 7,
                       .seq_source = &seq};
    return ring_put(v, slot, gen, &m, timeout_ms);
}

static mbx_err take(seg_view *v, uint32_t slot, uint32_t gen, char *buf, int timeout_ms)
{
    ring_incoming in = {.body = buf};
    return ring_take(v, slot, gen, &in, timeout_ms, NULL, NULL);
}

static void test_fifo_and_full(void **state)
{
    (void)state;
    seg_view v = fixture_segment(2, 4, 64);
    uint32_t gen = fixture_activate(&v, 1, "rx");
    char body[16], buf[65];
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "%d", i);
        assert_int_equal(put(&v, 1, gen, body, 0), MBX_OK);
    }
    assert_int_equal(ring_waiting(&v, 1), 4);
    assert_int_equal(put(&v, 1, gen, "9", 0), MBX_EFULL);
    assert_int_equal(put(&v, 1, gen, "9", 20), MBX_EFULL);
    assert_int_equal(atomic_load(&segment_mailbox(&v, 1)->refused_full), 2);
    for (int i = 0; i < 4; i++) {
        ring_incoming in = {.body = buf};
        assert_int_equal(ring_take(&v, 1, gen, &in, 0, NULL, NULL), MBX_OK);
        snprintf(body, sizeof body, "%d", i);
        assert_string_equal(buf, body);
        assert_string_equal(in.from, "tester");
        assert_int_equal(in.ts_us, 7);
    }
    assert_int_equal(take(&v, 1, gen, buf, 10), MBX_ETIMEDOUT);
    /* Wrap around the ring several times. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(put(&v, 1, gen, "[1]", 0), MBX_OK);
        assert_int_equal(take(&v, 1, gen, buf, 0), MBX_OK);
    }
    fixture_free(&v);
}

static void test_generation_guards_the_slot(void **state)
{
    (void)state;
    seg_view v = fixture_segment(2, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    assert_int_equal(put(&v, 0, gen + 2, "1", 0), MBX_ENORECIPIENT);
    assert_int_equal(put(&v, 1, 0, "1", 0), MBX_ENORECIPIENT); /* free slot */
    char buf[65];
    /* An owner whose entry says something else: corrupt, unless the broker freed it. */
    assert_int_equal(take(&v, 0, gen - 2, buf, 0), MBX_ECORRUPT);
    atomic_store(&segment_dir(&v, 0)->state, SLOT_FREE);
    atomic_store(&segment_dir(&v, 0)->generation, gen + 2);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ESHUTDOWN);
    fixture_free(&v);
}

static void test_corrupt_indices_and_cells(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    char buf[65];
    atomic_store(&mb->tail, 1000); /* more than depth ahead of head */
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(ring_waiting(&v, 0), 0);
    atomic_store(&mb->tail, 0);

    /* A cell with a length past the limit, a bad sender name, or a NUL in the body is
     * reported and skipped; the next good message still arrives. */
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "\"abc\"", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "4", 0), MBX_OK);
    segment_cell(&v, mb, 0)->len = 65;
    memset(segment_cell(&v, mb, 1)->from, '/', MBX_NAME_MAX + 1);
    ((char *)segment_cell(&v, mb, 2) + SEG_CELL_HEADER)[2] = '\0';
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_string_equal(buf, "4");
    fixture_free(&v);
}

static void test_garbage_namespace_state_is_corrupt(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    char buf[65];
    atomic_store(&segment_header(&v)->state, 0xdeadbeef);
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    fixture_free(&v);
}

static void test_closing_drains_then_reports(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    char buf[65];
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    atomic_store(&segment_header(&v)->state, SEG_CLOSING);
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_ESHUTDOWN);
    assert_int_equal(take(&v, 0, gen, buf, -1), MBX_OK);
    assert_int_equal(take(&v, 0, gen, buf, -1), MBX_ESHUTDOWN);
    fixture_free(&v);
}

static void free_entry(void *arg)
{
    atomic_store(&((seg_dir_entry *)arg)->state, SLOT_FREE);
}

static void test_empty_counts_dropped(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    uint64_t dropped = 0;
    assert_true(ring_empty(&v, 0, plat_now_ns(), free_entry, segment_dir(&v, 0), &dropped));
    assert_int_equal(dropped, 3);
    assert_int_equal(ring_waiting(&v, 0), 0);
    /* Emptied by moving head up to tail: the old cells lie behind both for good. */
    assert_int_equal(atomic_load(&segment_mailbox(&v, 0)->head), 3);
    assert_int_equal(atomic_load(&segment_mailbox(&v, 0)->tail), 3);
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_ENORECIPIENT);
    fixture_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_generation_guards_the_slot),
        cmocka_unit_test(test_corrupt_indices_and_cells),
        cmocka_unit_test(test_garbage_namespace_state_is_corrupt),
        cmocka_unit_test(test_closing_drains_then_reports),
        cmocka_unit_test(test_empty_counts_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
