/*
 * Fuzz target: message validation, compared with cJSON on the same input.
 * - whatever cJSON refuses, envelope_validate() refuses;
 * - whatever envelope_validate() accepts, its compact form is accepted too, flagged
 *   compact, and means the same to cJSON;
 * - the envelope built around an accepted body is valid JSON.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

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
    char *theirs = canonical(text, size);
    if (theirs == NULL) {
        CHECK(err != MBX_OK);
        return 0;
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
        char *env = envelope_to_json("a", "b", 1, 2, packed, n);
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
