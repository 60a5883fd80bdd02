/*
 * Soak: 8 clients exchange random traffic while clients and the broker are killed with
 * SIGKILL and restarted at random; then a full accounting from what every process logged.
 *
 * Each client process logs, one write per line: "T to k" before a send, "S to k" after it
 * succeeded, "R from incarnation k" after a receive. The checks:
 * - every message received was sent to that recipient (nothing misdelivered);
 * - nothing is received twice;
 * - per sender incarnation and recipient, messages arrive in the order sent;
 * - everything sent with success was received, or counted as discarded (a recipient
 *   without linger that died), or was taken by a recipient killed before it could log it:
 *   at most one message per kill of that recipient. Even clients linger, so their
 *   mailboxes survive their deaths and nothing sent to them may be discarded.
 *
 * Duration: $MBX_SOAK_SECONDS (default 6). docs/testing.md says how to run it for hours.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CLIENTS 8
#define MAX_INCARNATIONS 4096 /* per client: enough for hours of kills */
#define MAX_K 10000000

static char ns[64];
static char log_dir[128];

/* ---- the client process -------------------------------------------------------------- */

static volatile sig_atomic_t stop_sending, finish;

static void on_usr1(int sig)
{
    (void)sig;
    stop_sending = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    finish = 1;
}

struct who {
    int index;
    int incarnation;
};

/* Installed in the test process before any fork, so a client has them from its first
 * instruction: a stop signal can never find one still with the default action. */
static void install_stop_handlers(void)
{
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
}

static int client_main(void *p)
{
    struct who *w = p;
    srand((unsigned)getpid());

    char path[192];
    snprintf(path, sizeof path, "%s/c%d.%d", log_dir, w->index, w->incarnation);
    int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0)
        return 10;
    char name[16];
    snprintf(name, sizeof name, "c%d", w->index);
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    o.linger_ms = w->index % 2 == 0 ? 600000 : 0;
    o.timeout_ms = 1000;
    mbx_client *c = NULL;
    long long give_up = harness_now_ms() + 30000;
    while (mbx_connect(&o, &c) != MBX_OK) {
        if (harness_now_ms() > give_up)
            return 11;
        usleep(10 * 1000); /* no broker right now, or our predecessor not yet seen gone */
    }
    mbx_message *m = mbx_message_new();
    char body[64];
    for (int k = 0; !finish; k++) {
        if (!stop_sending && k < MAX_K) {
            int to = rand() % CLIENTS;
            char to_name[16];
            snprintf(to_name, sizeof to_name, "c%d", to);
            int len = snprintf(body, sizeof body, "{\"f\":%d,\"i\":%d,\"k\":%d}", w->index,
                               w->incarnation, k);
            dprintf(log, "T %d %d\n", to, k);
            if (mbx_send(c, to_name, body, (size_t)len, 100) == MBX_OK)
                dprintf(log, "S %d %d\n", to, k);
        }
        if (mbx_recv(c, m, stop_sending ? 50 : 2) == MBX_OK) {
            int f, i, kk;
            if (sscanf(mbx_message_body(m, NULL), "{\"f\":%d,\"i\":%d,\"k\":%d}", &f, &i, &kk) != 3)
                return 12;
            dprintf(log, "R %d %d %d\n", f, i, kk);
        }
    }
    /* Finish: nobody sends any more; take what is left. */
    while (mbx_recv(c, m, 200) == MBX_OK) {
        int f, i, kk;
        if (sscanf(mbx_message_body(m, NULL), "{\"f\":%d,\"i\":%d,\"k\":%d}", &f, &i, &kk) != 3)
            return 12;
        dprintf(log, "R %d %d %d\n", f, i, kk);
    }
    mbx_message_free(m);
    mbx_close(c);
    close(log);
    return 0;
}

/* ---- the accounting ---------------------------------------------------------------- */

/* What happened to each message of one sender incarnation, indexed by k. */
enum { SENT_OK = 1, RECEIVED = 2 };

struct incarnation_log {
    int count;            /* messages it attempted (k < count) */
    unsigned char *state; /* SENT_OK | RECEIVED */
    signed char *to;      /* intended recipient */
};

struct ledger {
    struct incarnation_log *logs[CLIENTS]; /* [sender][incarnation] */
    int incarnations[CLIENTS];
    int kills[CLIENTS];
};

static FILE *open_log(int who, int inc)
{
    char path[192];
    snprintf(path, sizeof path, "%s/c%d.%d", log_dir, who, inc);
    return fopen(path, "r"); /* NULL: killed before it opened its log */
}

/* First pass: what each incarnation tried to send, and what succeeded. */
static void read_sends(struct ledger *l, long *sent_ok)
{
    for (int who = 0; who < CLIENTS; who++) {
        l->logs[who] = calloc((size_t)l->incarnations[who], sizeof(struct incarnation_log));
        assert_non_null(l->logs[who]);
        for (int inc = 0; inc < l->incarnations[who]; inc++) {
            struct incarnation_log *il = &l->logs[who][inc];
            FILE *f = open_log(who, inc);
            char line[64], kind;
            int to, k, cap = 0;
            while (f != NULL && fgets(line, sizeof line, f) != NULL) {
                if (sscanf(line, "%c %d %d", &kind, &to, &k) != 3 || (kind != 'T' && kind != 'S'))
                    continue;
                assert_true(k >= 0 && k < MAX_K && to >= 0 && to < CLIENTS);
                if (k >= cap) {
                    int grown = cap == 0 ? 1024 : cap * 2;
                    while (grown <= k)
                        grown *= 2;
                    il->state = realloc(il->state, (size_t)grown);
                    il->to = realloc(il->to, (size_t)grown);
                    assert_true(il->state != NULL && il->to != NULL);
                    memset(il->state + cap, 0, (size_t)(grown - cap));
                    cap = grown;
                }
                if (k >= il->count)
                    il->count = k + 1;
                il->to[k] = (signed char)to;
                if (kind == 'S') {
                    il->state[k] |= SENT_OK;
                    (*sent_ok)++;
                }
            }
            if (f != NULL)
                fclose(f);
        }
    }
}

/* Second pass: every receipt must match a send to its recipient, once, in order. */
static void read_receipts(struct ledger *l, long *received)
{
    static int last[CLIENTS][CLIENTS][MAX_INCARNATIONS];
    memset(last, -1, sizeof last);
    for (int who = 0; who < CLIENTS; who++) {
        for (int inc = 0; inc < l->incarnations[who]; inc++) {
            FILE *f = open_log(who, inc);
            char line[64], kind;
            int a, b, c;
            while (f != NULL && fgets(line, sizeof line, f) != NULL) {
                if (sscanf(line, "%c %d %d %d", &kind, &a, &b, &c) != 4 || kind != 'R')
                    continue;
                if (a < 0 || a >= CLIENTS || b < 0 || b >= l->incarnations[a] || c < 0 ||
                    c >= l->logs[a][b].count)
                    fail_msg("c%d received c%d.%d #%d, which was never sent", who, a, b, c);
                struct incarnation_log *il = &l->logs[a][b];
                if (il->to[c] != who)
                    fail_msg("c%d received c%d.%d #%d, sent to c%d", who, a, b, c, il->to[c]);
                if (il->state[c] & RECEIVED)
                    fail_msg("c%d.%d #%d received twice", a, b, c);
                if (c <= last[who][a][b])
                    fail_msg("c%d got c%d.%d #%d after #%d", who, a, b, c, last[who][a][b]);
                last[who][a][b] = c;
                il->state[c] |= RECEIVED;
                (*received)++;
            }
            if (f != NULL)
                fclose(f);
        }
    }
}

static void test_soak(void **state)
{
    (void)state;
    const char *env = getenv("MBX_SOAK_SECONDS");
    long seconds = env != NULL ? strtol(env, NULL, 10) : 6;
    if (seconds < 1)
        seconds = 1;
    harness_namespace(ns, "soak");
    snprintf(log_dir, sizeof log_dir, "/tmp/%s", ns);
    assert_int_equal(mkdir(log_dir, 0700), 0);

    install_stop_handlers();
    pid_t broker = harness_start_broker(ns, "--depth", "8", NULL);
    struct ledger l = {0};
    struct who who[CLIENTS];
    pid_t pids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        who[i] = (struct who){i, l.incarnations[i]++};
        pids[i] = harness_spawn(client_main, &who[i], (unsigned)seconds + 120);
    }
    srand((unsigned)getpid());
    int broker_kills = 0;
    for (long long end = harness_now_ms() + seconds * 1000; harness_now_ms() < end;) {
        usleep((useconds_t)(20 + rand() % 150) * 1000);
        int dice = rand() % 100;
        if (dice < 70) {
            int i = rand() % CLIENTS;
            if (l.incarnations[i] >= MAX_INCARNATIONS)
                continue;
            kill(pids[i], SIGKILL);
            int rc = harness_wait(pids[i], 10000);
            if (rc != 128 + SIGKILL && rc != 0)
                fail_msg("c%d.%d ended with %d", i, who[i].incarnation, rc);
            l.kills[i]++;
            who[i] = (struct who){i, l.incarnations[i]++};
            pids[i] = harness_spawn(client_main, &who[i], (unsigned)seconds + 120);
        } else if (dice < 80) {
            kill(broker, SIGKILL);
            assert_int_equal(harness_wait(broker, 10000), 128 + SIGKILL);
            usleep((useconds_t)(rand() % 100) * 1000);
            broker = harness_start_broker(ns, NULL);
            broker_kills++;
        }
    }
    /* Stop all sending first, then let everyone drain and leave. */
    for (int i = 0; i < CLIENTS; i++)
        kill(pids[i], SIGUSR1);
    usleep(500 * 1000);
    for (int i = 0; i < CLIENTS; i++)
        kill(pids[i], SIGUSR2);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(harness_wait(pids[i], 60000), 0);
    mbx_namespace_info info;
    assert_int_equal(mbx_inspect(ns, &info, NULL, NULL), MBX_OK);
    assert_int_equal(harness_stop(broker, 5000), 0);

    long received = 0, sent_ok = 0;
    read_sends(&l, &sent_ok);
    read_receipts(&l, &received);

    long missing[CLIENTS] = {0}, missing_all = 0, kills = 0;
    for (int f = 0; f < CLIENTS; f++)
        for (int i = 0; i < l.incarnations[f]; i++) {
            struct incarnation_log *il = &l.logs[f][i];
            for (int k = 0; k < il->count; k++)
                if ((il->state[k] & SENT_OK) && !(il->state[k] & RECEIVED)) {
                    missing[il->to[k]]++;
                    missing_all++;
                }
        }
    for (int j = 0; j < CLIENTS; j++) {
        kills += l.kills[j];
        /* Lingering mailboxes survive their clients: only a message taken by a client
         * killed before it logged it can be missing. */
        if (j % 2 == 0 && missing[j] > l.kills[j])
            fail_msg("c%d (lingering) is missing %ld messages, killed %d times", j, missing[j],
                     l.kills[j]);
    }
    printf("soak: %lds, %ld sent, %ld received, %" PRIu64 " discarded, %ld unaccounted, "
           "%ld client kills, %d broker kills\n",
           seconds, sent_ok, received, info.discarded, missing_all, kills, broker_kills);
    if (missing_all > (long)info.discarded + kills)
        fail_msg("%ld messages lost: more than %" PRIu64 " discarded + %ld kills", missing_all,
                 info.discarded, kills);
    assert_true(received > 100);
    for (int f = 0; f < CLIENTS; f++) {
        for (int i = 0; i < l.incarnations[f]; i++) {
            free(l.logs[f][i].state);
            free(l.logs[f][i].to);
        }
        free(l.logs[f]);
    }
}

/* Runs whether the test passed or not: no log folder outlives it. */
static int remove_logs(void **state)
{
    (void)state;
    harness_cleanup();
    if (log_dir[0] != '\0') {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", log_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_soak, remove_logs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
