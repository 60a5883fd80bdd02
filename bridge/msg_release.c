/*
 * msg_release.c: received NATS messages are destroyed a batch at a time.
 *
 * cnats hands every destroyed message to its collector thread and wakes that thread when
 * it sleeps: one wake-up per message received, taken from the CPU that the receiver of the
 * message (a local client woken by the same delivery) is about to run on. On a machine with
 * two CPUs that was a measurable part of a bridged round trip. Held here and destroyed
 * RELEASE_MAX at a time (or at the main loop's tick, so that a quiet bridge holds a few
 * messages for at most a tick), the collector wakes about once per batch.
 *
 * Once the link starts closing (msg_release_close), messages are destroyed at once: the
 * library's collector must not be handed anything after nats_CloseAndWait.
 */
#include <string.h>

#include "bridge.h"

void msg_release(bridge *b, natsMsg *m)
{
    if (m == NULL)
        return;
    natsMsg *full[RELEASE_MAX];
    int n = 0;
    pthread_mutex_lock(&b->rel_mu);
    if (b->rel_closed) {
        pthread_mutex_unlock(&b->rel_mu);
        natsMsg_Destroy(m);
        return;
    }
    b->rel[b->rel_n++] = m;
    b->rel_bytes += (size_t)natsMsg_GetDataLength(m);
    if (b->rel_n == RELEASE_MAX || b->rel_bytes >= RELEASE_BYTES) {
        n = b->rel_n;
        memcpy(full, b->rel, (size_t)n * sizeof full[0]);
        b->rel_n = 0;
        b->rel_bytes = 0;
    }
    pthread_mutex_unlock(&b->rel_mu);
    for (int i = 0; i < n; i++)
        natsMsg_Destroy(full[i]);
}

static void release_held(bridge *b, bool close)
{
    natsMsg *held[RELEASE_MAX];
    pthread_mutex_lock(&b->rel_mu);
    int n = b->rel_n;
    memcpy(held, b->rel, (size_t)n * sizeof held[0]);
    b->rel_n = 0;
    b->rel_bytes = 0;
    if (close)
        b->rel_closed = true;
    pthread_mutex_unlock(&b->rel_mu);
    for (int i = 0; i < n; i++)
        natsMsg_Destroy(held[i]);
}

void msg_release_tick(bridge *b)
{
    release_held(b, false);
}

void msg_release_close(bridge *b)
{
    release_held(b, true);
}
