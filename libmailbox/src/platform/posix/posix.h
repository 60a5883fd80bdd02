/* posix.h: what the files of the POSIX backend share. Not part of the platform contract. */
#ifndef MBX_PLATFORM_POSIX_H
#define MBX_PLATFORM_POSIX_H

#include "../platform.h"

/* Maps an errno value to the library's error enum, through one table. */
mbx_err plat_map_errno(int err);

#endif
