/*
 * plat_cgroup.c: how much memory the caller's memory cgroup still has room for (Linux).
 *
 * Reserving a segment (posix_fallocate on a memfd) charges every page to the broker's
 * memory cgroup, and a cgroup at its limit does not fail the call: its OOM killer ends a
 * process of the group, a bystander first or the broker itself (exit 137, no message,
 * its files left behind). So the room is checked before anything is reserved, and a
 * segment that does not fit is refused like one /dev/shm cannot hold.
 *
 * The room is the smallest, over the caller's cgroup and each of its ancestors, of the
 * limit minus what is charged there and cannot simply be dropped (usage less the
 * inactive file cache, which the kernel reclaims before it kills):
 *   v2: memory.max, memory.current, memory.stat "inactive_file";
 *   v1: memory.limit_in_bytes, memory.usage_in_bytes, memory.stat "total_inactive_file".
 * Which group is ours comes from /proc/self/cgroup, where the hierarchies are mounted
 * from /proc/self/mountinfo. Whatever cannot be read is taken as "no limit": the check
 * only refuses what it can show will not fit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posix.h"

#define CG_PATH_MAX 1024
/* v1 writes its "no limit" as the largest page-aligned counter, not as "max". */
#define CG_NO_LIMIT (UINT64_C(1) << 62)

/* Reads one number from dir/file; "max" (v2's no limit) reads as UINT64_MAX. */
static bool read_number(const char *dir, const char *file, uint64_t *v)
{
    char path[3 * CG_PATH_MAX], buf[64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (ok && strncmp(buf, "max", 3) == 0) {
        *v = UINT64_MAX;
        return true;
    }
    char *end;
    *v = ok ? strtoull(buf, &end, 10) : 0;
    return ok && end != buf;
}

/* The value of key in dir/memory.stat, or 0. */
static uint64_t stat_value(const char *dir, const char *key)
{
    char path[3 * CG_PATH_MAX], line[256];
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    FILE *f = fopen(path, "re");
    uint64_t v = 0;
    size_t n = strlen(key);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0 && line[n] == ' ') {
            v = strtoull(line + n + 1, NULL, 10);
            break;
        }
    if (f != NULL)
        fclose(f);
    return v;
}

/* True when the comma-separated list holds word. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p != NULL; p = strchr(p, ',')) {
        p += *p == ',';
        if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
            return true;
    }
    return false;
}

/* Where the memory hierarchy is mounted (v2: the unified one) and which of its groups
 * that mount shows as its root. */
static bool find_mount(bool v2, char *mnt, char *root)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    bool found = false;
    while (!found && f != NULL && fgets(line, sizeof line, f) != NULL) {
        /* id parent major:minor root mount-point options [optional...] - type source
         * super-options */
        char r[CG_PATH_MAX], m[CG_PATH_MAX], type[32], super[256] = "";
        const char *dash = strstr(line, " - ");
        if (dash == NULL || sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2 ||
            sscanf(dash + 3, "%31s %*s %255s", type, super) < 1)
            continue;
        found = v2 ? strcmp(type, "cgroup2") == 0
                   : strcmp(type, "cgroup") == 0 && has_word(super, "memory");
        if (found) {
            memcpy(mnt, m, sizeof m);
            memcpy(root, r, sizeof r);
        }
    }
    if (f != NULL)
        fclose(f);
    return found;
}

/* Our group in the memory hierarchy (v2: the unified one), from /proc/self/cgroup. */
static bool own_group(bool v2, char *path)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[4096];
    bool found = false;
    while (!found && f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        /* "0::path" is the unified hierarchy; v1 lines list their controllers. */
        found = v2 ? strcmp(line, "0:") == 0 : has_word(c1 + 1, "memory");
        if (found) {
            c2[1 + strcspn(c2 + 1, "\n")] = '\0';
            snprintf(path, CG_PATH_MAX, "%s", c2 + 1);
        }
    }
    if (f != NULL)
        fclose(f);
    return found;
}

/* The room in one group; UINT64_MAX when it has no limit (or none can be read). */
static uint64_t room_in(const char *dir, bool v2)
{
    uint64_t limit, usage;
    if (!read_number(dir, v2 ? "memory.max" : "memory.limit_in_bytes", &limit) ||
        limit >= CG_NO_LIMIT ||
        !read_number(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &usage))
        return UINT64_MAX;
    uint64_t cache = stat_value(dir, v2 ? "inactive_file" : "total_inactive_file");
    uint64_t used = usage > cache ? usage - cache : 0;
    return used < limit ? limit - used : 0;
}

/* The least room over our group of one hierarchy and its ancestors, with the group. */
static uint64_t hierarchy_room(bool v2, char *where, size_t cap)
{
    char mnt[CG_PATH_MAX], root[CG_PATH_MAX], group[CG_PATH_MAX], dir[2 * CG_PATH_MAX];
    if (!find_mount(v2, mnt, root) || !own_group(v2, group))
        return UINT64_MAX;
    /* The mount shows the hierarchy from `root` down: our group's path below it. */
    const char *below = group;
    size_t rn = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(group, root, rn) == 0 &&
        (group[rn] == '/' || group[rn] == '\0'))
        below = group + rn;
    snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(below, "/") == 0 ? "" : below);
    uint64_t least = UINT64_MAX;
    size_t top = strlen(mnt);
    for (;;) {
        uint64_t room = room_in(dir, v2);
        if (room < least) {
            least = room;
            snprintf(where, cap, "%s", dir);
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || (size_t)(slash - dir) < top)
            break;
        *slash = '\0'; /* the parent, up to the mount point itself */
    }
    return least;
}

bool posix_cgroup_room(uint64_t *room, char *where, size_t cap)
{
    char w1[2 * CG_PATH_MAX] = "", w2[2 * CG_PATH_MAX] = "";
    uint64_t v1 = hierarchy_room(false, w1, sizeof w1);
    uint64_t v2 = hierarchy_room(true, w2, sizeof w2);
    *room = v1 < v2 ? v1 : v2;
    snprintf(where, cap, "%s", v1 < v2 ? w1 : w2);
    return *room != UINT64_MAX;
}
