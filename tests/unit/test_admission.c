/* Unit tests: the broker's registration decision, case by case (broker/admission.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admission.h"

static admission decide(admission_facts f)
{
    return admission_decide(&f);
}

static void test_nobody_holds_the_name(void **state)
{
    (void)state;
    assert_int_equal(decide((admission_facts){0}), ADMIT_NEW);
    assert_int_equal(decide((admission_facts){.asks_group = true}), ADMIT_NEW);
}

static void test_a_group_holds_the_name(void **state)
{
    (void)state;
    admission_facts f = {.held = true, .holder_group = true, .holder_channel = true};
    assert_int_equal(decide(f), REFUSE_TAKEN);
    f.asks_group = true;
    assert_int_equal(decide(f), ADMIT_JOIN);
    f.same_process = true;
    f.holder_channel = false; /* an adopted member: its process joins anew */
    assert_int_equal(decide(f), ADMIT_JOIN);
}

static void test_a_lingering_mailbox_holds_the_name(void **state)
{
    (void)state;
    admission_facts f = {.held = true, .holder_linger = true};
    assert_int_equal(decide(f), ADMIT_TAKE_OVER);
    f.asks_group = true;
    assert_int_equal(decide(f), REFUSE_TAKEN);
}

static void test_a_live_client_holds_the_name(void **state)
{
    (void)state;
    admission_facts f = {.held = true, .holder_channel = true};
    assert_int_equal(decide(f), REFUSE_TAKEN);
    f.same_process = true; /* a second connection of the same process: still taken */
    assert_int_equal(decide(f), REFUSE_TAKEN);
    f.asks_group = true;
    assert_int_equal(decide(f), REFUSE_TAKEN);
}

static void test_an_adopted_slot_holds_the_name(void **state)
{
    (void)state;
    admission_facts f = {.held = true, .holder_channel = false};
    assert_int_equal(decide(f), REFUSE_TAKEN); /* another process */
    f.same_process = true;
    assert_int_equal(decide(f), ADMIT_RECLAIM);
    f.asks_group = true;
    assert_int_equal(decide(f), REFUSE_TAKEN);
}

static void test_every_decision_has_a_name(void **state)
{
    (void)state;
    for (int a = ADMIT_NEW; a <= REFUSE_TAKEN; a++)
        assert_string_not_equal(admission_name((admission)a), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nobody_holds_the_name),
        cmocka_unit_test(test_a_group_holds_the_name),
        cmocka_unit_test(test_a_lingering_mailbox_holds_the_name),
        cmocka_unit_test(test_a_live_client_holds_the_name),
        cmocka_unit_test(test_an_adopted_slot_holds_the_name),
        cmocka_unit_test(test_every_decision_has_a_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
