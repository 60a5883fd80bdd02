/*
 * admission.h: who gets a name when a client registers. One decision, from the facts
 * about the name's current holder, written as a table (admission.c) so that each case is
 * named, documented and tested (tests/unit/test_admission.c), instead of branches spread
 * through the broker's request handling.
 */
#ifndef MBX_BROKER_ADMISSION_H
#define MBX_BROKER_ADMISSION_H

#include <stdbool.h>

/* What the broker knows about the name asked for, and the asker. */
typedef struct admission_facts {
    bool held;           /* a slot has the name (after settling a death already notified) */
    bool holder_group;   /* ... as a member of a group */
    bool holder_linger;  /* ... as a mailbox outliving its client */
    bool holder_channel; /* ... with a channel to this broker (false: adopted from a dead one) */
    bool same_process;   /* ... and its process is the asker's */
    bool asks_group;     /* the asker wants to join a group */
} admission_facts;

typedef enum admission {
    ADMIT_NEW,       /* a new slot (a group's first member, or a name nobody has) */
    ADMIT_JOIN,      /* a new slot, one more member of the group that has the name */
    ADMIT_TAKE_OVER, /* the lingering mailbox, messages and all */
    ADMIT_RECLAIM,   /* its own adopted slot back (its process asks again after a restart) */
    REFUSE_TAKEN,    /* MBX_ENAMETAKEN */
} admission;

admission admission_decide(const admission_facts *f);

/* The decision's name, for the broker's log. */
const char *admission_name(admission a);

#endif
