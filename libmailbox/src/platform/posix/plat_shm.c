/* Named shared segments: POSIX shm_open + mmap, memory reserved with posix_fallocate. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix.h"

/* "/mailbox.<ns>": the name under /dev/shm. ns is validated by the caller. */
static void shm_name(const char *ns, char *buf, size_t cap)
{
    snprintf(buf, cap, "/mailbox.%s", ns);
}

static mbx_err map_fd(int fd, size_t size, bool writable, plat_shm *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return plat_map_errno(errno);
    out->uid = st.st_uid;
    out->gid = st.st_gid;
    out->mode = st.st_mode & 07777;
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
    char name[96];
    shm_name(ns, name, sizeof name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return plat_map_errno(errno);
    /* shm_open applies the umask; set the requested bits exactly. */
    mbx_err err = MBX_OK;
    if (fchmod(fd, (mode_t)mode) != 0) {
        err = plat_map_errno(errno);
    } else {
        /* ftruncate alone succeeds on a too-small /dev/shm and the first touch of a
         * missing page later kills us with SIGBUS: reserve every page now. */
        int rc = posix_fallocate(fd, 0, (off_t)size);
        if (rc != 0)
            err = (rc == ENOSPC || rc == EFBIG) ? MBX_ENOMEM : plat_map_errno(rc);
        else
            err = map_fd(fd, size, true, out);
    }
    close(fd);
    if (err != MBX_OK)
        shm_unlink(name);
    return err;
}

mbx_err plat_shm_open(const char *ns, bool read_only, size_t max_size, plat_shm *out)
{
    char name[96];
    shm_name(ns, name, sizeof name);
    int fd = shm_open(name, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
    if (fd < 0)
        return plat_map_errno(errno);
    struct stat st;
    mbx_err err;
    if (fstat(fd, &st) != 0)
        err = plat_map_errno(errno);
    else if (st.st_size <= 0 || (uint64_t)st.st_size > max_size)
        err = MBX_ECORRUPT;
    else
        err = map_fd(fd, (size_t)st.st_size, !read_only, out);
    close(fd);
    return err;
}

void plat_shm_close(plat_shm *shm)
{
    if (shm->base != NULL)
        munmap(shm->base, shm->size);
    shm->base = NULL;
    shm->size = 0;
}

mbx_err plat_shm_unlink(const char *ns)
{
    char name[96];
    shm_name(ns, name, sizeof name);
    if (shm_unlink(name) != 0)
        return plat_map_errno(errno);
    return MBX_OK;
}

const char *plat_shm_advice(mbx_err err)
{
    return err == MBX_ENOMEM ? "is /dev/shm large enough?" : NULL;
}
