/*
 * platform.h: the only contract between mailbox and the operating system.
 *
 * Everything above this layer (segment, ring, client, broker) is written against these
 * functions; posix/ implements them for Linux, win32/ for Windows (docs/windows.md).
 * Functions return an mbx_err (each backend maps OS errors to it through one table)
 * unless stated otherwise. Nothing here knows about slots, rings or JSON.
 *
 * Time: deadlines are absolute monotonic nanoseconds from plat_now_ns() (CLOCK_MONOTONIC,
 * QueryPerformanceCounter);
 * PLAT_FOREVER means no deadline.
 */
#ifndef MBX_PLATFORM_H
#define MBX_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailbox.h"

#define PLAT_FOREVER INT64_MAX

/* An OS handle: a file descriptor on POSIX, a pointer to the backend's own record on
 * Windows. PLAT_NO_HANDLE when none. */
typedef intptr_t plat_handle;
#define PLAT_NO_HANDLE ((plat_handle)-1)

/* ---- clocks ------------------------------------------------------------------------ */

/* Monotonic clock in nanoseconds; never goes back. */
int64_t plat_now_ns(void);
/* Wall clock in microseconds since the Unix epoch (for message timestamps). */
int64_t plat_wall_us(void);
/* Deadline timeout_ms from now; negative timeout_ms gives PLAT_FOREVER. */
int64_t plat_deadline(int timeout_ms);

/* Tells the CPU we are in a spin-wait loop (x86 PAUSE, ARM YIELD): saves power and lets a
 * sibling hyper-thread run. */
static inline void plat_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Gives the CPU to another runnable thread, if any, and returns. */
void plat_yield(void);

/* Signals held off while a call of a client with the `signals` option looks and spins
 * before it sleeps (shm_wait.h): a signal that comes then waits, and the sleep is not
 * begun but ended with MBX_ESIGNAL; only the sleep itself lets signals through. Without
 * this, one that landed during a spin ran its handler and was never seen. POSIX; on
 * Windows every function does nothing. */
typedef struct plat_signal_hold {
    bool held;
    _Alignas(8) unsigned char saved[128]; /* the thread's own mask, while held */
} plat_signal_hold;
/* Blocks every signal for the calling thread (once; nothing when already held). */
void plat_signals_hold(plat_signal_hold *h);
/* True when a signal the thread's own mask lets through came while held. */
bool plat_signals_came(const plat_signal_hold *h);
/* Restores the thread's own mask: a signal that came runs its handler now. */
void plat_signals_release(plat_signal_hold *h);
/* Sleeps about ns nanoseconds (a pause between tries, not a timer). */
void plat_sleep_ns(int64_t ns);

/* ---- the namespace's shared segment ------------------------------------------------- */

/*
 * Two ways to share a segment, one per backend:
 * - POSIX: an anonymous, sealed memfd (no size change is possible, not even by its
 *   creator: a member cannot SIGBUS the others by truncating it). It has no name: the
 *   broker passes it to each client over the control channel (plat_chan_send_handle),
 *   and a keeper process holds it while no broker runs (broker/keeper_posix.c).
 * - Windows: a named section, which cannot shrink; clients open it by name, and it lives
 *   while any process holds a handle.
 */
typedef struct plat_shm {
    void *base;         /* mapping address in this process */
    size_t size;        /* mapped bytes */
    uint32_t uid;       /* the segment's owner ... */
    uint32_t gid;       /* ... and group */
    unsigned mode;      /* and permission bits (POSIX: as the broker was told) */
    bool has_handle;    /* handle is set (a zeroed plat_shm has none) */
    plat_handle handle; /* what the broker passes to clients (POSIX); Windows clients
                           open the segment by name instead */
} plat_shm;

/*
 * Creates the segment (Windows: named, exclusively) with the given permission bits, sized
 * and with its memory reserved (so a later touch cannot die with SIGBUS), and maps it
 * read-write. Errors: MBX_EEXIST when a segment of that name exists (Windows), MBX_ENOMEM
 * when the memory cannot be reserved, MBX_EPERM, MBX_ESYSTEM.
 */
mbx_err plat_shm_create(const char *ns, size_t size, unsigned mode, plat_shm *out);
/*
 * Windows: opens the named segment and maps all of it (writable unless read_only). The
 * size is the segment's actual size, at most max_size; the caller validates it.
 * Errors: MBX_ENOBROKER (no such segment), MBX_EPERM, MBX_ECORRUPT (size out of range).
 * POSIX: segments have no name; MBX_ENOBROKER.
 */
mbx_err plat_shm_open(const char *ns, bool read_only, size_t max_size, plat_shm *out);
/*
 * Maps a segment passed as a handle (POSIX: a memfd received over the control channel;
 * the handle is closed, the mapping stays). As plat_shm_open otherwise; MBX_ECORRUPT also
 * when the handle is not a sealed segment. Windows: MBX_EINVAL (never passed).
 */
mbx_err plat_shm_map(plat_handle h, bool read_only, size_t max_size, plat_shm *out);
/* Unmaps, and closes the handle if the segment has one. */
void plat_shm_close(plat_shm *shm);
/* One sentence of advice for a user whose plat_shm_create() failed with err, or NULL. */
const char *plat_shm_advice(mbx_err err);

/* ---- crash-safe process-shared lock, stored inside the segment -------------------- */

/*
 * A lock that records its holder and keeps no pointer in shared memory (POSIX: a futex
 * word holding the holder's thread id, see posix/plat_sync.c; Windows: a named mutex).
 * Every value the memory may hold, written by anyone, decodes as some lock state: no
 * call ever aborts or hangs past its deadline on a scribbled lock. A holder that died
 * is detected exactly (its thread is gone, or its id now names a thread started later)
 * and the lock passes to a waiter with PLAT_LOCK_OWNER_DIED; a holder that is alive but
 * stopped keeps it, and waiters time out. Nothing ever re-initialises a lock that may be
 * held.
 */
typedef struct plat_mutex {
    _Alignas(16) unsigned char opaque[48];
} plat_mutex;

typedef enum plat_lock_rc {
    PLAT_LOCKED = 0,      /* the caller holds the lock */
    PLAT_LOCK_OWNER_DIED, /* ... and its previous holder died holding it: repair first */
    PLAT_LOCK_BUSY,       /* another live holder kept it past the deadline */
    PLAT_LOCK_BROKEN      /* the lock cannot be used (Windows: no object to wait on) */
} plat_lock_rc;

/* What a successful lock hands to the matching unlock: the unlock releases exactly the
 * lock that was taken, whatever the shared memory says by then. */
typedef struct plat_lock_token {
    intptr_t value;
} plat_lock_token;

/* Initialises a lock in fresh shared memory (the segment's creator only). */
mbx_err plat_mutex_init(plat_mutex *m);
/* Locks before the deadline (never PLAT_FOREVER: callers wait in slices and re-check
 * their own state between them). */
plat_lock_rc plat_mutex_lock(plat_mutex *m, int64_t deadline_ns, plat_lock_token *tok);
/* Locks without waiting and without judging the holder: the fast path of a lock. */
plat_lock_rc plat_mutex_trylock(plat_mutex *m, plat_lock_token *tok);
/* Locks without waiting, but judges a holder once: PLAT_LOCK_OWNER_DIED when it died
 * (the caller now holds the lock and repairs), PLAT_LOCK_BUSY when it lives. Costs at
 * most a bounded spin and one look at the holder (POSIX: kill(2) and a read of /proc),
 * whatever the lock's memory says: for a caller that must never wait on a lock a member
 * can hold (the broker's event loop). */
plat_lock_rc plat_mutex_try_take(plat_mutex *m, plat_lock_token *tok);
/* Who holds m, as one word that changes whenever the lock changes hands (POSIX: the
 * holder's thread id and start time), 0 when it is free or when the platform cannot tell
 * (Windows). A hint read from shared memory: for telling a holder that stays from a lock
 * that keeps changing hands, never for deciding who may take it. */
uint64_t plat_mutex_owner(const plat_mutex *m);
/* Releases a lock taken with tok. A lock that another process took over meanwhile (only
 * a scribbler can make it look dead) is left to its new holder. */
void plat_mutex_unlock(plat_mutex *m, const plat_lock_token *tok);
/* Tests only: fn runs in a thread taking a lock over from a holder judged dead, just
 * before its compare-and-swap (taken false: a test may move the word there) and just after
 * a successful one (taken true: the lock names the thread now; a test may stop it there
 * and judge the lock as other waiters would). Process-wide; NULL removes it. False, and
 * nothing is set, in a build without MBX_FAULT_INJECTION, or where the system judges
 * holders itself (Windows). */
bool plat_mutex_set_takeover_hook(void (*fn)(plat_mutex *m, bool taken));

/* ---- counting semaphore, stored inside the segment --------------------------------- */

/* A wake-up hint: callers re-check their state after every wait, so a lost or extra post
 * costs at most one wait slice. Like the lock, any value in its memory is a usable state. */

typedef struct plat_sem {
    _Alignas(16) unsigned char opaque[32];
} plat_sem;

mbx_err plat_sem_init(plat_sem *s, unsigned value);
void plat_sem_post(plat_sem *s);
/* Waits for a count before the deadline: MBX_OK, MBX_ETIMEDOUT, or MBX_ESIGNAL when a
 * signal handler ran meanwhile (POSIX; nothing taken). Callers treat the last two like a
 * spurious wake-up and re-check their state, unless their client asked to stop on a
 * signal (mbx_connect_options.signals). */
mbx_err plat_sem_wait(plat_sem *s, int64_t deadline_ns);
/* Sets the count back to zero (used when a mailbox is handed to a new owner). */
void plat_sem_drain(plat_sem *s);

/* ---- wake handle, for event loops --------------------------------------------------- */

/*
 * A pollable handle of a mailbox's owner that any process of the namespace can make
 * readable, and no other, with no descriptor or handle per recipient on the senders'
 * side. The record lives in the segment and says how senders reach it; nothing in it is
 * trusted.
 * POSIX: a Unix datagram socket bound in the namespace's wake directory,
 * "<runtime dir>/<ns>.wake", which the broker makes with the namespace's access (owner
 * only by default): only members can reach a socket there (abstract socket names, used
 * before, were listed in /proc/net/unix for any local user to flood, and tied all
 * members to one network namespace). The record holds the socket's random name; senders
 * send one byte from one unbound socket per process. Windows: a named manual-reset event,
 * named and secured like the segment's other objects.
 */
typedef struct plat_wake {
    _Alignas(8) unsigned char opaque[32];
} plat_wake;

/* Where a namespace's wake handles live, as one process reaches them (POSIX: an open
 * descriptor of the wake directory, plus one, so that a zeroed place is "none"; Windows:
 * unused). Kept in the process's view of the segment. */
typedef struct plat_wake_place {
    int dirfd_plus_one;
} plat_wake_place;

/* The broker: makes (or finds again) the wake directory of ns with the namespace's access
 * `mode`, and opens it. */
mbx_err plat_wake_place_make(const char *ns, unsigned mode, plat_wake_place *p);
/* A member: opens ns's wake directory, made by the broker it reaches. MBX_ENOBROKER when
 * there is none. */
mbx_err plat_wake_place_open(const char *ns, plat_wake_place *p);
void plat_wake_place_close(plat_wake_place *p);
/* The broker at a clean shutdown, and mbx clean: removes ns's wake directory. */
void plat_wake_place_remove(const char *ns);

/* The owner: makes the handle (POSIX: a file descriptor; Windows: an event HANDLE), not
 * readable yet, and writes into *w how to reach it. */
mbx_err plat_wake_create(const plat_wake_place *p, plat_wake *w, const char *ns, plat_handle *out);
/* Any process: makes the owner's handle readable. Does nothing when none was made; a
 * handle already readable stays so (POSIX: a full queue refuses the byte, which is fine). */
void plat_wake_signal(const plat_wake_place *p, plat_wake *w);
/* The owner: makes its handle quiet again (consumes what made it readable). */
void plat_wake_clear(plat_wake *w, plat_handle h);
/* Whoever hands the mailbox to another owner: senders stop reaching the old handle (and
 * what it left in the wake directory goes). */
void plat_wake_reset(const plat_wake_place *p, plat_wake *w);
/* The owner: closes its handle (and removes its entry from the wake directory). */
void plat_wake_close(const plat_wake_place *p, plat_handle h);

/* ---- processes --------------------------------------------------------------------- */

int64_t plat_pid(void);
/* The CPU the calling thread runs on now, or -1 when unknown (a hint, cheap to read). */
int plat_current_cpu(void);
/* 64 unpredictable bits from the operating system's generator (never 0); for identifiers
 * that must not repeat across runs, such as a connection's first request id. Falls back
 * to a mix of the clock, the pid and an address when the generator fails. */
uint64_t plat_random64(void);

/* MBX_ESYSTEM, with the operating system's own code (errno, GetLastError()) kept for
 * mbx_os_error(); every MBX_ESYSTEM of this layer goes through it or the error tables. */
mbx_err plat_system_error(int code);
/* The code behind the last MBX_ESYSTEM of the calling thread, 0 when none. */
int plat_last_os_error(void);
/*
 * An identity that, with the pid, names one process for ever: its start time in clock
 * ticks since boot. A recycled pid has another start time. Returns 0 when the process
 * does not exist.
 */
uint64_t plat_proc_start_time(int64_t pid);
/* True when process pid's real and effective user ids are both uid, or both root's
 * (Windows: always true, as plat_chan_peer reports no user: the descriptors decide). */
bool plat_proc_has_uid(int64_t pid, uint32_t uid);
/* True when process pid has gid as its real, effective or a supplementary group. */
bool plat_proc_in_group(int64_t pid, uint32_t gid);
/* True when pid is alive and started at start_time. */
bool plat_proc_alive(int64_t pid, uint64_t start_time);
/*
 * A handle that becomes readable (in a plat_poller) when the process exits: an exact
 * death notice. Errors: MBX_EGONE when the process is already gone.
 */
mbx_err plat_proc_watch(int64_t pid, plat_handle *out);

/* ---- control channel between clients and the broker -------------------------------- */

/*
 * The broker's endpoint for a namespace, with its liveness lock: taking it is exclusive
 * and the kernel releases it when the broker dies. mode: the segment's permission bits,
 * which the endpoint carries (the socket file's mode; Windows: the pipe's descriptor).
 * Errors: MBX_EEXIST when a live broker holds it (POSIX: the lock, or, when the lock file
 * was removed or replaced under it, the socket it still serves), MBX_EPERM when the place
 * it lives in is not safe (POSIX: the runtime directory, see posix/plat_runtime.c).
 */
mbx_err plat_chan_listen(const char *ns, unsigned mode, plat_handle *out);
/* The broker's clean exit: closes the endpoint and removes what it left in the file
 * system (a socket file, the lock), then releases the liveness lock. */
void plat_chan_unlisten(const char *ns, plat_handle listener);
/* With no broker running (its liveness lock is free, and taken for the while), removes
 * what a dead one left in the file system; does nothing while a broker runs. For the
 * keeper, which outlives a killed broker. */
void plat_chan_remove_stale(const char *ns);
/* Calls fn for each namespace that has an endpoint (or what a dead broker left of one)
 * where this user's clients look (POSIX: the runtime directories; Windows: the pipes of
 * this session and the global ones), with where it is. Each name once. */
mbx_err plat_ns_each(void (*fn)(const char *ns, const char *where, void *arg), void *arg);
/* mbx clean: with no broker running (its liveness lock taken meanwhile), has the keeper
 * let the segment go (ADOPT then BYE) and removes the endpoint's files; *cleaned says
 * what was done (MBX_CLEAN_* bits). MBX_EEXIST while a broker runs. Windows: nothing is
 * left in a file system there (named objects go with their last handle): MBX_EEXIST
 * while a broker answers, else MBX_OK and nothing done. */
mbx_err plat_ns_clean(const char *ns, unsigned *cleaned);
/* Checks that the broker's liveness lock is still the file at its place (POSIX: a lock
 * file can be removed or replaced under a live broker) and takes it again when it is not;
 * *retaken says so. Call before plat_chan_relisten. MBX_EEXIST when another live process
 * holds the file there now. Windows: a named mutex cannot be removed; MBX_OK. */
mbx_err plat_chan_relock(const char *ns, bool *retaken);
/* The pid of the live broker holding ns's liveness lock, as it wrote it (POSIX: into the
 * lock file, right after taking it; believed only while /proc/locks shows that pid
 * holding it), for a broker refused to name it. MBX_ENOBROKER when
 * none can be read (yet): the caller may ask the endpoint (plat_chan_connect).
 * Windows: MBX_ENOBROKER (the pipe names its server). */
mbx_err plat_chan_holder(const char *ns, int64_t *pid);
/* Checks that the broker's endpoint is still reachable (a socket file can be removed
 * under a live broker: rm, or a session manager clearing the runtime directory) and
 * makes it again when it is not, replacing *listener. MBX_OK when it is in place. */
mbx_err plat_chan_relisten(const char *ns, unsigned mode, plat_handle *listener);
/* Where the namespace's endpoint is (a path, a pipe name), for messages; returns buf. */
const char *plat_chan_where(const char *ns, char *buf, size_t cap);
/* Every place a client looks for it ("A or B"), for messages; returns buf. */
const char *plat_chan_where_clients(const char *ns, char *buf, size_t cap);
/* Waiting for a broker to appear: open a watch first, then try to connect, then wait on
 * the watch (so that a broker that appears in between is not missed), and try again.
 * plat_chan_watch_wait returns MBX_OK when an endpoint of ns may have appeared (possibly
 * spuriously), MBX_ETIMEDOUT at the deadline. POSIX: inotify on the runtime directories
 * (a socket appears there by one rename, when it is ready); where they cannot be
 * watched, and on Windows, it waits a short while (50 ms) instead. */
typedef struct plat_chan_watch plat_chan_watch;
mbx_err plat_chan_watch_open(const char *ns, plat_chan_watch **out);
mbx_err plat_chan_watch_wait(plat_chan_watch *w, int64_t deadline_ns);
void plat_chan_watch_close(plat_chan_watch *w);
/* Accepts one pending connection (non-blocking; MBX_ETIMEDOUT when none is pending). */
mbx_err plat_chan_accept(plat_handle listener, plat_handle *conn);
/* The kernel-verified pid and uid of a connected peer. */
mbx_err plat_chan_peer(plat_handle h, int64_t *pid, uint32_t *uid);
/* Connects to the namespace's broker before the deadline (a broker that is stopped or
 * overwhelmed does not hold us past it). Errors: MBX_ENOBROKER, MBX_ETIMEDOUT.
 * *broker_pid is the kernel-verified pid of the process holding the endpoint. */
mbx_err plat_chan_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *broker_pid);
/* Sends one datagram of len bytes and, with it, a handle the peer receives as its own
 * (POSIX: SCM_RIGHTS; PLAT_NO_HANDLE: none; Windows: the handle is not sent). */
mbx_err plat_chan_send_handle(plat_handle h, const void *buf, size_t len, plat_handle pass);
/* As plat_chan_recv; *passed is the handle that came with the datagram, or
 * PLAT_NO_HANDLE. */
mbx_err plat_chan_recv_handle(plat_handle h, void *buf, size_t cap, size_t *got,
                              int64_t deadline_ns, plat_handle *passed);
/*
 * The keeper's endpoint (POSIX, where segments are handles): "<ns>.keep" in the caller's
 * runtime directory. listen: a stale file is replaced (the caller holds the namespace's
 * liveness lock). connect: MBX_ENOBROKER when no keeper answers, MBX_EPERM when the one
 * that does runs as another user. relisten: when the file was removed (rm, a cleaner of
 * runtime directories), makes it again (replacing *listener; *remade says so), so that a
 * broker to come still finds the keeper. unlink: removes the file the caller bound (not
 * one bound since by another). Windows: MBX_EINVAL.
 */
mbx_err plat_keep_listen(const char *ns, plat_handle *out);
mbx_err plat_keep_relisten(const char *ns, plat_handle *listener, bool *remade);
mbx_err plat_keep_connect(const char *ns, int64_t deadline_ns, plat_handle *out,
                          int64_t *keeper_pid);
void plat_keep_unlink(const char *ns);
/* Sends one datagram of len bytes (the channel keeps message boundaries). */
mbx_err plat_chan_send(plat_handle h, const void *buf, size_t len);
/* Receives one datagram before the deadline into buf; *got its length (0: peer closed).
 * Errors: MBX_ETIMEDOUT, MBX_ESYSTEM. */
mbx_err plat_chan_recv(plat_handle h, void *buf, size_t cap, size_t *got, int64_t deadline_ns);
void plat_handle_close(plat_handle h);
/* True when h is readable now (for a process watch: the process has exited). */
bool plat_handle_ready(plat_handle h);

/* ---- waiting on many handles (broker event loop) ----------------------------------- */

typedef struct plat_poller plat_poller;

mbx_err plat_poller_open(plat_poller **out);
void plat_poller_close(plat_poller *p);
/* Watches h for readability (or hang-up); key comes back from plat_poller_wait(). */
mbx_err plat_poller_add(plat_poller *p, plat_handle h, uint64_t key);
mbx_err plat_poller_del(plat_poller *p, plat_handle h);
/* Waits up to timeout_ms for ready handles; fills keys and returns how many (0 on
 * timeout or signal), or a negative value on failure. */
int plat_poller_wait(plat_poller *p, int timeout_ms, uint64_t *keys, int max_keys);

/* Raises this process's open-handle limit as far as allowed; returns the new limit. */
long plat_raise_handle_limit(void);

/* Ends this process at once, as SIGKILL or TerminateProcess would: no handlers, no
 * unlocking (the fault-injection points use it). */
void plat_kill_self(void);
/* Registers fn to run in the child after a fork (nothing on systems without fork). */
void plat_at_fork_child(void (*fn)(void));

/* A handle a poller can wait on, made readable by plat_notifier_post(), which is safe to
 * call from a signal or console-control handler. */
mbx_err plat_notifier_create(plat_handle *out);
void plat_notifier_post(plat_handle h);

#endif /* MBX_PLATFORM_H */
