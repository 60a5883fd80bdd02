/*
 * json_check.c: a validating JSON scanner that allocates nothing, for the send path.
 *
 * It accepts exactly one RFC 8259 value, surrounded by optional white space (space, tab,
 * CR, LF), in valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF), with
 * no NUL byte and no raw control character in strings, escapes as the RFC lists them
 * (\u surrogates only as a high-low pair, as cJSON requires), numbers as the RFC's grammar
 * (no "01", "1.", "-.5"), and nesting at most JSON_MAX_DEPTH deep (cJSON's limit). The
 * fuzz target tests/fuzz/fuzz_envelope.c holds it to cJSON: what cJSON refuses this
 * refuses, and what cJSON accepts and prints back this accepts.
 */
#include <stdint.h>
#include <string.h>

#include "json_check.h"

#define JSON_MAX_DEPTH 1000

typedef struct scanner {
    const unsigned char *s;
    size_t n, i;
    bool spaces; /* white space seen outside strings */
} scanner;

/* The scanner is compiled four times, check_value being inlined with constant `spaced`
 * and `padded`. For compact text, where white space outside strings fails the scan, every
 * skip of spaces vanishes (about 5% of the time of a typical message); text that fails so
 * is scanned again allowing it, and usually fails at its first space. Compact is the
 * common case: the receiving side only ever sees compact text. For padded text (below),
 * the bound checks vanish. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#define PAD_BYTES 32

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

/* Whether i is at (or past) the end. A padded text (json_check copies a short one so) has
 * PAD_BYTES NUL bytes after its end: NUL is valid nowhere in JSON, so every run of the scan
 * stops at it without a bound check, and the check that follows fails as it would at the
 * end; the scan never steps over a NUL, so i never passes n, and the 16-byte string scan
 * and the literals' compare read at most PAD_BYTES past it. */
static ALWAYS_INLINE bool at_end(const scanner *sc, size_t i, bool padded)
{
    return !padded && i >= sc->n;
}

static ALWAYS_INLINE void skip_spaces(scanner *sc, bool spaced, bool padded)
{
    if (!spaced)
        return;
    /* The common case, compact text: one compare (every JSON space is below '!'). */
    if (!at_end(sc, sc->i, padded) && sc->s[sc->i] > ' ')
        return;
    while (!at_end(sc, sc->i, padded) && is_space(sc->s[sc->i])) {
        sc->spaces = true;
        sc->i++;
    }
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
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

/* Four hex digits at sc->i; their value, or -1. */
static long hex4(scanner *sc)
{
    if (sc->n - sc->i < 4)
        return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = sc->s[sc->i + (size_t)k];
        int d = is_digit(c)                              ? c - '0'
                : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    sc->i += 4;
    return v;
}

/* Whether a string's scan goes on past c without a second look: printable ASCII but the
 * quote and the backslash. One range check and two compares, no table. */
static inline bool string_plain(unsigned char c)
{
    return (unsigned)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* At a byte of a string that string_plain refused, other than the closing quote: checks
 * it and what it starts (an escape, a UTF-8 sequence) and moves sc->i past them; false
 * when invalid. */
static bool string_special(scanner *sc, unsigned char c)
{
    if (c < 0x20)
        return false; /* raw control characters, NUL among them */
    if (c >= 0x80) {
        size_t len = utf8_sequence(sc->s + sc->i, sc->n - sc->i);
        if (len == 0)
            return false;
        sc->i += len;
        return true;
    }
    /* A backslash. */
    sc->i++;
    if (sc->i >= sc->n)
        return false;
    c = sc->s[sc->i++];
    if (c == 'u') {
        long cp = hex4(sc);
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate needs its low half */
            if (sc->n - sc->i < 2 || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u')
                return false;
            sc->i += 2;
            long low = hex4(sc);
            if (low < 0xDC00 || low > 0xDFFF)
                return false;
        }
        return true;
    }
    return c != '\0' && strchr("\"\\/bfnrt", c) != NULL;
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* Skips the plain bytes at s[i..n) 16 at a time while 16 remain: the first byte that is a
 * quote, a backslash, below 0x20 or at or above 0x80 (one signed compare catches both)
 * ends the run. Never reads past n. */
static inline size_t skip_plain16(const unsigned char *s, size_t n, size_t i)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
    return i;
}
#else
static inline size_t skip_plain16(const unsigned char *s, size_t n, size_t i)
{
    (void)s, (void)n;
    return i;
}
#endif

/* A string, sc->i at its opening quote. The plain run is scanned with local copies of
 * the scanner's fields (kept in registers), 16 bytes at a time where SSE2 is there (all
 * of x86-64), then one test per byte. Padded, the 16-byte scan has no end to respect:
 * the NUL after the text stops it, at most 16 bytes into the padding. */
static ALWAYS_INLINE bool scan_string(scanner *sc, bool padded)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n, i = sc->i + 1;
    for (;;) {
        i = skip_plain16(s, padded ? SIZE_MAX : n, i);
        while (!at_end(sc, i, padded) && string_plain(s[i]))
            i++;
        if (at_end(sc, i, padded))
            return false;
        if (s[i] == '"') {
            sc->i = i + 1;
            return true;
        }
        sc->i = i;
        if (!string_special(sc, s[i]))
            return false;
        i = sc->i;
    }
}

static ALWAYS_INLINE bool scan_number(scanner *sc, bool padded)
{
    const unsigned char *s = sc->s;
    size_t i = sc->i;
    if (!at_end(sc, i, padded) && s[i] == '-')
        i++;
    if (!at_end(sc, i, padded) && s[i] == '0')
        i++;
    else if (!at_end(sc, i, padded) && s[i] >= '1' && s[i] <= '9')
        while (!at_end(sc, i, padded) && is_digit(s[i]))
            i++;
    else
        return false;
    if (!at_end(sc, i, padded) && s[i] == '.') {
        i++;
        if (at_end(sc, i, padded) || !is_digit(s[i]))
            return false;
        while (!at_end(sc, i, padded) && is_digit(s[i]))
            i++;
    }
    if (!at_end(sc, i, padded) && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (!at_end(sc, i, padded) && (s[i] == '+' || s[i] == '-'))
            i++;
        if (at_end(sc, i, padded) || !is_digit(s[i]))
            return false;
        while (!at_end(sc, i, padded) && is_digit(s[i]))
            i++;
    }
    sc->i = i;
    return true;
}

static ALWAYS_INLINE bool scan_literal(scanner *sc, const char *word, size_t len, bool padded)
{
    if ((!padded && sc->n - sc->i < len) || memcmp(sc->s + sc->i, word, len) != 0)
        return false;
    sc->i += len;
    return true;
}

/* An object key and its colon, sc->i at the key's opening quote (spaces skipped). */
static ALWAYS_INLINE bool scan_key(scanner *sc, bool spaced, bool padded)
{
    if (at_end(sc, sc->i, padded) || sc->s[sc->i] != '"' || !scan_string(sc, padded))
        return false;
    skip_spaces(sc, spaced, padded);
    if (at_end(sc, sc->i, padded) || sc->s[sc->i] != ':')
        return false;
    sc->i++;
    skip_spaces(sc, spaced, padded);
    return true;
}

static ALWAYS_INLINE bool check_value(const char *text, size_t len, bool spaced, bool padded,
                                      bool *compact)
{
    scanner sc = {(const unsigned char *)text, len, 0, false};
    /* One bit per open container: 1 object, 0 array. */
    uint8_t objects[(JSON_MAX_DEPTH + 7) / 8];
    int depth = 0;
    skip_spaces(&sc, spaced, padded);
    for (;;) {
        /* A value starts here. */
        if (at_end(&sc, sc.i, padded))
            return false;
        unsigned char c = sc.s[sc.i];
        bool scalar = true;
        if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH)
                return false;
            bool object = c == '{';
            if (object)
                objects[depth / 8] |= (uint8_t)(1u << (depth % 8));
            else
                objects[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
            depth++;
            sc.i++;
            skip_spaces(&sc, spaced, padded);
            if (!at_end(&sc, sc.i, padded) && sc.s[sc.i] == (object ? '}' : ']')) {
                sc.i++;
                depth--;
            } else {
                if (object && !scan_key(&sc, spaced, padded))
                    return false;
                continue; /* the first member's value */
            }
            scalar = false;
        }
        if (scalar) {
            bool ok = c == '"'                  ? scan_string(&sc, padded)
                      : c == '-' || is_digit(c) ? scan_number(&sc, padded)
                      : c == 't'                ? scan_literal(&sc, "true", 4, padded)
                      : c == 'f'                ? scan_literal(&sc, "false", 5, padded)
                      : c == 'n'                ? scan_literal(&sc, "null", 4, padded)
                                                : false;
            if (!ok)
                return false;
        }
        /* After a value: close containers, or go on to the next member. */
        for (;;) {
            skip_spaces(&sc, spaced, padded);
            if (depth == 0) {
                *compact = !sc.spaces;
                return sc.i == sc.n;
            }
            if (at_end(&sc, sc.i, padded))
                return false;
            bool object = (objects[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1u;
            c = sc.s[sc.i++];
            if (c == (object ? '}' : ']')) {
                depth--;
                continue;
            }
            if (c != ',')
                return false;
            skip_spaces(&sc, spaced, padded);
            if (object && !scan_key(&sc, spaced, padded))
                return false;
            break; /* the next value */
        }
    }
}

/* Texts up to this long are checked in a padded copy on the stack (see at_end): the copy
 * costs less than the bound checks it saves (about 15% of a 120-byte message's check). */
#define PADDED_MAX 2048

bool json_check_unpadded(const char *text, size_t len, bool *compact)
{
    if (check_value(text, len, false, false, compact))
        return true; /* *compact set: no space was allowed */
    return check_value(text, len, true, false, compact);
}

bool json_check(const char *text, size_t len, bool *compact)
{
    if (len > PADDED_MAX)
        return json_check_unpadded(text, len, compact);
    unsigned char copy[PADDED_MAX + PAD_BYTES];
    memcpy(copy, text, len);
    memset(copy + len, 0, PAD_BYTES);
    if (check_value((const char *)copy, len, false, true, compact))
        return true;
    return check_value((const char *)copy, len, true, true, compact);
}
