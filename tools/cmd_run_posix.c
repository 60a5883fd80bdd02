/*
 * mbx run: a throwaway namespace for one command, as dbus-run-session is a private bus for
 * one (docs/cli.md, "mbx run"). Starts mailboxd on a fresh namespace of this user's
 * (run-<pid>-<random>, mode 0600), runs CMD with MBX_NAMESPACE naming it, stops the broker
 * when CMD ends, and exits with CMD's status. SIGTERM, SIGINT or SIGHUP sent to mbx run
 * alone are passed on to CMD (a signal from the terminal reached CMD already: not twice);
 * the broker is stopped whatever way CMD ends, and nothing of the namespace is left.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define READY_MS 10000 /* for the broker to serve the namespace */
#define STOP_MS 10000  /* for it to stop on SIGTERM, before SIGKILL */

static const char usage_text[] =
    "Usage: mbx run [--slots N] [--depth N] [--max-message BYTES] [--mailbox-bytes BYTES]\n"
    "               [--] CMD [ARG]...\n"
    "Run CMD on a private namespace of its own: start mailboxd on a fresh namespace, run\n"
    "CMD with MBX_NAMESPACE set to it, stop the broker when CMD ends (also when this is\n"
    "stopped by SIGINT or SIGTERM), leave nothing behind, and exit with CMD's status.\n"
    "Options go before CMD (what follows CMD is its own).\n"
    "\n"
    "      --slots N ...   passed to mailboxd (see mailboxd --help)\n"
    "  -h, --help          show this help\n"
    "Exit status: CMD's (128+N when a signal N ended it); 1 when the broker could not be\n"
    "started, 2 on a bad command line, 127 when CMD could not be run.\n";

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t pending; /* a stop signal that came before CMD ran */

static void pass_on(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    if (child_pid <= 0) {
        pending = sig;
        return;
    }
    /* From the terminal (the kernel: si_code > 0, si_pid 0), CMD got it already. */
    if (!(info != NULL && info->si_code > 0 && info->si_pid == 0))
        kill((pid_t)child_pid, sig);
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* dir then tail into out; false when it does not fit. */
static bool joined(char *out, size_t cap, const char *dir, const char *tail)
{
    size_t d = strlen(dir), t = strlen(tail);
    if (d + t + 1 > cap)
        return false;
    memcpy(out, dir, d);
    memcpy(out + d, tail, t + 1);
    return true;
}

/* mailboxd: $MAILBOXD, else beside mbx (an install), else ../broker/ (a build tree),
 * else PATH. */
static void find_broker(char *out, size_t cap)
{
    const char *env = getenv("MAILBOXD");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (joined(out, cap, self, "/mailboxd") && access(out, X_OK) == 0)
                return;
            if (joined(out, cap, self, "/../broker/mailboxd") && access(out, X_OK) == 0)
                return;
        }
    }
    snprintf(out, cap, "mailboxd");
}

static pid_t spawn(const char *file, char *const argv[], bool search)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (search)
        execvp(file, argv);
    else
        execv(file, argv);
    fprintf(stderr, "mbx run: cannot run '%s': %s\n", file, strerror(errno));
    _exit(127);
}

/* Stops the broker and waits for it; SIGKILL (and mbx_clean) if it does not stop. */
static void stop_broker(pid_t broker, const char *ns)
{
    kill(broker, SIGTERM);
    for (long waited = 0; waited < STOP_MS; waited += 10) {
        if (waitpid(broker, NULL, WNOHANG) == broker)
            return;
        sleep_ms(10);
    }
    kill(broker, SIGKILL);
    waitpid(broker, NULL, 0);
    (void)mbx_clean(ns, NULL);
}

int cmd_run(int argc, char **argv)
{
    const char *broker_args[16];
    int nb = 0;
    optind = 1;
    opterr = 0;
    int ch;
    /* '+': options end at CMD, whose own options are its own. */
    while ((ch = getopt_long(argc, argv, cmd_run_short, cmd_run_long, NULL)) != -1) {
        switch (ch) {
        case 's':
        case 'd':
        case 'm':
        case 'b':
            if (nb + 2 > (int)(sizeof broker_args / sizeof broker_args[0]))
                return cli_fail("run", EXIT_USAGE, "too many options");
            broker_args[nb++] = run_broker_option(ch);
            broker_args[nb++] = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK_;
        case ':':
            return cli_fail("run", EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_unknown_option("run", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_fail("run", EXIT_USAGE, "expected CMD [ARG]... (see mbx run --help)");

    uint16_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (uint16_t)time(NULL);
    char ns[MBX_NAME_MAX + 1];
    snprintf(ns, sizeof ns, "run-%ld-%04x", (long)getpid(), r);
    char broker_path[PATH_MAX];
    find_broker(broker_path, sizeof broker_path);
    const char *bargv[24] = {broker_path, "-N", ns, "--fresh", "--log", "/dev/null"};
    int k = 6;
    for (int i = 0; i < nb; i++)
        bargv[k++] = broker_args[i];
    bargv[k] = NULL;

    struct sigaction sa = {0};
    sa.sa_sigaction = pass_on;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    pid_t broker = spawn(broker_path, (char *const *)bargv, strchr(broker_path, '/') == NULL);
    if (broker < 0)
        return cli_fail("run", EXIT_FAILURE_, "cannot start mailboxd: %s", strerror(errno));
    mbx_namespace_info info;
    long waited = 0;
    for (; waited < READY_MS; waited += 10) {
        int st;
        if (waitpid(broker, &st, WNOHANG) == broker)
            return cli_fail("run",
                            WIFEXITED(st) && WEXITSTATUS(st) == 2 ? EXIT_USAGE : EXIT_FAILURE_,
                            "mailboxd (%s) did not start: exit status %d", broker_path,
                            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        if (mbx_inspect(ns, &info, NULL, NULL) == MBX_OK)
            break;
        sleep_ms(10);
    }
    if (waited >= READY_MS) {
        stop_broker(broker, ns);
        return cli_fail("run", EXIT_FAILURE_, "mailboxd did not serve %s within %d ms", ns,
                        READY_MS);
    }

    if (pending != 0) { /* stopped while the broker started: CMD is not run at all */
        stop_broker(broker, ns);
        return 128 + pending;
    }
    setenv("MBX_NAMESPACE", ns, 1);
    pid_t cmd = spawn(argv[optind], argv + optind, true);
    int status = 0, rc;
    if (cmd < 0) {
        rc = cli_fail("run", EXIT_FAILURE_, "cannot run '%s': %s", argv[optind], strerror(errno));
    } else {
        child_pid = cmd;
        if (pending != 0) /* came between the check above and now: CMD gets it */
            kill(cmd, pending);
        while (waitpid(cmd, &status, 0) < 0 && errno == EINTR)
            ;
        child_pid = 0;
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    stop_broker(broker, ns);
    return rc;
}
