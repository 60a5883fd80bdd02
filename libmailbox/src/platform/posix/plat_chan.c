/*
 * The control channel: a SOCK_SEQPACKET Unix socket in the abstract namespace, named
 * "mailbox/<ns>". Abstract names leave no file behind, and the kernel drops the name the
 * moment the broker dies, so a successful bind proves no live broker holds the namespace.
 * SO_PEERCRED gives each side the other's pid and uid, verified by the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

static socklen_t chan_addr(const char *ns, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    /* sun_path[0] stays '\0': the abstract namespace. */
    int n = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "mailbox/%s", ns);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

mbx_err plat_chan_listen(const char *ns, unsigned mode, plat_handle *out)
{
    (void)mode; /* abstract sockets have no permissions: the broker checks each peer */
    struct sockaddr_un addr;
    socklen_t len = chan_addr(ns, &addr);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
        int e = errno;
        close(fd);
        return e == EADDRINUSE ? MBX_EEXIST : plat_map_errno(e);
    }
    if (listen(fd, 512) != 0) {
        int e = errno;
        close(fd);
        return plat_map_errno(e);
    }
    *out = fd;
    return MBX_OK;
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

mbx_err plat_chan_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *broker_pid)
{
    struct sockaddr_un addr;
    socklen_t len = chan_addr(ns, &addr);
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
        return (e == ECONNREFUSED || e == ENOENT) ? MBX_ENOBROKER : plat_map_errno(e);
    }
    /* Blocking again for the two datagrams a client ever sends; replies are read with
     * poll and a deadline (plat_chan_recv). */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    uint32_t uid;
    mbx_err err = plat_chan_peer(fd, broker_pid, &uid);
    if (err != MBX_OK) {
        close(fd);
        return err;
    }
    *out = fd;
    return MBX_OK;
}

mbx_err plat_chan_send(plat_handle h, const void *buf, size_t len)
{
    ssize_t n;
    do {
        n = send((int)h, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EPIPE || errno == ECONNRESET) ? MBX_ENOBROKER : plat_map_errno(errno);
    return (size_t)n == len ? MBX_OK : MBX_ESYSTEM;
}

mbx_err plat_chan_recv(plat_handle h, void *buf, size_t cap, size_t *got, int64_t deadline_ns)
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
        if (rc == 0)
            return MBX_ETIMEDOUT;
        ssize_t n = recv((int)h, buf, cap, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return errno == ECONNRESET ? (*got = 0, MBX_OK) : plat_map_errno(errno);
        *got = (size_t)n;
        return MBX_OK;
    }
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
