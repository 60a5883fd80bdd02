/* Namespace and client names: the one rule for what a name may be. */
#ifndef MBX_NAMES_H
#define MBX_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "mailbox.h"

/* True when buf[0..cap) holds a NUL-terminated valid name (used on shared memory). */
bool names_valid_bounded(const char *buf, size_t cap);

#endif
