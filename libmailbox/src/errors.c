/* mbx_strerror(): one table, indexed by the error code; mbx_os_error(). */
#include "mailbox.h"
#include "platform/platform.h"

static const char *const messages[MBX_ERR_COUNT_] = {
    [MBX_OK] = "success",
    [MBX_ENOBROKER] = "no broker serves this namespace",
    [MBX_ENAMETAKEN] = "name already taken by a live client",
    [MBX_ENORECIPIENT] = "no such recipient",
    [MBX_EFULL] = "mailbox full (timed out waiting for space)",
    [MBX_ETOOLARGE] = "message larger than the namespace's limit",
    [MBX_EINVALJSON] = "invalid JSON",
    [MBX_ETIMEDOUT] = "timed out",
    [MBX_ESHUTDOWN] = "namespace shut down",
    [MBX_EPERM] = "permission denied",
    [MBX_EVERSION] = "version mismatch",
    [MBX_ECORRUPT] = "corrupt shared memory",
    [MBX_EINVAL] = "invalid argument",
    [MBX_ENOSLOTS] = "no free slot in the namespace",
    [MBX_ENOMEM] = "out of memory",
    [MBX_EGONE] = "recipient gone",
    [MBX_EEXIST] = "already exists",
    [MBX_ESYSTEM] = "unexpected system error",
    [MBX_EINTR] = "interrupted",
    [MBX_ESIGNAL] = "a signal ended the wait",
};

const char *mbx_strerror(int err)
{
    if (err < 0 || err >= MBX_ERR_COUNT_ || messages[err] == NULL)
        return "unknown error";
    return messages[err];
}

int mbx_os_error(void)
{
    return plat_last_os_error();
}

const char *mbx_version(void)
{
    return MBX_VERSION_STRING;
}
