/* winharness.c: see winharness.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "winharness.h"

#define MAX_CHILDREN 256

static HANDLE children[MAX_CHILDREN];
static int child_count;
static char self_path[MAX_PATH];
static char self_dir[MAX_PATH];

static void find_self(void)
{
    if (self_path[0] != '\0')
        return;
    GetModuleFileNameA(NULL, self_path, sizeof self_path);
    snprintf(self_dir, sizeof self_dir, "%s", self_path);
    char *slash = strrchr(self_dir, '\\');
    if (slash != NULL)
        slash[1] = '\0';
}

static DWORD WINAPI watchdog(LPVOID arg)
{
    (void)arg;
    Sleep(WH_CHILD_TIMEOUT_S * 1000);
    fprintf(stderr, "winharness: child ran over %d s; ending itself\n", WH_CHILD_TIMEOUT_S);
    TerminateProcess(GetCurrentProcess(), 98);
    return 0;
}

int winharness_main(int argc, char **argv, const wh_role *roles)
{
    if (argc != 5 || strcmp(argv[1], "--role") != 0)
        return -1;
    CloseHandle(CreateThread(NULL, 0, watchdog, NULL, 0, NULL));
    for (const wh_role *r = roles; r->name != NULL; r++)
        if (strcmp(r->name, argv[2]) == 0)
            return r->fn(argv[3], argv[4]);
    fprintf(stderr, "winharness: no role '%s'\n", argv[2]);
    return 97;
}

void wh_namespace(char *ns, const char *tag)
{
    static int n;
    const char *run = getenv("MBX_TEST_TAG");
    snprintf(ns, 64, "mbxtest-%s-%s-%lu-%d", run != NULL ? run : "x", tag,
             (unsigned long)GetCurrentProcessId(), n++);
}

/* Starts program (in this program's folder; NULL: this program) with cmdline_tail. */
static HANDLE start(const char *program, const char *cmdline_tail)
{
    find_self();
    char path[MAX_PATH + 64];
    if (program == NULL)
        snprintf(path, sizeof path, "%s", self_path);
    else
        snprintf(path, sizeof path, "%s%s", self_dir, program);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "\"%s\" %s", path, cmdline_tail);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(path, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "winharness: cannot start %s (error %lu)\n", path, GetLastError());
        return NULL;
    }
    CloseHandle(pi.hThread);
    if (child_count < MAX_CHILDREN)
        children[child_count++] = pi.hProcess;
    /* The harness keeps its own handle for cleanup; the caller gets another. */
    HANDLE mine;
    if (!DuplicateHandle(GetCurrentProcess(), pi.hProcess, GetCurrentProcess(), &mine, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return NULL;
    return mine;
}

HANDLE wh_start_program(const char *program, const char *args)
{
    return start(program, args);
}

HANDLE wh_start_broker(const char *ns, const char *extra)
{
    char tail[512];
    snprintf(tail, sizeof tail, "-N %s %s", ns, extra != NULL ? extra : "");
    HANDLE h = start("mailboxd.exe", tail);
    if (h == NULL)
        return NULL;
    DWORD pid = GetProcessId(h);
    for (int i = 0; i < 1000; i++) {
        mbx_namespace_info info;
        if (mbx_inspect(ns, &info, NULL, NULL) == MBX_OK && info.broker_pid == (int64_t)pid)
            return h;
        if (WaitForSingleObject(h, 10) == WAIT_OBJECT_0)
            break; /* it exited */
    }
    fprintf(stderr, "winharness: the broker of %s did not get ready\n", ns);
    wh_kill(h);
    return NULL;
}

int wh_run_broker(const char *args)
{
    HANDLE h = start("mailboxd.exe", args);
    return h == NULL ? -1 : wh_wait(h, 10000);
}

HANDLE wh_spawn(const char *role, const char *ns, const char *arg, const char *fault)
{
    char tail[512];
    snprintf(tail, sizeof tail, "--role %s %s \"%s\"", role, ns, arg);
    /* The child inherits our environment: set MBX_FAULT around its start only. */
    if (fault != NULL)
        SetEnvironmentVariableA("MBX_FAULT", fault);
    HANDLE h = start(NULL, tail);
    if (fault != NULL)
        SetEnvironmentVariableA("MBX_FAULT", NULL);
    return h;
}

int wh_wait(HANDLE h, int timeout_ms)
{
    if (h == NULL)
        return -1;
    int rc = -1;
    if (WaitForSingleObject(h, (DWORD)timeout_ms) == WAIT_OBJECT_0) {
        DWORD code;
        if (GetExitCodeProcess(h, &code))
            rc = (int)code;
    } else {
        TerminateProcess(h, 137);
        WaitForSingleObject(h, 5000);
    }
    CloseHandle(h);
    return rc;
}

void wh_kill(HANDLE h)
{
    if (h == NULL)
        return;
    TerminateProcess(h, 137);
    WaitForSingleObject(h, 5000);
    CloseHandle(h);
}

mbx_client *wh_connect(const char *ns, const char *name, int linger_ms)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    o.linger_ms = linger_ms;
    mbx_client *c = NULL;
    mbx_err err = mbx_connect(&o, &c);
    if (err != MBX_OK) {
        fprintf(stderr, "winharness: connect %s as %s: %s\n", ns, name != NULL ? name : "(any)",
                mbx_strerror(err));
        return NULL;
    }
    return c;
}

mbx_err wh_connect_retry(const char *ns, const char *name, mbx_err retry_on, int timeout_ms,
                         mbx_client **out)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = name;
    ULONGLONG end = GetTickCount64() + (ULONGLONG)timeout_ms;
    mbx_err err;
    do {
        err = mbx_connect(&o, out);
        if (err != retry_on)
            return err;
        Sleep(20);
    } while (GetTickCount64() < end);
    return err;
}

void winharness_cleanup(void)
{
    for (int i = 0; i < child_count; i++) {
        if (WaitForSingleObject(children[i], 0) != WAIT_OBJECT_0) {
            TerminateProcess(children[i], 137);
            WaitForSingleObject(children[i], 5000);
        }
        CloseHandle(children[i]);
    }
    child_count = 0;
}
