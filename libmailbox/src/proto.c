/* proto.c: checking what arrives over the control channel. */
#include <string.h>

#include "names.h"
#include "proto.h"

mbx_err proto_check_request(const proto_request *req, size_t len)
{
    if (len != sizeof *req || req->magic != PROTO_MAGIC || req->version != PROTO_VERSION)
        return MBX_EVERSION;
    if (req->op != PROTO_REGISTER && req->op != PROTO_UNREGISTER && req->op != PROTO_INSPECT)
        return MBX_EINVAL;
    if (memchr(req->name, '\0', sizeof req->name) == NULL)
        return MBX_EINVAL;
    if (req->name[0] != '\0' && !names_valid_bounded(req->name, sizeof req->name))
        return MBX_EINVAL;
    if (req->linger_ms > MBX_LINGER_MAX_MS)
        return MBX_EINVAL;
    /* A group member has a name, and its mailbox goes with it (no linger). */
    if ((req->flags & ~(PROTO_FLAG_GROUP | PROTO_FLAG_REMOTE | PROTO_FLAG_MONITOR)) != 0 ||
        ((req->flags & PROTO_FLAG_GROUP) != 0 && (req->name[0] == '\0' || req->linger_ms != 0)))
        return MBX_EINVAL;
    /* A monitor is a client of its own: not a group's, not lingering, not remote. */
    if ((req->flags & PROTO_FLAG_MONITOR) != 0 &&
        ((req->flags & (PROTO_FLAG_GROUP | PROTO_FLAG_REMOTE)) != 0 || req->linger_ms != 0))
        return MBX_EINVAL;
    /* A remote name is a name, and its node a valid name too. */
    if ((req->flags & PROTO_FLAG_REMOTE) != 0 &&
        (req->name[0] == '\0' || memchr(req->node, '\0', sizeof req->node) == NULL ||
         !names_valid_bounded(req->node, sizeof req->node)))
        return MBX_EINVAL;
    return MBX_OK;
}
