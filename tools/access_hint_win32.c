/* access_hint_win32.c: on Windows a namespace's pipe has one name for every user and its
 * security descriptor says who may connect; there is no file whose owner and mode could be
 * shown, and no other place to look. */
#include "access_hint.h"

void access_denied_hint(const char *ns, char *out, size_t cap)
{
    (void)ns;
    if (cap > 0)
        out[0] = '\0';
}

void access_elsewhere_hint(const char *ns, char *out, size_t cap)
{
    (void)ns;
    if (cap > 0)
        out[0] = '\0';
}
