/* outstanding.c: see outstanding.h. */
#include <stdlib.h>
#include <string.h>

#include "outstanding.h"

static void lock(outstanding *t)
{
    while (atomic_flag_test_and_set_explicit(&t->lock, memory_order_acquire))
        ;
}

static void unlock(outstanding *t)
{
    atomic_flag_clear_explicit(&t->lock, memory_order_release);
}

/* Ids of one connection are consecutive: a multiplicative hash spreads them. */
static size_t home(const outstanding *t, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (t->cap - 1);
}

/* The place of id, or of the empty place where it would go. Needs cap > n. */
static size_t find(const outstanding *t, uint64_t id)
{
    size_t i = home(t, id);
    while (t->entries[i].id != 0 && t->entries[i].id != id)
        i = (i + 1) & (t->cap - 1);
    return i;
}

static bool grow(outstanding *t)
{
    size_t cap = t->cap == 0 ? 16 : t->cap * 2;
    outstanding_entry *old = t->entries;
    size_t old_cap = t->cap;
    outstanding_entry *entries = calloc(cap, sizeof *entries);
    if (entries == NULL)
        return false;
    t->entries = entries;
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id != 0)
            t->entries[find(t, old[i].id)] = old[i];
    free(old);
    return true;
}

/* Empties place i and moves later entries of its run back (backward-shift deletion: no
 * tombstones, so lookups stay short however many requests come and go). */
static void erase(outstanding *t, size_t i)
{
    size_t mask = t->cap - 1;
    for (size_t j = (i + 1) & mask; t->entries[j].id != 0; j = (j + 1) & mask) {
        size_t h = home(t, t->entries[j].id);
        /* j's entry may move to i when its home is not within (i, j] (cyclically). */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            t->entries[i] = t->entries[j];
            i = j;
        }
    }
    t->entries[i].id = 0;
    t->n--;
}

void outstanding_init(outstanding *t)
{
    memset(t, 0, sizeof *t);
    atomic_flag_clear(&t->lock);
}

void outstanding_free(outstanding *t)
{
    free(t->entries);
    t->entries = NULL;
    t->cap = t->n = 0;
}

mbx_err outstanding_add(outstanding *t, uint64_t id, const char *to)
{
    mbx_err err = MBX_OK;
    lock(t);
    if ((t->n + 1) * 4 > t->cap * 3 && !grow(t)) {
        err = MBX_ENOMEM;
    } else {
        size_t i = find(t, id);
        if (t->entries[i].id == 0)
            t->n++;
        t->entries[i] = (outstanding_entry){.id = id, .slot = RESPONDER_UNKNOWN};
        strncpy(t->entries[i].to, to, MBX_NAME_MAX);
    }
    unlock(t);
    return err;
}

/* The entry of id, or NULL; called with the lock held. */
static outstanding_entry *entry_of(outstanding *t, uint64_t id)
{
    if (t->cap == 0 || id == 0)
        return NULL;
    size_t i = find(t, id);
    return t->entries[i].id == id ? &t->entries[i] : NULL;
}

void outstanding_route(outstanding *t, uint64_t id, uint32_t slot, uint32_t generation)
{
    lock(t);
    outstanding_entry *e = entry_of(t, id);
    if (e != NULL) {
        e->slot = slot;
        e->generation = generation;
    }
    unlock(t);
}

void outstanding_fail(outstanding *t, uint64_t id, mbx_err err)
{
    lock(t);
    outstanding_entry *e = entry_of(t, id);
    if (e != NULL) {
        e->failed = err;
        e->slot = RESPONDER_UNKNOWN; /* nothing can answer it now */
    }
    unlock(t);
}

bool outstanding_get(outstanding *t, uint64_t id, outstanding_entry *e)
{
    lock(t);
    outstanding_entry *found = entry_of(t, id);
    if (found != NULL)
        *e = *found;
    unlock(t);
    return found != NULL;
}

bool outstanding_answer(outstanding *t, uint64_t id, uint32_t slot, uint32_t generation)
{
    lock(t);
    outstanding_entry *e = entry_of(t, id);
    bool answered = e != NULL && e->slot == slot && e->generation == generation;
    if (answered)
        erase(t, (size_t)(e - t->entries));
    unlock(t);
    return answered;
}

void outstanding_remove(outstanding *t, uint64_t id)
{
    lock(t);
    outstanding_entry *e = entry_of(t, id);
    if (e != NULL)
        erase(t, (size_t)(e - t->entries));
    unlock(t);
}
