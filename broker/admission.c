/* admission.c: see admission.h. */
#include "admission.h"

/*
 * | name held by                         | asker alone      | asker joins a group |
 * |--------------------------------------|------------------|---------------------|
 * | nobody                               | new              | new (first member)  |
 * | a group                              | refused (taken)  | join                |
 * | a lingering mailbox                  | take over        | refused (taken)     |
 * | a live client of this broker         | refused (taken)  | refused (taken)     |
 * | an adopted slot (no channel), other  | refused (taken)  | refused (taken)     |
 * | an adopted slot of the same process  | reclaim          | refused (taken)     |
 *
 * A group member may not linger (mbx_connect refuses it), so a lingering mailbox is never
 * a group's. An adopted slot has no channel: its process could not give it back while no
 * broker ran; the same process asking for its name again gets it back as from a
 * lingering mailbox.
 */
admission admission_decide(const admission_facts *f)
{
    if (!f->held)
        return ADMIT_NEW;
    if (f->holder_group)
        return f->asks_group ? ADMIT_JOIN : REFUSE_TAKEN;
    if (f->asks_group)
        return REFUSE_TAKEN;
    if (f->holder_linger)
        return ADMIT_TAKE_OVER;
    if (!f->holder_channel && f->same_process)
        return ADMIT_RECLAIM;
    return REFUSE_TAKEN;
}

const char *admission_name(admission a)
{
    switch (a) {
    case ADMIT_NEW:
        return "new";
    case ADMIT_JOIN:
        return "joins the group";
    case ADMIT_TAKE_OVER:
        return "takes over the lingering mailbox";
    case ADMIT_RECLAIM:
        return "takes its adopted slot back";
    case REFUSE_TAKEN:
        return "refused: name taken";
    }
    return "?";
}
