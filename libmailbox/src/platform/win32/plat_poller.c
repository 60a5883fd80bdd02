/*
 * Waiting on many handles on Windows. WaitForMultipleObjects stops at 64 handles, so each
 * watched handle gets a one-shot thread-pool wait (RegisterWaitForSingleObject) whose
 * callback marks it fired and sets the poller's event. plat_poller_wait() collects the
 * fired entries, and re-arms those it returned the time before: a handle that is still
 * ready fires again at once, which gives epoll's level-triggered behaviour the broker
 * relies on. Only the broker's thread calls these functions; callbacks touch nothing but
 * their entry's flag and the event.
 */
#include <stdlib.h>

#include "w32.h"

typedef struct poll_entry {
    plat_poller *poller;
    w32_obj *obj;
    uint64_t key;
    HANDLE wait; /* the registered wait, NULL while not armed */
    volatile LONG fired;
    bool delivered;
} poll_entry;

struct plat_poller {
    HANDLE wake;
    poll_entry **entries;
    size_t count, cap;
};

static VOID CALLBACK on_signalled(PVOID ctx, BOOLEAN timed_out)
{
    (void)timed_out;
    poll_entry *e = ctx;
    InterlockedExchange(&e->fired, 1);
    SetEvent(e->poller->wake);
}

static bool arm(poll_entry *e)
{
    return RegisterWaitForSingleObject(&e->wait, e->obj->ready, on_signalled, e, INFINITE,
                                       WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD);
}

static void disarm(poll_entry *e)
{
    if (e->wait != NULL) {
        /* INVALID_HANDLE_VALUE: returns once a running callback has finished. */
        UnregisterWaitEx(e->wait, INVALID_HANDLE_VALUE);
        e->wait = NULL;
    }
}

mbx_err plat_poller_open(plat_poller **out)
{
    plat_poller *p = calloc(1, sizeof *p);
    if (p == NULL)
        return MBX_ENOMEM;
    p->wake = CreateEventA(NULL, FALSE, FALSE, NULL);
    if (p->wake == NULL) {
        free(p);
        return w32_map_error(GetLastError());
    }
    *out = p;
    return MBX_OK;
}

void plat_poller_close(plat_poller *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++) {
        disarm(p->entries[i]);
        free(p->entries[i]);
    }
    free(p->entries);
    CloseHandle(p->wake);
    free(p);
}

mbx_err plat_poller_add(plat_poller *p, plat_handle h, uint64_t key)
{
    if (p->count == p->cap) {
        size_t cap = p->cap == 0 ? 64 : p->cap * 2;
        poll_entry **grown = realloc(p->entries, cap * sizeof *grown);
        if (grown == NULL)
            return MBX_ENOMEM;
        p->entries = grown;
        p->cap = cap;
    }
    poll_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return MBX_ENOMEM;
    e->poller = p;
    e->obj = w32_from(h);
    e->key = key;
    if (!arm(e)) {
        mbx_err err = w32_map_error(GetLastError());
        free(e);
        return err;
    }
    p->entries[p->count++] = e;
    return MBX_OK;
}

mbx_err plat_poller_del(plat_poller *p, plat_handle h)
{
    for (size_t i = 0; i < p->count; i++) {
        poll_entry *e = p->entries[i];
        if (e->obj != w32_from(h))
            continue;
        disarm(e);
        free(e);
        p->entries[i] = p->entries[--p->count];
        return MBX_OK;
    }
    return MBX_EINVAL;
}

static int collect(plat_poller *p, uint64_t *keys, int max_keys)
{
    int n = 0;
    for (size_t i = 0; i < p->count && n < max_keys; i++) {
        poll_entry *e = p->entries[i];
        if (InterlockedExchange(&e->fired, 0)) {
            keys[n++] = e->key;
            e->delivered = true;
        }
    }
    return n;
}

int plat_poller_wait(plat_poller *p, int timeout_ms, uint64_t *keys, int max_keys)
{
    for (size_t i = 0; i < p->count; i++) {
        poll_entry *e = p->entries[i];
        if (e->delivered) {
            disarm(e);
            e->delivered = false;
            if (!arm(e))
                return -1;
        }
    }
    int n = collect(p, keys, max_keys);
    if (n > 0)
        return n;
    DWORD rc = WaitForSingleObject(p->wake, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    if (rc == WAIT_FAILED)
        return -1;
    return collect(p, keys, max_keys);
}
