/*
 * fork() and a connected client (docs/api.md, "Processes and fork"): the client belongs to
 * the process that connected it. In a forked child every call on the inherited client is
 * refused (MBX_EINVAL) and mbx_close only frees the child's copy: the parent keeps its
 * name, its mailbox and its messages, whatever the child does (closes the copy, connects
 * anew, leaves it alone). Issue 22 asks this of the library and of the Python binding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char ns[64];
static mbx_client *inherited; /* the parent's client, as the child sees it */

static int setup(void **state)
{
    (void)state;
    harness_namespace(ns, "fork");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup();
    return 0;
}

/* The child: every call on the inherited client is refused; closing it frees only the
 * copy; a client of its own works. Exit code: 0, or the number of the check that failed. */
static int child_main(void *arg)
{
    bool close_copy = *(bool *)arg;
    mbx_message *m = mbx_message_new();
    uint64_t id;
    if (mbx_send(inherited, "parent", "[1]", 3, 0) != MBX_EINVAL)
        return 1;
    if (mbx_recv(inherited, m, 0) != MBX_EINVAL)
        return 2;
    if (mbx_request_send(inherited, "parent", "[1]", 3, 0, &id) != MBX_EINVAL)
        return 3;
    if (mbx_subscribe(inherited, "a.b", NULL) != MBX_EINVAL)
        return 4;
    if (mbx_interrupt(inherited) != MBX_EINVAL)
        return 5;
    mbx_handle h;
    if (mbx_wait_handle(inherited, &h) != MBX_EINVAL)
        return 6;
    if (close_copy)
        mbx_close(inherited);
    mbx_client *own = harness_child_connect(ns, "child");
    if (own == NULL)
        return 7;
    if (mbx_send(own, "parent", "{\"from\":\"child\"}", 16, 1000) != MBX_OK)
        return 8;
    mbx_close(own);
    mbx_message_free(m);
    return 0;
}

static void test_a_forked_child_leaves_the_parents_client_alone(void **state)
{
    (void)state;
    pid_t broker = harness_start_broker(ns, NULL);
    inherited = harness_connect(ns, "parent");
    mbx_client *other = harness_connect(ns, "other");
    mbx_handle h;
    assert_int_equal(mbx_wait_handle(inherited, &h), MBX_OK); /* a wake entry to keep */
    mbx_message *m = mbx_message_new();
    for (int round = 0; round < 2; round++) {
        bool close_copy = round == 0;
        pid_t child = harness_spawn(child_main, &close_copy, 30);
        assert_int_equal(harness_wait(child, 20000), 0);
        /* The parent still has its name, its mailbox and what the child sent it. */
        assert_int_equal(mbx_recv(inherited, m, 5000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "{\"from\":\"child\"}");
        assert_int_equal(mbx_send(other, "parent", "[2]", 3, 1000), MBX_OK);
        assert_int_equal(mbx_recv(inherited, m, 1000), MBX_OK);
        assert_string_equal(mbx_message_body(m, NULL), "[2]");
        assert_int_equal(mbx_wait_handle(inherited, &h), MBX_OK);
    }
    mbx_message_free(m);
    mbx_close(other);
    mbx_close(inherited);
    assert_int_equal(harness_stop(broker, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_forked_child_leaves_the_parents_client_alone, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
