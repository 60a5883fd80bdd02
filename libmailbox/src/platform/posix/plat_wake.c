/*
 * Wake handles on Linux: the owner binds a Unix datagram socket in the namespace's wake
 * directory, "<runtime dir>/<ns>.wake", under a random 64-bit name, which it writes into
 * the mailbox's record; a sender sends one byte there from one unbound datagram socket per
 * process (so a process that sends to a thousand peers holds one descriptor for it, not a
 * thousand). A full queue refuses the byte with EAGAIN: the handle is readable already,
 * which is all a byte would say.
 *
 * Who can wake whom: the broker makes the wake directory with the namespace's access
 * (0700 by default; group or others added as --mode grants them, with the sticky bit so
 * that members cannot remove each other's sockets), so only members can reach a socket
 * in it: another user cannot even look up the path. (Abstract names, used before, had no
 * permissions and were listed in /proc/net/unix.) Members could already disturb each
 * other's traffic; they can also wake each other, which costs a look.
 *
 * Every process reaches the directory through a descriptor it opened once (the view's
 * plat_wake_place) and the path "/proc/self/fd/<fd>/<name>": short, whatever the runtime
 * directory's length, and immune to the directory being renamed under us.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "posix.h"

typedef struct wake_record {
    _Atomic uint64_t nonce; /* 0: no handle */
} wake_record;

_Static_assert(sizeof(wake_record) <= sizeof(((plat_wake *)0)->opaque), "wake record fits");

static wake_record *as_record(plat_wake *w)
{
    return (wake_record *)(void *)w->opaque;
}

static int place_fd(const plat_wake_place *p)
{
    return p->dirfd_plus_one - 1;
}

/* The socket's name in the wake directory. */
static void entry_name(uint64_t nonce, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)nonce);
}

static socklen_t wake_addr(int dirfd, uint64_t nonce, struct sockaddr_un *addr)
{
    char name[17];
    entry_name(nonce, name);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

/* The directory's mode for a namespace of access `mode`: its owner always, group and
 * others as far as mode lets them in, sticky when anyone else may write in it. */
static mode_t place_mode(unsigned mode)
{
    mode_t m = 0700;
    if ((mode & 0060) != 0)
        m |= 0070;
    if ((mode & 0006) != 0)
        m |= 0007;
    return (m & 0077) != 0 ? m | S_ISVTX : m;
}

static mbx_err open_dir(const char *path, uint32_t owner, plat_wake_place *p)
{
    int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MBX_ENOBROKER : plat_map_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != owner) {
        close(fd);
        return MBX_EPERM; /* only the runtime directory's owner can have made it */
    }
    p->dirfd_plus_one = fd + 1;
    return MBX_OK;
}

mbx_err plat_wake_place_make(const char *ns, unsigned mode, plat_wake_place *p)
{
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    if (!posix_runtime_path(dir, ns, "wake", path, sizeof path))
        return MBX_EINVAL;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return plat_map_errno(errno);
    plat_wake_place_close(p);
    mbx_err err = open_dir(path, (uint32_t)geteuid(), p);
    /* Through the descriptor: the mode lands on the directory we checked. */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", place_fd(p));
    if (err == MBX_OK && chmod(self, place_mode(mode)) != 0) {
        err = plat_map_errno(errno);
        plat_wake_place_close(p);
    }
    return err;
}

mbx_err plat_wake_place_open(const char *ns, plat_wake_place *p)
{
    char dirs[2][POSIX_PATH_MAX];
    int n = posix_runtime_dirs(dirs, 2);
    mbx_err result = MBX_ENOBROKER;
    for (int i = 0; i < n; i++) {
        uint32_t owner;
        char path[POSIX_PATH_MAX];
        mbx_err err = posix_runtime_check(dirs[i], &owner);
        if (err == MBX_OK && !posix_runtime_path(dirs[i], ns, "wake", path, sizeof path))
            err = MBX_EINVAL;
        if (err == MBX_OK)
            err = open_dir(path, owner, p);
        if (err == MBX_OK)
            return MBX_OK;
        if (err != MBX_ENOBROKER)
            result = err;
    }
    return result;
}

void plat_wake_place_close(plat_wake_place *p)
{
    if (p->dirfd_plus_one > 0)
        close(place_fd(p));
    p->dirfd_plus_one = 0;
}

void plat_wake_place_remove(const char *ns)
{
    char dir[POSIX_PATH_MAX], path[POSIX_PATH_MAX];
    posix_runtime_own(dir, sizeof dir);
    if (!posix_runtime_path(dir, ns, "wake", path, sizeof path))
        return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    (void)rmdir(path);
}

mbx_err plat_wake_create(const plat_wake_place *p, plat_wake *w, const char *ns, plat_handle *out)
{
    (void)ns;
    if (p->dirfd_plus_one <= 0)
        return MBX_ENOBROKER; /* no wake directory: the broker made none we could open */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t nonce = plat_random64();
        struct sockaddr_un addr;
        socklen_t len = wake_addr(place_fd(p), nonce, &addr);
        if (bind(fd, (struct sockaddr *)&addr, len) == 0) {
            /* Any member may send to it (the directory keeps everyone else out): its
             * mode is widened before its name is published. */
            if (chmod(addr.sun_path, 0666) != 0)
                break;
            atomic_store(&as_record(w)->nonce, nonce);
            *out = fd;
            return MBX_OK;
        }
        if (errno != EADDRINUSE)
            break;
    }
    int e = errno;
    close(fd);
    return plat_map_errno(e);
}

/* The one socket a process sends wake-ups from, made at first use. */
static int sender_fd = -1;
static pthread_once_t sender_once = PTHREAD_ONCE_INIT;

static void make_sender(void)
{
    sender_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

void plat_wake_signal(const plat_wake_place *p, plat_wake *w)
{
    uint64_t nonce = atomic_load(&as_record(w)->nonce);
    if (nonce == 0 || p->dirfd_plus_one <= 0)
        return;
    pthread_once(&sender_once, make_sender);
    if (sender_fd < 0)
        return;
    struct sockaddr_un addr;
    socklen_t len = wake_addr(place_fd(p), nonce, &addr);
    char one = 1;
    /* EAGAIN: already readable; ECONNREFUSED or ENOENT: the owner is gone. Either way,
     * done. */
    (void)sendto(sender_fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
}

void plat_wake_clear(plat_wake *w, plat_handle h)
{
    (void)w;
    char buf[64];
    /* Bounded: a flood from a hostile member cannot keep us here. */
    for (int i = 0; i < 1024 && recv((int)h, buf, sizeof buf, MSG_DONTWAIT) > 0; i++)
        ;
}

void plat_wake_reset(const plat_wake_place *p, plat_wake *w)
{
    uint64_t nonce = atomic_exchange(&as_record(w)->nonce, 0);
    if (nonce == 0 || p->dirfd_plus_one <= 0)
        return;
    char name[17];
    entry_name(nonce, name);
    (void)unlinkat(place_fd(p), name, 0); /* what an owner that died left */
}

void plat_wake_close(const plat_wake_place *p, plat_handle h)
{
    if (h == PLAT_NO_HANDLE)
        return;
    /* Our own entry, by the name the socket was bound to (not by the record, which any
     * member can write). */
    struct sockaddr_un addr;
    socklen_t len = sizeof addr;
    if (p->dirfd_plus_one > 0 && getsockname((int)h, (struct sockaddr *)&addr, &len) == 0 &&
        len > offsetof(struct sockaddr_un, sun_path) && addr.sun_path[0] == '/') {
        const char *slash = strrchr(addr.sun_path, '/');
        (void)unlinkat(place_fd(p), slash + 1, 0);
    }
    close((int)h);
}
