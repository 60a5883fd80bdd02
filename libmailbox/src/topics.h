/*
 * topics.h: the syntax of topics and patterns, and matching (pure functions, no shared
 * memory).
 *
 * A topic is 1 to MBX_TOPIC_MAX bytes of tokens separated by '.', each token one or more
 * of [A-Za-z0-9_-] (NATS subjects and MQTT topics of that alphabet map one to one). A
 * pattern is a topic whose tokens may also be '*' (exactly one token) or, last, '>' (one
 * or more tokens). The first token may be "$mbx" only in topics the broker publishes and
 * in patterns that ask for them; a pattern whose first token is a wildcard does not
 * match them (as MQTT's '#' does not match '$' topics).
 */
#ifndef MBX_TOPICS_H
#define MBX_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#include "mailbox.h"

#define TOPICS_RESERVED "$mbx."
#define TOPICS_RESERVED_LEN 5

/* Whether topic[0..len) is a valid topic; reserved: whether "$mbx." may begin it. */
bool topics_valid_topic(const char *topic, size_t len, bool reserved);

/* Whether pattern[0..len) is a valid pattern ("$mbx." may begin it). */
bool topics_valid_pattern(const char *pattern, size_t len);

/* Whether the valid pattern matches the valid topic. */
bool topics_match(const char *pattern, size_t plen, const char *topic, size_t tlen);

#endif
