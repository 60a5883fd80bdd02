/* pidfile.c: the broker's pid in a file while it runs (--pidfile). */
#include <stdio.h>

#include "daemon.h"
#include "platform/platform.h"

int pidfile_write(const char *path)
{
    if (path == NULL)
        return 0;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%lld\n", (long long)plat_pid());
    return fclose(f) == 0 ? 0 : -1;
}

void pidfile_remove(const char *path)
{
    if (path != NULL)
        remove(path);
}
