/* Links the static mailbox library into a program that defines names the library uses
 * internally: it builds only if those names are local to the library (review: the
 * Windows static library exported them all). */
#include <stdio.h>
#include <string.h>

#include "mailbox.h"

int ring_put(void);
int segment_find(void);
int subs_match(void);
int plat_now_ns(void);

int ring_put(void)
{
    return 1;
}

int segment_find(void)
{
    return 2;
}

int subs_match(void)
{
    return 3;
}

int plat_now_ns(void)
{
    return 4;
}

int main(void)
{
    /* Pulls in the library's data path (ring_send.c, segment.c, subs.c), where those names
     * live: with them global the link fails (multiple definitions) or, worse, binds the
     * library's calls to ours. */
    void (*volatile keep[])(void) = {(void (*)(void))mbx_send, (void (*)(void))mbx_publish};
    (void)keep;
    /* The library's own functions still reach their internals, and ours are ours. */
    if (mbx_check_name("ok") != MBX_OK || mbx_check_name("a/b") == MBX_OK)
        return 1;
    if (ring_put() + segment_find() + subs_match() + plat_now_ns() != 10)
        return 2;
    printf("static library: internal names are local (%s)\n", mbx_version());
    return 0;
}
