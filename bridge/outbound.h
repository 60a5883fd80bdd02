/*
 * outbound.h: proxies, the local mailboxes that stand for names served on other hosts,
 * and what the bridge does with what local clients put into them (outbound.c).
 */
#ifndef MBX_BRIDGE_OUTBOUND_H
#define MBX_BRIDGE_OUTBOUND_H

#include <poll.h>

#include "bridge.h"

struct proxy {
    uint64_t id; /* in the acknowledgement subject: never reused in a run */
    char name[MBX_NAME_MAX + 1];
    char node[MBX_NAME_MAX + 1];
    bool group;
    mbx_client *c;       /* NULL: refused (a conflict), tried again later */
    int fd;              /* its wake handle */
    mbx_message *msg;    /* reused for each receive */
    uint64_t in_flight;  /* plain messages sent, not yet acknowledged */
    int64_t progress_ns; /* last send or acknowledgement */
    int64_t retry_ns;    /* refused: when to try again */
    uint64_t round;      /* last reconcile round that wanted it */
    bool conflict_told;  /* the conflict was logged and counted */
    bool more;           /* the last drain stopped before the mailbox ran empty */
    char *batch;         /* core: plain messages taken, not sent yet (outbound.c, batches) */
    size_t batch_len, batch_cap;
    uint32_t batch_n;
    struct held *held; /* durable: DURABLE_WINDOW messages peeked, in order (durable.c) */
    int n_held, held_first;
};

/* The directory wants a proxy for name (served by node) in this round: made if missing
 * (or tried again, when it was refused and its retry time came). */
void outbound_want(bridge *b, const char *name, const char *node, bool group, int64_t now);
/* Ends the round: closes the proxies no node wants any more. */
void outbound_sweep(bridge *b, int64_t now);
/* Fills fds with the wake handles of proxies that may forward now (NATS up, window
 * open); who[i] is fds[i]'s proxy. *more: one of them is to be drained whatever its
 * handle says (proxy.more), so the caller must not sleep. */
int outbound_poll_fds(bridge *b, struct pollfd *fds, proxy **who, int cap, bool *more);
void outbound_drain(bridge *b, proxy *p);
/* Watches the proxy of `name` for up to WATCH_SPIN_US and drains it when something comes
 * (answer_watch: an answer to a message just delivered is expected there). false: it
 * watched and nothing came. *more: the drain left messages there (proxy.more). */
bool outbound_watch(bridge *b, const char *name, bool *more);
void outbound_close_all(bridge *b);

#endif
