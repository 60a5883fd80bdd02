/* Unit tests: error messages, and the operating system's code kept behind MBX_ESYSTEM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox.h"
#include "platform/platform.h"

static void test_every_code_has_a_message(void **state)
{
    (void)state;
    for (int e = 0; e < MBX_ERR_COUNT_; e++)
        assert_string_not_equal(mbx_strerror(e), "unknown error");
    assert_string_equal(mbx_strerror(MBX_ERR_COUNT_), "unknown error");
    assert_string_equal(mbx_strerror(-1), "unknown error");
}

/* Review: MBX_ESYSTEM lost the OS error. The platform keeps it per thread. */
static void test_system_error_keeps_the_os_code(void **state)
{
    (void)state;
    assert_int_equal(plat_system_error(EXDEV), MBX_ESYSTEM);
    assert_int_equal(mbx_os_error(), EXDEV);
    assert_int_equal(plat_system_error(ENOENT), MBX_ESYSTEM);
    assert_int_equal(mbx_os_error(), ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_message),
        cmocka_unit_test(test_system_error_keeps_the_os_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
