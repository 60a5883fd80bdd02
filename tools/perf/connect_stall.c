/*
 * mbx-connect-stall: connect latency while a member wedges the free mailboxes of the
 * namespace (review H2 of 2026-12-04; docs/performance.md, "A broker no member can
 * stall").
 *
 * Starts a broker with SLOTS slots and measures connects (connect, then close, again and
 * again) for SECONDS on the clean namespace. Then a member points the lock word of every
 * free mailbox but the last 8 at a live thread that is no member (pid 1, with no start
 * time recorded) and puts one record into each: the broker's scrub finds them dirty and
 * can never empty them, because the "holder" lives. Connects are measured again for
 * SECONDS. Prints p50, p99 and the maximum of each phase, and the connects that failed.
 *
 * usage: mbx-connect-stall MAILBOXD [SECONDS [SLOTS]]   (defaults: 5 s, 1024 slots)
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench_stats.h"
#include "client.h"

#define MAX_SAMPLES 100000
#define CLEAN_SLOTS 8

static char ns[64];

/* Starts `mailboxd -d` (which returns once the broker is ready) and returns its pid. */
static pid_t start_broker(const char *mailboxd, const char *slots)
{
    snprintf(ns, sizeof ns, "perf-stall-%d", (int)getpid());
    int ready[2];
    if (pipe(ready) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ready[1], STDOUT_FILENO);
        execl(mailboxd, mailboxd, "-d", "-N", ns, "--slots", slots, "--log", "/dev/null",
              (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    char buf[32] = {0};
    ssize_t n = read(ready[0], buf, sizeof buf - 1);
    close(ready[0]);
    int st;
    waitpid(pid, &st, 0);
    if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "mbx-connect-stall: cannot start %s\n", mailboxd);
        exit(1);
    }
    return (pid_t)strtol(buf, NULL, 10);
}

static void stop_broker(pid_t broker)
{
    kill(broker, SIGTERM);
    for (int i = 0; i < 500 && kill(broker, 0) == 0; i++)
        usleep(10 * 1000);
}

/* Connects and closes for `seconds`, one connect every 5 ms; prints the figures. */
static void measure(const char *phase, int seconds)
{
    static int64_t samples[MAX_SAMPLES];
    size_t n = 0;
    unsigned failed = 0;
    int64_t until = plat_now_ns() + (int64_t)seconds * 1000000000;
    while (plat_now_ns() < until && n < MAX_SAMPLES) {
        mbx_connect_options o;
        mbx_connect_options_init(&o);
        o.namespace_name = ns;
        mbx_client *c;
        int64_t t0 = plat_now_ns();
        mbx_err err = mbx_connect(&o, &c);
        samples[n++] = plat_now_ns() - t0;
        if (err == MBX_OK)
            mbx_close(c);
        else
            failed++;
        usleep(5000);
    }
    bench_percentiles p;
    bench_percentiles_of(samples, n, 1e-6, &p);
    printf("connect latency, %-44s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%zu connects, "
           "%u failed)\n",
           phase, p.p50, p.p99, p.max, n, failed);
}

/* The review's wedge: the lock word names pid 1 (alive, never a member) and no start
 * time (the POSIX lock's 64-bit word, libmailbox/src/platform/posix/plat_sync.c: thread
 * id in the low half, start time in the high half, 0 meaning "not known"), and one
 * record seems to wait in the mailbox. */
static unsigned wedge_free_mailboxes(const seg_view *v)
{
    unsigned n = 0;
    for (uint32_t s = 0; s + CLEAN_SLOTS < v->slots; s++) {
        if (atomic_load(&segment_dir(v, s)->state) != SLOT_FREE)
            continue;
        seg_mailbox *mb = segment_mailbox(v, s);
        _Atomic uint64_t *word = (_Atomic uint64_t *)(void *)mb->lock.opaque;
        atomic_store(word, 1);
        uint64_t head = atomic_load(&mb->head);
        atomic_store(&mb->tail, head + (1ull << 32) + SEG_RECORD_ALIGN);
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mbx-connect-stall MAILBOXD [SECONDS [SLOTS]]\n");
        return 2;
    }
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    const char *slots = argc > 3 ? argv[3] : "1024";
    pid_t broker = start_broker(argv[1], slots);
    measure("clean namespace:", seconds);

    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "wedger";
    mbx_client *c;
    if (mbx_connect(&o, &c) != MBX_OK) {
        fprintf(stderr, "mbx-connect-stall: cannot connect\n");
        stop_broker(broker);
        return 1;
    }
    unsigned wedged = wedge_free_mailboxes(&c->view);
    char phase[64];
    snprintf(phase, sizeof phase, "%u of %s free mailboxes wedged:", wedged, slots);
    sleep(2); /* the scrub finds them dirty */
    measure(phase, seconds);
    mbx_close(c);
    stop_broker(broker);
    return 0;
}
