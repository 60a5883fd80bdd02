/* keeper_win32.c: no keeper on Windows (see keeper.h): a named section lives while any
 * process holds a handle, and a starting broker opens it by name. */
#include "keeper.h"

mbx_err keeper_adopt(const char *ns, plat_shm *shm)
{
    return plat_shm_open(ns, false, SEG_MAX_TOTAL, shm);
}

int keeper_start(const char *ns, const plat_shm *shm)
{
    (void)ns;
    (void)shm;
    return 0;
}

void keeper_release(const char *ns)
{
    (void)ns;
}
