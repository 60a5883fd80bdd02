/*
 * The runtime directory: where a broker's user keeps the endpoints of its namespaces.
 *
 *   MBX_RUNTIME_DIR, when set (brokers and clients of a namespace shared between users
 *   point it at one directory its owner made);
 *   else /run/mailbox for root (system-wide namespaces);
 *   else $XDG_RUNTIME_DIR/mailbox when XDG_RUNTIME_DIR is set;
 *   else /tmp/mailbox-<uid>.
 *
 * It holds, per namespace, "<ns>.sock" (the control socket) and "<ns>.lock" (the broker's
 * liveness lock: an exclusive flock the kernel drops when the broker dies, with the
 * broker's pid inside). Only its owner may create entries in it: another user can neither
 * take a namespace's name first nor replace its socket, which abstract socket names could
 * not promise. A directory that is not safe (not a directory, a symbolic link, owned by
 * someone else, writable by group or others) is refused, never used or "repaired".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix.h"

void posix_runtime_own(char *out, size_t cap)
{
    const char *env = getenv("MBX_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (env != NULL && env[0] != '\0')
        snprintf(out, cap, "%s", env);
    else if (geteuid() == 0)
        snprintf(out, cap, "/run/mailbox");
    else if (xdg != NULL && xdg[0] == '/')
        snprintf(out, cap, "%s/mailbox", xdg);
    else
        snprintf(out, cap, "/tmp/mailbox-%u", (unsigned)geteuid());
}

int posix_runtime_dirs(char dirs[][POSIX_PATH_MAX], int max)
{
    int n = 0;
    posix_runtime_own(dirs[n++], POSIX_PATH_MAX);
    /* Clients also look for root's system-wide namespaces, unless told where to look. */
    const char *env = getenv("MBX_RUNTIME_DIR");
    if (n < max && (env == NULL || env[0] == '\0') && strcmp(dirs[0], "/run/mailbox") != 0)
        snprintf(dirs[n++], POSIX_PATH_MAX, "/run/mailbox");
    return n;
}

/* Whether dir's parent belongs to root and nobody else may write to it. */
static bool made_by_root(const char *dir)
{
    char parent[POSIX_PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        return false;
    if (slash == parent)
        slash[1] = '\0'; /* "/" */
    else
        *slash = '\0';
    struct stat st;
    return lstat(parent, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
           (st.st_mode & 0022) == 0;
}

mbx_err posix_runtime_check(const char *dir, uint32_t *owner)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? MBX_ENOBROKER : plat_map_errno(errno);
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 0022) != 0)
        return MBX_EPERM;
    /* Only its user or root may have made it, or root gave it to its user: a directory
     * in one that only root may write to (as /run, where systemd's RuntimeDirectory=
     * makes /run/mailbox for a service's own user). Anywhere else (/tmp) another user
     * could have made it first. The caller checks which owner it trusts. */
    if (st.st_uid != geteuid() && st.st_uid != 0 && !made_by_root(dir))
        return MBX_EPERM;
    *owner = st.st_uid;
    return MBX_OK;
}

mbx_err posix_runtime_make(char *dir, size_t cap)
{
    posix_runtime_own(dir, cap);
    if (mkdir(dir, 0711) != 0 && errno != EEXIST)
        return plat_map_errno(errno);
    uint32_t owner;
    mbx_err err = posix_runtime_check(dir, &owner);
    if (err == MBX_OK && owner != geteuid())
        err = MBX_EPERM;
    return err;
}

bool posix_runtime_path(const char *dir, const char *ns, const char *suffix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s.%s", dir, ns, suffix);
    return n > 0 && (size_t)n < cap;
}
