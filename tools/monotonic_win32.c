/* monotonic_win32.c: see monotonic.h. */
#include <windows.h>

#include "monotonic.h"

long long monotonic_ms(void)
{
    return (long long)GetTickCount64();
}
