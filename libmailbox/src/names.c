/*
 * Names: 1 to MBX_NAME_MAX bytes of [A-Za-z0-9._-], starting with a letter, digit or '_',
 * and without "..".
 * That excludes '/', "..", control characters, spaces and anything a shell would need
 * quoted, and keeps names safe to embed in file names and in JSON without escaping.
 */
#include <stdlib.h>
#include <string.h>

#include "names.h"

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool names_valid_bounded(const char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return false;
    size_t n = 0;
    while (n < cap && buf[n] != '\0')
        n++;
    if (n == 0 || n == cap || n > MBX_NAME_MAX)
        return false;
    unsigned char first = (unsigned char)buf[0];
    if (first == '.' || first == '-')
        return false;
    /* ".." anywhere: harmless without '/', but refused so no name ever looks like a path. */
    if (strstr(buf, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)buf[i]))
            return false;
    return true;
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
