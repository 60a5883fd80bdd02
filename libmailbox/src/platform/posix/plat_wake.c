/*
 * Wake handles on Linux: the owner binds a Unix datagram socket to an abstract name made
 * of a random 64-bit number, which it writes into the mailbox's record; a sender sends
 * one byte there from one unbound datagram socket per process (so a process that sends
 * to a thousand peers holds one descriptor for it, not a thousand). A full queue refuses
 * the byte with EAGAIN: the handle is readable already, which is all a byte would say.
 *
 * Abstract names have no permissions, so the name is random: only members of the
 * namespace, who read it from the segment, can reach the socket, and they can disturb
 * traffic anyway (a spurious wake-up at worst). Abstract names belong to the network
 * namespace: all members of a namespace share one (like one PID namespace).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
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

static socklen_t wake_addr(uint64_t nonce, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "mailbox-wake/%016llx",
                     (unsigned long long)nonce);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

mbx_err plat_wake_create(plat_wake *w, const char *ns, plat_handle *out)
{
    (void)ns;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t nonce = 0;
        if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce || nonce == 0)
            continue;
        struct sockaddr_un addr;
        socklen_t len = wake_addr(nonce, &addr);
        if (bind(fd, (struct sockaddr *)&addr, len) == 0) {
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

void plat_wake_signal(plat_wake *w)
{
    uint64_t nonce = atomic_load(&as_record(w)->nonce);
    if (nonce == 0)
        return;
    pthread_once(&sender_once, make_sender);
    if (sender_fd < 0)
        return;
    struct sockaddr_un addr;
    socklen_t len = wake_addr(nonce, &addr);
    char one = 1;
    /* EAGAIN: already readable; ECONNREFUSED: the owner is gone. Either way, done. */
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

void plat_wake_reset(plat_wake *w)
{
    atomic_store(&as_record(w)->nonce, 0);
}

void plat_wake_close(plat_handle h)
{
    if (h != PLAT_NO_HANDLE)
        close((int)h);
}
