/*
 * w32.h: what the files of the Win32 backend share. Not part of the platform contract.
 *
 * A plat_handle here is a pointer to a w32_obj: one struct for every kind of handle the
 * contract hands out, so that plat_handle_close(), plat_handle_ready() and the poller
 * treat them alike. `ready` is the kernel object that is signalled while the handle is
 * "readable": the event of a pending read or connect, a process, or an event.
 */
#ifndef MBX_PLATFORM_W32_H
#define MBX_PLATFORM_W32_H

#include <windows.h>

#include "../platform.h"

typedef enum { W32_EVENT, W32_LISTENER, W32_PIPE, W32_PROCESS } w32_kind;

/* Longest control-channel message (proto.h's requests and replies are far smaller). */
#define W32_PIPE_MSG_MAX 1024

typedef struct w32_obj {
    w32_kind kind;
    HANDLE h;     /* the event, pipe instance or process */
    HANDLE ready; /* signalled while readable */
    /* Pipes: one overlapped read (or, on a listener, connect) kept pending at all times. */
    OVERLAPPED ov;
    HANDLE write_done;
    bool pending;
    bool have_msg;
    bool eof;
    DWORD got;
    char pipe_name[128]; /* listener: to create the next instance */
    HANDLE broker_lock;  /* listener: the named mutex that makes the broker exclusive */
    SECURITY_ATTRIBUTES *sa;
    unsigned char buf[W32_PIPE_MSG_MAX];
} w32_obj;

static inline w32_obj *w32_from(plat_handle h)
{
    return (w32_obj *)(void *)h;
}

/* Maps a GetLastError() value to the library's error enum, through one table. */
mbx_err w32_map_error(DWORD err);
/* Milliseconds left until deadline_ns, rounded up, for the Wait functions. */
DWORD w32_wait_ms(int64_t deadline_ns);

/* True when MBX_GLOBAL=1 is in the environment: the namespace's objects are Global\. */
bool w32_scope_is_global(void);
/* "Local\mbx.<ns>" or, with MBX_GLOBAL=1 in the environment, "Global\mbx.<ns>". */
void w32_object_prefix(const char *ns, char *buf, size_t cap);

/*
 * A security descriptor built from POSIX-style permission bits: the owner bits go to the
 * current user, the "other" bits to Everyone; group bits have no Windows counterpart and
 * are left out (the mode read back shows what was granted). Returns NULL on failure;
 * free with LocalFree().
 */
PSECURITY_DESCRIPTOR w32_mode_to_sd(unsigned mode);
/* The descriptor of the broker's pipe for a mode (no pipe-instance creation for others). */
PSECURITY_DESCRIPTOR w32_pipe_sd(unsigned mode);
/* The permission bits a kernel object's DACL grants, read back the same way. */
unsigned w32_object_mode(HANDLE h);

/* The mapping that holds addr in this process: its object prefix and the offset of addr,
 * so that sync objects get the same name in every process. False when addr is in no
 * segment this process mapped (private memory: the objects are then unnamed). */
bool w32_segment_of(const void *addr, char *prefix, size_t cap, uint64_t *offset,
                    SECURITY_ATTRIBUTES **sa, uint32_t *segment_id);
/* Drops the cached sync-object handles of a segment being unmapped. */
void w32_sync_forget(uint32_t segment_id);

#endif
