/*
 * events.c: what cnats' threads hand to the main thread (bridge.h, "Threads"): a list
 * under the bridge's mutex and an eventfd the main loop polls. Posting never blocks on
 * the main thread's work, only on the mutex.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bridge.h"

int events_init(bridge *b)
{
    b->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return b->event_fd >= 0 ? 0 : -1;
}

void events_post(bridge *b, event_kind kind, uint64_t id, uint64_t count, natsMsg *msg)
{
    bridge_event *e = calloc(1, sizeof *e);
    if (e == NULL) {
        /* Out of memory: the news is lost; the periodic snapshots and the windows'
         * timeouts repair what it carried. */
        natsMsg_Destroy(msg);
        return;
    }
    e->kind = kind;
    e->id = id;
    e->count = count;
    e->msg = msg;
    pthread_mutex_lock(&b->mu);
    if (b->ev_tail != NULL)
        b->ev_tail->next = e;
    else
        b->ev_head = e;
    b->ev_tail = e;
    pthread_mutex_unlock(&b->mu);
    events_poke(b);
}

void events_watch(bridge *b, const char *name)
{
    bool post = false;
    pthread_mutex_lock(&b->mu);
    if (b->watch == WATCH_NONE) {
        b->watch = name != NULL ? WATCH_NAME : WATCH_CONTROL;
        snprintf(b->watch_name, sizeof b->watch_name, "%s", name != NULL ? name : "");
        post = true;
    }
    pthread_mutex_unlock(&b->mu);
    if (post)
        events_poke(b);
}

void events_poke(bridge *b)
{
    uint64_t one = 1;
    ssize_t w = write(b->event_fd, &one, sizeof one);
    (void)w; /* a full counter is still readable: nothing to do */
}

int events_take_watch(bridge *b, char name[MBX_NAME_MAX + 1])
{
    pthread_mutex_lock(&b->mu);
    int watch = b->watch;
    memcpy(name, b->watch_name, MBX_NAME_MAX + 1);
    b->watch = WATCH_NONE;
    pthread_mutex_unlock(&b->mu);
    return watch;
}

bridge_event *events_take_all(bridge *b)
{
    uint64_t n;
    ssize_t r = read(b->event_fd, &n, sizeof n);
    (void)r; /* EAGAIN: nothing was posted since the last take */
    pthread_mutex_lock(&b->mu);
    bridge_event *all = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    return all;
}

void events_free(bridge *b, bridge_event *e)
{
    while (e != NULL) {
        bridge_event *next = e->next;
        msg_release(b, e->msg);
        free(e);
        e = next;
    }
}
