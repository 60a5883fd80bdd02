/*
 * envelope.h: what a message must be before it enters shared memory, and the JSON form of
 * a received message's envelope. Touches no shared memory.
 */
#ifndef MBX_ENVELOPE_H
#define MBX_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailbox.h"

/*
 * Checks that json[0..len) is exactly one JSON value (RFC 8259) in valid UTF-8, with no
 * NUL byte and no raw control character inside strings, surrounded by optional white
 * space. On success *compact says whether it holds no insignificant white space (so it
 * can be copied as is). Errors: MBX_EINVALJSON.
 */
mbx_err envelope_validate(const char *json, size_t len, bool *compact);

/* Copies valid JSON text to out without insignificant white space; returns the new
 * length (at most len). out must hold len bytes. */
size_t envelope_compact(const char *json, size_t len, char *out);

/* {"from":..[,"node":..],"to":..,"seq":..,"ts":..[,"kind":..,"corr":..][,"topic":..[,
 * "missed":..]],"body":<body>} as a new NUL-terminated string, or NULL when out of memory.
 * node: NULL for a message sent here, else the node it came from through a bridge. kind: 0
 * plain (no kind, no corr), 1 request, 2 reply, 3 publication (topic, not NULL, and
 * missed when not 0). Names must be valid names, the topic a valid topic, body valid
 * compact JSON. */
char *envelope_to_json(const char *from, const char *node, const char *to, uint64_t seq,
                       int64_t ts_us, uint32_t kind, uint64_t corr, const char *topic,
                       uint64_t missed, const char *body, size_t body_len);

#endif
