/*
 * monitors.h: the segment header's monitor table (segment.h, "Monitors"), which every
 * sender reads and only the broker writes. The registry's records are the truth
 * (client_rec.monitor: the table entry a monitor holds, plus one); the table in shared
 * memory is rewritten from them whenever the two differ (the scrub), as the directory is.
 */
#ifndef BROKER_MONITORS_H
#define BROKER_MONITORS_H

#include <stdbool.h>

#include "registry.h"

/* client_rec.monitor of a monitor kept by an adoption that has no table entry yet. */
#define MONITOR_UNLISTED 0xffu

/* Whether a table entry is free for one more monitor. */
bool monitors_room(const registry *reg);

/* Lists slot's client (a monitor: its entry has DIR_MONITOR) in a free entry; the caller
 * checked monitors_room. Senders copy to it from the next message they send. */
void monitors_attach(registry *reg, uint32_t slot);

/* Takes slot off the table, if it is there: before its slot is freed. */
void monitors_detach(registry *reg, uint32_t slot);

/* Gives an entry to the monitors an adoption kept (MONITOR_UNLISTED; those beyond the
 * table's size stop being monitors), then rewrites the table where it differs from the
 * records. Returns the repairs made. */
unsigned monitors_scrub(registry *reg);

#endif
