/* json_check.h: strict, allocation-free JSON validation for the send path. */
#ifndef MBX_JSON_CHECK_H
#define MBX_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0..len) is exactly one valid JSON value (see json_check.c for the rules);
 * then *compact says whether it has no white space outside strings. */
bool json_check(const char *text, size_t len, bool *compact);

/* The same check without the padded copy json_check makes of a short text: what it does
 * with a long one. For the tests and the fuzz target, which hold the two to each other. */
bool json_check_unpadded(const char *text, size_t len, bool *compact);

#endif
