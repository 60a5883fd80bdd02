/* peer_endpoint.h: what an optional peer's endpoint holds (peers.h), for peers.c and the
 * peers' own files. */
#ifndef MBX_PERF_PEER_ENDPOINT_H
#define MBX_PERF_PEER_ENDPOINT_H

#include <stddef.h>

#include "peers.h"

struct peer_endpoint {
    void *impl;
    int (*send)(peer_endpoint *e, const void *data, size_t len);
    int (*recv)(peer_endpoint *e, void *buf, size_t cap, size_t *got);
    void (*close)(peer_endpoint *e);
};

#endif
