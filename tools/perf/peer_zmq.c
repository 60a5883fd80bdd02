/* peer_zmq.c: ZeroMQ over ipc:// for the comparison harness (peers.h). Each endpoint has
 * its own context, made in the process that uses it (a context does not survive fork). */
#include <stdlib.h>
#include <zmq.h>

#include "peer_endpoint.h"

typedef struct zmq_end {
    void *ctx, *sock;
} zmq_end;

bool peer_zmq_built(void)
{
    return true;
}

static int zmq_end_send(peer_endpoint *e, const void *data, size_t len)
{
    zmq_end *z = e->impl;
    return zmq_send(z->sock, data, len, 0) == (int)len ? 0 : -1;
}

static int zmq_end_recv(peer_endpoint *e, void *buf, size_t cap, size_t *got)
{
    zmq_end *z = e->impl;
    int n = zmq_recv(z->sock, buf, cap, 0);
    if (n < 0)
        return -1;
    *got = (size_t)n;
    return 0;
}

static void zmq_end_close(peer_endpoint *e)
{
    zmq_end *z = e->impl;
    zmq_close(z->sock); /* the default linger delivers what is still queued */
    zmq_ctx_term(z->ctx);
    free(z);
}

peer_endpoint *peer_zmq_open(const char *endpoint, enum peer_zmq_role role)
{
    static const int types[] = {ZMQ_PAIR, ZMQ_PAIR, ZMQ_PULL, ZMQ_PUSH};
    zmq_end *z = calloc(1, sizeof *z);
    peer_endpoint *e = calloc(1, sizeof *e);
    if (z == NULL || e == NULL)
        goto fail;
    z->ctx = zmq_ctx_new();
    z->sock = z->ctx != NULL ? zmq_socket(z->ctx, types[role]) : NULL;
    if (z->sock == NULL)
        goto fail;
    bool bind = role == PEER_ZMQ_PAIR_BIND || role == PEER_ZMQ_PULL_BIND;
    if ((bind ? zmq_bind(z->sock, endpoint) : zmq_connect(z->sock, endpoint)) != 0)
        goto fail;
    *e = (peer_endpoint){z, zmq_end_send, zmq_end_recv, zmq_end_close};
    return e;
fail:
    if (z != NULL && z->sock != NULL)
        zmq_close(z->sock);
    if (z != NULL && z->ctx != NULL)
        zmq_ctx_term(z->ctx);
    free(z);
    free(e);
    return NULL;
}
