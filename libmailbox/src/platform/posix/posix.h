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

#define POSIX_PATH_MAX 108 /* what a Unix socket address holds */

/* The caller's own runtime directory (where its brokers put their endpoints), into out. */
void posix_runtime_own(char *out, size_t cap);
/* The runtime directories to look in for a namespace's endpoint, first one's own (see
 * plat_runtime.c); returns how many were written (at most max). */
int posix_runtime_dirs(char dirs[][POSIX_PATH_MAX], int max);
/* Checks that dir is safe to use: a real directory, not writable by group or others,
 * owned by the caller or root (*owner). MBX_ENOBROKER when it does not exist, MBX_EPERM
 * when it is not safe. */
mbx_err posix_runtime_check(const char *dir, uint32_t *owner);
/* Makes (if needed) and checks the caller's own runtime directory, into dir. */
mbx_err posix_runtime_make(char *dir, size_t cap);
/* "<dir>/<ns>.<suffix>" into out; false when it does not fit. */
bool posix_runtime_path(const char *dir, const char *ns, const char *suffix, char *out, size_t cap);

/* Linux: the room left in the caller's memory cgroup (the least over it and its
 * ancestors, v1 or v2; see plat_cgroup.c), and the group that has the least, into
 * where. False when no limit applies (or none can be read). */
bool posix_cgroup_room(uint64_t *room, char *where, size_t cap);

#endif
