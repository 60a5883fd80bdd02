/*
 * Fuzz target: the broker's check of a registration request. Whatever it accepts must be
 * safe to act on: a known operation, a terminated valid name (or none), a linger in range,
 * known flags, and a monitor that is neither a group's, nor remote, nor lingering.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_request req;
    memset(&req, 0, sizeof req);
    memcpy(&req, data, size < sizeof req ? size : sizeof req);
    if (proto_check_request(&req, size) != MBX_OK)
        return 0;
    if (size != sizeof req ||
        (req.op != PROTO_REGISTER && req.op != PROTO_UNREGISTER && req.op != PROTO_INSPECT))
        abort();
    if (req.name[0] != '\0' && mbx_check_name(req.name) != MBX_OK)
        abort();
    if (req.linger_ms > MBX_LINGER_MAX_MS)
        abort();
    if ((req.flags & ~(PROTO_FLAG_GROUP | PROTO_FLAG_REMOTE | PROTO_FLAG_MONITOR)) != 0)
        abort();
    if ((req.flags & PROTO_FLAG_MONITOR) != 0 &&
        ((req.flags & (PROTO_FLAG_GROUP | PROTO_FLAG_REMOTE)) != 0 || req.linger_ms != 0))
        abort();
    return 0;
}
