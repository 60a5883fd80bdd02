/* run_command_win32.c: see run_command.h. The command runs under cmd.exe /c. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "run_command.h"

int run_command(const char *cmd, const char *input, size_t len, char *out, size_t cap,
                size_t *out_len, int *truncated)
{
    *out_len = 0;
    *truncated = 0;
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE in_read, in_write, out_read, out_write;
    if (!CreatePipe(&in_read, &in_write, &sa, 0))
        return -1;
    if (!CreatePipe(&out_read, &out_write, &sa, 0)) {
        CloseHandle(in_read);
        CloseHandle(in_write);
        return -1;
    }
    /* Only the child's ends are inherited. */
    SetHandleInformation(in_write, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(out_read, HANDLE_FLAG_INHERIT, 0);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = in_read;
    si.hStdOutput = out_write;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    char line[8192];
    snprintf(line, sizeof line, "cmd.exe /c %s", cmd);
    BOOL ok = CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    CloseHandle(in_read);
    CloseHandle(out_write);
    if (!ok) {
        CloseHandle(in_write);
        CloseHandle(out_read);
        return -1;
    }
    /* Requests are small: the whole input goes in before the output is read. */
    DWORD n;
    for (size_t written = 0; written < len; written += n)
        if (!WriteFile(in_write, input + written, (DWORD)(len - written), &n, NULL) || n == 0)
            break;
    CloseHandle(in_write);
    size_t got = 0;
    char buf[4096];
    while (ReadFile(out_read, buf, sizeof buf, &n, NULL) && n > 0) {
        size_t keep = got + 1 < cap ? cap - 1 - got : 0;
        if (n > keep)
            *truncated = 1;
        memcpy(out + got, buf, n < keep ? n : keep);
        got += n < keep ? n : keep;
    }
    CloseHandle(out_read);
    out[got] = '\0';
    *out_len = got;
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    return (int)(code & 0xff);
}
