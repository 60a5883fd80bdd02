/* Unit tests: the mailbox ring in one process, including corrupt indices and cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "client.h"
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
    /* Indices no sender or receiver can produce: more records than the depth, more bytes
     * than the ring, off the record grid, or counts that disagree. */
    const uint64_t bad[] = {1000ull << 32 | 64000, 1ull << 32 | (v.ring_bytes + 64),
                            1ull << 32 | 65, 1ull << 32, 128};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        atomic_store(&mb->tail, bad[i]);
        assert_int_equal(put(&v, 0, gen, "1", 0), MBX_ECORRUPT);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
        assert_int_equal(ring_waiting(&v, 0), 0);
        assert_false(ring_indices_valid(&v, 0));
    }
    atomic_store(&mb->tail, 0);
    assert_true(ring_indices_valid(&v, 0));

    /* A record with a length past the limit or a NUL in the body is reported and skipped;
     * one with a bad sender name is framed well, so the ring hands it out and the client
     * layer refuses it (the ring knows no names); the next good message still arrives. */
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "\"abc\"", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "4", 0), MBX_OK);
    fixture_record(&v, mb, 0)->len = 65;
    memset((char *)fixture_record(&v, mb, 1) + SEG_RECORD_HEADER, '/', 2);
    seg_record *third = fixture_record(&v, mb, 2);
    ((char *)third + SEG_RECORD_HEADER + third->from_len)[2] = '\0';
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    ring_incoming bad_name = {.body = buf};
    assert_int_equal(ring_take(&v, 0, gen, &bad_name, 0, NULL, NULL), MBX_OK);
    static mbx_client receiver; /* what client_incoming_valid remembers: nothing yet */
    assert_false(client_incoming_valid(&receiver, &bad_name));
    /* A valid name it remembers lets no other name through unchecked. */
    ring_incoming good = {.body = (char *)"1", .len = 1, .kind = CELL_PLAIN};
    strcpy(good.from, "peer");
    assert_true(client_incoming_valid(&receiver, &good));
    assert_true(client_incoming_valid(&receiver, &good));
    assert_false(client_incoming_valid(&receiver, &bad_name));
    strcpy(good.from, "peer/..");
    assert_false(client_incoming_valid(&receiver, &good));
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_string_equal(buf, "4");

    /* A record's fields claiming more than its size, or a name of no length. */
    assert_int_equal(put(&v, 0, gen, "5", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "6", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "7", 0), MBX_OK);
    fixture_record(&v, mb, 0)->from_len = 0;
    fixture_record(&v, mb, 1)->len = 60; /* within max_message, past the record's size */
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_string_equal(buf, "7");
    fixture_free(&v);
}

/* A record size that cannot be stepped over loses the framing of what follows: those
 * records are dropped (a scribble costs messages, never a wedged mailbox or a read out of
 * the ring), and the mailbox works on. */
static void test_corrupt_record_size(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 8, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    char buf[65];
    const uint32_t sizes[] = {0, 3, 65, 1u << 20, 0xffffffc0u};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int k = 0; k < 3; k++)
            assert_int_equal(put(&v, 0, gen, "[1]", 0), MBX_OK);
        fixture_record(&v, mb, 1)->size = sizes[i];
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
        assert_int_equal(ring_waiting(&v, 0), 0);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ETIMEDOUT);
        assert_int_equal(put(&v, 0, gen, "{}", 0), MBX_OK);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
        assert_string_equal(buf, "{}");
    }
    /* A forged pad that does not run to the ring's end is refused the same way. */
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_OK);
    fixture_record(&v, mb, 0)->kind = CELL_PAD;
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ECORRUPT);
    assert_int_equal(ring_waiting(&v, 0), 0);
    /* A peeked record whose size changes before the commit: the commit refuses it. */
    assert_int_equal(put(&v, 0, gen, "3", 0), MBX_OK);
    ring_incoming in = {.body = buf};
    assert_int_equal(ring_peek(&v, 0, gen, &in, 0, NULL, NULL), MBX_OK);
    fixture_record(&v, mb, 0)->size = 7;
    assert_int_equal(ring_commit(&v, 0, gen, in.position), MBX_ECORRUPT);
    assert_int_equal(ring_waiting(&v, 0), 0);
    fixture_free(&v);
}

/* Records of every size from senders of every name length, around the ring many times:
 * every message comes out whole and in order, pads included. */
static void test_variable_records_wrap(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 64, 300);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    char names[8][MBX_NAME_MAX + 1];
    for (int i = 0; i < 8; i++) {
        memset(names[i], 0, sizeof names[i]);
        memset(names[i], 'a' + i, (size_t)(i * 9 + 1)); /* 1..64 bytes, capped below */
        names[i][MBX_NAME_MAX] = '\0';
    }
    srand(16);
    uint64_t sent = 0, taken = 0;
    char body[301], buf[301];
    int pads = 0;
    while (taken < 20000) {
        int burst = rand() % 40;
        for (int k = 0; k < burst; k++) {
            /* A JSON string whose length and first digit say which message it is. */
            int len = 14 + (int)((sent * 7919) % 280);
            memset(body, 'x', (size_t)len);
            int n = snprintf(body + 1, 12, "%llu", (unsigned long long)sent);
            body[1 + n] = 'x';
            body[0] = '"';
            body[len - 1] = '"';
            body[len] = '\0';
            uint32_t before = (uint32_t)atomic_load(&mb->tail) & (v.ring_bytes - 1);
            ring_outgoing m = {.body = body,
                               .len = (uint32_t)len,
                               .from_name = names[sent % 8],
                               .seq_source = &seq};
            mbx_err err = ring_put(&v, 0, gen, &m, 0);
            if (err == MBX_EFULL)
                break;
            assert_int_equal(err, MBX_OK);
            uint32_t after = (uint32_t)atomic_load(&mb->tail) & (v.ring_bytes - 1);
            if (after != 0 && after < before)
                pads++; /* wrapped: a pad filled the end, or the record ended there */
            sent++;
        }
        int drain = rand() % 40;
        for (int k = 0; k < drain && taken < sent; k++) {
            ring_incoming in = {.body = buf};
            assert_int_equal(ring_take(&v, 0, gen, &in, 0, NULL, NULL), MBX_OK);
            int len = 14 + (int)((taken * 7919) % 280);
            assert_int_equal(in.len, len);
            assert_int_equal(strtoull(buf + 1, NULL, 10), taken);
            assert_string_equal(in.from, names[taken % 8]);
            taken++;
        }
        assert_int_equal(ring_waiting(&v, 0), sent - taken);
    }
    assert_true(pads > 10);
    fixture_free(&v);
}

/* A mailbox is full at its depth or at its ring's bytes, whichever comes first; an empty
 * mailbox takes a message of the largest size wherever its free space starts. */
static void test_full_by_bytes_and_largest_anywhere(void **state)
{
    (void)state;
    seg_view v = fixture_segment_ring(1, 64, 1000, (uint32_t)segment_min_ring(1000));
    uint32_t gen = fixture_activate(&v, 0, "rx");
    assert_int_equal(v.ring_bytes, 4096);
    char big[1001], buf[1001];
    memset(big, '1', 1000);
    big[1000] = '\0';
    int fitted = 0;
    while (put(&v, 0, gen, big, 0) == MBX_OK)
        fitted++;
    /* Each record: a 64-byte header, the name, 1,000 bytes, rounded up to 64. */
    assert_int_equal(fitted, v.ring_bytes / SEG_RECORD_SIZE(6 + 1000));
    assert_true(fitted < 64);
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK); /* a small one fits what is left */
    while (take(&v, 0, gen, buf, 0) == MBX_OK)
        ;
    char largest[1001];
    memset(largest, '2', 1000);
    largest[1000] = '\0';
    for (uint32_t start = 0; start < v.ring_bytes; start += SEG_RECORD_ALIGN) {
        assert_int_equal(ring_waiting(&v, 0), 0);
        char longest_name[MBX_NAME_MAX + 1];
        memset(longest_name, 'n', MBX_NAME_MAX);
        longest_name[MBX_NAME_MAX] = '\0';
        ring_outgoing m = {
            .body = largest, .len = 1000, .from_name = longest_name, .seq_source = &seq};
        assert_int_equal(ring_put(&v, 0, gen, &m, 0), MBX_OK);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
        assert_int_equal(strlen(buf), 1000);
        /* Move the free space's start on by one line. */
        assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
        assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    }
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

/* A responder that answers and leaves between the requester's look at its mailbox and
 * its check on the responder: the reply is delivered, not MBX_EGONE. The check (`still`)
 * plays the responder: it puts the reply, then reports it gone. */
struct answer_then_leave {
    seg_view *v;
    uint32_t gen;
    int checks;
};

static ring_verdict is_reply_7(const seg_record *hdr, void *arg)
{
    (void)arg;
    return hdr->kind == CELL_REPLY && hdr->corr == 7 ? RING_TAKE : RING_PASS;
}

static mbx_err never_gone(void *arg)
{
    (void)arg;
    return MBX_OK;
}

static mbx_err answer_then_leave(void *arg)
{
    struct answer_then_leave *a = arg;
    if (a->checks++ == 0) {
        ring_outgoing m = {.body = "42",
                           .len = 2,
                           .from_name = "responder",
                           .kind = CELL_REPLY,
                           .corr = 7,
                           .seq_source = &seq};
        assert_int_equal(ring_put(a->v, 0, a->gen, &m, 0), MBX_OK);
    }
    return MBX_EGONE;
}

static void test_reply_before_leaving_is_delivered(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    uint32_t gen = fixture_activate(&v, 0, "requester");
    char buf[65];
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK); /* not the reply: stays in place */
    struct answer_then_leave a = {&v, gen, 0};
    ring_incoming in = {.body = buf};
    assert_int_equal(
        ring_find(&v, 0, gen, &in, 1000, is_reply_7, answer_then_leave, &a, NULL, NULL), MBX_OK);
    assert_int_equal(in.len, 2);
    assert_memory_equal(buf, "42", 2);
    /* Nothing more came: the next look reports the responder gone at once. */
    assert_int_equal(
        ring_find(&v, 0, gen, &in, 1000, is_reply_7, answer_then_leave, &a, NULL, NULL), MBX_EGONE);
    assert_int_equal(a.checks, 2);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK); /* the other message, still there */
    assert_memory_equal(buf, "1", 1);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_ETIMEDOUT);
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
    assert_true(ring_empty(&v, 0, free_entry, segment_dir(&v, 0), &dropped));
    assert_int_equal(dropped, 3);
    assert_int_equal(ring_waiting(&v, 0), 0);
    /* Emptied by moving head up to tail: the old records lie behind both for good. */
    uint64_t three = 3ull << 32 | (uint32_t)(3 * SEG_RECORD_SIZE(6 + 1));
    assert_int_equal(atomic_load(&segment_mailbox(&v, 0)->head), three);
    assert_int_equal(atomic_load(&segment_mailbox(&v, 0)->tail), three);
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_ENORECIPIENT);
    /* A tail scribbled off the record grid is put back on it, head with it: the mailbox
     * works again for its next owner. */
    gen = fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    atomic_store(&mb->tail, three + 1000 + 7);
    assert_false(ring_indices_valid(&v, 0));
    assert_true(ring_empty(&v, 0, NULL, NULL, &dropped));
    assert_int_equal(dropped, 0);
    assert_true(ring_indices_valid(&v, 0));
    assert_int_equal(atomic_load(&mb->head) % SEG_RECORD_ALIGN, 0);
    char buf[65];
    assert_int_equal(put(&v, 0, gen, "{}", 0), MBX_OK);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_string_equal(buf, "{}");
    fixture_free(&v);
}

/* A record taken out of order (a reply found by ring_find) is not counted as waiting
 * (review: it skewed group routing and mbx list). */
static void test_taken_out_of_order_is_not_waiting(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 8, 64);
    uint32_t gen = fixture_activate(&v, 0, "rx");
    char buf[65];
    assert_int_equal(put(&v, 0, gen, "1", 0), MBX_OK);
    ring_outgoing reply = {.body = "42",
                           .len = 2,
                           .from_name = "srv",
                           .kind = CELL_REPLY,
                           .corr = 7,
                           .seq_source = &seq};
    assert_int_equal(ring_put(&v, 0, gen, &reply, 0), MBX_OK);
    assert_int_equal(put(&v, 0, gen, "2", 0), MBX_OK);
    assert_int_equal(ring_waiting(&v, 0), 3);
    ring_incoming in = {.body = buf};
    assert_int_equal(ring_find(&v, 0, gen, &in, 0, is_reply_7, never_gone, NULL, NULL, NULL),
                     MBX_OK);
    assert_int_equal(ring_waiting(&v, 0), 2);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK);
    assert_int_equal(ring_waiting(&v, 0), 1);
    assert_int_equal(take(&v, 0, gen, buf, 0), MBX_OK); /* head passes the taken one */
    assert_string_equal(buf, "2");
    assert_int_equal(ring_waiting(&v, 0), 0);
    assert_int_equal(atomic_load(&segment_mailbox(&v, 0)->taken_ahead), 0);
    fixture_free(&v);
}

/* Emptying a mailbox for a new owner wakes the senders asleep on it and starts their
 * count again: a sender killed while asleep leaves no announcement behind for ever. */
static void test_empty_resets_the_sleeping_senders(void **state)
{
    (void)state;
    seg_view v = fixture_segment(1, 4, 64);
    (void)fixture_activate(&v, 0, "rx");
    seg_mailbox *mb = segment_mailbox(&v, 0);
    atomic_store(&mb->tx_waiting, 3); /* three sleepers, killed */
    uint64_t dropped;
    assert_true(ring_empty(&v, 0, NULL, NULL, &dropped));
    assert_int_equal(atomic_load(&mb->tx_waiting), 0);
    fixture_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_generation_guards_the_slot),
        cmocka_unit_test(test_corrupt_indices_and_cells),
        cmocka_unit_test(test_corrupt_record_size),
        cmocka_unit_test(test_variable_records_wrap),
        cmocka_unit_test(test_full_by_bytes_and_largest_anywhere),
        cmocka_unit_test(test_garbage_namespace_state_is_corrupt),
        cmocka_unit_test(test_closing_drains_then_reports),
        cmocka_unit_test(test_reply_before_leaving_is_delivered),
        cmocka_unit_test(test_empty_counts_dropped),
        cmocka_unit_test(test_taken_out_of_order_is_not_waiting),
        cmocka_unit_test(test_empty_resets_the_sleeping_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
