/*
 * size_suffix.h: a byte count as people write it on a command line, "4096", "64K",
 * "1M", "1G" (binary multiples, either case, an optional trailing "B" or "iB"). Header
 * only, shared by mailboxd and mbx (as escape.h is) so that every size option reads alike.
 */
#ifndef MBX_SIZE_SUFFIX_H
#define MBX_SIZE_SUFFIX_H

#include <stdbool.h>
#include <stdint.h>

/* Whole-string parse into *out, in lo..hi; false for anything else (no sign, no spaces,
 * no fraction, no overflow). */
static inline bool size_parse(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift != 0) {
        s++;
        if (*s == 'i')
            s++;
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (*s == 'B' || *s == 'b')
        s++;
    if (*s != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

#endif
