// peer_boost.cpp: Boost.Interprocess message_queue for the comparison harness (peers.h).
#include <boost/interprocess/ipc/message_queue.hpp>
#include <new>

#include "peers.h"
#include "peer_endpoint.h"

namespace bi = boost::interprocess;

extern "C" bool peer_boost_built(void)
{
    return true;
}

extern "C" int peer_boost_create(const char *name, unsigned depth, unsigned size)
{
    try {
        bi::message_queue::remove(name);
        bi::message_queue q(bi::create_only, name, depth, size);
        return 0;
    } catch (const bi::interprocess_exception &) {
        return -1;
    }
}

extern "C" void peer_boost_remove(const char *name)
{
    bi::message_queue::remove(name);
}

static int boost_send(peer_endpoint *e, const void *data, size_t len)
{
    try {
        static_cast<bi::message_queue *>(e->impl)->send(data, len, 0);
        return 0;
    } catch (const bi::interprocess_exception &) {
        return -1;
    }
}

static int boost_recv(peer_endpoint *e, void *buf, size_t cap, size_t *got)
{
    try {
        bi::message_queue::size_type n = 0;
        unsigned priority = 0;
        static_cast<bi::message_queue *>(e->impl)->receive(buf, cap, n, priority);
        *got = n;
        return 0;
    } catch (const bi::interprocess_exception &) {
        return -1;
    }
}

static void boost_close(peer_endpoint *e)
{
    delete static_cast<bi::message_queue *>(e->impl);
}

extern "C" peer_endpoint *peer_boost_open(const char *name)
{
    try {
        auto *q = new bi::message_queue(bi::open_only, name);
        auto *e = new (std::nothrow) peer_endpoint{q, boost_send, boost_recv, boost_close};
        if (e == nullptr)
            delete q;
        return e;
    } catch (const bi::interprocess_exception &) {
        return nullptr;
    }
}
