/*
 * outstanding.h: the requests of one connection that wait for their reply.
 *
 * A reply is delivered only when it answers a request in this table, and comes from the
 * client that request went to (slot and generation): a reply addressed to an earlier run
 * of the same name, a second reply to a request already answered, or one to a request
 * given up matches nothing here and is dropped and counted, never delivered. An entry
 * leaves the table when its reply is delivered or its request is given up, so the table
 * holds what is really outstanding, however many requests a client makes.
 *
 * Ids are unique across every run of a name: each connection starts from a random 64-bit
 * base (plat_random64), so a restarted client that takes over its lingering mailbox
 * cannot give out an id the previous run used (the chance is that of two random 64-bit
 * numbers a few million apart: negligible).
 *
 * Any thread may use the table (mbx_request_send is as thread-safe as mbx_send); a small
 * spin lock guards it, held for a lookup or an insertion, never across a wait.
 */
#ifndef MBX_OUTSTANDING_H
#define MBX_OUTSTANDING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailbox.h"

/* Where the request went: the responder's slot and generation, or RESPONDER_UNKNOWN while
 * its send is still choosing (a reply cannot come before the request is in a mailbox). */
#define RESPONDER_UNKNOWN UINT32_MAX

typedef struct outstanding_entry {
    uint64_t id; /* 0: an empty place */
    uint32_t slot;
    uint32_t generation;
    mbx_err failed;            /* MBX_OK, or why sending it again (returned) failed */
    char to[MBX_NAME_MAX + 1]; /* the name it was sent to: where a returned one goes */
} outstanding_entry;

typedef struct outstanding {
    atomic_flag lock;
    outstanding_entry *entries; /* open addressing, linear probing; capacity a power of 2 */
    size_t cap;
    size_t n;
} outstanding;

/* An empty table (no allocation until the first request). */
void outstanding_init(outstanding *t);
void outstanding_free(outstanding *t);

/* Adds request id, sent to the name `to`, for a responder not yet known. MBX_ENOMEM when
 * it cannot grow. */
mbx_err outstanding_add(outstanding *t, uint64_t id, const char *to);

/* Records where request id went (its send chose that slot); nothing when id is not here. */
void outstanding_route(outstanding *t, uint64_t id, uint32_t slot, uint32_t generation);

/* Copies request id's entry into *e; false when id is not outstanding. */
bool outstanding_get(outstanding *t, uint64_t id, outstanding_entry *e);

/* True when a reply to id from (slot, generation) answers an outstanding request: the
 * request is then answered and leaves the table. */
bool outstanding_answer(outstanding *t, uint64_t id, uint32_t slot, uint32_t generation);

/* Marks request id as failed with err (it was returned and could not be sent again): the
 * next mbx_recv_reply for it says so. */
void outstanding_fail(outstanding *t, uint64_t id, mbx_err err);

/* Removes request id (given up, or its send failed); nothing when it is not here. */
void outstanding_remove(outstanding *t, uint64_t id);

#endif
