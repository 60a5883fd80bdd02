/*
 * posix_env.h: setenv() and unsetenv() for the unit tests built for Windows, whose C
 * library has _putenv_s() instead. Force-included by CMakeLists.txt, so the shared unit
 * test sources stay free of platform conditionals.
 */
#ifndef MBX_POSIX_ENV_H
#define MBX_POSIX_ENV_H

#include <stdlib.h>

static inline int setenv(const char *name, const char *value, int overwrite)
{
    if (!overwrite && getenv(name) != NULL)
        return 0;
    return _putenv_s(name, value) == 0 ? 0 : -1;
}

static inline int unsetenv(const char *name)
{
    return _putenv_s(name, "") == 0 ? 0 : -1; /* an empty value removes the variable */
}

#endif
