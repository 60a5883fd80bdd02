/*
 * mbx run on Windows (cmd_run_posix.c is the Linux one; docs/cli.md, "mbx run"). Starts
 * mailboxd.exe on a fresh namespace (run-<pid>-<random>), runs CMD with MBX_NAMESPACE
 * naming it, stops the broker when CMD ends, and exits with CMD's exit code.
 *
 * - The broker runs in a job object that kills it when the job's last handle closes: if
 *   mbx run itself is killed, the broker goes with it, and with it the namespace (its
 *   named objects live only while someone holds them). CMD is not in the job: what CMD
 *   leaves running is its own business, as on Linux.
 * - The broker runs detached from the console (DETACHED_PROCESS): Ctrl+C and Ctrl+Break
 *   typed there reach CMD, which decides, and never the broker, which must outlive CMD
 *   (a process group of its own would still get Ctrl+Break, its stop: signals_win32.c).
 *   mbx run ignores both itself and waits for CMD. Then the broker is ended
 *   (TerminateProcess) and what it held cleaned (mbx_clean): the namespace was CMD's
 *   alone, and CMD has ended; its named objects go with the last handle.
 * - Closing the console (or logoff, shutdown) ends CMD and the broker at once.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "cli.h"

#define READY_MS 10000 /* for the broker to serve the namespace */

static const char usage_text[] =
    "Usage: mbx run [--slots N] [--depth N] [--max-message BYTES] [--mailbox-bytes BYTES]\n"
    "               [--] CMD [ARG]...\n"
    "Run CMD on a private namespace of its own: start mailboxd on a fresh namespace, run\n"
    "CMD with MBX_NAMESPACE set to it, stop the broker when CMD ends, leave nothing\n"
    "behind, and exit with CMD's exit code. Options go before CMD (what follows CMD is\n"
    "its own).\n"
    "\n"
    "      --slots N ...   passed to mailboxd (see mailboxd --help)\n"
    "  -h, --help          show this help\n"
    "Exit status: CMD's; 1 when the broker could not be started, 2 on a bad command line,\n"
    "127 when CMD could not be run.\n";

static HANDLE cmd_process; /* for the console handler: CMD, once it runs */

static BOOL WINAPI on_console(DWORD type)
{
    switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
        return TRUE; /* CMD got it too: its exit ends the run */
    default:
        /* Close, logoff, shutdown: the system ends this process when we return. */
        if (cmd_process != NULL)
            TerminateProcess(cmd_process, 128 + 15);
        return FALSE;
    }
}

/* Appends arg to line, quoted as the C runtime's argument parser reads it back. */
static bool append_arg(char *line, size_t cap, size_t *len, const char *arg)
{
    char buf[4096];
    size_t n = 0;
    bool quote = arg[0] == '\0' || strpbrk(arg, " \t\"") != NULL;
    if (quote)
        buf[n++] = '"';
    for (const char *p = arg;; p++) {
        size_t slashes = 0;
        while (*p == '\\') {
            slashes++;
            p++;
        }
        /* Backslashes are literal unless a quote follows: then each is doubled. */
        size_t times = (*p == '"' || (*p == '\0' && quote)) ? 2 * slashes : slashes;
        if (n + times + 4 >= sizeof buf)
            return false;
        for (size_t i = 0; i < times; i++)
            buf[n++] = '\\';
        if (*p == '\0')
            break;
        if (*p == '"')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    if (quote)
        buf[n++] = '"';
    if (*len + n + 2 >= cap)
        return false;
    if (*len > 0)
        line[(*len)++] = ' ';
    memcpy(line + *len, buf, n);
    *len += n;
    line[*len] = '\0';
    return true;
}

/* mailboxd.exe: %MAILBOXD%, else beside mbx.exe (an install), else ..\broker\ (a build
 * tree), else the PATH. */
static void find_broker(char *out, size_t cap)
{
    const char *env = getenv("MAILBOXD");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
        return;
    }
    char self[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, self, sizeof self);
    if (n > 0 && n < sizeof self) {
        char *slash = strrchr(self, '\\');
        if (slash == NULL)
            slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            static const char *const tails[] = {"\\mailboxd.exe", "\\..\\broker\\mailboxd.exe"};
            for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
                snprintf(out, cap, "%s%s", self, tails[i]);
                if (GetFileAttributesA(out) != INVALID_FILE_ATTRIBUTES)
                    return;
            }
        }
    }
    snprintf(out, cap, "mailboxd.exe");
}

static void stop_broker(HANDLE broker, const char *ns)
{
    TerminateProcess(broker, 0);
    WaitForSingleObject(broker, INFINITE);
    (void)mbx_clean(ns, NULL);
    CloseHandle(broker);
}

int cmd_run(int argc, char **argv)
{
    char broker_path[MAX_PATH];
    find_broker(broker_path, sizeof broker_path);
    /* The pid keeps two runs apart; the clock's low bits, a run from a reused pid. */
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    unsigned int r = (unsigned int)now.QuadPart ^ (unsigned int)(now.QuadPart >> 16);
    char ns[MBX_NAME_MAX + 1];
    snprintf(ns, sizeof ns, "run-%lu-%04x", (unsigned long)GetCurrentProcessId(), r & 0xffff);

    char line[32768];
    size_t len = 0;
    line[0] = '\0';
    const char *head[] = {broker_path, "-N", ns, "--fresh", "--log", "NUL"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        append_arg(line, sizeof line, &len, head[i]);

    /* '+': options end at CMD, whose own options are its own. */
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, cmd_run_short, cmd_run_long, NULL)) != -1) {
        switch (ch) {
        case 's':
        case 'd':
        case 'm':
        case 'b':
            if (!append_arg(line, sizeof line, &len, run_broker_option(ch)) ||
                !append_arg(line, sizeof line, &len, optarg))
                return cli_fail("run", EXIT_USAGE, "too many options");
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
    int i = optind;
    if (i >= argc)
        return cli_fail("run", EXIT_USAGE, "expected CMD [ARG]... (see mbx run --help)");

    /* The job: the broker dies with mbx run, whatever way mbx run ends. */
    HANDLE job = CreateJobObjectA(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    memset(&limits, 0, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (job != NULL)
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);
    SetConsoleCtrlHandler(on_console, TRUE);

    STARTUPINFOA si;
    PROCESS_INFORMATION broker;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(NULL, line, NULL, NULL, FALSE, DETACHED_PROCESS | CREATE_SUSPENDED, NULL,
                        NULL, &si, &broker)) {
        DWORD e = GetLastError();
        if (job != NULL)
            CloseHandle(job);
        return cli_fail("run", EXIT_FAILURE_, "cannot start mailboxd (%s): system error %lu",
                        broker_path, (unsigned long)e);
    }
    if (job != NULL)
        AssignProcessToJobObject(job, broker.hProcess);
    ResumeThread(broker.hThread);
    CloseHandle(broker.hThread);

    mbx_namespace_info info;
    DWORD waited = 0;
    for (; waited < READY_MS; waited += 10) {
        if (WaitForSingleObject(broker.hProcess, 10) == WAIT_OBJECT_0) {
            DWORD code = 1;
            GetExitCodeProcess(broker.hProcess, &code);
            CloseHandle(broker.hProcess);
            if (job != NULL)
                CloseHandle(job);
            return cli_fail("run", code == 2 ? EXIT_USAGE : EXIT_FAILURE_,
                            "mailboxd (%s) did not start: exit status %lu", broker_path,
                            (unsigned long)code);
        }
        if (mbx_inspect(ns, &info, NULL, NULL) == MBX_OK)
            break;
    }
    if (waited >= READY_MS) {
        stop_broker(broker.hProcess, ns);
        if (job != NULL)
            CloseHandle(job);
        return cli_fail("run", EXIT_FAILURE_, "mailboxd did not serve %s within %d ms", ns,
                        READY_MS);
    }

    len = 0;
    line[0] = '\0';
    bool fits = true;
    for (int k = i; k < argc && fits; k++)
        fits = append_arg(line, sizeof line, &len, argv[k]);
    int rc;
    PROCESS_INFORMATION cmd;
    SetEnvironmentVariableA("MBX_NAMESPACE", ns);
    if (!fits) {
        rc = cli_fail("run", EXIT_USAGE, "the command line is too long");
    } else if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &cmd)) {
        rc = cli_fail("run", 127, "cannot run '%s': system error %lu", argv[i],
                      (unsigned long)GetLastError());
    } else {
        cmd_process = cmd.hProcess;
        CloseHandle(cmd.hThread);
        WaitForSingleObject(cmd.hProcess, INFINITE);
        DWORD code = 1;
        GetExitCodeProcess(cmd.hProcess, &code);
        cmd_process = NULL;
        CloseHandle(cmd.hProcess);
        rc = (int)code;
    }
    stop_broker(broker.hProcess, ns);
    if (job != NULL)
        CloseHandle(job);
    return rc;
}
