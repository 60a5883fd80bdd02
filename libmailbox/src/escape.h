/*
 * escape.h: making text from the command line or a peer safe to print in one line.
 * Header-only (no layout, no state), so that the tools, which see only the public API,
 * use the same rule as the broker.
 */
#ifndef MBX_ESCAPE_H
#define MBX_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Copies in to out (cap bytes, NUL-terminated), writing each control character (below
 * 0x20, and 0x7f) and the backslash as a C-style escape (\n, \t, \e, \\, \xNN), so that
 * a name holding a line break or a terminal escape sequence cannot split an error line
 * or drive the terminal. Text that does not fit is cut and ends with "...".
 */
static inline void escape_text(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        char piece[5];
        if (*p == '\n')
            snprintf(piece, sizeof piece, "\\n");
        else if (*p == '\t')
            snprintf(piece, sizeof piece, "\\t");
        else if (*p == 0x1b)
            snprintf(piece, sizeof piece, "\\e");
        else if (*p == '\\')
            snprintf(piece, sizeof piece, "\\\\");
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(piece, sizeof piece, "\\x%02x", *p);
        else
            piece[0] = (char)*p, piece[1] = '\0';
        size_t n = 0;
        while (piece[n] != '\0')
            n++;
        if (o + n + 4 > cap) {
            snprintf(out + o, cap - o, "...");
            return;
        }
        for (size_t i = 0; i < n; i++)
            out[o++] = piece[i];
    }
    out[o] = '\0';
}

#endif
