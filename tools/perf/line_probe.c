/*
 * mbx-line-probe: which phase the machine is in. Two processes hand one cache line back
 * and forth (each waits for the other's value, then writes its own) and the round trip
 * is printed. On this project's 2-vCPU machines it sits near 450 ns in a slow phase and
 * near 110-160 ns in a fast one, for minutes at a time, and every rate of mailbox and of
 * the floor moves with it (docs/performance.md, "How to reproduce"). tools/perf/ab_run.sh
 * prints it before and after its rounds: a run whose two figures disagree straddled a
 * change of phase. Prints a figure only; asserts nothing.
 *
 * Usage: mbx-line-probe [ROUND_TRIPS]   (default 1000000)
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long trips = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (trips <= 0 || trips > 1000000000L) {
        fprintf(stderr, "usage: mbx-line-probe [ROUND_TRIPS]\n");
        return 2;
    }
    _Atomic long *line =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (line == MAP_FAILED) {
        perror("mbx-line-probe: mmap");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("mbx-line-probe: fork");
        return 1;
    }
    if (child == 0) {
        /* Answers each odd value with the next even one; gives up after 10 s of nothing
         * (a parent that died), so it never outlives the probe for long. */
        for (long i = 1; i <= trips; i++) {
            double give_up = 0;
            for (unsigned long spins = 1;
                 atomic_load_explicit(line, memory_order_acquire) != 2 * i - 1; spins++) {
                if (spins % 65536 != 0)
                    continue;
                if (give_up == 0)
                    give_up = now_s() + 10;
                else if (now_s() > give_up)
                    _exit(1);
            }
            atomic_store_explicit(line, 2 * i, memory_order_release);
        }
        _exit(0);
    }
    double start = now_s();
    for (long i = 1; i <= trips; i++) {
        atomic_store_explicit(line, 2 * i - 1, memory_order_release);
        double give_up = 0;
        for (unsigned long spins = 1; atomic_load_explicit(line, memory_order_acquire) != 2 * i;
             spins++) {
            if (spins % 65536 != 0)
                continue;
            if (give_up == 0) {
                give_up = now_s() + 10;
            } else if (now_s() > give_up) {
                fprintf(stderr, "mbx-line-probe: no answer for 10 s\n");
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                return 1;
            }
        }
    }
    double took = now_s() - start;
    int status = 0;
    waitpid(child, &status, 0);
    printf("one cache line between two processes: %.0f ns a round trip\n",
           took / (double)trips * 1e9);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
