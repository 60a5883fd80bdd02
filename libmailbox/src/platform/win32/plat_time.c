/* Clocks, waits and the error tables of the Win32 backend. */
#include "w32.h"

static int64_t qpc_frequency(void)
{
    static LARGE_INTEGER freq; /* constant from boot on; a racing first call is harmless */
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    return freq.QuadPart;
}

int64_t plat_now_ns(void)
{
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    int64_t f = qpc_frequency();
    /* Split to keep the product from overflowing after long uptimes. */
    return now.QuadPart / f * 1000000000 + now.QuadPart % f * 1000000000 / f;
}

int64_t plat_wall_us(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    /* 100 ns ticks since 1601 to microseconds since 1970. */
    return (int64_t)((t - 116444736000000000ULL) / 10);
}

int64_t plat_deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return PLAT_FOREVER;
    return plat_now_ns() + (int64_t)timeout_ms * 1000000;
}

DWORD w32_wait_ms(int64_t deadline_ns)
{
    if (deadline_ns == PLAT_FOREVER)
        return INFINITE;
    int64_t left = deadline_ns - plat_now_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)ms;
}

void plat_yield(void)
{
    SwitchToThread();
}

/* Signals as POSIX has them do not reach a Windows thread (Ctrl-C comes on a thread of its
 * own): nothing to hold off. */
void plat_signals_hold(plat_signal_hold *h)
{
    h->held = false;
}

bool plat_signals_came(const plat_signal_hold *h)
{
    (void)h;
    return false;
}

void plat_signals_release(plat_signal_hold *h)
{
    h->held = false;
}

void plat_sleep_ns(int64_t ns)
{
    Sleep((DWORD)(ns / 1000000 > 0 ? ns / 1000000 : 1));
}

static const struct {
    DWORD code;
    mbx_err err;
} error_table[] = {
    {ERROR_ACCESS_DENIED, MBX_EPERM},          {ERROR_PRIVILEGE_NOT_HELD, MBX_EPERM},
    {ERROR_FILE_NOT_FOUND, MBX_ENOBROKER},     {ERROR_PATH_NOT_FOUND, MBX_ENOBROKER},
    {ERROR_BROKEN_PIPE, MBX_ENOBROKER},        {ERROR_NO_DATA, MBX_ENOBROKER},
    {ERROR_PIPE_NOT_CONNECTED, MBX_ENOBROKER}, {ERROR_ALREADY_EXISTS, MBX_EEXIST},
    {ERROR_NOT_ENOUGH_MEMORY, MBX_ENOMEM},     {ERROR_OUTOFMEMORY, MBX_ENOMEM},
    {ERROR_COMMITMENT_LIMIT, MBX_ENOMEM},      {ERROR_NO_SYSTEM_RESOURCES, MBX_ENOMEM},
    {ERROR_INVALID_PARAMETER, MBX_EINVAL},     {ERROR_INVALID_NAME, MBX_EINVAL},
    {ERROR_FILENAME_EXCED_RANGE, MBX_EINVAL},  {ERROR_SEM_TIMEOUT, MBX_ETIMEDOUT},
    {ERROR_PIPE_BUSY, MBX_ETIMEDOUT},
};

/* The GetLastError() behind the last MBX_ESYSTEM of this thread (mbx_os_error). */
static _Thread_local int last_os_error;

mbx_err w32_map_error(DWORD code)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == code)
            return error_table[i].err;
    last_os_error = (int)code;
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
