/* Unit tests: what a namespace or client name may be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox.h"
#include "names.h"

static void test_valid_names(void **state)
{
    (void)state;
    const char *ok[] = {"a",
                        "Z",
                        "0",
                        "_x",
                        "app.worker-1",
                        "a.b",
                        "x_y-z.0",
                        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(mbx_check_name(ok[i]), MBX_OK);
}

static void test_invalid_names(void **state)
{
    (void)state;
    const char *bad[] = {"", ".", "..", "a..b", ".hidden", "-flag", "a/b", "/", "a b", "a\tb",
                         "a\nb", "é", "a*", "a\x01", "a\x7f", "name!", "a:b", "a\\b",
                         /* 64 bytes: one over */
                         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mbx_check_name(bad[i]) != MBX_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(mbx_check_name(NULL), MBX_EINVAL);
}

static void test_bounded_check_needs_terminator(void **state)
{
    (void)state;
    char buf[4] = {'a', 'b', 'c', 'd'}; /* no NUL inside the bound */
    assert_false(names_valid_bounded(buf, sizeof buf));
    buf[3] = '\0';
    assert_true(names_valid_bounded(buf, sizeof buf));
    assert_false(names_valid_bounded(buf, 0));
}

static void test_default_namespace(void **state)
{
    (void)state;
    unsetenv("MBX_NAMESPACE");
    assert_string_equal(mbx_default_namespace(), "default");
    setenv("MBX_NAMESPACE", "", 1);
    assert_string_equal(mbx_default_namespace(), "default");
    setenv("MBX_NAMESPACE", "other", 1);
    assert_string_equal(mbx_default_namespace(), "other");
    unsetenv("MBX_NAMESPACE");
}

static void test_every_error_has_a_message(void **state)
{
    (void)state;
    for (int e = 0; e < MBX_ERR_COUNT_; e++) {
        const char *m = mbx_strerror(e);
        assert_non_null(m);
        assert_string_not_equal(m, "unknown error");
        for (int f = 0; f < e; f++)
            assert_string_not_equal(m, mbx_strerror(f));
    }
    assert_string_equal(mbx_strerror(-1), "unknown error");
    assert_string_equal(mbx_strerror(MBX_ERR_COUNT_), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_bounded_check_needs_terminator),
        cmocka_unit_test(test_default_namespace),
        cmocka_unit_test(test_every_error_has_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
