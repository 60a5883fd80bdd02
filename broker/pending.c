/* pending.c: see pending.h. A small array: registration is quick, few ever wait. */
#include "pending.h"

pending_result pending_add(pending_set *set, plat_handle h, uint32_t uid, int64_t now_ns)
{
    if (set->count == PENDING_MAX)
        return PENDING_FULL;
    int of_uid = 0;
    for (int i = 0; i < set->count; i++)
        of_uid += set->items[i].uid == uid;
    if (of_uid >= PENDING_PER_UID)
        return PENDING_UID_FULL;
    set->items[set->count].handle = h;
    set->items[set->count].uid = uid;
    set->items[set->count].since_ns = now_ns;
    set->count++;
    return PENDING_ADDED;
}

static void remove_at(pending_set *set, int i)
{
    set->items[i] = set->items[--set->count];
}

void pending_remove(pending_set *set, plat_handle h)
{
    for (int i = 0; i < set->count; i++)
        if (set->items[i].handle == h) {
            remove_at(set, i);
            return;
        }
}

bool pending_take_expired(pending_set *set, int64_t now_ns, plat_handle *out)
{
    for (int i = 0; i < set->count; i++)
        if (now_ns - set->items[i].since_ns >= PENDING_TIMEOUT_NS) {
            *out = set->items[i].handle;
            remove_at(set, i);
            return true;
        }
    return false;
}
