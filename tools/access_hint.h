/* access_hint: what the CLI adds to "permission denied" and "no broker serves this
 * namespace" so that a user knows why and what to do (docs/cli.md, "Errors"). */
#ifndef MBX_ACCESS_HINT_H
#define MBX_ACCESS_HINT_H

#include <stddef.h>

/* Why ns refused this user: the owner and mode of its socket (or of the runtime
 * directory that was refused) and how to get in. "" when there is nothing to add. */
void access_denied_hint(const char *ns, char *out, size_t cap);
/* Another user's broker serving ns where this user does not look, and how to reach it.
 * "" when there is none. */
void access_elsewhere_hint(const char *ns, char *out, size_t cap);

#endif
