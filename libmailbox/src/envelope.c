/* envelope.c: message validation and the envelope's JSON form. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "json_check.h"

/* Where a byte of valid JSON text stands: inside a string or not. */
typedef struct string_state {
    bool in_string;
    bool escaped;
} string_state;

/* Advances past byte c; returns true when c belongs to a string (quotes included). */
static bool string_step(string_state *st, char c)
{
    if (st->in_string) {
        if (st->escaped)
            st->escaped = false;
        else if (c == '\\')
            st->escaped = true;
        else if (c == '"')
            st->in_string = false;
        return true;
    }
    if (c == '"') {
        st->in_string = true;
        return true;
    }
    return false;
}

static bool json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

mbx_err envelope_validate(const char *json, size_t len, bool *compact)
{
    if (json == NULL || len == 0 || !json_check(json, len, compact))
        return MBX_EINVALJSON;
    return MBX_OK;
}

size_t envelope_compact(const char *json, size_t len, char *out)
{
    string_state st = {false, false};
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (!string_step(&st, json[i]) && json_space((unsigned char)json[i]))
            continue;
        out[o++] = json[i];
    }
    return o;
}

char *envelope_to_json(const char *from, const char *node, const char *to, uint64_t seq,
                       int64_t ts_us, uint32_t kind, uint64_t corr, const char *topic,
                       uint64_t missed, const char *body, size_t body_len)
{
    /* Names are restricted to characters that need no escaping in JSON (names.c), and the
     * body is validated compact JSON, so plain formatting builds valid JSON. A request
     * and a reply say so, with their correlation id; a plain message says nothing more. */
    char extra[MBX_TOPIC_MAX + 96] = "";
    if (kind == 1 || kind == 2)
        snprintf(extra, sizeof extra, ",\"kind\":\"%s\",\"corr\":%" PRIu64,
                 kind == 1 ? "request" : "reply", corr);
    else if (kind == 3 && topic != NULL && missed > 0)
        snprintf(extra, sizeof extra, ",\"topic\":\"%s\",\"missed\":%" PRIu64, topic, missed);
    else if (kind == 3 && topic != NULL)
        snprintf(extra, sizeof extra, ",\"topic\":\"%s\"", topic);
    char origin[MBX_NAME_MAX + 16] = "";
    if (node != NULL)
        snprintf(origin, sizeof origin, ",\"node\":\"%s\"", node);
    static const char fmt[] =
        "{\"from\":\"%s\"%s,\"to\":\"%s\",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 "%s,\"body\":";
    int head = snprintf(NULL, 0, fmt, from, origin, to, seq, ts_us, extra);
    if (head < 0)
        return NULL;
    size_t total = (size_t)head + body_len + 2;
    char *out = malloc(total);
    if (out == NULL)
        return NULL;
    snprintf(out, total, fmt, from, origin, to, seq, ts_us, extra);
    memcpy(out + head, body, body_len);
    out[(size_t)head + body_len] = '}';
    out[(size_t)head + body_len + 1] = '\0';
    return out;
}
