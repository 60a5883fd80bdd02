/*
 * Names: 1 to MBX_NAME_MAX bytes of [A-Za-z0-9._-], starting with a letter, digit or '_',
 * and without "..".
 * That excludes '/', "..", control characters, spaces and anything a shell would need
 * quoted, and keeps names safe to embed in file names and in JSON without escaping.
 */
#include <stdlib.h>

#include "names.h"

static inline bool name_char(unsigned char c)
{
    return (unsigned)(c - 'a') < 26 || (unsigned)(c - 'A') < 26 || (unsigned)(c - '0') < 10 ||
           c == '.' || c == '_' || c == '-';
}

/* One pass, as it runs on the send and receive paths: length, characters and "..". */
bool names_valid_bounded(const char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return false;
    unsigned char first = (unsigned char)buf[0];
    if (first == '\0' || first == '.' || first == '-')
        return false;
    size_t limit = cap < MBX_NAME_MAX + 1 ? cap : MBX_NAME_MAX + 1;
    unsigned char prev = 0;
    for (size_t i = 0; i < limit; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\0')
            return true;
        /* ".." anywhere: harmless without '/', but refused so no name looks like a path. */
        if (!name_char(c) || (c == '.' && prev == '.'))
            return false;
        prev = c;
    }
    return false; /* no terminator within the bound, or longer than MBX_NAME_MAX */
}

mbx_err mbx_check_name(const char *name)
{
    return names_valid_bounded(name, MBX_NAME_MAX + 1) ? MBX_OK : MBX_EINVAL;
}

const char *mbx_default_namespace(void)
{
    const char *env = getenv("MBX_NAMESPACE");
    return (env != NULL && env[0] != '\0') ? env : "default";
}
