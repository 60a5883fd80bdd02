/* durable.h: --durable, messages to names through a JetStream stream (durable.c). */
#ifndef MBX_BRIDGE_DURABLE_H
#define MBX_BRIDGE_DURABLE_H

#include "bridge.h"

/* Messages one proxy has at JetStream, unacknowledged. One: the stream must store a
 * name's messages in the order they were sent, and with several in flight a publish lost
 * in a server's failover is sent again after newer ones were stored (found by the
 * 100,000-message kill test). Pipelining safely needs the stream to refuse a store out of
 * order (a stream per node, each publish naming the previous one's Nats-Msg-Id as
 * Nats-Expected-Last-Msg-Id): the machinery here (mbx_peek_after) is ready for it. */
#define DURABLE_WINDOW 1
/* How long a proxy's mailbox outlives its bridge (or the remote name's going): senders go
 * on sending, and a successor sends what it holds. */
#define DURABLE_LINGER_MS 3600000

typedef struct durable_sub durable_sub;

int durable_start(bridge *b); /* the JetStream context */
void durable_stop(void);
void durable_on_connected(bridge *b);      /* makes sure the stream exists */
void durable_tick(bridge *b, int64_t now); /* publishes again what failed or timed out */
void durable_on_pub_ack(bridge *b, natsMsg *m, bool ok);
bool durable_proxy_ready(const proxy *p, int64_t now);
/* Peeks and publishes what p holds; requests go through forward (core NATS). */
void durable_drain(bridge *b, proxy *p, void (*forward)(bridge *, proxy *));
void durable_forget(proxy *p); /* p closes: what it held stays in its mailbox */
uint64_t durable_held(bridge *b);

durable_sub *durable_subscribe_name(bridge *b, const char *name, bool group);
void durable_unsubscribe(durable_sub *ds);
/* Whether ds delivered nothing for a long while although its consumer holds messages for
 * it (asks JetStream, at most once per such while): the caller makes it again. */
bool durable_stalled(durable_sub *ds, int64_t now);

#endif
