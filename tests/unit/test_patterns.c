/* Topics and patterns: what is valid, and a table of topics x patterns for matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "topics.h"

static bool topic_ok(const char *t, bool reserved)
{
    return topics_valid_topic(t, strlen(t), reserved);
}

static bool pattern_ok(const char *p)
{
    return topics_valid_pattern(p, strlen(p));
}

static void test_valid_topics(void **state)
{
    (void)state;
    const char *good[] = {"a", "a.b", "sensors.kitchen.temp", "A-b_9.x", "0", "a.b.c.d.e.f"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(topic_ok(good[i], false));
    const char *bad[] = {"",  ".",   "a.",  ".a",   "a..b", "a b",  "a/b", "a*", "*",
                         ">", "a.*", "a.>", "$mbx", "é",    "a\tb", "a.#", "a+b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(topic_ok(bad[i], false));
    /* The broker's own: only where reserved topics are allowed. */
    assert_false(topic_ok("$mbx.client.up", false));
    assert_true(topic_ok("$mbx.client.up", true));
    assert_false(topic_ok("$mbx.", true));
    assert_false(topic_ok("$mbxx.a", true));
    char longest[MBX_TOPIC_MAX + 2];
    memset(longest, 'a', MBX_TOPIC_MAX);
    longest[MBX_TOPIC_MAX] = '\0';
    assert_true(topic_ok(longest, false));
    longest[MBX_TOPIC_MAX] = 'a';
    longest[MBX_TOPIC_MAX + 1] = '\0';
    assert_false(topic_ok(longest, false));
    assert_int_equal(mbx_check_topic("a.b"), MBX_OK);
    assert_int_equal(mbx_check_topic("$mbx.client.up"), MBX_EINVAL);
    assert_int_equal(mbx_check_topic(NULL), MBX_EINVAL);
}

static void test_valid_patterns(void **state)
{
    (void)state;
    const char *good[] = {"a", "*", ">", "a.*", "a.>", "*.b.*", "*.>", "$mbx.>", "$mbx.client.*"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(pattern_ok(good[i]));
    const char *bad[] = {"", "a.>.b", ">.a", "a*", "*a", "a.**", "a..*", "a.", ".>", "a>", "#"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(pattern_ok(bad[i]));
    assert_int_equal(mbx_check_pattern("a.*.c"), MBX_OK);
    assert_int_equal(mbx_check_pattern("a.>.c"), MBX_EINVAL);
}

/* The table: each row a pattern, and whether it matches each topic of the header. */
static void test_match_table(void **state)
{
    (void)state;
    static const char *topics[] = {"a", "a.b", "a.b.c", "a.c", "b.b", "$mbx.client.up"};
    static const struct {
        const char *pattern;
        const char *want; /* one character per topic: 1 matches, 0 does not */
    } rows[] = {
        {"a", "100000"},
        {"a.b", "010000"},
        {"a.*", "010100"},
        {"a.>", "011100"},
        {"*", "100000"},
        {">", "111110"},
        {"*.b", "010010"},
        {"*.*.c", "001000"},
        {"*.>", "011110"},
        {"a.b.c", "001000"},
        {"a.*.c", "001000"},
        {"b.>", "000010"},
        {"$mbx.>", "000001"},
        {"$mbx.client.*", "000001"},
        {"$mbx.client.up", "000001"},
        {"a.b.c.d", "000000"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        for (size_t t = 0; t < sizeof topics / sizeof *topics; t++) {
            bool want = rows[r].want[t] == '1';
            bool got = topics_match(rows[r].pattern, strlen(rows[r].pattern), topics[t],
                                    strlen(topics[t]));
            if (got != want)
                fail_msg("pattern '%s', topic '%s': got %d, want %d", rows[r].pattern, topics[t],
                         got, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_topics),
        cmocka_unit_test(test_valid_patterns),
        cmocka_unit_test(test_match_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
