/*
 * access_hint_posix.c: the hints of access_hint.h, from the file system.
 *
 * "Permission denied" comes from the control socket's mode (the broker's --mode: 0600
 * keeps every other user out), from the broker refusing a user its mode does not admit,
 * or from a runtime directory the client will not trust (owned by another user, writable
 * by others). The socket's owner and mode say which, and what to do.
 *
 * "No broker" for a namespace another user serves: each user looks in a directory of
 * its own (and in root's /run/mailbox), so a broker of another user in its own directory
 * is invisible. The usual places of other users' directories (/tmp/mailbox-<uid> and
 * $XDG_RUNTIME_DIR/mailbox, i.e. /run/user/<uid>/mailbox) are searched for a socket of
 * the namespace that answers (or refuses: then it is live, only closed to us). Only root
 * can look into /run/user/<uid> (mode 0700); /tmp/mailbox-<uid> is 0711, so anyone can
 * find a socket there by its name.
 */
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "access_hint.h"
#include "mailbox.h"

static void user_name(uid_t uid, char *out, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL && pw->pw_name != NULL)
        snprintf(out, cap, "%s", pw->pw_name);
    else
        snprintf(out, cap, "uid %u", (unsigned)uid);
}

/* The paths mbx_where names ("A or B"), one at a time: *at is where the next one starts. */
static bool next_path(const char **at, char *out, size_t cap)
{
    const char *s = *at;
    if (s == NULL || *s == '\0')
        return false;
    const char *sep = strstr(s, " or ");
    size_t len = sep != NULL ? (size_t)(sep - s) : strlen(s);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
    *at = sep != NULL ? sep + 4 : s + strlen(s);
    return true;
}

static void parent_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash != NULL && slash != out)
        *slash = '\0';
}

/* A service user's directory that root made for it (as systemd's RuntimeDirectory= in
 * /run): trusted as the library trusts it, so not the reason for a refusal. */
static bool made_by_root(const char *dir)
{
    char parent[512];
    parent_of(dir, parent, sizeof parent);
    struct stat st;
    return lstat(parent, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
           (st.st_mode & 0022) == 0;
}

void access_denied_hint(const char *ns, char *out, size_t cap)
{
    out[0] = '\0';
    char where[1024], path[512], dir[512], who[64];
    if (mbx_where(ns, where, sizeof where) != MBX_OK)
        return;
    const char *at = where;
    while (next_path(&at, path, sizeof path)) {
        parent_of(path, dir, sizeof dir);
        struct stat ds, ss;
        if (lstat(dir, &ds) != 0)
            continue;
        if (ds.st_uid != geteuid() && ds.st_uid != 0 && !made_by_root(dir)) {
            user_name(ds.st_uid, who, sizeof who);
            snprintf(out, cap,
                     "the runtime directory %s belongs to %s, and clients trust only their "
                     "own user's or one root made; a namespace shared between users runs as a "
                     "service (mailboxd@NS, in /run/mailbox)",
                     dir, who);
            return;
        }
        if ((ds.st_mode & 0022) != 0) {
            snprintf(out, cap,
                     "the runtime directory %s has mode %04o: others may write to it, so it "
                     "is not trusted; chmod go-w %s",
                     dir, (unsigned)(ds.st_mode & 07777), dir);
            return;
        }
        if (lstat(path, &ss) != 0 || !S_ISSOCK(ss.st_mode))
            continue;
        user_name(ss.st_uid, who, sizeof who);
        snprintf(out, cap,
                 "%s belongs to %s, mode %04o: its owner can admit you with mailboxd --mode "
                 "0660 and a group of yours (0666: everyone), or use a namespace of your own",
                 path, who, (unsigned)(ss.st_mode & 0777));
        return;
    }
}

/* Whether a broker listens at path: it answers, or it is there but closed to us. */
static bool live_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return false;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int err = errno;
    close(fd);
    return rc == 0 || err == EACCES || err == EPERM || err == EAGAIN;
}

void access_elsewhere_hint(const char *ns, char *out, size_t cap)
{
    out[0] = '\0';
    char where[1024];
    if (mbx_check_name(ns) != MBX_OK || mbx_where(ns, where, sizeof where) != MBX_OK)
        return;
    static const char *const places[] = {"/tmp/mailbox-*/%s.sock", "/run/user/*/mailbox/%s.sock"};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        char pattern[256];
        snprintf(pattern, sizeof pattern, places[i], ns);
        glob_t g;
        if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0) {
            globfree(&g); /* GLOB_NOSPACE may leave a part */
            continue;
        }
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *path = g.gl_pathv[k];
            struct stat st;
            if (strstr(where, path) != NULL || lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
                st.st_uid == geteuid() || !live_socket(path))
                continue;
            char dir[512], who[64];
            parent_of(path, dir, sizeof dir);
            user_name(st.st_uid, who, sizeof who);
            snprintf(out, cap,
                     "a broker of user %s serves it in %s, which only that user's clients "
                     "use; a namespace shared between users runs as a service (mailboxd@NS, "
                     "in /run/mailbox)",
                     who, dir);
            globfree(&g);
            return;
        }
        globfree(&g);
    }
}
