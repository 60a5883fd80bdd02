/* Waiting on many handles at once: epoll. Scales to thousands of clients. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "posix.h"

struct plat_poller {
    int epfd;
};

mbx_err plat_poller_open(plat_poller **out)
{
    plat_poller *p = malloc(sizeof *p);
    if (p == NULL)
        return MBX_ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int e = errno;
        free(p);
        return plat_map_errno(e);
    }
    *out = p;
    return MBX_OK;
}

void plat_poller_close(plat_poller *p)
{
    if (p == NULL)
        return;
    close(p->epfd);
    free(p);
}

mbx_err plat_poller_add(plat_poller *p, plat_handle h, uint64_t key)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, (int)h, &ev) != 0)
        return plat_map_errno(errno);
    return MBX_OK;
}

mbx_err plat_poller_del(plat_poller *p, plat_handle h)
{
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, (int)h, NULL) != 0)
        return plat_map_errno(errno);
    return MBX_OK;
}

int plat_poller_wait(plat_poller *p, int timeout_ms, uint64_t *keys, int max_keys)
{
    struct epoll_event evs[64];
    if (max_keys > 64)
        max_keys = 64;
    int n = epoll_wait(p->epfd, evs, max_keys, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++)
        keys[i] = evs[i].data.u64;
    return n;
}
