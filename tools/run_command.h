/* run_command.h: running a shell command with text on its standard input and its standard
 * output captured (mbx reply --exec). One file per system: run_command_posix.c (/bin/sh
 * -c) and run_command_win32.c (cmd.exe /c, through CreateProcess). */
#ifndef MBX_RUN_COMMAND_H
#define MBX_RUN_COMMAND_H

#include <stddef.h>

/*
 * Runs cmd with input[0..len) on its standard input (then closed) and waits for it.
 * Its standard output goes to out (cap bytes, NUL-terminated; more is read and dropped,
 * and *truncated set), *out_len the bytes kept: the output may hold NUL bytes of its
 * own, so the terminating one does not tell its length. Its standard error is the
 * caller's. Returns the command's exit status (0..255), or -1 when it could not be run
 * (why: errno's message on stderr).
 */
int run_command(const char *cmd, const char *input, size_t len, char *out, size_t cap,
                size_t *out_len, int *truncated);

#endif
