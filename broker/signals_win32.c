/*
 * signals_win32.c: Ctrl+C, Ctrl+Break and closing the console window (or logging off,
 * or shutting down) stop the broker as SIGTERM does on Linux. The handler runs on a
 * thread of its own: it sets the flag and posts the notifier the event loop waits on.
 * For the close, logoff and shutdown events the system ends the process once the handler
 * returns, so the handler waits (a few seconds at most) for the loop to finish.
 */
#include <signal.h>
#include <windows.h>

#include "signals.h"

static volatile LONG stop_event; /* SIGINT, SIGBREAK or SIGTERM, as the log names it */
static plat_handle wake_handle = PLAT_NO_HANDLE;

static BOOL WINAPI on_console(DWORD type)
{
    LONG sig;
    switch (type) {
    case CTRL_C_EVENT:
        sig = SIGINT;
        break;
    case CTRL_BREAK_EVENT:
        sig = SIGBREAK;
        break;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        sig = SIGTERM;
        break;
    default:
        return FALSE;
    }
    InterlockedExchange(&stop_event, sig);
    plat_notifier_post(wake_handle);
    if (sig == SIGTERM)
        Sleep(5000); /* the process ends when we return: give the loop time to clean up */
    return TRUE;
}

int signals_install(plat_handle *wake)
{
    if (plat_notifier_create(&wake_handle) != MBX_OK)
        return -1;
    if (!SetConsoleCtrlHandler(on_console, TRUE))
        return -1;
    *wake = wake_handle;
    return 0;
}

bool signals_stop_requested(void)
{
    return stop_event != 0;
}

int signals_last(void)
{
    return (int)stop_event;
}

bool signals_take_reopen(void)
{
    return false; /* no SIGHUP on Windows */
}
