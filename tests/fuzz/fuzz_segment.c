/*
 * Fuzz target: everything a client reads from shared memory. A valid segment is
 * overwritten with fuzz bytes, then validated, searched and read the way clients do. No
 * input may crash, hang, or read outside the mapping (AddressSanitizer watches).
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_fixture.h"
#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A fresh segment each run, in shared memory like the real thing. */
    seg_view v = fuzz_segment();
    fuzz_overwrite(&v, data, size);

    seg_view w;
    if (segment_validate(v.base, v.total_size, &w) == MBX_OK) {
        uint32_t slot, gen;
        (void)segment_find(&w, "rx", &slot, &gen);
        char *body = malloc((size_t)w.max_message + 1);
        for (uint32_t i = 0; i < w.slots; i++) {
            char name[MBX_NAME_MAX + 1];
            int64_t pid;
            if (!segment_read_entry(&w, i, name, &gen, &pid))
                continue;
            (void)ring_waiting(&w, i);
            for (int k = 0; k < 6; k++) {
                ring_incoming in = {.body = body};
                mbx_err err = ring_take(&w, i, gen, &in, 0, NULL, NULL);
                if (err == MBX_ETIMEDOUT || err == MBX_ESHUTDOWN)
                    break;
            }
        }
        free(body);
    }
    munmap(v.base, v.total_size);
    return 0;
}
