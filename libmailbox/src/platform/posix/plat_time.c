/* Clocks and the errno-to-mbx_err table of the POSIX backend. */
#include <errno.h>
#include <time.h>

#include "posix.h"

int64_t plat_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t plat_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t plat_deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return PLAT_FOREVER;
    return plat_now_ns() + (int64_t)timeout_ms * 1000000;
}

static const struct {
    int errno_value;
    mbx_err err;
} errno_table[] = {
    {EACCES, MBX_EPERM},        {EPERM, MBX_EPERM},      {ENOENT, MBX_ENOBROKER},
    {EEXIST, MBX_EEXIST},       {ENOMEM, MBX_ENOMEM},    {ENOSPC, MBX_ENOMEM},
    {EFBIG, MBX_ENOMEM},        {EINVAL, MBX_EINVAL},    {ENAMETOOLONG, MBX_EINVAL},
    {ETIMEDOUT, MBX_ETIMEDOUT}, {EAGAIN, MBX_ETIMEDOUT}, {ECONNREFUSED, MBX_ENOBROKER},
};

/* The errno behind the last MBX_ESYSTEM of this thread (mbx_os_error). */
static _Thread_local int last_os_error;

mbx_err plat_map_errno(int err)
{
    for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
        if (errno_table[i].errno_value == err)
            return errno_table[i].err;
    last_os_error = err;
    return MBX_ESYSTEM;
}

mbx_err plat_system_error(int code)
{
    last_os_error = code;
    return MBX_ESYSTEM;
}

int plat_last_os_error(void)
{
    return last_os_error;
}
