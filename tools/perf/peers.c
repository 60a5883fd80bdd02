/* peers.c: the optional peers' common calls, and stand-ins for a peer that was not built
 * (its library was not found): it reports itself absent and the harness skips it. */
#include "peer_endpoint.h"

int peer_send(peer_endpoint *e, const void *data, size_t len)
{
    return e->send(e, data, len);
}

long peer_recv(peer_endpoint *e, void *buf, size_t cap)
{
    size_t got = 0;
    return e->recv(e, buf, cap, &got) == 0 ? (long)got : -1;
}

void peer_close(peer_endpoint *e)
{
    e->close(e);
}

#ifndef MBX_PEER_BOOST
bool peer_boost_built(void)
{
    return false;
}
int peer_boost_create(const char *name, unsigned depth, unsigned size)
{
    (void)name, (void)depth, (void)size;
    return -1;
}
void peer_boost_remove(const char *name)
{
    (void)name;
}
peer_endpoint *peer_boost_open(const char *name)
{
    (void)name;
    return NULL;
}
#endif

#ifndef MBX_PEER_ZMQ
bool peer_zmq_built(void)
{
    return false;
}
peer_endpoint *peer_zmq_open(const char *endpoint, enum peer_zmq_role role)
{
    (void)endpoint, (void)role;
    return NULL;
}
#endif
