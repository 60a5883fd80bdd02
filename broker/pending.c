/* pending.c: see pending.h. A small array: registration is quick, few ever wait. */
#include "pending.h"

bool pending_add(pending_set *set, plat_handle h, int64_t now_ns)
{
    if (set->count == PENDING_MAX)
        return false;
    set->items[set->count].handle = h;
    set->items[set->count].since_ns = now_ns;
    set->count++;
    return true;
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
