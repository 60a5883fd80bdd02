/*
 * Process identity and exact death notices on Windows: process handles. A process
 * handle is signalled when the process exits, and while anyone holds one the pid is not
 * reused; the creation time names one process for ever besides.
 */
#include <stdlib.h>

#include "w32.h"

int64_t plat_pid(void)
{
    return (int64_t)GetCurrentProcessId();
}

int plat_current_cpu(void)
{
    return (int)GetCurrentProcessorNumber();
}

/* advapi32's generator (RtlGenRandom), already linked for the security descriptors. */
BOOLEAN NTAPI SystemFunction036(PVOID buffer, ULONG length);

uint64_t plat_random64(void)
{
    uint64_t r = 0;
    if (!SystemFunction036(&r, sizeof r) || r == 0) {
        LARGE_INTEGER t;
        QueryPerformanceCounter(&t);
        r = ((uint64_t)t.QuadPart * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)GetCurrentProcessId() << 40 ^
            (uintptr_t)&r;
    }
    return r != 0 ? r : 1;
}

static HANDLE open_process(int64_t pid, DWORD access)
{
    if (pid <= 0 || pid > (int64_t)UINT32_MAX)
        return NULL;
    return OpenProcess(access, FALSE, (DWORD)pid);
}

uint64_t plat_proc_start_time(int64_t pid)
{
    HANDLE h = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE);
    if (h == NULL)
        return 0;
    uint64_t start = 0;
    FILETIME created, exited, kernel, user;
    /* An exited process lives on while handles to it exist: it counts as gone. */
    if (WaitForSingleObject(h, 0) == WAIT_TIMEOUT &&
        GetProcessTimes(h, &created, &exited, &kernel, &user))
        start = ((uint64_t)created.dwHighDateTime << 32) | created.dwLowDateTime;
    CloseHandle(h);
    return start;
}

bool plat_proc_has_uid(int64_t pid, uint32_t uid)
{
    (void)pid;
    (void)uid;
    return true; /* no user ids here (plat_chan_peer reports 0 for everyone) */
}

bool plat_proc_in_group(int64_t pid, uint32_t gid)
{
    /* No POSIX groups here: the security descriptors decide who may open the segment and
     * the broker's pipe (see w32_mode_to_sd). */
    (void)pid;
    (void)gid;
    return false;
}

bool plat_proc_alive(int64_t pid, uint64_t start_time)
{
    uint64_t now = plat_proc_start_time(pid);
    return now != 0 && now == start_time;
}

mbx_err plat_proc_watch(int64_t pid, plat_handle *out)
{
    HANDLE h = open_process(pid, SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION);
    if (h == NULL)
        return GetLastError() == ERROR_INVALID_PARAMETER ? MBX_EGONE
                                                         : w32_map_error(GetLastError());
    if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
        CloseHandle(h);
        return MBX_EGONE;
    }
    w32_obj *o = calloc(1, sizeof *o);
    if (o == NULL) {
        CloseHandle(h);
        return MBX_ENOMEM;
    }
    o->kind = W32_PROCESS;
    o->h = h;
    o->ready = h;
    *out = (plat_handle)o;
    return MBX_OK;
}

long plat_raise_handle_limit(void)
{
    /* Windows has no small per-process handle limit to raise (about 16 million). */
    return 1L << 24;
}

void plat_kill_self(void)
{
    TerminateProcess(GetCurrentProcess(), 137);
}

void plat_at_fork_child(void (*fn)(void))
{
    (void)fn; /* no fork on Windows */
}

mbx_err plat_notifier_create(plat_handle *out)
{
    w32_obj *o = calloc(1, sizeof *o);
    if (o == NULL)
        return MBX_ENOMEM;
    o->kind = W32_EVENT;
    o->h = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (o->h == NULL) {
        free(o);
        return w32_map_error(GetLastError());
    }
    o->ready = o->h;
    *out = (plat_handle)o;
    return MBX_OK;
}

void plat_notifier_post(plat_handle h)
{
    SetEvent(w32_from(h)->h);
}
