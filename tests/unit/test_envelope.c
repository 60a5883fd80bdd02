/* Unit tests: message validation, compaction and the envelope's JSON form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "envelope.h"
#include "json_check.h"

/* The check a short text gets (a padded copy) and the one a long text gets agree. */
static void same_both_ways(const char *s, size_t len)
{
    bool compact = false, unpadded_compact = false;
    bool ok = json_check(s, len, &compact);
    if (json_check_unpadded(s, len, &unpadded_compact) != ok || (ok && compact != unpadded_compact))
        fail_msg("padded and unpadded checks disagree on '%.*s'", (int)len, s);
}

static mbx_err check(const char *s)
{
    bool compact;
    same_both_ways(s, strlen(s));
    return envelope_validate(s, strlen(s), &compact);
}

static void test_accepts_json_values(void **state)
{
    (void)state;
    const char *ok[] = {"{}",
                        "[]",
                        "0",
                        "-1.5e3",
                        "-0",
                        "0.25",
                        "1E+2",
                        "[10,-0.0e-1]",
                        "true",
                        "null",
                        "\"\"",
                        "\"a b\"",
                        "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
                        " { } ",
                        "\n[1]\r\n",
                        "\"\\u00e9\\n\\\"\"",
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (check(ok[i]) != MBX_OK)
            fail_msg("refused %s", ok[i]);
}

static void test_refuses_non_json(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         " ",
                         "{",
                         "}",
                         "[1,]",
                         "{\"a\"}",
                         "{a:1}",
                         "'x'",
                         "01",
                         "1 2",
                         "{} x",
                         "nul",
                         "1.",
                         "-.5",
                         ".5",
                         "-",
                         "1e",
                         "1e+",
                         "00",
                         "-01",
                         "[1.e3]",
                         "[01]",
                         "NaN",
                         "\"unterminated",
                         "\"tab\there\"",
                         "\"nl\nhere\"",
                         "/* c */ {}",
                         "{}//c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check(bad[i]) != MBX_EINVALJSON)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_refuses_bad_bytes(void **state)
{
    (void)state;
    bool compact;
    assert_int_equal(envelope_validate("\"a\0b\"", 5, &compact), MBX_EINVALJSON);
    assert_int_equal(envelope_validate("{}\0", 3, &compact), MBX_EINVALJSON);
    /* A NUL where the padding would put one: inside a value, after it, in a number. */
    const char *nul[] = {"\"a\0b\"", "{}\0", "1\0", "[1,\0]", "tr\0e", "\"\\\0\""};
    const size_t nul_len[] = {5, 3, 2, 5, 4, 4};
    for (size_t i = 0; i < sizeof nul / sizeof nul[0]; i++) {
        same_both_ways(nul[i], nul_len[i]);
        if (envelope_validate(nul[i], nul_len[i], &compact) != MBX_EINVALJSON)
            fail_msg("accepted NUL case #%zu", i);
    }
    const char *bad_utf8[] = {"\"\xc3\"",         "\"\xc3\x28\"",     "\"\xc0\xaf\"",
                              "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
                              "\"\xff\"",         "\"\x80\""};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        if (check(bad_utf8[i]) != MBX_EINVALJSON)
            fail_msg("accepted invalid UTF-8 #%zu", i);
    assert_int_equal(envelope_validate(NULL, 0, &compact), MBX_EINVALJSON);
}

static void test_refuses_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000;
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    assert_int_equal(check(s), MBX_EINVALJSON);
    free(s);
}

/* Past the length checked in a padded copy: a long compact document, whole and cut. */
static void test_long_documents(void **state)
{
    (void)state;
    enum { ITEMS = 400 };
    char *doc = malloc(ITEMS * 16 + 2);
    size_t n = 0;
    doc[n++] = '[';
    for (int i = 0; i < ITEMS; i++)
        n += (size_t)sprintf(doc + n, i % 2 ? "\"item-%04d\"," : "-%d.5e+2,", i);
    doc[n - 1] = ']';
    assert_true(n > 2048);
    bool compact = false;
    assert_true(json_check(doc, n, &compact));
    assert_true(compact);
    for (size_t cut = n - 40; cut < n; cut++)
        assert_false(json_check(doc, cut, &compact));
    for (size_t cut = 0; cut <= n; cut += 97)
        same_both_ways(doc, cut);
    free(doc);
}

static void test_compaction(void **state)
{
    (void)state;
    const char *in = " { \"a b\" : [ 1 ,\t2 ] ,\n \"c\" : \"x \\\" y\" } ";
    bool compact = true;
    assert_int_equal(envelope_validate(in, strlen(in), &compact), MBX_OK);
    assert_false(compact);
    char out[128];
    size_t n = envelope_compact(in, strlen(in), out);
    out[n] = '\0';
    assert_string_equal(out, "{\"a b\":[1,2],\"c\":\"x \\\" y\"}");
    assert_int_equal(envelope_validate(out, n, &compact), MBX_OK);
    assert_true(compact);
}

static void test_envelope_json(void **state)
{
    (void)state;
    const char *body = "{\"k\":[1,\"v\"]}";
    char *s = envelope_to_json("alice", NULL, "bob", 42, 1700000000000000, 0, 0, NULL, 0, body,
                               strlen(body));
    assert_non_null(s);
    cJSON *doc = cJSON_Parse(s);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "from")->valuestring, "alice");
    assert_string_equal(cJSON_GetObjectItem(doc, "to")->valuestring, "bob");
    assert_true(cJSON_GetObjectItem(doc, "seq")->valuedouble == 42.0);
    assert_true(cJSON_GetObjectItem(doc, "ts")->valuedouble == 1700000000000000.0);
    char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(doc, "body"));
    assert_string_equal(b, body);
    free(b);
    cJSON_Delete(doc);
    free(s);
    /* A reply says so, with the id of the request it answers. */
    s = envelope_to_json("alice", NULL, "bob", 43, 1700000000000001, 2, 77, NULL, 0, body,
                         strlen(body));
    doc = cJSON_Parse(s);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "kind")->valuestring, "reply");
    assert_true(cJSON_GetObjectItem(doc, "corr")->valuedouble == 77.0);
    assert_null(cJSON_GetObjectItem(doc, "node")); /* sent here: no node */
    cJSON_Delete(doc);
    free(s);
    /* One that came through a bridge names its node; from stays the sender's name. */
    s = envelope_to_json("alice", "hostb", "bob", 44, 1, 0, 0, NULL, 0, body, strlen(body));
    doc = cJSON_Parse(s);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "from")->valuestring, "alice");
    assert_string_equal(cJSON_GetObjectItem(doc, "node")->valuestring, "hostb");
    cJSON_Delete(doc);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_json_values), cmocka_unit_test(test_refuses_non_json),
        cmocka_unit_test(test_refuses_bad_bytes),   cmocka_unit_test(test_refuses_deep_nesting),
        cmocka_unit_test(test_compaction),          cmocka_unit_test(test_envelope_json),
        cmocka_unit_test(test_long_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
