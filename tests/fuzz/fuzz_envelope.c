/*
 * Fuzz target: message validation (our allocation-free scanner), compared with cJSON on
 * the same input.
 * - whatever cJSON refuses, envelope_validate() refuses;
 * - whatever cJSON accepts from valid UTF-8, its own compact print of it is accepted (so
 *   the scanner is not stricter than JSON: cJSON's output is plain RFC 8259; cJSON does
 *   not check UTF-8 and prints invalid bytes back, hence the condition);
 * - whatever envelope_validate() accepts, its compact form is accepted too, flagged
 *   compact, and means the same to cJSON;
 * - the envelope built around an accepted body is valid JSON;
 * - the check of a short text (in a padded copy) and of a long one agree.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json_check.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Valid UTF-8 by the well-formed byte sequences table of RFC 3629 (Unicode Table 3-7):
 * written apart from the library's check, so that one can judge the other. */
static bool valid_utf8(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c == 0xE0) {
            len = 3, lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            len = 3;
        } else if (c == 0xED) {
            len = 3, hi = 0x9F;
        } else if (c == 0xF0) {
            len = 4, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            len = 4;
        } else if (c == 0xF4) {
            len = 4, hi = 0x8F;
        } else {
            return false;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

static char *canonical(const char *text, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    if (doc == NULL)
        return NULL;
    char *out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    bool compact = false;
    mbx_err err = envelope_validate(text, size, &compact);
    bool padded_compact = false, unpadded_compact = false;
    bool padded_ok = json_check(text, size, &padded_compact);
    CHECK(json_check_unpadded(text, size, &unpadded_compact) == padded_ok);
    CHECK(!padded_ok || padded_compact == unpadded_compact);
    char *theirs = canonical(text, size);
    if (theirs == NULL) {
        CHECK(err != MBX_OK);
        return 0;
    }
    if (valid_utf8(text, size)) {
        bool printed_compact = false;
        CHECK(envelope_validate(theirs, strlen(theirs), &printed_compact) == MBX_OK);
        CHECK(printed_compact);
    }
    if (err == MBX_OK) {
        char *packed = malloc(size + 1);
        size_t n = envelope_compact(text, size, packed);
        CHECK(n <= size);
        bool again = false;
        CHECK(envelope_validate(packed, n, &again) == MBX_OK && again);
        CHECK(compact == (n == size));
        char *ours = canonical(packed, n);
        CHECK(ours != NULL && strcmp(ours, theirs) == 0);
        char *env = envelope_to_json("a", NULL, "b", 1, 2, 2, 7, NULL, 0, packed, n);
        cJSON *doc = cJSON_Parse(env);
        CHECK(doc != NULL);
        cJSON_Delete(doc);
        free(env);
        free(ours);
        free(packed);
    }
    free(theirs);
    return 0;
}
