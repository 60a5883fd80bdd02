/* posix.h: what the files of the POSIX backend share. Not part of the platform contract. */
#ifndef MBX_PLATFORM_POSIX_H
#define MBX_PLATFORM_POSIX_H

#include "../platform.h"

/* Maps an errno value to the library's error enum, through one table. */
mbx_err plat_map_errno(int err);

/* Reads /proc/<id>/stat of a process or thread: its state letter (R, S, Z for a zombie,
 * X when dead...) and start time. False when it cannot be read (no such task, or hidden
 * by /proc's hidepid). */
bool posix_task_stat(int64_t id, char *state, uint64_t *start_time);

#endif
