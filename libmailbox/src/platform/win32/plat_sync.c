/*
 * Mutexes and semaphores on Windows: named kernel objects, as the classic recipe has it.
 *
 * The segment keeps only a small record per object (plat_mutex / plat_sem): a magic and
 * an incarnation number. The object itself is named after the segment, the object's
 * offset in it and that incarnation: "Local\mbx.<ns>.<offset>.<incarnation>", so every
 * process finds the same one. Only the segment's creator initialises a record; nothing
 * rebuilds a lock that may be held. Nothing in the record is trusted: whatever number a
 * scribbler writes only selects another, harmless name, which every process then moves to.
 *
 * A mutex whose owner died is reported by WaitForSingleObject as WAIT_ABANDONED, which
 * hands ownership to the waiter: exactly PLAT_LOCK_OWNER_DIED. Each process caches its handles by
 * (segment, offset). Objects in memory outside any segment (unit tests on private memory) are
 * unnamed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "w32.h"

#define SYNC_MAGIC 0x6d627873u /* "mbxs" */

typedef struct sync_record {
    uint32_t magic;
    volatile LONG incarnation;
} sync_record;

_Static_assert(sizeof(sync_record) <= sizeof(((plat_mutex *)0)->opaque), "mutex fits");
_Static_assert(sizeof(sync_record) <= sizeof(((plat_sem *)0)->opaque), "semaphore fits");

typedef struct cache_entry {
    uintptr_t key; /* the record's address; 0: free */
    uint32_t segment_id;
    LONG incarnation;
    HANDLE h;
} cache_entry;

static SRWLOCK cache_lock = SRWLOCK_INIT;
static cache_entry *cache;
static size_t cache_cap; /* power of two */
static size_t cache_used;

static size_t slot_of(uintptr_t key, size_t cap)
{
    uint64_t x = (uint64_t)key * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> 20) & (cap - 1);
}

static cache_entry *find(uintptr_t key)
{
    if (cache_cap == 0)
        return NULL;
    for (size_t i = slot_of(key, cache_cap);; i = (i + 1) & (cache_cap - 1)) {
        if (cache[i].key == key)
            return &cache[i];
        if (cache[i].key == 0)
            return NULL;
    }
}

static void insert_raw(cache_entry *table, size_t cap, const cache_entry *e)
{
    size_t i = slot_of(e->key, cap);
    while (table[i].key != 0)
        i = (i + 1) & (cap - 1);
    table[i] = *e;
}

/* Under the exclusive lock. */
static bool insert(const cache_entry *e)
{
    if ((cache_used + 1) * 2 > cache_cap) {
        size_t cap = cache_cap == 0 ? 256 : cache_cap * 2;
        cache_entry *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return false;
        for (size_t i = 0; i < cache_cap; i++)
            if (cache[i].key != 0)
                insert_raw(t, cap, &cache[i]);
        free(cache);
        cache = t;
        cache_cap = cap;
    }
    insert_raw(cache, cache_cap, e);
    cache_used++;
    return true;
}

/* Handles replaced in the cache (the record named another incarnation since): kept open
 * until their segment is forgotten, because a holder releases the handle it locked. A
 * scribbler churning incarnations could grow the list: past RETIRED_MAX the oldest are
 * closed, a cost only such a scribbler pays. Under the exclusive lock. */
#define RETIRED_MAX 4096
typedef struct retired_handle {
    uint32_t segment_id;
    HANDLE h;
} retired_handle;
static retired_handle retired[RETIRED_MAX];
static size_t retired_count;

static void retire(uint32_t segment_id, HANDLE h)
{
    if (retired_count == RETIRED_MAX) {
        CloseHandle(retired[0].h);
        memmove(retired, retired + 1, (RETIRED_MAX - 1) * sizeof retired[0]);
        retired_count--;
    }
    retired[retired_count].segment_id = segment_id;
    retired[retired_count].h = h;
    retired_count++;
}

static void close_retired(uint32_t segment_id)
{
    size_t kept = 0;
    for (size_t i = 0; i < retired_count; i++) {
        if (retired[i].segment_id == segment_id)
            CloseHandle(retired[i].h);
        else
            retired[kept++] = retired[i];
    }
    retired_count = kept;
}

/* Removes every entry of a segment and closes its handles (rebuilding the table keeps
 * the probe chains intact). */
void w32_sync_forget(uint32_t segment_id)
{
    AcquireSRWLockExclusive(&cache_lock);
    close_retired(segment_id);
    size_t cap = cache_cap;
    cache_entry *old = cache;
    cache_entry *t = cap != 0 ? calloc(cap, sizeof *t) : NULL;
    if (t != NULL) {
        size_t used = 0;
        for (size_t i = 0; i < cap; i++) {
            if (old[i].key == 0)
                continue;
            if (old[i].segment_id == segment_id) {
                CloseHandle(old[i].h);
            } else {
                insert_raw(t, cap, &old[i]);
                used++;
            }
        }
        free(old);
        cache = t;
        cache_used = used;
    }
    ReleaseSRWLockExclusive(&cache_lock);
}

typedef enum { KIND_MUTEX, KIND_SEM, KIND_EVENT } sync_kind;

static HANDLE open_object(sync_kind kind, const sync_record *rec, LONG incarnation,
                          uint32_t *segment_id, unsigned initial)
{
    char prefix[128];
    uint64_t offset = 0;
    SECURITY_ATTRIBUTES *sa = NULL;
    *segment_id = 0;
    if (!w32_segment_of(rec, prefix, sizeof prefix, &offset, &sa, segment_id))
        return kind == KIND_MUTEX ? CreateMutexA(NULL, FALSE, NULL)
               : kind == KIND_SEM ? CreateSemaphoreA(NULL, (LONG)initial, LONG_MAX, NULL)
                                  : CreateEventA(NULL, TRUE, FALSE, NULL);
    char name[192];
    snprintf(name, sizeof name, "%s.%llx.%lx", prefix, (unsigned long long)offset,
             (unsigned long)incarnation);
    /* Open first, with only the rights we use; create (with the segment's descriptor)
     * when nobody holds the object any more. */
    HANDLE h = kind == KIND_MUTEX ? OpenMutexA(SYNCHRONIZE | MUTEX_MODIFY_STATE, FALSE, name)
               : kind == KIND_SEM
                   ? OpenSemaphoreA(SYNCHRONIZE | SEMAPHORE_MODIFY_STATE, FALSE, name)
                   : OpenEventA(SYNCHRONIZE | EVENT_MODIFY_STATE, FALSE, name);
    if (h == NULL)
        h = kind == KIND_MUTEX ? CreateMutexA(sa, FALSE, name)
            : kind == KIND_SEM ? CreateSemaphoreA(sa, (LONG)initial, LONG_MAX, name)
                               : CreateEventA(sa, TRUE, FALSE, name); /* manual reset */
    return h;
}

/* This process's handle for the object the record names now, or NULL. */
static HANDLE lookup(sync_kind kind, const sync_record *rec)
{
    uintptr_t key = (uintptr_t)rec;
    LONG inc = rec->incarnation;
    HANDLE h = NULL;
    AcquireSRWLockShared(&cache_lock);
    cache_entry *e = find(key);
    if (e != NULL && e->incarnation == inc)
        h = e->h;
    ReleaseSRWLockShared(&cache_lock);
    if (h != NULL)
        return h;

    uint32_t segment_id;
    HANDLE fresh = open_object(kind, rec, inc, &segment_id, 0);
    if (fresh == NULL)
        return NULL;
    AcquireSRWLockExclusive(&cache_lock);
    e = find(key);
    if (e != NULL && e->incarnation == inc) {
        h = e->h; /* another thread was first */
        CloseHandle(fresh);
    } else if (e != NULL) {
        retire(e->segment_id, e->h); /* a thread may hold it: see plat_mutex_unlock */
        e->h = fresh;
        e->incarnation = inc;
        e->segment_id = segment_id;
        h = fresh;
    } else {
        cache_entry ne = {key, segment_id, inc, fresh};
        if (insert(&ne)) {
            h = fresh;
        } else {
            CloseHandle(fresh);
        }
    }
    ReleaseSRWLockExclusive(&cache_lock);
    return h;
}

/* Starts a new incarnation of the record and makes its object, held by this process. */
static mbx_err init_record(sync_kind kind, void *opaque, unsigned initial)
{
    sync_record *rec = opaque;
    /* Unsigned: the old number is whatever the segment holds, LONG_MAX included. */
    LONG inc = (LONG)(((ULONG)rec->incarnation + 1u) & 0x7fffffffu);
    if (inc == 0)
        inc = 1;
    rec->magic = SYNC_MAGIC;
    uint32_t segment_id;
    HANDLE h = open_object(kind, rec, inc, &segment_id, initial);
    if (h == NULL)
        return w32_map_error(GetLastError());
    InterlockedExchange(&rec->incarnation, inc);
    AcquireSRWLockExclusive(&cache_lock);
    cache_entry *e = find((uintptr_t)rec);
    bool ok = true;
    if (e != NULL) {
        CloseHandle(e->h);
        e->h = h;
        e->incarnation = inc;
        e->segment_id = segment_id;
    } else {
        cache_entry ne = {(uintptr_t)rec, segment_id, inc, h};
        ok = insert(&ne);
    }
    ReleaseSRWLockExclusive(&cache_lock);
    if (!ok) {
        CloseHandle(h);
        return MBX_ENOMEM;
    }
    return MBX_OK;
}

mbx_err plat_mutex_init(plat_mutex *m)
{
    return init_record(KIND_MUTEX, m->opaque, 0);
}

static plat_lock_rc wait_mutex(plat_mutex *m, DWORD ms, plat_lock_token *tok)
{
    HANDLE h = lookup(KIND_MUTEX, (sync_record *)(void *)m->opaque);
    tok->value = 0;
    if (h == NULL)
        return PLAT_LOCK_BROKEN;
    switch (WaitForSingleObject(h, ms)) {
    case WAIT_OBJECT_0:
        tok->value = (intptr_t)h;
        return PLAT_LOCKED;
    case WAIT_ABANDONED:
        tok->value = (intptr_t)h;
        return PLAT_LOCK_OWNER_DIED; /* and the mutex is already ours and usable */
    case WAIT_TIMEOUT:
        return PLAT_LOCK_BUSY;
    default:
        return PLAT_LOCK_BROKEN;
    }
}

plat_lock_rc plat_mutex_lock(plat_mutex *m, int64_t deadline_ns, plat_lock_token *tok)
{
    return wait_mutex(m, w32_wait_ms(deadline_ns), tok);
}

plat_lock_rc plat_mutex_trylock(plat_mutex *m, plat_lock_token *tok)
{
    return wait_mutex(m, 0, tok);
}

/* The kernel judges the holder: a zero wait on an abandoned mutex is WAIT_ABANDONED. */
uint64_t plat_mutex_owner(const plat_mutex *m)
{
    (void)m;
    return 0; /* the kernel keeps the owner: not ours to read */
}

plat_lock_rc plat_mutex_try_take(plat_mutex *m, plat_lock_token *tok)
{
    return wait_mutex(m, 0, tok);
}

/* The kernel hands an abandoned mutex over in one step (WAIT_ABANDONED): there is no
 * moment a test could stop a takeover in, and no identity of ours to judge. */
bool plat_mutex_set_takeover_hook(void (*fn)(plat_mutex *m, bool taken))
{
    (void)fn;
    return false;
}

/* Releases exactly the object that was locked: the record may name another incarnation
 * by now (a scribble), and releasing that one would leave ours held. The handle stays
 * valid: the cache closes a handle only when its segment is forgotten. */
void plat_mutex_unlock(plat_mutex *m, const plat_lock_token *tok)
{
    (void)m;
    if (tok->value != 0)
        ReleaseMutex((HANDLE)tok->value);
}

mbx_err plat_sem_init(plat_sem *s, unsigned value)
{
    return init_record(KIND_SEM, s->opaque, value);
}

void plat_sem_post(plat_sem *s)
{
    HANDLE h = lookup(KIND_SEM, (sync_record *)(void *)s->opaque);
    /* Fails only at the maximum count: the count is a wake-up hint, one more changes
     * nothing. */
    if (h != NULL)
        ReleaseSemaphore(h, 1, NULL);
}

mbx_err plat_sem_wait(plat_sem *s, int64_t deadline_ns)
{
    HANDLE h = lookup(KIND_SEM, (sync_record *)(void *)s->opaque);
    if (h == NULL) {
        /* No object to wait on: sleep out the wait so callers do not spin. */
        DWORD ms = w32_wait_ms(deadline_ns);
        Sleep(ms > 10 ? 10 : ms);
        return MBX_ETIMEDOUT;
    }
    return WaitForSingleObject(h, w32_wait_ms(deadline_ns)) == WAIT_OBJECT_0 ? MBX_OK
                                                                             : MBX_ETIMEDOUT;
}

void plat_sem_drain(plat_sem *s)
{
    HANDLE h = lookup(KIND_SEM, (sync_record *)(void *)s->opaque);
    for (int i = 0; h != NULL && i < 1 << 20 && WaitForSingleObject(h, 0) == WAIT_OBJECT_0; i++)
        ;
}

/* ---- wake handles: a named manual-reset event per mailbox -------------------------- */

/* Named events need no directory: they are named and secured like the segment. */
mbx_err plat_wake_place_make(const char *ns, unsigned mode, plat_wake_place *p)
{
    (void)ns;
    (void)mode;
    p->dirfd_plus_one = 0;
    return MBX_OK;
}

mbx_err plat_wake_place_open(const char *ns, plat_wake_place *p)
{
    (void)ns;
    p->dirfd_plus_one = 0;
    return MBX_OK;
}

void plat_wake_place_close(plat_wake_place *p)
{
    p->dirfd_plus_one = 0;
}

void plat_wake_place_remove(const char *ns)
{
    (void)ns;
}

mbx_err plat_wake_create(const plat_wake_place *p, plat_wake *w, const char *ns, plat_handle *out)
{
    (void)p;
    (void)ns;
    mbx_err err = init_record(KIND_EVENT, w->opaque, 0);
    if (err != MBX_OK)
        return err;
    HANDLE h = lookup(KIND_EVENT, (sync_record *)(void *)w->opaque);
    HANDLE mine = NULL;
    /* The caller's own handle (the cache keeps its one): it may close it when done. */
    if (h == NULL || !DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &mine, 0, FALSE,
                                      DUPLICATE_SAME_ACCESS))
        return plat_system_error(h == NULL ? ERROR_INVALID_HANDLE : (int)GetLastError());
    *out = (plat_handle)mine;
    return MBX_OK;
}

void plat_wake_signal(const plat_wake_place *p, plat_wake *w)
{
    (void)p;
    HANDLE h = lookup(KIND_EVENT, (sync_record *)(void *)w->opaque);
    if (h != NULL)
        SetEvent(h);
}

void plat_wake_clear(plat_wake *w, plat_handle h)
{
    (void)w;
    ResetEvent((HANDLE)h);
}

void plat_wake_reset(const plat_wake_place *p, plat_wake *w)
{
    (void)p;
    (void)w; /* a new owner's plat_wake_create starts a new incarnation */
}

void plat_wake_close(const plat_wake_place *p, plat_handle h)
{
    (void)p;
    if (h != PLAT_NO_HANDLE && h != 0)
        CloseHandle((HANDLE)h);
}
