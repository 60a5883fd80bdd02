/*
 * mbx-testdrv: runs one test program of this folder inside a kill-on-close job object.
 *
 *   mbx-testdrv.exe TIMEOUT_S PROGRAM [ARG]...
 *
 * Every process the test starts (brokers, clients, their children) is in the job. When
 * the test outlives TIMEOUT_S the driver ends the whole job; when the driver itself is
 * killed (ctest's TIMEOUT ends only the process it started, under Wine the driver) its
 * job handle closes and the system ends the job with it. Either way nothing outlives the
 * test. A test that ends but leaves processes behind fails: the driver ends them and
 * exits 126 (the Windows side of tests/check_leftovers.sh). PROGRAM is looked up next to
 * the driver. Exit code: the test's, 124 on timeout, 125 when the test cannot be started,
 * 126 when it left processes running.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

static int usage(void)
{
    fprintf(stderr, "usage: mbx-testdrv TIMEOUT_S PROGRAM [ARG]...\n");
    return 125;
}

/* Appends arg to cmd, quoted as CommandLineToArgvW expects; false when it does not fit. */
static bool append_arg(char *cmd, size_t cap, const char *arg)
{
    size_t n = strlen(cmd);
    if (n > 0 && n + 1 < cap)
        cmd[n++] = ' ';
    if (n + 1 >= cap)
        return false;
    cmd[n++] = '"';
    for (const char *p = arg;; p++) {
        size_t slashes = 0;
        while (*p == '\\') {
            p++;
            slashes++;
        }
        /* Backslashes double before a quote and before the closing quote. */
        size_t emit = (*p == '"' || *p == '\0') ? slashes * 2 : slashes;
        if (n + emit + 3 >= cap)
            return false;
        for (size_t i = 0; i < emit; i++)
            cmd[n++] = '\\';
        if (*p == '\0')
            break;
        if (*p == '"')
            cmd[n++] = '\\';
        cmd[n++] = *p;
    }
    cmd[n++] = '"';
    cmd[n] = '\0';
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    char *end;
    long timeout_s = strtol(argv[1], &end, 10);
    if (*end != '\0' || timeout_s <= 0 || timeout_s > 3600)
        return usage();

    char dir[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, dir, sizeof dir);
    if (n == 0 || n >= sizeof dir)
        return 125;
    char *slash = strrchr(dir, '\\');
    if (slash != NULL)
        slash[1] = '\0';
    char program[MAX_PATH + 64];
    snprintf(program, sizeof program, "%s%s", dir, argv[2]);

    char cmd[8192] = "";
    for (int i = 2; i < argc; i++) {
        if (!append_arg(cmd, sizeof cmd, i == 2 ? program : argv[i]))
            return usage();
    }

    HANDLE job = CreateJobObjectA(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    memset(&limits, 0, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (job == NULL ||
        !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
        fprintf(stderr, "mbx-testdrv: cannot make a job object (error %lu)\n", GetLastError());
        return 125;
    }

    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    /* Suspended until it is in the job, so not even its first child escapes. */
    if (!CreateProcessA(program, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "mbx-testdrv: cannot start %s (error %lu)\n", program, GetLastError());
        return 125;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        fprintf(stderr, "mbx-testdrv: cannot put %s in the job (error %lu)\n", program,
                GetLastError());
        TerminateProcess(pi.hProcess, 125);
        return 125;
    }
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);

    DWORD code = 124;
    if (WaitForSingleObject(pi.hProcess, (DWORD)timeout_s * 1000) == WAIT_OBJECT_0) {
        GetExitCodeProcess(pi.hProcess, &code);
        /* Processes a test ends are gone from the count once they have exited; give a
         * just-killed one a moment. */
        JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
        memset(&acct, 0, sizeof acct);
        for (int i = 0; i < 50; i++) {
            if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct,
                                           sizeof acct, NULL) ||
                acct.ActiveProcesses == 0)
                break;
            Sleep(100);
        }
        if (acct.ActiveProcesses > 0) {
            fprintf(stderr, "mbx-testdrv: %s left %lu process(es) running; ending them\n", argv[2],
                    (unsigned long)acct.ActiveProcesses);
            if (code == 0)
                code = 126;
        }
    } else {
        fprintf(stderr, "mbx-testdrv: %s ran over %ld s; ending it and its children\n", argv[2],
                timeout_s);
    }
    /* Whatever the test left running (it should have left nothing) ends here. */
    TerminateJobObject(job, 124);
    CloseHandle(pi.hProcess);
    CloseHandle(job);
    return (int)code;
}
