/*
 * The segment on Linux: an anonymous memfd, its memory reserved with posix_fallocate,
 * then sealed against any change of size (F_SEAL_SHRINK, F_SEAL_GROW) and against
 * further sealing (F_SEAL_SEAL). Nobody can truncate it, not even its creator, so no
 * member can kill the others with SIGBUS. It has no name in any file system: clients
 * receive it from the broker over the control channel, and nothing is left behind in
 * /dev/shm. (The name given to memfd_create only labels it in /proc/<pid>/maps.)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix.h"

#define SEGMENT_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* What the broker and its keeper need in their cgroup besides the segment. */
#define CGROUP_RESERVE (1u << 20)

/* Why the last plat_shm_create was refused, when a memory cgroup was the reason. */
static char cgroup_advice[320];

/* A segment the caller's memory cgroup has no room for is refused before a page is
 * reserved: reserving it would wake the group's OOM killer (plat_cgroup.c). */
static bool fits_cgroup(size_t size)
{
    uint64_t room;
    char where[256];
    cgroup_advice[0] = '\0';
    if (!posix_cgroup_room(&room, where, sizeof where) || room >= CGROUP_RESERVE + (uint64_t)size)
        return true;
    snprintf(cgroup_advice, sizeof cgroup_advice,
             "the memory cgroup %s has room for %" PRIu64 " more bytes", where, room);
    return false;
}

static mbx_err map_fd(int fd, size_t size, bool writable, plat_shm *out)
{
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void *base = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return plat_map_errno(errno);
    out->base = base;
    out->size = size;
    return MBX_OK;
}

mbx_err plat_shm_create(const char *ns, size_t size, unsigned mode, plat_shm *out)
{
    if (!fits_cgroup(size))
        return MBX_ENOMEM;
    char label[96];
    snprintf(label, sizeof label, "mailbox.%s", ns);
    int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return plat_map_errno(errno);
    /* ftruncate alone would succeed where the memory is short, and the first touch of a
     * missing page would later kill us with SIGBUS: reserve every page now. */
    mbx_err err = MBX_OK;
    int rc = posix_fallocate(fd, 0, (off_t)size);
    if (rc != 0)
        err = (rc == ENOSPC || rc == EFBIG || rc == ENOMEM) ? MBX_ENOMEM : plat_map_errno(rc);
    else if (fcntl(fd, F_ADD_SEALS, SEGMENT_SEALS) != 0)
        err = plat_map_errno(errno);
    else
        err = map_fd(fd, size, true, out);
    if (err != MBX_OK) {
        close(fd);
        return err;
    }
    out->uid = (uint32_t)geteuid();
    out->gid = (uint32_t)getegid();
    out->mode = mode & 0777;
    out->has_handle = true;
    out->handle = fd;
    return MBX_OK;
}

mbx_err plat_shm_open(const char *ns, bool read_only, size_t max_size, plat_shm *out)
{
    (void)ns;
    (void)read_only;
    (void)max_size;
    (void)out;
    return MBX_ENOBROKER; /* no names: segments are passed as handles */
}

mbx_err plat_shm_map(plat_handle h, bool read_only, size_t max_size, plat_shm *out)
{
    int fd = (int)h;
    struct stat st;
    mbx_err err = MBX_OK;
    /* Only a segment whose size nobody can change is safe to map: check the seals. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (fstat(fd, &st) != 0)
        err = plat_map_errno(errno);
    else if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
        err = MBX_ECORRUPT;
    else if (st.st_size <= 0 || (uint64_t)st.st_size > max_size)
        err = MBX_ECORRUPT;
    else
        err = map_fd(fd, (size_t)st.st_size, !read_only, out);
    close(fd);
    if (err != MBX_OK)
        return err;
    out->uid = st.st_uid;
    out->gid = st.st_gid;
    out->mode = st.st_mode & 0777;
    out->has_handle = false;
    return MBX_OK;
}

void plat_shm_close(plat_shm *shm)
{
    if (shm->base != NULL)
        munmap(shm->base, shm->size);
    if (shm->has_handle)
        close((int)shm->handle);
    shm->base = NULL;
    shm->size = 0;
    shm->has_handle = false;
}

const char *plat_shm_advice(mbx_err err)
{
    if (err == MBX_ENOMEM && cgroup_advice[0] != '\0')
        return cgroup_advice;
    return err == MBX_ENOMEM ? "is there enough memory, or does a memory limit (cgroup) apply?"
                             : NULL;
}
