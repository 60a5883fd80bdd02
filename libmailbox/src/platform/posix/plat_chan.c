/*
 * The control channel: a SOCK_SEQPACKET Unix socket, "<ns>.sock" in the broker's runtime
 * directory (plat_runtime.c), next to "<ns>.lock", the broker's liveness lock: an
 * exclusive flock the kernel drops the moment the broker dies, so holding it proves that
 * no live broker serves the namespace, and only then is a stale socket file replaced.
 * The socket carries the namespace's permission bits, so the kernel refuses connections
 * from users the namespace does not admit before the broker sees them. SO_PEERCRED gives
 * each side the other's pid and uid, verified by the kernel: a client accepts only a
 * broker of the directory's owner (or of the uid in MBX_BROKER_UID).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"
#include "proto.h"

/* The broker's side, one namespace per process: its lock (and which file that is, to
 * notice the file removed or replaced) and the socket file it bound. */
static int held_lock = -1;
static dev_t lock_dev;
static ino_t lock_ino;
static char bound_path[POSIX_PATH_MAX];
static dev_t bound_dev;
static ino_t bound_ino;

static bool unix_addr(const char *path, struct sockaddr_un *addr, socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof addr->sun_path)
        return false;
    memcpy(addr->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return true;
}

static mbx_err connect_path(const char *path, int64_t deadline_ns, int *out);

/* Locks the file at the namespace's lock path in dir (made if missing) into *out.
 * MBX_EEXIST when a live process holds it. */
static mbx_err lock_file(const char *dir, const char *ns, int *out)
{
    char path[POSIX_PATH_MAX];
    if (!posix_runtime_path(dir, ns, "lock", path, sizeof path))
        return MBX_EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return plat_map_errno(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? MBX_EEXIST : plat_map_errno(e);
    }
    *out = fd;
    return MBX_OK;
}

/* Makes the locked fd the broker's liveness lock: writes our pid into it (what a broker
 * refused names, plat_chan_holder) and remembers which file it is. Takes fd. */
static mbx_err own_lock(int fd)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    struct stat st;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n || fstat(fd, &st) != 0) {
        int e = errno != 0 ? errno : EIO;
        close(fd);
        return plat_system_error(e);
    }
    if (held_lock >= 0)
        close(held_lock);
    held_lock = fd;
    lock_dev = st.st_dev;
    lock_ino = st.st_ino;
    return MBX_OK;
}

/*
 * True when a live process listens on "<ns>.sock" in dir, with its pid in *pid (0 when
 * its backlog is too full to answer). The lock alone does not prove that no broker
 * serves: its file can be removed or replaced under a live broker (rm, a cleaner of
 * runtime directories), and the next broker then locks a file of its own. The live
 * broker's socket is the second witness, and a broker that has locked the namespace asks
 * it before serving. A stale socket (its broker died) refuses the connection.
 */
static bool socket_served(const char *dir, const char *ns, int64_t *pid)
{
    char path[POSIX_PATH_MAX];
    int fd = -1;
    *pid = 0;
    if (!posix_runtime_path(dir, ns, "sock", path, sizeof path))
        return false;
    mbx_err err = connect_path(path, plat_deadline(500), &fd);
    if (err == MBX_ETIMEDOUT)
        return true; /* listening, but too busy to take us: alive */
    if (err != MBX_OK)
        return false;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        *pid = cred.pid;
    close(fd);
    return true;
}

/*
 * The namespace's mark: a shared OFD lock on one byte of the runtime directory itself,
 * at an offset named by the namespace (a 62-bit hash: two names of one directory meet
 * with odds of 2^-62). The serving broker holds it for its life, and the kernel drops it
 * when the broker dies. Unlike the lock file and the socket, nothing in the directory
 * can be removed to make it go: `rm <dir>/<ns>.*` takes both of those at once, and the
 * mark is then the witness left. Only a directory removed and made again loses it
 * (a new directory, with no marks), and the serving broker marks the new one as it
 * makes its files again. Others than the directory's owner cannot open it for reading
 * (0711), so cannot put a mark there; a group allowed to read it (0751) could.
 */
static int mark_fd = -1;
static dev_t mark_dev;
static ino_t mark_ino;

static struct flock mark_range(const char *ns, short type)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const char *p = ns; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)(h & ((1ull << 62) - 1));
    fl.l_len = 1;
    return fl;
}

/* True when a live broker's mark for ns is on dir. */
static bool marked(const char *dir, const char *ns)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct flock fl = mark_range(ns, F_WRLCK); /* who would be in the way of a writer */
    bool found = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return found;
}

/* Puts our mark for ns on dir (replacing the one on a directory since removed). */
static mbx_err take_mark(const char *dir, const char *ns)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return plat_map_errno(errno);
    struct flock fl = mark_range(ns, F_RDLCK);
    struct stat st;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0 || fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return plat_map_errno(e);
    }
    if (mark_fd >= 0)
        close(mark_fd);
    mark_fd = fd;
    mark_dev = st.st_dev;
    mark_ino = st.st_ino;
    return MBX_OK;
}

/* True when a live broker serves ns from dir, whatever became of its files. */
static bool namespace_served(const char *dir, const char *ns)
{
    int64_t pid;
    return marked(dir, ns) || socket_served(dir, ns, &pid);
}

/* Takes the namespace's liveness lock in dir, writing our pid into it, and marks the
 * directory, unless a live broker still serves it (its lock file removed or replaced:
 * namespace_served). */
static mbx_err take_lock(const char *dir, const char *ns)
{
    int fd = -1;
    mbx_err err = lock_file(dir, ns, &fd);
    if (err != MBX_OK)
        return err;
    if (namespace_served(dir, ns)) {
        /* The file stays: the serving broker takes it as its own (plat_chan_relock). */
        close(fd);
        return MBX_EEXIST;
    }
    err = own_lock(fd);
    /* Without a mark (a file system without OFD locks), the socket is still a witness. */
    if (err == MBX_OK)
        (void)take_mark(dir, ns);
    return err;
}

/* Binds and listens on "<ns>.sock" in dir (the lock is ours: a file there is stale). */
static mbx_err bind_socket(const char *dir, const char *ns, unsigned mode, int *out)
{
    char path[POSIX_PATH_MAX];
    struct sockaddr_un addr;
    socklen_t len;
    if (!posix_runtime_path(dir, ns, "sock", path, sizeof path) || !unix_addr(path, &addr, &len))
        return MBX_EINVAL;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    /* Made under a temporary name, listening and with its permissions, then renamed into
     * place: the socket appears ready in one step (what a client watching the directory
     * for it relies on), replacing a stale one. Nobody may connect before the
     * permissions are right: bound owner-only, then widened. */
    char temp[POSIX_PATH_MAX];
    struct sockaddr_un temp_addr;
    socklen_t temp_len;
    if (!posix_runtime_path(dir, ns, "sock-new", temp, sizeof temp) ||
        !unix_addr(temp, &temp_addr, &temp_len)) {
        close(fd);
        return MBX_EINVAL;
    }
    (void)unlink(temp);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&temp_addr, temp_len);
    umask(old);
    struct stat st;
    if (rc != 0 || chmod(temp, (mode_t)(mode & 0666)) != 0 || listen(fd, 512) != 0 ||
        rename(temp, path) != 0 || stat(path, &st) != 0) {
        int e = errno;
        (void)unlink(temp);
        close(fd);
        return plat_map_errno(e);
    }
    snprintf(bound_path, sizeof bound_path, "%s", path);
    bound_dev = st.st_dev;
    bound_ino = st.st_ino;
    *out = fd;
    return MBX_OK;
}

mbx_err plat_chan_listen(const char *ns, unsigned mode, plat_handle *out)
{
    char dir[POSIX_PATH_MAX];
    mbx_err err = posix_runtime_make(dir, sizeof dir);
    if (err == MBX_OK)
        err = take_lock(dir, ns);
    int fd = -1;
    if (err == MBX_OK)
        err = bind_socket(dir, ns, mode, &fd);
    if (err != MBX_OK)
        return err;
    *out = fd;
    return MBX_OK;
}

void plat_chan_unlisten(const char *ns, plat_handle listener)
{
    (void)ns;
    struct stat st;
    if (bound_path[0] != '\0' && stat(bound_path, &st) == 0 && st.st_dev == bound_dev &&
        st.st_ino == bound_ino)
        (void)unlink(bound_path);
    plat_handle_close(listener);
    if (held_lock >= 0) {
        /* Removed while still held: a broker that starts now makes a new file and takes
         * its lock, which is right, as we are leaving. */
        char path[POSIX_PATH_MAX];
        snprintf(path, sizeof path, "%.*s.lock", (int)(strlen(bound_path) - 5), bound_path);
        (void)unlink(path);
        close(held_lock);
        held_lock = -1;
    }
    if (mark_fd >= 0) {
        close(mark_fd);
        mark_fd = -1;
    }
    bound_path[0] = '\0';
}

void plat_chan_remove_stale(const char *ns)
{
    char dir[POSIX_PATH_MAX], lock[POSIX_PATH_MAX], sock[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    if (!posix_runtime_path(dir, ns, "lock", lock, sizeof lock) ||
        !posix_runtime_path(dir, ns, "sock", sock, sizeof sock))
        return;
    int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && !namespace_served(dir, ns)) {
        (void)unlink(sock); /* no broker can bind it while we hold the lock */
        (void)unlink(lock);
    }
    close(fd);
}

mbx_err plat_chan_relock(const char *ns, bool *retaken)
{
    *retaken = false;
    if (held_lock < 0)
        return MBX_EINVAL;
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    mbx_err err = posix_runtime_make(dir, sizeof dir);
    if (err != MBX_OK)
        return err;
    if (!posix_runtime_path(dir, ns, "lock", path, sizeof path))
        return MBX_EINVAL;
    struct stat st;
    /* The directory itself made again: a new one, without our mark. */
    if (stat(dir, &st) == 0 && (mark_fd < 0 || st.st_dev != mark_dev || st.st_ino != mark_ino))
        (void)take_mark(dir, ns);
    if (lstat(path, &st) == 0 && st.st_dev == lock_dev && st.st_ino == lock_ino)
        return MBX_OK;
    /* Removed, or replaced (by a broker that locked a file of its own there, then found
     * us serving and left it): lock what is there now, or a new file. Our old lock stays
     * held until then, so our keeper and clients still see a live broker. */
    int fd = -1;
    err = lock_file(dir, ns, &fd);
    if (err == MBX_OK)
        err = own_lock(fd);
    *retaken = err == MBX_OK;
    return err;
}

/* Whether pid holds the exclusive flock on the file open as fd, as /proc/locks says;
 * true when that cannot be read (then the pid written is all there is to go by). */
static bool holds_flock(int fd, long pid)
{
    struct stat st;
    FILE *f = fopen("/proc/locks", "re");
    if (f == NULL || fstat(fd, &st) != 0) {
        if (f != NULL)
            fclose(f);
        return true;
    }
    char line[256];
    bool held = false;
    while (!held && fgets(line, sizeof line, f) != NULL) {
        /* "1: FLOCK  ADVISORY  WRITE 4242 fe:00:10952791 0 EOF"; waiters read "-> FLOCK". */
        char kind[16], access[16];
        long holder;
        unsigned maj, min;
        unsigned long ino;
        held = sscanf(line, "%*d: %15s %*s %15s %ld %x:%x:%lu", kind, access, &holder, &maj, &min,
                      &ino) == 6 &&
               strcmp(kind, "FLOCK") == 0 && strcmp(access, "WRITE") == 0 && holder == pid &&
               maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino;
    }
    fclose(f);
    return held;
}

mbx_err plat_chan_holder(const char *ns, int64_t *pid)
{
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    *pid = 0;
    if (!posix_runtime_path(dir, ns, "lock", path, sizeof path))
        return MBX_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return MBX_ENOBROKER;
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    /* The pid written counts only while that process holds the lock: the file may hold
     * what a dead broker wrote (the winner of a start race has not written over it
     * yet), or be a replacement put there by anyone. */
    bool valid = n > 0 && end != buf && *end == '\n' && v > 0 && v != (long)getpid() &&
                 (kill((pid_t)v, 0) == 0 || errno == EPERM) && holds_flock(fd, v);
    close(fd);
    if (!valid)
        return MBX_ENOBROKER;
    *pid = v;
    return MBX_OK;
}

mbx_err plat_chan_relisten(const char *ns, unsigned mode, plat_handle *listener)
{
    struct stat st;
    if (stat(bound_path, &st) == 0 && st.st_dev == bound_dev && st.st_ino == bound_ino)
        return MBX_OK;
    /* Removed (rm, or a session manager clearing the runtime directory): make it again.
     * The lock is not ours to check here: plat_chan_relock, called first, made sure. */
    char dir[POSIX_PATH_MAX];
    mbx_err err = posix_runtime_make(dir, sizeof dir);
    int fd = -1;
    if (err == MBX_OK)
        err = bind_socket(dir, ns, mode, &fd);
    if (err != MBX_OK)
        return err;
    plat_handle_close(*listener);
    *listener = fd;
    return MBX_OK;
}

const char *plat_chan_where(const char *ns, char *buf, size_t cap)
{
    char dir[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    if (!posix_runtime_path(dir, ns, "sock", buf, cap))
        snprintf(buf, cap, "%s", dir);
    return buf;
}

const char *plat_chan_where_clients(const char *ns, char *buf, size_t cap)
{
    char dirs[2][POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    int n = posix_runtime_dirs(dirs, 2);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        bool fits = posix_runtime_path(dirs[i], ns, "sock", path, sizeof path);
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i > 0 ? " or " : "", fits ? path : dirs[i]);
    }
    return buf;
}

static int peer_cred(int fd, struct ucred *cred)
{
    socklen_t len = sizeof *cred;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len);
}

mbx_err plat_chan_accept(plat_handle listener, plat_handle *conn)
{
    int fd = accept4((int)listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? MBX_ETIMEDOUT : plat_map_errno(errno);
    *conn = fd;
    return MBX_OK;
}

mbx_err plat_chan_peer(plat_handle h, int64_t *pid, uint32_t *uid)
{
    struct ucred cred;
    if (peer_cred((int)h, &cred) != 0)
        return plat_map_errno(errno);
    *pid = cred.pid;
    *uid = cred.uid;
    return MBX_OK;
}

/* Connects to the socket at path before the deadline; ENOENT and ECONNREFUSED mean no
 * broker there. */
static mbx_err connect_path(const char *path, int64_t deadline_ns, int *out)
{
    struct sockaddr_un addr;
    socklen_t len;
    if (!unix_addr(path, &addr, &len))
        return MBX_EINVAL;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    /* Non-blocking: a Unix socket whose listener's backlog is full (a broker stopped or
     * overwhelmed) refuses with EAGAIN instead of blocking without bound; retry until
     * the deadline, a little slower each time. */
    int64_t pause_ns = 1000000;
    while (connect(fd, (struct sockaddr *)&addr, len) != 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN && plat_now_ns() + pause_ns < deadline_ns) {
            struct timespec ts = {0, (long)pause_ns};
            nanosleep(&ts, NULL);
            pause_ns = pause_ns * 2 > 50000000 ? 50000000 : pause_ns * 2;
            continue;
        }
        close(fd);
        if (e == EAGAIN)
            return MBX_ETIMEDOUT;
        if (e == ECONNREFUSED || e == ENOENT || e == ENOTDIR)
            return MBX_ENOBROKER;
        return plat_map_errno(e);
    }
    /* Blocking again for the two datagrams a client ever sends; replies are read with
     * poll and a deadline (plat_chan_recv). */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *out = fd;
    return MBX_OK;
}

/* The broker uid a client insists on: MBX_BROKER_UID, else -1 (the directory's owner). */
static long wanted_broker_uid(void)
{
    const char *v = getenv("MBX_BROKER_UID");
    if (v == NULL || v[0] == '\0')
        return -1;
    char *end;
    long uid = strtol(v, &end, 10);
    return *end == '\0' && uid >= 0 ? uid : -2; /* -2: nothing can match */
}

mbx_err plat_chan_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *broker_pid)
{
    char dirs[2][POSIX_PATH_MAX];
    int n = posix_runtime_dirs(dirs, 2);
    long want = wanted_broker_uid();
    mbx_err result = MBX_ENOBROKER;
    for (int i = 0; i < n; i++) {
        uint32_t owner;
        mbx_err err = posix_runtime_check(dirs[i], &owner);
        char path[POSIX_PATH_MAX];
        int fd = -1;
        if (err == MBX_OK && !posix_runtime_path(dirs[i], ns, "sock", path, sizeof path))
            err = MBX_EINVAL;
        if (err == MBX_OK)
            err = connect_path(path, deadline_ns, &fd);
        if (err == MBX_ENOBROKER)
            continue;
        if (err != MBX_OK) {
            result = err; /* EPERM (unsafe directory, or a socket we may not use) ... */
            continue;     /* ... unless another directory serves the namespace */
        }
        int64_t pid = 0;
        uint32_t uid = UINT32_MAX;
        err = plat_chan_peer(fd, &pid, &uid);
        /* Only the directory's owner could have bound the socket; a broker of another
         * uid than the one insisted on is not ours to talk to. */
        if (err == MBX_OK && (uid != owner || (want != -1 && (long)uid != want)))
            err = MBX_EPERM;
        if (err != MBX_OK) {
            close(fd);
            result = err;
            continue;
        }
        *broker_pid = pid;
        *out = fd;
        return MBX_OK;
    }
    return result;
}

/* True when a datagram waits to be read on h. A pending ECONNRESET (the peer closed with
 * our data unread) is reported, and cleared, before the queue is looked at: look again. */
static bool answer_waiting(int fd)
{
    char b;
    for (int i = 0; i < 2; i++) {
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r >= 0)
            return r > 0;
        if (errno != ECONNRESET && errno != EINTR)
            return false;
    }
    return false;
}

mbx_err plat_chan_send_handle(plat_handle h, const void *buf, size_t len, plat_handle pass)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass != PLAT_NO_HANDLE) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof control.bytes;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        int fd = (int)pass;
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    ssize_t n;
    do {
        n = sendmsg((int)h, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        /* The peer closed. A broker refusing a connection (a user the namespace does not
         * admit) answers and closes at once, maybe before our request went out: its
         * answer is still queued, and the caller's read of it must say why, not "no
         * broker". */
        return answer_waiting((int)h) ? MBX_OK : MBX_ENOBROKER;
    }
    if (n < 0)
        return plat_map_errno(errno);
    return (size_t)n == len ? MBX_OK : plat_system_error(EMSGSIZE); /* a datagram cut short */
}

mbx_err plat_chan_send(plat_handle h, const void *buf, size_t len)
{
    return plat_chan_send_handle(h, buf, len, PLAT_NO_HANDLE);
}

/* Waits until h is readable or the deadline passes: MBX_OK, MBX_ETIMEDOUT, or an error. */
static mbx_err wait_readable(plat_handle h, int64_t deadline_ns)
{
    for (;;) {
        int timeout = -1;
        if (deadline_ns != PLAT_FOREVER) {
            int64_t left = deadline_ns - plat_now_ns();
            if (left < 0)
                left = 0;
            timeout = (int)((left + 999999) / 1000000);
        }
        struct pollfd pfd = {.fd = (int)h, .events = POLLIN};
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return plat_map_errno(errno);
        return rc == 0 ? MBX_ETIMEDOUT : MBX_OK;
    }
}

mbx_err plat_chan_recv_handle(plat_handle h, void *buf, size_t cap, size_t *got,
                              int64_t deadline_ns, plat_handle *passed)
{
    *passed = PLAT_NO_HANDLE;
    bool reset_seen = false;
    for (;;) {
        mbx_err err = wait_readable(h, deadline_ns);
        if (err != MBX_OK)
            return err;
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        union {
            struct cmsghdr align;
            char bytes[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
        ssize_t n = recvmsg((int)h, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        /* The peer closed with our data unread. It is reported once, before what the
         * peer sent first (a refusal's answer), which is read next: end of file after. */
        if (n < 0 && errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        if (n < 0)
            return errno == ECONNRESET ? (*got = 0, MBX_OK) : plat_map_errno(errno);
        /* Keep the first descriptor passed; close any other a peer might have added. */
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                if (*passed == PLAT_NO_HANDLE)
                    *passed = fd;
                else
                    close(fd);
            }
        }
        *got = (size_t)n;
        return MBX_OK;
    }
}

mbx_err plat_chan_recv(plat_handle h, void *buf, size_t cap, size_t *got, int64_t deadline_ns)
{
    plat_handle passed;
    mbx_err err = plat_chan_recv_handle(h, buf, cap, got, deadline_ns, &passed);
    if (passed != PLAT_NO_HANDLE)
        close((int)passed); /* nobody asked for one */
    return err;
}

/* ---- the keeper's endpoint --------------------------------------------------------- */

/* The keeper's socket file as bound (the keeper inherits it from the broker that forked
 * it), to notice it removed, and never to remove another keeper's. */
static dev_t keep_dev;
static ino_t keep_ino;

/* Binds "<ns>.keep" in dir and listens; a stale file is replaced only when `replace`. */
static mbx_err bind_keep(const char *dir, const char *ns, bool replace, int *out)
{
    char path[POSIX_PATH_MAX];
    struct sockaddr_un addr;
    socklen_t len;
    if (!posix_runtime_path(dir, ns, "keep", path, sizeof path) || !unix_addr(path, &addr, &len))
        return MBX_EINVAL;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    if (replace)
        (void)unlink(path);
    mode_t old = umask(0177); /* the broker's user only */
    int rc = bind(fd, (struct sockaddr *)&addr, len);
    umask(old);
    struct stat st;
    if (rc != 0 || listen(fd, 16) != 0 || stat(path, &st) != 0) {
        int e = errno;
        close(fd);
        return plat_map_errno(e);
    }
    keep_dev = st.st_dev;
    keep_ino = st.st_ino;
    *out = fd;
    return MBX_OK;
}

mbx_err plat_keep_listen(const char *ns, plat_handle *out)
{
    char dir[POSIX_PATH_MAX];
    mbx_err err = posix_runtime_make(dir, sizeof dir);
    int fd = -1;
    if (err == MBX_OK)
        err = bind_keep(dir, ns, true, &fd);
    if (err == MBX_OK)
        *out = fd;
    return err;
}

mbx_err plat_keep_relisten(const char *ns, plat_handle *listener, bool *remade)
{
    *remade = false;
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    mbx_err err = posix_runtime_make(dir, sizeof dir);
    if (err != MBX_OK)
        return err;
    if (!posix_runtime_path(dir, ns, "keep", path, sizeof path))
        return MBX_EINVAL;
    struct stat st;
    if (lstat(path, &st) == 0)
        return MBX_OK; /* ours, or (after a --fresh start) a newer keeper's: not ours to touch */
    int fd = -1;
    err = bind_keep(dir, ns, false, &fd);
    if (err != MBX_OK)
        return err;
    plat_handle_close(*listener);
    *listener = fd;
    *remade = true;
    return MBX_OK;
}

mbx_err plat_keep_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *keeper_pid)
{
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    uint32_t owner;
    posix_runtime_own(dir, sizeof dir);
    mbx_err err = posix_runtime_check(dir, &owner);
    if (err != MBX_OK)
        return err;
    if (!posix_runtime_path(dir, ns, "keep", path, sizeof path))
        return MBX_EINVAL;
    int fd = -1;
    err = connect_path(path, deadline_ns, &fd);
    if (err != MBX_OK)
        return err;
    int64_t pid = 0;
    uint32_t uid = UINT32_MAX;
    err = plat_chan_peer(fd, &pid, &uid);
    if (err == MBX_OK && uid != (uint32_t)geteuid())
        err = MBX_EPERM;
    if (err != MBX_OK) {
        close(fd);
        return err;
    }
    *keeper_pid = pid;
    *out = fd;
    return MBX_OK;
}

void plat_keep_unlink(const char *ns)
{
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    struct stat st;
    posix_runtime_own(dir, sizeof dir);
    if (posix_runtime_path(dir, ns, "keep", path, sizeof path) && lstat(path, &st) == 0 &&
        st.st_dev == keep_dev && st.st_ino == keep_ino)
        (void)unlink(path);
}

void plat_handle_close(plat_handle h)
{
    if (h != PLAT_NO_HANDLE)
        close((int)h);
}

bool plat_handle_ready(plat_handle h)
{
    struct pollfd pfd = {.fd = (int)h, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* ---- waiting for a broker to appear ------------------------------------------------- */

struct plat_chan_watch {
    int fd; /* inotify; -1 when no directory could be watched */
    char sock_name[POSIX_PATH_MAX];
};

mbx_err plat_chan_watch_open(const char *ns, plat_chan_watch **out)
{
    plat_chan_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return MBX_ENOMEM;
    snprintf(w->sock_name, sizeof w->sock_name, "%s.sock", ns);
    w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    char dirs[2][POSIX_PATH_MAX];
    int n = posix_runtime_dirs(dirs, 2);
    int watched = 0;
    for (int i = 0; i < n && w->fd >= 0; i++) {
        /* Our own directory may not exist yet: make it, as a broker of ours would. */
        if (i == 0) {
            char own[POSIX_PATH_MAX];
            (void)posix_runtime_make(own, sizeof own);
        }
        if (inotify_add_watch(w->fd, dirs[i], IN_MOVED_TO | IN_CREATE | IN_ONLYDIR) >= 0)
            watched++;
    }
    if (w->fd >= 0 && watched == 0) {
        close(w->fd);
        w->fd = -1;
    }
    *out = w;
    return MBX_OK;
}

mbx_err plat_chan_watch_wait(plat_chan_watch *w, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - plat_now_ns();
        if (left <= 0)
            return MBX_ETIMEDOUT;
        if (w->fd < 0) { /* nothing to watch: wait a little, then let the caller try */
            struct timespec ts = {0, left < 50000000 ? (long)left : 50000000};
            nanosleep(&ts, NULL);
            return MBX_OK;
        }
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int timeout = (int)((left + 999999) / 1000000);
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno != EINTR)
            return plat_map_errno(errno);
        if (rc <= 0)
            continue;
        _Alignas(struct inotify_event) char buf[4096];
        ssize_t got = read(w->fd, buf, sizeof buf);
        if (got <= 0)
            continue;
        for (char *p = buf; p < buf + got;) {
            struct inotify_event *ev = (struct inotify_event *)(void *)p;
            if ((ev->mask & IN_Q_OVERFLOW) != 0 ||
                (ev->len > 0 && strcmp(ev->name, w->sock_name) == 0))
                return MBX_OK;
            p += sizeof *ev + ev->len;
        }
    }
}

void plat_chan_watch_close(plat_chan_watch *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

/* ---- namespaces of the machine (mbx namespaces, mbx clean) ---------------------------- */

mbx_err plat_ns_each(void (*fn)(const char *ns, const char *where, void *arg), void *arg)
{
    char dirs[2][POSIX_PATH_MAX];
    int ndirs = posix_runtime_dirs(dirs, 2);
    char seen[256][MBX_NAME_MAX + 1];
    int nseen = 0;
    for (int d = 0; d < ndirs; d++) {
        DIR *dir = opendir(dirs[d]);
        if (dir == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            const char *dot = strrchr(e->d_name, '.');
            if (dot == NULL || (strcmp(dot, ".sock") != 0 && strcmp(dot, ".keep") != 0 &&
                                strcmp(dot, ".lock") != 0 && strcmp(dot, ".wake") != 0))
                continue;
            size_t len = (size_t)(dot - e->d_name);
            char ns[MBX_NAME_MAX + 1];
            if (len == 0 || len > MBX_NAME_MAX)
                continue;
            memcpy(ns, e->d_name, len);
            ns[len] = '\0';
            if (mbx_check_name(ns) != MBX_OK)
                continue;
            bool dup = false;
            for (int i = 0; i < nseen && !dup; i++)
                dup = strcmp(seen[i], ns) == 0;
            if (dup)
                continue;
            if (nseen < 256)
                memcpy(seen[nseen++], ns, sizeof ns);
            fn(ns, dirs[d], arg);
        }
        closedir(dir);
    }
    return MBX_OK;
}

mbx_err plat_ns_clean(const char *ns, unsigned *cleaned)
{
    *cleaned = 0;
    char dir[POSIX_PATH_MAX], lock[POSIX_PATH_MAX], sock[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    if (!posix_runtime_path(dir, ns, "lock", lock, sizeof lock) ||
        !posix_runtime_path(dir, ns, "sock", sock, sizeof sock))
        return MBX_EINVAL;
    /* The liveness lock: a broker that runs holds it; taken, no broker can start while we
     * clean (a starting broker takes it first). */
    int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? MBX_EEXIST : plat_map_errno(e);
    }
    /* A live broker whose lock file was removed or replaced still serves. */
    if (namespace_served(dir, ns)) {
        if (fd >= 0)
            close(fd);
        return MBX_EEXIST;
    }
    /* The keeper holds the segment for adoption: it lets it go as for a broker started
     * with --fresh (we adopt, then say bye). */
    plat_handle keep;
    int64_t keeper_pid;
    if (plat_keep_connect(ns, plat_deadline(1000), &keep, &keeper_pid) == MBX_OK) {
        char op = KEEPER_ADOPT, reply;
        size_t got = 0;
        plat_handle seg = PLAT_NO_HANDLE;
        if (plat_chan_send(keep, &op, 1) == MBX_OK &&
            plat_chan_recv_handle(keep, &reply, 1, &got, plat_deadline(1000), &seg) == MBX_OK) {
            plat_handle_close(seg);
            op = KEEPER_BYE;
            (void)plat_chan_send(keep, &op, 1);
            *cleaned |= MBX_CLEAN_KEEPER;
        }
        plat_handle_close(keep);
    }
    char keepf[POSIX_PATH_MAX];
    struct stat st;
    const char *files[] = {
        sock, posix_runtime_path(dir, ns, "keep", keepf, sizeof keepf) ? keepf : NULL, lock};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i] != NULL && lstat(files[i], &st) == 0 && unlink(files[i]) == 0)
            *cleaned |= MBX_CLEAN_FILES;
    char wake[POSIX_PATH_MAX];
    if (posix_runtime_path(dir, ns, "wake", wake, sizeof wake) && lstat(wake, &st) == 0) {
        plat_wake_place_remove(ns); /* the wake directory, and what dead owners left in it */
        *cleaned |= MBX_CLEAN_FILES;
    }
    if (fd >= 0)
        close(fd);
    return MBX_OK;
}
