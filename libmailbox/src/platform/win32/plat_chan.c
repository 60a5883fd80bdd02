/*
 * The control channel on Windows: a message-mode named pipe "\\.\pipe\mbx.<ns>".
 *
 * What makes a broker the only one of its namespace is a named mutex it holds for its
 * whole life, "Local\mbx.<ns>.broker": the kernel abandons it when the broker dies, and
 * the next broker takes it (WAIT_ABANDONED) and adopts the segment; the same liveness
 * lock as the POSIX abstract socket. (The first pipe instance is also made with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, which real Windows enforces and Wine 8 does not.) One instance
 * always waits for the next client (an overlapped ConnectNamedPipe); each connected instance keeps
 * one overlapped read pending, so its event is signalled exactly while a message (or the end of the
 * pipe) is waiting: what the poller and plat_handle_ready() look at. GetNamedPipeClientProcessId /
 * GetNamedPipeServerProcessId give the peers' pids as the kernel knows them. The pipe carries the
 * segment's security descriptor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "w32.h"

#define PIPE_BUFFER 4096

/* Pipe names are machine-wide, while Local\ objects are per session: the session id in
 * the name keeps two sessions that use one namespace name apart. */
static void pipe_name(const char *ns, char *buf, size_t cap)
{
    DWORD session = 0;
    if (w32_scope_is_global())
        snprintf(buf, cap, "\\\\.\\pipe\\mbx.global.%s", ns);
    else if (ProcessIdToSessionId(GetCurrentProcessId(), &session))
        snprintf(buf, cap, "\\\\.\\pipe\\mbx.s%lu.%s", (unsigned long)session, ns);
    else
        snprintf(buf, cap, "\\\\.\\pipe\\mbx.s0.%s", ns);
}

static w32_obj *new_obj(w32_kind kind, HANDLE h)
{
    w32_obj *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->kind = kind;
    o->h = h;
    o->ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
    o->write_done = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (o->ov.hEvent == NULL || o->write_done == NULL) {
        if (o->ov.hEvent != NULL)
            CloseHandle(o->ov.hEvent);
        if (o->write_done != NULL)
            CloseHandle(o->write_done);
        free(o);
        return NULL;
    }
    o->ready = o->ov.hEvent;
    return o;
}

static void free_obj(w32_obj *o)
{
    if (o->pending) {
        CancelIoEx(o->h, &o->ov);
        DWORD n;
        GetOverlappedResult(o->h, &o->ov, &n, TRUE);
    }
    if (o->h != NULL && o->h != INVALID_HANDLE_VALUE)
        CloseHandle(o->h);
    if (o->kind == W32_LISTENER || o->kind == W32_PIPE) {
        CloseHandle(o->ov.hEvent);
        CloseHandle(o->write_done);
    }
    if (o->broker_lock != NULL) {
        ReleaseMutex(o->broker_lock); /* held by this thread since plat_chan_listen() */
        CloseHandle(o->broker_lock);
    }
    if (o->sa != NULL) {
        LocalFree(o->sa->lpSecurityDescriptor);
        free(o->sa);
    }
    free(o);
}

/* Keeps one read pending on a connected pipe; a finished read leaves have_msg or eof. */
static void start_read(w32_obj *o)
{
    if (o->pending || o->have_msg || o->eof)
        return;
    ResetEvent(o->ov.hEvent);
    DWORD n = 0;
    if (ReadFile(o->h, o->buf, sizeof o->buf, &n, &o->ov)) {
        o->have_msg = true;
        o->got = n;
        SetEvent(o->ov.hEvent);
        return;
    }
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING) {
        o->pending = true;
        return;
    }
    o->eof = true; /* broken pipe, or a message longer than any of ours */
    SetEvent(o->ov.hEvent);
}

/* Collects a finished read, waiting up to ms for it. */
static void finish_read(w32_obj *o, DWORD ms)
{
    if (!o->pending)
        return;
    if (WaitForSingleObject(o->ov.hEvent, ms) != WAIT_OBJECT_0)
        return;
    DWORD n = 0;
    o->pending = false;
    if (GetOverlappedResult(o->h, &o->ov, &n, FALSE)) {
        o->have_msg = true;
        o->got = n;
    } else {
        o->eof = true;
    }
    SetEvent(o->ov.hEvent); /* stays readable until the message is taken */
}

/* A new instance waiting for a client; first: the broker's exclusive first one. */
static mbx_err listen_next(w32_obj *l, bool first)
{
    DWORD open_mode =
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    HANDLE h = CreateNamedPipeA(l->pipe_name, open_mode,
                                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT |
                                    PIPE_REJECT_REMOTE_CLIENTS,
                                PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER, PIPE_BUFFER, 0, l->sa);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return first && (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY) ? MBX_EEXIST
                                                                           : w32_map_error(e);
    }
    l->h = h;
    ResetEvent(l->ov.hEvent);
    if (ConnectNamedPipe(h, &l->ov)) {
        SetEvent(l->ov.hEvent);
        return MBX_OK;
    }
    switch (GetLastError()) {
    case ERROR_IO_PENDING:
        l->pending = true;
        return MBX_OK;
    case ERROR_PIPE_CONNECTED: /* a client came between create and connect */
        SetEvent(l->ov.hEvent);
        return MBX_OK;
    default:
        CloseHandle(h);
        l->h = NULL;
        return plat_system_error((int)GetLastError());
    }
}

/* Pipes cannot be listed everywhere (Wine cannot), so a broker also leaves a marker,
 * "<scope>.<ns>.ns" in %LOCALAPPDATA%\mailbox, while it serves: mbx namespaces lists
 * them, and mbx clean removes one a dead broker left. scope: "s<session>" or "global". */
static bool marker_dir(char *out, size_t cap)
{
    const char *base = getenv("LOCALAPPDATA");
    if (base == NULL || base[0] == '\0')
        base = getenv("TEMP");
    if (base == NULL || base[0] == '\0')
        return false;
    int n = snprintf(out, cap, "%s\\mailbox", base);
    return n > 0 && (size_t)n < cap;
}

static void marker_scope(char *out, size_t cap)
{
    DWORD session = 0;
    if (w32_scope_is_global())
        snprintf(out, cap, "global");
    else if (ProcessIdToSessionId(GetCurrentProcessId(), &session))
        snprintf(out, cap, "s%lu", (unsigned long)session);
    else
        snprintf(out, cap, "s0");
}

static bool marker_path(const char *ns, char *out, size_t cap)
{
    char dir[MAX_PATH], scope[32];
    if (!marker_dir(dir, sizeof dir))
        return false;
    marker_scope(scope, sizeof scope);
    int n = snprintf(out, cap, "%s\\%s.%s.ns", dir, scope, ns);
    return n > 0 && (size_t)n < cap;
}

static void marker_write(const char *ns)
{
    char dir[MAX_PATH], path[MAX_PATH];
    if (!marker_dir(dir, sizeof dir) || !marker_path(ns, path, sizeof path))
        return;
    (void)CreateDirectoryA(dir, NULL);
    HANDLE f = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL,
                           CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return;
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%lu\r\n", (unsigned long)GetCurrentProcessId());
    DWORD written;
    (void)WriteFile(f, pid, (DWORD)n, &written, NULL);
    CloseHandle(f);
}

mbx_err plat_chan_listen(const char *ns, unsigned mode, plat_handle *out)
{
    w32_obj *l = new_obj(W32_LISTENER, NULL);
    if (l == NULL)
        return MBX_ENOMEM;
    pipe_name(ns, l->pipe_name, sizeof l->pipe_name);
    /* The pipe gets the segment's permissions: who may not open the segment for writing
     * may not connect to register either. */
    l->sa = calloc(1, sizeof *l->sa);
    if (l->sa != NULL) {
        l->sa->nLength = sizeof *l->sa;
        l->sa->lpSecurityDescriptor = w32_pipe_sd(mode);
    }
    if (l->sa == NULL || l->sa->lpSecurityDescriptor == NULL) {
        int e = (int)GetLastError();
        free_obj(l);
        return plat_system_error(e);
    }
    char lock_name[160];
    w32_object_prefix(ns, lock_name, sizeof lock_name);
    strncat(lock_name, ".broker", sizeof lock_name - strlen(lock_name) - 1);
    HANDLE lock = CreateMutexA(l->sa, TRUE, lock_name);
    if (lock == NULL) {
        mbx_err err = w32_map_error(GetLastError());
        free_obj(l);
        return err;
    }
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        /* Someone made it: a live broker still holds it (timeout), or it was released or
         * abandoned by one that is gone, and is ours now. */
        if (WaitForSingleObject(lock, 0) == WAIT_TIMEOUT) {
            CloseHandle(lock);
            free_obj(l);
            return MBX_EEXIST;
        }
    }
    l->broker_lock = lock;
    mbx_err err = listen_next(l, true);
    if (err != MBX_OK) {
        free_obj(l);
        return err;
    }
    marker_write(ns);
    *out = (plat_handle)l;
    return MBX_OK;
}

mbx_err plat_chan_accept(plat_handle listener, plat_handle *conn)
{
    w32_obj *l = w32_from(listener);
    if (l->h == NULL) {
        /* An earlier instance could not be made: try again now. */
        mbx_err err = listen_next(l, false);
        if (err != MBX_OK)
            return err;
    }
    if (WaitForSingleObject(l->ov.hEvent, 0) != WAIT_OBJECT_0)
        return MBX_ETIMEDOUT;
    DWORD n;
    bool ok = !l->pending || GetOverlappedResult(l->h, &l->ov, &n, FALSE) ||
              GetLastError() == ERROR_PIPE_CONNECTED;
    l->pending = false;
    HANDLE connected = l->h;
    l->h = NULL;
    /* The next instance first, so the name never lapses while we serve this one. */
    mbx_err next = listen_next(l, false);
    if (!ok) {
        CloseHandle(connected); /* the client left before we looked */
        return next == MBX_OK ? MBX_ETIMEDOUT : next;
    }
    w32_obj *c = new_obj(W32_PIPE, connected);
    if (c == NULL) {
        CloseHandle(connected);
        return MBX_ENOMEM;
    }
    start_read(c);
    *conn = (plat_handle)c;
    return MBX_OK;
}

mbx_err plat_chan_peer(plat_handle h, int64_t *pid, uint32_t *uid)
{
    ULONG p = 0;
    if (!GetNamedPipeClientProcessId(w32_from(h)->h, &p) || p == 0)
        return w32_map_error(GetLastError());
    *pid = p;
    *uid = 0; /* no uids here; the pipe's descriptor let this peer in */
    return MBX_OK;
}

void plat_chan_unlisten(const char *ns, plat_handle listener)
{
    char path[MAX_PATH];
    if (marker_path(ns, path, sizeof path))
        (void)DeleteFileA(path);
    plat_handle_close(listener); /* releases the broker mutex too */
}

mbx_err plat_chan_send_handle(plat_handle h, const void *buf, size_t len, plat_handle pass)
{
    (void)pass; /* clients open the named section themselves */
    return plat_chan_send(h, buf, len);
}

mbx_err plat_chan_recv_handle(plat_handle h, void *buf, size_t cap, size_t *got,
                              int64_t deadline_ns, plat_handle *passed)
{
    *passed = PLAT_NO_HANDLE;
    return plat_chan_recv(h, buf, cap, got, deadline_ns);
}

/* No keeper on Windows: a named section lives while any process holds a handle. */
mbx_err plat_keep_listen(const char *ns, plat_handle *out)
{
    (void)ns;
    (void)out;
    return MBX_EINVAL;
}

mbx_err plat_keep_relisten(const char *ns, plat_handle *listener, bool *remade)
{
    (void)ns;
    (void)listener;
    *remade = false;
    return MBX_EINVAL; /* no keeper: sections are named (keeper.h) */
}

mbx_err plat_keep_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *keeper_pid)
{
    (void)ns;
    (void)deadline_ns;
    (void)out;
    (void)keeper_pid;
    return MBX_EINVAL;
}

void plat_keep_unlink(const char *ns)
{
    (void)ns;
}

void plat_chan_remove_stale(const char *ns)
{
    (void)ns; /* pipes and mutexes go with their last handle */
}

mbx_err plat_chan_relock(const char *ns, bool *retaken)
{
    (void)ns;
    *retaken = false;
    return MBX_OK; /* a named mutex has no file anyone could remove */
}

mbx_err plat_chan_holder(const char *ns, int64_t *pid)
{
    (void)ns;
    *pid = 0;
    return MBX_ENOBROKER; /* the mutex records no pid: the pipe names its server */
}

mbx_err plat_chan_relisten(const char *ns, unsigned mode, plat_handle *listener)
{
    (void)ns;
    (void)mode;
    (void)listener;
    return MBX_OK; /* a named pipe has no file anyone could remove */
}

const char *plat_chan_where(const char *ns, char *buf, size_t cap)
{
    pipe_name(ns, buf, cap);
    return buf;
}

const char *plat_chan_where_clients(const char *ns, char *buf, size_t cap)
{
    return plat_chan_where(ns, buf, cap);
}

mbx_err plat_chan_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *broker_pid)
{
    char name[128];
    pipe_name(ns, name, sizeof name);
    HANDLE h = INVALID_HANDLE_VALUE;
    /* All instances busy is brief (the broker makes the next one at once): wait, up to
     * the deadline. SECURITY_IDENTIFICATION: whoever serves the pipe may learn who we
     * are, never act as us. */
    for (;;) {
        /* Only the rights a client uses (the pipe's descriptor grants no more). */
        h = CreateFileA(
            name, GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, 0, NULL, OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return MBX_ENOBROKER;
        if (e != ERROR_PIPE_BUSY)
            return w32_map_error(e);
        DWORD left = w32_wait_ms(deadline_ns);
        if (left == 0)
            break;
        WaitNamedPipeA(name, left < 100 ? left : 100);
    }
    if (h == INVALID_HANDLE_VALUE)
        return MBX_ETIMEDOUT;
    DWORD mode = PIPE_READMODE_MESSAGE;
    ULONG server = 0;
    if (!SetNamedPipeHandleState(h, &mode, NULL, NULL) ||
        !GetNamedPipeServerProcessId(h, &server) || server == 0) {
        mbx_err err = w32_map_error(GetLastError());
        CloseHandle(h);
        return err;
    }
    w32_obj *c = new_obj(W32_PIPE, h);
    if (c == NULL) {
        CloseHandle(h);
        return MBX_ENOMEM;
    }
    start_read(c);
    *broker_pid = server;
    *out = (plat_handle)c;
    return MBX_OK;
}

mbx_err plat_chan_send(plat_handle h, const void *buf, size_t len)
{
    w32_obj *o = w32_from(h);
    if (len > W32_PIPE_MSG_MAX)
        return MBX_EINVAL;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = o->write_done;
    ResetEvent(ov.hEvent);
    DWORD n = 0;
    if (!WriteFile(o->h, buf, (DWORD)len, &n, &ov)) {
        DWORD e = GetLastError();
        if (e != ERROR_IO_PENDING)
            return w32_map_error(e) == MBX_ENOBROKER ? MBX_ENOBROKER : plat_system_error((int)e);
        /* Messages are tiny and the pipe buffers one page: this wait is short unless
         * the peer stopped reading, and then we give up. */
        if (WaitForSingleObject(ov.hEvent, 5000) != WAIT_OBJECT_0) {
            CancelIoEx(o->h, &ov);
            GetOverlappedResult(o->h, &ov, &n, TRUE);
            return MBX_ETIMEDOUT;
        }
        if (!GetOverlappedResult(o->h, &ov, &n, FALSE))
            return MBX_ENOBROKER;
    }
    return n == len ? MBX_OK : plat_system_error(ERROR_MORE_DATA);
}

mbx_err plat_chan_recv(plat_handle h, void *buf, size_t cap, size_t *got, int64_t deadline_ns)
{
    w32_obj *o = w32_from(h);
    start_read(o);
    finish_read(o, w32_wait_ms(deadline_ns));
    if (o->eof) {
        *got = 0;
        return MBX_OK;
    }
    if (!o->have_msg)
        return MBX_ETIMEDOUT;
    o->have_msg = false;
    if (o->got > cap) {
        o->eof = true;
        return plat_system_error(ERROR_MORE_DATA); /* a message longer than any we send */
    }
    memcpy(buf, o->buf, o->got);
    *got = o->got;
    start_read(o);
    return MBX_OK;
}

void plat_handle_close(plat_handle h)
{
    if (h == PLAT_NO_HANDLE || h == 0)
        return;
    free_obj(w32_from(h));
}

bool plat_handle_ready(plat_handle h)
{
    w32_obj *o = w32_from(h);
    if (o->kind == W32_PIPE)
        finish_read(o, 0);
    return WaitForSingleObject(o->ready, 0) == WAIT_OBJECT_0;
}

/* No notification for a pipe that appears: the watch waits a short while. */
struct plat_chan_watch {
    int unused;
};

mbx_err plat_chan_watch_open(const char *ns, plat_chan_watch **out)
{
    (void)ns;
    *out = calloc(1, sizeof **out);
    return *out != NULL ? MBX_OK : MBX_ENOMEM;
}

mbx_err plat_chan_watch_wait(plat_chan_watch *w, int64_t deadline_ns)
{
    (void)w;
    DWORD left = w32_wait_ms(deadline_ns);
    if (left == 0)
        return MBX_ETIMEDOUT;
    Sleep(left < 50 ? left : 50);
    return MBX_OK;
}

void plat_chan_watch_close(plat_chan_watch *w)
{
    free(w);
}

/* ---- namespaces of the machine (mbx namespaces, mbx clean) ---------------------------- */

mbx_err plat_ns_each(void (*fn)(const char *ns, const char *where, void *arg), void *arg)
{
    char dir[MAX_PATH], scope[32], pattern[MAX_PATH];
    if (!marker_dir(dir, sizeof dir))
        return MBX_OK;
    marker_scope(scope, sizeof scope);
    snprintf(pattern, sizeof pattern, "%s\\%s.*.ns", dir, scope);
    WIN32_FIND_DATAA fd;
    HANDLE find = FindFirstFileA(pattern, &fd);
    if (find == INVALID_HANDLE_VALUE)
        return MBX_OK;
    size_t skip = strlen(scope) + 1;
    do {
        size_t len = strlen(fd.cFileName);
        if (len <= skip + 3)
            continue;
        char ns[MBX_NAME_MAX + 1];
        size_t n = len - skip - 3; /* without "<scope>." and ".ns" */
        if (n > MBX_NAME_MAX)
            continue;
        memcpy(ns, fd.cFileName + skip, n);
        ns[n] = '\0';
        if (mbx_check_name(ns) == MBX_OK)
            fn(ns, dir, arg);
    } while (FindNextFileA(find, &fd));
    FindClose(find);
    return MBX_OK;
}

mbx_err plat_ns_clean(const char *ns, unsigned *cleaned)
{
    *cleaned = 0;
    plat_handle h;
    int64_t pid;
    if (plat_chan_connect(ns, plat_deadline(1000), &h, &pid) == MBX_OK) {
        plat_handle_close(h);
        return MBX_EEXIST;
    }
    /* Named objects go with their last handle; only a dead broker's marker is left. */
    char path[MAX_PATH];
    if (marker_path(ns, path, sizeof path) && DeleteFileA(path))
        *cleaned |= MBX_CLEAN_FILES;
    return MBX_OK;
}
