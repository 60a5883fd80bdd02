/*
 * Fuzz target: a broker adopting a namespace whose directory and mailboxes are anything
 * at all. It must not crash, must leave every slot either kept, lingering or free, and
 * every entry it keeps must hold a valid, unique name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adopt.h"
#include "fuzz_fixture.h"
#include "log.h"
#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        (void)log_open_file("/dev/null");
        quiet = 1;
    }
    seg_view v = fuzz_segment();
    /* What adoption reads: the directory, then each mailbox's indices. A garbled mutex
     * only makes adoption wait out the lock's grace period (the ring and scribble tests
     * cover that); here it would slow the fuzzer a thousandfold. */
    size_t half = size / 2;
    fuzz_overwrite_range(&v, data, half, v.dir_off, v.dir_off + v.slots * sizeof(seg_dir_entry));
    for (uint32_t i = 0; i < v.slots; i++) {
        size_t mb = (size_t)((unsigned char *)segment_mailbox(&v, i) - v.base);
        fuzz_overwrite_range(&v, data + half, size - half, mb + offsetof(seg_mailbox, tail),
                             mb + offsetof(seg_mailbox, items));
    }
    registry reg;
    if (registry_init(&reg, &v) != MBX_OK)
        abort();
    adopt_report report;
    adopt_clients(&reg, &report);
    if (report.kept + report.lingering + report.freed > v.slots)
        abort();
    for (uint32_t i = 0; i < v.slots; i++) {
        client_rec *rec = &reg.recs[i];
        if (!rec->active)
            continue;
        if (!names_valid_bounded(rec->name, sizeof rec->name))
            abort();
        for (uint32_t j = 0; j < i; j++)
            if (reg.recs[j].active && strcmp(reg.recs[j].name, rec->name) == 0)
                abort();
        plat_handle_close(rec->watch);
    }
    registry_destroy(&reg);
    munmap(v.base, v.total_size);
    return 0;
}
