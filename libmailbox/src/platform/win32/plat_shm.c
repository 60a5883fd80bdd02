/*
 * Named shared segments on Windows: a pagefile-backed section from CreateFileMappingA,
 * committed in full when created (SEC_COMMIT: the counterpart of posix_fallocate, so a
 * machine short of commit fails at start, not at a later touch), named
 * "Local\mbx.<ns>" ("Global\mbx.<ns>" with MBX_GLOBAL=1) and protected by a security
 * descriptor built from the permission bits.
 *
 * Every segment mapped by this process is recorded here, so the sync objects inside it
 * can be named after the segment and their offset in it (see plat_sync.c).
 */
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "w32.h"

#define MAX_SEGMENTS 64

typedef struct segment_rec {
    void *base; /* NULL: free entry */
    size_t size;
    HANDLE map;
    uint32_t id;
    char prefix[96];
    SECURITY_ATTRIBUTES sa; /* for the sync objects; lpSecurityDescriptor may be NULL */
} segment_rec;

static SRWLOCK segments_lock = SRWLOCK_INIT;
static segment_rec segments[MAX_SEGMENTS];
static uint32_t next_segment_id = 1;

bool w32_scope_is_global(void)
{
    const char *global = getenv("MBX_GLOBAL");
    return global != NULL && strcmp(global, "1") == 0;
}

void w32_object_prefix(const char *ns, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s\\mbx.%s", w32_scope_is_global() ? "Global" : "Local", ns);
}

/* The current user's SID as a string, for SDDL. */
static bool user_sid_string(char *out, size_t cap)
{
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return false;
    union {
        TOKEN_USER user;
        unsigned char bytes[256];
    } info;
    DWORD len = 0;
    bool ok = GetTokenInformation(token, TokenUser, &info, sizeof info, &len);
    CloseHandle(token);
    char *str = NULL;
    if (!ok || !ConvertSidToStringSidA(info.user.User.Sid, &str))
        return false;
    snprintf(out, cap, "%s", str);
    LocalFree(str);
    return true;
}

typedef enum { SD_SECTION, SD_SYNC, SD_PIPE } sd_kind;

/* Access granted to Everyone for the "other" bits, per kind of object: no more than each
 * use needs. Sync objects: waiting and releasing (SYNCHRONIZE | MUTEX_MODIFY_STATE |
 * SEMAPHORE_MODIFY_STATE), never WRITE_DAC or WRITE_OWNER. The pipe: reading, writing data
 * and setting the read mode (FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES),
 * never FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE: another user could
 * otherwise serve instances of the broker's pipe. */
static const char *other_rights(unsigned mode, sd_kind kind)
{
    bool r = mode & 0004, w = mode & 0002;
    switch (kind) {
    case SD_SYNC:
        return w ? "0x100003" : NULL;
    case SD_PIPE:
        return r && w ? "0x12018b" : NULL; /* a client both writes and reads */
    default:
        return r && w ? "GRGW" : r ? "GR" : w ? "GW" : NULL;
    }
}

static PSECURITY_DESCRIPTOR build_sd(unsigned mode, sd_kind kind)
{
    char user[184];
    if (!user_sid_string(user, sizeof user))
        return NULL;
    char sddl[320];
    const char *other = other_rights(mode, kind);
    /* P: protected (no inherited entries). The owner and SYSTEM always have full access,
     * as root and the owner always can on POSIX. */
    snprintf(sddl, sizeof sddl, "D:P(A;;GA;;;%s)(A;;GA;;;SY)%s%s%s", user,
             other != NULL ? "(A;;" : "", other != NULL ? other : "",
             other != NULL ? ";;;WD)" : "");
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return NULL;
    return sd;
}

PSECURITY_DESCRIPTOR w32_pipe_sd(unsigned mode)
{
    return build_sd(mode, SD_PIPE);
}

PSECURITY_DESCRIPTOR w32_mode_to_sd(unsigned mode)
{
    return build_sd(mode, SD_SECTION);
}

unsigned w32_object_mode(HANDLE h)
{
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                        &sd) != ERROR_SUCCESS)
        return 0;
    unsigned mode = 0;
    union {
        SID sid;
        unsigned char bytes[SECURITY_MAX_SID_SIZE];
    } world;
    DWORD world_len = sizeof world;
    bool have_world = CreateWellKnownSid(WinWorldSid, NULL, &world, &world_len);
    HANDLE token;
    union {
        TOKEN_USER user;
        unsigned char bytes[256];
    } me;
    DWORD len = 0;
    bool have_me = false;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        have_me = GetTokenInformation(token, TokenUser, &me, sizeof me, &len);
        CloseHandle(token);
    }
    for (DWORD i = 0; dacl != NULL && i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace;
        if (!GetAce(dacl, i, (void **)&ace) || ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
            continue;
        PSID sid = (PSID)&ace->SidStart;
        ACCESS_MASK m = ace->Mask;
        bool r = m & (GENERIC_ALL | GENERIC_READ | FILE_MAP_READ);
        bool w = m & (GENERIC_ALL | GENERIC_WRITE | FILE_MAP_WRITE);
        if (have_me && EqualSid(sid, me.user.User.Sid))
            mode |= (r ? 0400u : 0) | (w ? 0200u : 0);
        else if (have_world && EqualSid(sid, &world))
            mode |= (r ? 0004u : 0) | (w ? 0002u : 0);
    }
    LocalFree(sd);
    return mode;
}

/* Records a mapping; false when the table is full. */
static bool remember(const char *prefix, void *base, size_t size, HANDLE map, unsigned mode,
                     bool creator)
{
    bool ok = false;
    AcquireSRWLockExclusive(&segments_lock);
    for (int i = 0; i < MAX_SEGMENTS; i++) {
        segment_rec *s = &segments[i];
        if (s->base != NULL)
            continue;
        memset(s, 0, sizeof *s);
        s->base = base;
        s->size = size;
        s->map = map;
        s->id = next_segment_id++;
        snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
        s->sa.nLength = sizeof s->sa;
        /* Sync objects get the segment's permissions, also when a process that did not
         * create the segment makes one again (all handles to it were gone): the mode read
         * back from the section's descriptor. */
        (void)creator;
        s->sa.lpSecurityDescriptor = build_sd(mode, SD_SYNC);
        ok = true;
        break;
    }
    ReleaseSRWLockExclusive(&segments_lock);
    return ok;
}

bool w32_segment_of(const void *addr, char *prefix, size_t cap, uint64_t *offset,
                    SECURITY_ATTRIBUTES **sa, uint32_t *segment_id)
{
    const unsigned char *p = addr;
    bool found = false;
    AcquireSRWLockShared(&segments_lock);
    for (int i = 0; i < MAX_SEGMENTS && !found; i++) {
        segment_rec *s = &segments[i];
        const unsigned char *b = s->base;
        if (b != NULL && p >= b && p < b + s->size) {
            snprintf(prefix, cap, "%s", s->prefix);
            *offset = (uint64_t)(p - b);
            *sa = &s->sa;
            *segment_id = s->id;
            found = true;
        }
    }
    ReleaseSRWLockShared(&segments_lock);
    return found;
}

static mbx_err map_view(const char *prefix, HANDLE map, bool writable, size_t size, size_t max_size,
                        bool creator, unsigned mode, plat_shm *out)
{
    void *base = MapViewOfFile(map, writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ, 0, 0, size);
    if (base == NULL)
        return w32_map_error(GetLastError());
    if (size == 0) {
        /* Opened: the section's size is what the view covers. */
        MEMORY_BASIC_INFORMATION mbi;
        if (VirtualQuery(base, &mbi, sizeof mbi) == 0 || mbi.RegionSize == 0 ||
            mbi.RegionSize > max_size) {
            UnmapViewOfFile(base);
            return MBX_ECORRUPT;
        }
        size = mbi.RegionSize;
    }
    if (!creator)
        mode = w32_object_mode(map);
    if (!remember(prefix, base, size, map, mode, creator)) {
        UnmapViewOfFile(base);
        return MBX_ENOMEM;
    }
    /* No uid or gid on Windows: the kernel checks the descriptor when a process opens
     * the mapping or the broker's pipe, so every peer that got this far is allowed. */
    out->base = base;
    out->size = size;
    out->uid = 0;
    out->gid = 0;
    out->mode = w32_object_mode(map);
    return MBX_OK;
}

mbx_err plat_shm_create(const char *ns, size_t size, unsigned mode, plat_shm *out)
{
    char name[128];
    w32_object_prefix(ns, name, sizeof name);
    PSECURITY_DESCRIPTOR sd = w32_mode_to_sd(mode);
    if (sd == NULL)
        return w32_map_error(GetLastError());
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    uint64_t size64 = size;
    HANDLE map = CreateFileMappingA(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT,
                                    (DWORD)(size64 >> 32), (DWORD)size64, name);
    DWORD e = GetLastError();
    LocalFree(sd);
    if (map == NULL)
        return w32_map_error(e);
    if (e == ERROR_ALREADY_EXISTS) {
        CloseHandle(map);
        return MBX_EEXIST;
    }
    out->has_handle = false;
    mbx_err err = map_view(name, map, true, size, size, true, mode, out);
    if (err != MBX_OK)
        CloseHandle(map);
    return err;
}

mbx_err plat_shm_open(const char *ns, bool read_only, size_t max_size, plat_shm *out)
{
    char name[128];
    w32_object_prefix(ns, name, sizeof name);
    DWORD access = read_only ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE;
    /* READ_CONTROL to read the permissions back, where the descriptor grants it. */
    HANDLE map = OpenFileMappingA(access | READ_CONTROL, FALSE, name);
    if (map == NULL && GetLastError() == ERROR_ACCESS_DENIED)
        map = OpenFileMappingA(access, FALSE, name);
    if (map == NULL)
        return w32_map_error(GetLastError());
    out->has_handle = false;
    mbx_err err = map_view(name, map, !read_only, 0, max_size, false, 0, out);
    if (err != MBX_OK)
        CloseHandle(map);
    return err;
}

void plat_shm_close(plat_shm *shm)
{
    if (shm->base == NULL)
        return;
    uint32_t id = 0;
    HANDLE map = NULL;
    void *sd = NULL;
    AcquireSRWLockExclusive(&segments_lock);
    for (int i = 0; i < MAX_SEGMENTS; i++) {
        if (segments[i].base == shm->base) {
            id = segments[i].id;
            map = segments[i].map;
            sd = segments[i].sa.lpSecurityDescriptor;
            segments[i].base = NULL;
        }
    }
    ReleaseSRWLockExclusive(&segments_lock);
    if (id != 0)
        w32_sync_forget(id);
    UnmapViewOfFile(shm->base);
    if (map != NULL)
        CloseHandle(map);
    if (sd != NULL)
        LocalFree(sd);
    shm->base = NULL;
    shm->size = 0;
}

mbx_err plat_shm_map(plat_handle h, bool read_only, size_t max_size, plat_shm *out)
{
    (void)h;
    (void)read_only;
    (void)max_size;
    (void)out;
    return MBX_EINVAL; /* clients open the named section: nothing is ever passed */
}

const char *plat_shm_advice(mbx_err err)
{
    if (err == MBX_EPERM && w32_scope_is_global())
        return "Global\\ names need the SeCreateGlobalPrivilege privilege: run as an "
               "administrator or a service, or unset MBX_GLOBAL";
    if (err == MBX_ENOMEM)
        return "is the paging file large enough?";
    return NULL;
}
