/*
 * events.h: the broker's side of topics: it publishes $mbx.client.up and
 * $mbx.client.down, and clears the subscriptions of clients that are gone.
 *
 * The broker never waits on a member: its publications go only into mailboxes whose lock
 * is free and which have room, whatever the subscription's policy (a subscriber that
 * misses one sees it counted, as for any dropped publication), and it touches the topic
 * tables only when their lock is free (what it could not clear now, it clears at the next
 * scrub; entries of clients that are gone are dead meanwhile).
 */
#ifndef BROKER_EVENTS_H
#define BROKER_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "subs.h"

typedef struct events {
    const seg_view *view;
    subs_scratch scratch; /* for matching a topic */
    uint64_t seq;
} events;

mbx_err events_init(events *ev, const seg_view *view);
void events_destroy(events *ev);

/* A client connected; node: the node a remote name is served on ("" for a local one),
 * group: a member of a service group. */
void events_client_up(events *ev, const char *name, int64_t pid, const char *node, bool group);

/* A name stopped taking messages: reason "closed", "died", "evicted", "linger expired". */
void events_client_down(events *ev, const char *name, int64_t pid, const char *node, bool group,
                        const char *reason);

/* Frees the subscriptions of slot (UINT32_MAX: none) and of every client gone, if the
 * tables' lock is free now. */
void events_purge(events *ev, uint32_t slot);

#endif
