/* json_error.c: why a message was refused as JSON, said with its position (cli.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* What is wrong at text[pos], for "invalid JSON at byte POS: ...". */
static void describe(const char *text, size_t len, size_t pos, char *out, size_t cap)
{
    if (pos >= len) {
        snprintf(out, cap, "the text ended inside a value");
        return;
    }
    unsigned char c = (unsigned char)text[pos];
    size_t word = 0;
    while (word < len && (isalnum((unsigned char)text[word]) || text[word] == '_'))
        word++;
    if (pos == 0 && word == len && isalpha(c))
        snprintf(out, cap, "a bare word; a string is quoted: '\"%.*s\"'",
                 (int)(len > 40 ? 40 : len), text);
    else if (c == '\'')
        snprintf(out, cap, "expected a string in double quotes (JSON has no single quotes)");
    else if (c < 0x20)
        snprintf(out, cap, "a control character (0x%02x): escape it in a string", c);
    else if (c >= 0x80)
        snprintf(out, cap, "a byte that is not valid UTF-8 here (0x%02x)", c);
    else
        snprintf(out, cap, "unexpected '%c'", c);
}

/* Where a string left open at the end starts, or len when every string is closed. */
static size_t open_string(const char *text, size_t len)
{
    size_t start = len;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        if (in && text[i] == '\\')
            i++;
        else if (text[i] == '"')
            start = (in = !in) ? i : len;
    }
    return in ? start : len;
}

/* Whether pos is where an object's key should start: the innermost open container
 * (strings skipped) is an object, and '{' or ',' comes before pos. */
static bool at_key(const char *text, size_t pos)
{
    char stack[64];
    int depth = 0;
    bool in = false;
    char last = 0;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (in) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in = false;
            last = c;
            continue;
        }
        if (c == '"')
            in = true;
        else if ((c == '{' || c == '[') && depth < 64)
            stack[depth++] = c;
        else if ((c == '}' || c == ']') && depth > 0)
            depth--;
        if (strchr(" \t\r\n", c) == NULL)
            last = c;
    }
    return depth > 0 && stack[depth - 1] == '{' && (last == '{' || last == ',');
}

void cli_json_error(const char *text, size_t len, char *out, size_t cap)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (v != NULL) {
        cJSON_Delete(v);
        size_t pos = (size_t)(end - text);
        while (pos < len && strchr(" \t\r\n", text[pos]) != NULL)
            pos++;
        if (pos < len)
            snprintf(out, cap,
                     "invalid JSON at byte %zu: more after the value (one JSON value "
                     "per message)",
                     pos);
        else /* cJSON took it, our stricter scanner did not (UTF-8, escapes, numbers) */
            snprintf(out, cap,
                     "invalid JSON (not valid UTF-8, or an escape or number "
                     "RFC 8259 does not allow)");
        return;
    }
    const char *at = cJSON_GetErrorPtr();
    size_t pos = at != NULL && at >= text && at <= text + len ? (size_t)(at - text) : len;
    size_t str = open_string(text, len);
    if (str < len) {
        snprintf(out, cap,
                 "invalid JSON at byte %zu: the text ended inside the string that starts at "
                 "byte %zu",
                 len, str);
        return;
    }
    /* cJSON points one past a key that does not start with '"': back to it. */
    if (pos > 0 && pos <= len && at_key(text, pos - 1))
        pos--;
    /* ... and at the last byte when the text ends inside a value. */
    if (pos + 1 == len && (isalnum((unsigned char)text[pos]) || strchr(".+-", text[pos]))) {
        snprintf(out, cap, "invalid JSON at byte %zu: the text ended inside a value", len);
        return;
    }
    /* ... and at the last '[', '{', ',' or ':' when the text ends after it. */
    size_t rest = pos + 1;
    while (rest < len && strchr(" \t\r\n", text[rest]) != NULL)
        rest++;
    if (pos < len && rest == len && strchr("[{,:", text[pos]) != NULL) {
        snprintf(out, cap, "invalid JSON at byte %zu: the text ended after '%c'", len, text[pos]);
        return;
    }
    char what[160];
    describe(text, len, pos, what, sizeof what);
    snprintf(out, cap, "invalid JSON at byte %zu: %s", pos, what);
}

int cli_fail_message(const char *cmd, mbx_err err, const char *what, const char *text, size_t len,
                     size_t max)
{
    if (err == MBX_EINVALJSON) {
        char why[256];
        cli_json_error(text, len, why, sizeof why);
        return cli_fail(cmd, EXIT_BAD_MESSAGE, "%s: %s", what, why);
    }
    if (err == MBX_ETOOLARGE)
        return cli_fail(cmd, EXIT_BAD_MESSAGE,
                        "%s: %zu bytes: message larger than the namespace's limit of %zu "
                        "bytes (mailboxd --max-message)",
                        what, len, max);
    return cli_fail_err(cmd, err, what);
}
