/*
 * event_loop_win32: the classic Windows loop, WaitForMultipleObjects, serving a mailbox
 * beside a timer and the console: no thread per source, no polling.
 *
 *   event_loop_win32 [-N NAMESPACE] NAME
 *
 * It takes the mailbox NAME and prints every message that arrives ("mailbox FROM BODY");
 * every 200 ms a waitable timer prints "tick N"; when standard input is a console, each
 * line typed there is sent to NAME (it must be one JSON value), so it comes back through
 * the mailbox. The message {"quit":true} ends the program: exit 0, or 3 when no tick came
 * before it (the timer is part of the loop, and this says it worked).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include <mailbox.h>

static int fail(const char *what)
{
    fprintf(stderr, "event_loop_win32: %s\n", what);
    return 1;
}

/* Takes everything waiting until the mailbox is empty (the handle is then reset until the
 * next message). Returns false on {"quit":true} or an error. */
static bool serve_mailbox(mbx_client *c, mbx_message *m)
{
    mbx_err err;
    while ((err = mbx_recv(c, m, 0)) == MBX_OK) {
        const char *body = mbx_message_body(m, NULL);
        printf("mailbox %s %s\n", mbx_message_from(m), body);
        if (strcmp(body, "{\"quit\":true}") == 0)
            return false;
    }
    if (err != MBX_ETIMEDOUT) {
        fprintf(stderr, "event_loop_win32: receive: %s\n", mbx_strerror(err));
        return false;
    }
    return true;
}

/* Collects typed characters; a finished line goes to our own mailbox. */
static void serve_console(HANDLE in, mbx_client *c, char *line, size_t *len, size_t cap)
{
    INPUT_RECORD rec[16];
    DWORD n = 0;
    if (!ReadConsoleInputA(in, rec, 16, &n))
        return;
    for (DWORD i = 0; i < n; i++) {
        if (rec[i].EventType != KEY_EVENT || !rec[i].Event.KeyEvent.bKeyDown)
            continue;
        char ch = rec[i].Event.KeyEvent.uChar.AsciiChar;
        if (ch == '\r') {
            line[*len] = '\0';
            if (*len > 0 && mbx_send(c, mbx_client_name(c), line, *len, 1000) != MBX_OK)
                fprintf(stderr, "event_loop_win32: '%s' not sent\n", line);
            *len = 0;
        } else if (ch != 0 && *len + 1 < cap) {
            line[(*len)++] = ch;
        }
    }
}

int main(int argc, char **argv)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    int arg = 1;
    if (argc > 2 && strcmp(argv[1], "-N") == 0) {
        o.namespace_name = argv[2];
        arg = 3;
    }
    if (argc - arg != 1)
        return fail("usage: event_loop_win32 [-N NAMESPACE] NAME");
    o.client_name = argv[arg];
    setvbuf(stdout, NULL, _IONBF, 0);

    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    if (err != MBX_OK)
        return fail(mbx_strerror(err));
    mbx_handle wake;
    if (mbx_wait_handle(c, &wake) != MBX_OK)
        return fail("no wake handle");
    HANDLE timer = CreateWaitableTimerA(NULL, FALSE, NULL);
    LARGE_INTEGER first = {.QuadPart = -2000000}; /* 200 ms, in 100 ns units, relative */
    if (timer == NULL || !SetWaitableTimer(timer, &first, 200, NULL, NULL, FALSE))
        return fail("no timer");
    HANDLE console = GetStdHandle(STD_INPUT_HANDLE);
    DWORD mode;
    bool have_console = console != INVALID_HANDLE_VALUE && GetConsoleMode(console, &mode);

    HANDLE handles[3] = {(HANDLE)wake, timer, console};
    DWORD count = have_console ? 3 : 2;
    mbx_message *m = mbx_message_new();
    char line[1024];
    size_t len = 0;
    unsigned long ticks = 0;
    bool running = serve_mailbox(c, m);
    while (running) {
        DWORD which = WaitForMultipleObjects(count, handles, FALSE, INFINITE);
        if (which == WAIT_OBJECT_0)
            running = serve_mailbox(c, m);
        else if (which == WAIT_OBJECT_0 + 1)
            printf("tick %lu\n", ++ticks);
        else if (which == WAIT_OBJECT_0 + 2)
            serve_console(console, c, line, &len, sizeof line);
        else
            break;
    }
    mbx_message_free(m);
    mbx_close(c);
    CloseHandle(timer);
    return ticks > 0 ? 0 : 3;
}
