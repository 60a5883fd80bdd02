/*
 * harness.h: helpers for multi-process tests.
 *
 * Every process a test starts is bounded twice: the child arms alarm() on itself and
 * dies with its parent (PR_SET_PDEATHSIG), and the parent waits with a deadline, then
 * SIGKILLs. Brokers run in the foreground as direct children and report readiness over
 * NOTIFY_SOCKET, so a killed test takes them with it. An atexit handler kills what is
 * left and removes the namespace's segment, so nothing outlives a failing test.
 */
#ifndef MBX_TEST_HARNESS_H
#define MBX_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "mailbox.h"

/* Sets a unique namespace "mbxtest-<run>-<tag>-<pid>-<n>" into ns (64 bytes); <run> is
 * $MBX_TEST_TAG, which ctest sets per build folder. */
void harness_namespace(char *ns, const char *tag);

/* Starts mailboxd -N ns with extra arguments (NULL-terminated list) and waits until it is
 * ready. Returns its pid; fails the test when it does not get ready in 10 s. */
pid_t harness_start_broker(const char *ns, ...);

/* Runs mailboxd with arguments (NULL-terminated), waits for it (10 s at most) and returns
 * its exit status; its stderr goes to err (cap bytes) when err is not NULL. */
int harness_run_broker(char *err, size_t cap, ...);

/* SIGTERM, then wait up to timeout_ms; returns the exit status, or -1 after a SIGKILL. */
int harness_stop(pid_t pid, int timeout_ms);

/* Forks a child that runs fn(arg) and _exits with its return value, killed after
 * timeout_s by its own alarm. */
pid_t harness_spawn(int (*fn)(void *arg), void *arg, unsigned timeout_s);

/* Starts a client process that connects to ns as name (with linger_ms) and then idles
 * until killed; returns its pid once it is connected, or fails the test. */
pid_t harness_spawn_idle_client(const char *ns, const char *name, int linger_ms);

/* Monotonic milliseconds, for deadlines (never for asserting how long something took). */
long long harness_now_ms(void);

/* Waits for pid up to timeout_ms: its exit code, 128+signal if killed by one, or -1 when
 * it had to be killed for running late. */
int harness_wait(pid_t pid, int timeout_ms);

/* For child processes (no cmocka there): connects under name (NULL for an assigned one),
 * or returns NULL. */
mbx_client *harness_child_connect(const char *ns, const char *name);

/* Connects under name (NULL for an assigned one) and fails the test on error. */
mbx_client *harness_connect(const char *ns, const char *name);

/* Connects, retrying while the result is `retry_on`, up to timeout_ms. Returns the last
 * error; *out is set on MBX_OK. */
mbx_err harness_connect_retry(const char *ns, const char *name, mbx_err retry_on, int timeout_ms,
                              mbx_client **out);

/* What mbx_inspect says of the client called name in ns, into *out (zeroed first; fails
 * the test when ns cannot be inspected). True when such a client is connected. */
bool harness_find_client(const char *ns, const char *name, mbx_client_info *out);

/* What harness_wait_gauge watches in a client's mbx_client_info. */
typedef enum harness_gauge {
    HARNESS_SENDERS_ASLEEP, /* senders_waiting: senders asleep on its full mailbox */
    HARNESS_WAITING,        /* waiting: messages in its mailbox */
} harness_gauge;

/* Waits up to timeout_ms until client `name` shows at least `at_least` in `gauge`: a
 * handshake on observable state instead of a guessed delay. Fails the test when it
 * never does. */
void harness_wait_gauge(const char *ns, const char *name, harness_gauge gauge, uint64_t at_least,
                        int timeout_ms);

/* The address of ns's control socket, as a broker of this user makes it (the runtime
 * directory of docs/architecture.md): fills addr, returns its length. */
struct sockaddr_un;
unsigned harness_socket_addr(const char *ns, struct sockaddr_un *addr);

/* The path of ns's runtime file with extension ext ("sock", "lock", "keep") in buf. */
const char *harness_runtime_file(const char *ns, const char *ext, char *buf, size_t cap);

/* The pid of the keeper holding ns's segment while no broker runs (docs/architecture.md),
 * or 0 when there is none. */
pid_t harness_keeper_pid(const char *ns);

/* Asks ns's keeper (docs/architecture.md) which broker it last served and waits for the
 * answer: once it comes, the keeper has acted on everything that was pending before the
 * question (a dead broker's end of file among it). The broker's pid, or 0 when no keeper
 * answers. */
pid_t harness_keeper_probe(const char *ns);

/* Kills every process this harness started and removes every namespace it named (a
 * killed broker's keeper and files included). */
void harness_cleanup(void);

#endif
