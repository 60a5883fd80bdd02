/* envelope.c: message validation and the envelope's JSON form. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* Length of the UTF-8 sequence starting at s (at most n bytes), 0 when invalid:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint32_t min, cp;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

static bool json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Length of the JSON number at s (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?),
 * or 0 when the run of number characters there is not one. cJSON alone accepts forms such
 * as "01", "1." or "-.5" that other parsers refuse.
 */
static size_t number_length(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && digit(s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !digit(s[i]))
            return 0;
        while (i < n && digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !digit(s[i]))
            return 0;
        while (i < n && digit(s[i]))
            i++;
    }
    /* The number must end here: a following digit, '.', 'e' or sign is malformed. */
    if (i < n &&
        (digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-'))
        return 0;
    return i;
}

/* Where a byte of valid JSON text stands: inside a string or not. Shared by the scanner and
 * the compactor so both agree on what is white space outside strings. */
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

/* One pass over the bytes: encoding, NUL, raw control characters in strings, and
 * number syntax, and whether any white space stands outside strings. The rest of the
 * grammar is cJSON's job. */
static bool scan_text(const char *json, size_t len, bool *compact)
{
    const unsigned char *s = (const unsigned char *)json;
    string_state st = {false, false};
    bool spaces = false;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence(s + i, len - i);
            if (n == 0)
                return false;
            i += n;
            continue;
        }
        if (c == '\0' || (st.in_string && c < 0x20))
            return false;
        if (string_step(&st, (char)c)) {
            i++;
            continue;
        }
        if (json_space(c)) {
            spaces = true;
        } else if (c == '-' || digit((char)c)) {
            size_t n = number_length(json + i, len - i);
            if (n == 0)
                return false;
            i += n;
            continue;
        }
        i++;
    }
    *compact = !spaces;
    return !st.in_string;
}

mbx_err envelope_validate(const char *json, size_t len, bool *compact)
{
    if (json == NULL || len == 0 || !scan_text(json, len, compact))
        return MBX_EINVALJSON;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (doc == NULL)
        return MBX_EINVALJSON;
    cJSON_Delete(doc);
    /* cJSON stops after the first value; anything but white space after it is junk. */
    for (const char *p = end; p < json + len; p++)
        if (!json_space((unsigned char)*p))
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

char *envelope_to_json(const char *from, const char *to, uint64_t seq, int64_t ts_us,
                       const char *body, size_t body_len)
{
    /* Names are restricted to characters that need no escaping in JSON (names.c), and the
     * body is validated compact JSON, so plain formatting builds valid JSON. */
    static const char fmt[] =
        "{\"from\":\"%s\",\"to\":\"%s\",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"body\":";
    int head = snprintf(NULL, 0, fmt, from, to, seq, ts_us);
    if (head < 0)
        return NULL;
    size_t total = (size_t)head + body_len + 2;
    char *out = malloc(total);
    if (out == NULL)
        return NULL;
    snprintf(out, total, fmt, from, to, seq, ts_us);
    memcpy(out + head, body, body_len);
    out[(size_t)head + body_len] = '}';
    out[(size_t)head + body_len + 1] = '\0';
    return out;
}
