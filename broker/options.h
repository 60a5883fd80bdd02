/* options.h: mailboxd's command line, parsed and validated before anything is created. */
#ifndef BROKER_OPTIONS_H
#define BROKER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "mailbox.h"
#include "segment.h"

#define BROKER_DEFAULT_SLOTS 64u
#define BROKER_DEFAULT_DEPTH 64u
#define BROKER_DEFAULT_MAX_MESSAGE 4096u
#define BROKER_DEFAULT_MODE 0600u

typedef struct broker_options {
    char namespace_name[MBX_NAME_MAX + 1];
    uint32_t slots;
    uint32_t depth;
    uint32_t max_message;
    uint32_t mailbox_bytes; /* each mailbox's ring; 0: the default (segment.h) */
    uint32_t subscriptions; /* size of the subscription table */
    uint32_t retained;      /* size of the retained-message table */
    unsigned mode;
    bool daemon;
    bool fresh;
    const char *pidfile;
    const char *log_path;
    int verbosity;
    int log_level; /* enum log_level, or -1: from verbosity */
} broker_options;

/* mailboxd's exit codes (docs/cli.md). */
enum broker_exit {
    BROKER_EXIT_OK = 0,
    BROKER_EXIT_FAILURE = 1, /* could not start or run */
    BROKER_EXIT_USAGE = 2,   /* bad command line */
    BROKER_EXIT_BUSY = 3,    /* a live broker already serves the namespace */
    BROKER_EXIT_STALE = 4,   /* a segment left behind cannot be adopted (use --fresh) */
};

/* The namespace's layout for these options (checked by options_parse). */
mbx_err options_layout(const broker_options *opt, seg_view *out);

/* Parses argv. Returns -1 to go on, or an exit code (after --help/--version, or a usage
 * error already reported on stderr). */
int options_parse(int argc, char **argv, broker_options *opt);

#endif
