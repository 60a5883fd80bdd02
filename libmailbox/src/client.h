/* client.h: the client handle, shared by the files that implement the public API. */
#ifndef MBX_CLIENT_H
#define MBX_CLIENT_H

#include <stdatomic.h>

#include "platform/platform.h"
#include "ring.h"
#include "segment.h"

struct mbx_client {
    plat_shm shm;
    seg_view view;
    plat_handle chan; /* open for as long as we hold the slot */
    uint32_t slot;
    uint32_t generation;
    char name[MBX_NAME_MAX + 1];
    char namespace_name[MBX_NAME_MAX + 1];
    _Atomic uint64_t next_seq;
    atomic_flag receiving;        /* guards against two concurrent mbx_recv() */
    _Atomic uint32_t interrupted; /* set by mbx_interrupt(), taken by the next receive */
    plat_handle wake;             /* the wake handle (mbx_wait_handle), or PLAT_NO_HANDLE */
    ring_spinner spin;            /* used by the one receiving thread */
    int timeout_ms;
    /* The last recipient looked up, so that a stream of sends to one peer does not scan
     * the directory. Only a hint: every use checks it against the directory entry. */
    atomic_flag lookup_lock;
    bool lookup_valid;
    uint32_t lookup_slot;
    char lookup_name[MBX_NAME_MAX + 1];
};

struct mbx_message {
    char *body; /* max_message + 1 bytes once used */
    size_t cap;
    size_t len;
    char from[MBX_NAME_MAX + 1];
    char to[MBX_NAME_MAX + 1];
    uint64_t seq;
    int64_t ts_us;
    /* Set by mbx_peek(): the message's place in the mailbox, for mbx_ack(). */
    bool peeked;
    uint32_t peek_slot;
    uint32_t peek_generation;
    uint64_t peek_position;
};

/* Re-arms the wake handle, if there is one, after a receive found the mailbox empty
 * (wake.c). */
void client_wake_arm(mbx_client *c);

/* Asks ns's broker for the segment (INSPECT), as a client registering would, and maps it
 * (read-only or not) without taking a slot; *broker_pid: the broker's, kernel-verified.
 * Errors as mbx_connect(). */
mbx_err client_inspect_segment(const char *ns, bool read_only, int64_t *broker_pid, plat_shm *shm,
                               seg_view *v);

/* How long a client waits for the broker to close its channel before it believes a
 * shutdown or an eviction that shared memory reports. */
#define CLIENT_CONFIRM_NS (1000LL * 1000 * 1000)

/*
 * Called when shared memory says the namespace is closing or the client's slot was taken
 * back: MBX_ESHUTDOWN when the broker confirms it by closing the client's control channel
 * (within CLIENT_CONFIRM_NS), else MBX_ECORRUPT: a forged word, which the broker's scrub
 * puts back, so the caller may go on. A channel that died with an earlier broker cannot
 * confirm anything and is believed.
 */
mbx_err client_confirm_shutdown(mbx_client *c);

/* Maps a namespace's segment (read-only or not) into shm and view and validates it: the
 * handle passed by the broker, or (PLAT_NO_HANDLE, Windows) the segment of that name. */
mbx_err client_attach_segment(const char *ns, plat_handle passed, bool read_only, plat_shm *shm,
                              seg_view *view);

#endif
