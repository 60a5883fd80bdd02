/*
 * peers.h: the optional peers of the comparison harness, built when their libraries are
 * found (Debian's libboost-dev and libzmq3-dev): Boost.Interprocess message_queue and
 * ZeroMQ over ipc://. Each is driven the way a user would write it: one blocking send and
 * one blocking receive call per message. An endpoint is opened in the process that uses it
 * (after fork), never shared.
 */
#ifndef MBX_PERF_PEERS_H
#define MBX_PERF_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct peer_endpoint peer_endpoint;

/* Boost.Interprocess message_queue: a named queue of `depth` messages of `size` bytes. */
bool peer_boost_built(void);
int peer_boost_create(const char *name, unsigned depth, unsigned size); /* 0 or -1 */
void peer_boost_remove(const char *name);
peer_endpoint *peer_boost_open(const char *name);

/* ZeroMQ: roles for peer_zmq_open. */
enum peer_zmq_role {
    PEER_ZMQ_PAIR_BIND,    /* one end of a ping-pong */
    PEER_ZMQ_PAIR_CONNECT, /* the other end */
    PEER_ZMQ_PULL_BIND,    /* the receiver of a fan-in */
    PEER_ZMQ_PUSH_CONNECT, /* one of its senders */
};
bool peer_zmq_built(void);
peer_endpoint *peer_zmq_open(const char *endpoint, enum peer_zmq_role role);

/* For either: 0 on success, -1 on failure. */
int peer_send(peer_endpoint *e, const void *data, size_t len);
/* Receives one message into buf (cap bytes): its length, or -1. */
long peer_recv(peer_endpoint *e, void *buf, size_t cap);
void peer_close(peer_endpoint *e);

#ifdef __cplusplus
}
#endif

#endif /* MBX_PERF_PEERS_H */
