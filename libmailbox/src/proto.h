/*
 * proto.h: the control protocol between a client and the broker, one fixed-size datagram
 * each way over the platform's control channel. Used for registration only; messages
 * never pass through the broker.
 *
 * A client stays connected for as long as it holds its slot: UNREGISTER (answered before
 * the client closes, so its name is free when mbx_close() returns) or the channel closing
 * or the client process dying all give the slot back. A client whose channel died with an
 * earlier broker sends UNREGISTER with its slot and generation over a new connection; the
 * broker honours it only from the process that holds the slot.
 */
#ifndef MBX_PROTO_H
#define MBX_PROTO_H

#include <stdint.h>

#include "mailbox.h"

#define PROTO_MAGIC 0x5058424du /* "MBXP" */
/* 3: REGISTER may stand for a name served on another node (mailbox-bridge);
 * 2: the segment comes with the REGISTER reply; INSPECT */
#define PROTO_VERSION 3u

#define PROTO_FLAG_GROUP 1u   /* join the group serving the name, not take it alone */
#define PROTO_FLAG_REMOTE 2u  /* the name is served on node `node`, through this client */
#define PROTO_FLAG_MONITOR 4u /* a monitor (the namespace's owner only): no group, no linger */

enum proto_op { PROTO_REGISTER = 1, PROTO_UNREGISTER = 2, PROTO_INSPECT = 3 };

typedef struct proto_request {
    uint32_t magic;
    uint32_t version;
    uint32_t op;
    uint32_t flags;              /* REGISTER: PROTO_FLAG_GROUP, PROTO_FLAG_REMOTE,
                                    PROTO_FLAG_MONITOR */
    char name[MBX_NAME_MAX + 1]; /* REGISTER: wanted name, or "" for an assigned one */
    uint32_t slot;               /* UNREGISTER: the slot given back ... */
    uint32_t generation;         /* ... and its generation */
    uint32_t linger_ms;          /* REGISTER: see mbx_connect_options */
    uint32_t reserved;
    char node[MBX_NAME_MAX + 1]; /* REGISTER with PROTO_FLAG_REMOTE: the serving node */
} proto_request;

typedef struct proto_reply {
    uint32_t magic;
    uint32_t version;
    int32_t status; /* mbx_err */
    uint32_t slot;
    uint32_t generation;
    uint32_t layout_version;
    char name[MBX_NAME_MAX + 1]; /* the name granted */
} proto_reply;

/* The keeper's protocol (broker/keeper.h), one byte from whoever connects:
 * ADOPT: a starting broker; the keeper answers ADOPT with the segment's handle and from
 *        then on the connection is its link to that broker (BYE on it: exit);
 * PROBE: a client asking whether a segment is held; the answer is the last broker's pid
 *        as an int64_t, and the connection is closed.
 * READY: the first byte a keeper forked by its broker sends on their link, once it has
 *        closed what it inherited (the broker's lock and socket among them). */
#define KEEPER_ADOPT 'A'
#define KEEPER_PROBE 'P'
#define KEEPER_BYE 'B'
#define KEEPER_READY 'R'

/*
 * Checks a request datagram of len bytes (read into buf, which holds at least one
 * proto_request) before the broker acts on it: size, magic, version, a known operation,
 * a NUL-terminated valid name (or "" for an assigned one), a linger time in range and,
 * for a remote name, a valid node.
 * Returns MBX_OK, MBX_EVERSION (not our protocol or version) or MBX_EINVAL.
 */
mbx_err proto_check_request(const proto_request *req, size_t len);

#endif
