/* Unit tests: size_suffix.h, the byte counts of mailboxd's and mbx's size options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "size_suffix.h"

static uint64_t parsed(const char *s)
{
    uint64_t v = 0;
    assert_true(size_parse(s, 0, UINT64_MAX, &v));
    return v;
}

static void test_plain_and_suffixed(void **state)
{
    (void)state;
    assert_int_equal(parsed("0"), 0);
    assert_int_equal(parsed("4096"), 4096);
    assert_int_equal(parsed("64K"), 64 * 1024);
    assert_int_equal(parsed("64k"), 64 * 1024);
    assert_int_equal(parsed("1M"), 1024 * 1024);
    assert_int_equal(parsed("1MiB"), 1024 * 1024);
    assert_int_equal(parsed("1MB"), 1024 * 1024);
    assert_int_equal(parsed("2G"), 2ULL << 30);
    assert_int_equal(parsed("512B"), 512);
}

static void test_refused(void **state)
{
    (void)state;
    uint64_t v = 7;
    const char *bad[] = {"",
                         "K",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1.5M",
                         "1KK",
                         "1X",
                         "1Mi B",
                         "99999999999999999999",
                         "17179869184G",
                         NULL};
    for (int i = 0; bad[i] != NULL; i++)
        assert_false(size_parse(bad[i], 0, UINT64_MAX, &v));
    assert_false(size_parse(NULL, 0, UINT64_MAX, &v));
    assert_int_equal(v, 7); /* untouched */
    assert_false(size_parse("15", 16, 1 << 20, &v));
    assert_false(size_parse("2M", 16, 1 << 20, &v));
    assert_true(size_parse("1M", 16, 1 << 20, &v));
    assert_int_equal(v, 1 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_suffixed),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
