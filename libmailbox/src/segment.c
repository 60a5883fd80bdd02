/* segment.c: computing, writing and validating the layout described in segment.h. */
#include <assert.h>
#include <string.h>

#include "names.h"
#include "segment.h"

_Static_assert(sizeof(seg_header) <= SEG_HEADER_SIZE, "header fits its page");
_Static_assert(sizeof(seg_dir_entry) == 192, "directory entry is three cache lines");
_Static_assert(sizeof(seg_record) == SEG_RECORD_ALIGN, "a record header is one cache line");
_Static_assert(sizeof(seg_mailbox) % SEG_CACHE_LINE == 0, "mailbox header is whole lines");
_Static_assert(sizeof(seg_mailbox) == 384, "mailbox header is six lines (architecture.md)");
_Static_assert(sizeof(seg_sub) == 160, "subscription entry size is part of the layout");
_Static_assert(sizeof(seg_retained) == 192, "retained entry header is three lines");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "atomics in shared memory must be lock-free");

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

uint64_t segment_min_ring(uint32_t max_message)
{
    return 2 * SEG_RECORD_SIZE((uint64_t)SEG_MAX_LABELS + max_message);
}

static uint64_t power_of_two_at_least(uint64_t v)
{
    uint64_t p = SEG_RECORD_ALIGN;
    while (p < v)
        p *= 2;
    return p;
}

uint64_t segment_default_ring(uint32_t depth, uint32_t max_message)
{
    uint64_t typical = SEG_RECORD_SIZE((uint64_t)MBX_NAME_MAX + max_message);
    if (typical > SEG_TYPICAL_RECORD)
        typical = SEG_TYPICAL_RECORD; /* no message is longer than the limit */
    uint64_t want = (uint64_t)depth * typical;
    uint64_t min = segment_min_ring(max_message);
    return power_of_two_at_least(want > min ? want : min);
}

mbx_err segment_geometry(uint32_t slots, uint32_t depth, uint32_t max_message, seg_view *out)
{
    seg_params p = {.slots = slots,
                    .depth = depth,
                    .max_message = max_message,
                    .subscriptions = SEG_DEFAULT_SUBSCRIPTIONS,
                    .retained = SEG_DEFAULT_RETAINED};
    return segment_layout(&p, out);
}

mbx_err segment_layout(const seg_params *p, seg_view *out)
{
    if (p->slots < SEG_MIN_SLOTS || p->slots > SEG_MAX_SLOTS || p->depth < SEG_MIN_DEPTH ||
        p->depth > SEG_MAX_DEPTH || p->max_message < SEG_MIN_MESSAGE ||
        p->max_message > SEG_MAX_MESSAGE || p->subscriptions < 1 ||
        p->subscriptions > SEG_MAX_SUBSCRIPTIONS || p->retained < 1 ||
        p->retained > SEG_MAX_RETAINED)
        return MBX_EINVAL;
    /* All products below stay far inside 64 bits given the limits above. */
    uint64_t ring = p->ring_bytes == 0 ? segment_default_ring(p->depth, p->max_message)
                                       : power_of_two_at_least(p->ring_bytes);
    if (ring < segment_min_ring(p->max_message) || ring > SEG_MAX_RING)
        return MBX_EINVAL;
    uint64_t stride = align_up(sizeof(seg_mailbox) + ring, SEG_CACHE_LINE);
    uint64_t dir_off = SEG_HEADER_SIZE;
    uint64_t sub_off = align_up(dir_off + (uint64_t)p->slots * sizeof(seg_dir_entry), 4096);
    uint64_t retain_off = align_up(sub_off + (uint64_t)p->subscriptions * sizeof(seg_sub), 4096);
    uint64_t retain_stride =
        align_up(sizeof(seg_retained) + (uint64_t)p->max_message, SEG_CACHE_LINE);
    uint64_t mailbox_off = align_up(retain_off + (uint64_t)p->retained * retain_stride, 4096);
    uint64_t total = align_up(mailbox_off + (uint64_t)p->slots * stride, 4096);
    if (total > SEG_MAX_TOTAL)
        return MBX_EINVAL;
    memset(out, 0, sizeof *out);
    out->total_size = total;
    out->slots = p->slots;
    out->depth = p->depth;
    out->max_message = p->max_message;
    out->ring_bytes = (uint32_t)ring;
    out->dir_off = dir_off;
    out->mailbox_off = mailbox_off;
    out->mailbox_stride = stride;
    out->subscriptions = p->subscriptions;
    out->retained = p->retained;
    out->sub_off = sub_off;
    out->retain_off = retain_off;
    out->retain_stride = retain_stride;
    return MBX_OK;
}

static mbx_err mailbox_init(seg_mailbox *mb)
{
    memset(mb, 0, sizeof *mb);
    mbx_err err = plat_mutex_init(&mb->lock);
    if (err == MBX_OK)
        err = plat_sem_init(&mb->items, 0);
    if (err == MBX_OK)
        err = plat_sem_init(&mb->space, 0);
    return err;
}

mbx_err segment_init(seg_view *view, const char *ns, unsigned mode)
{
    seg_header *h = segment_header(view);
    memset(h, 0, SEG_HEADER_SIZE);
    h->magic = SEG_MAGIC;
    h->layout_version = SEG_LAYOUT_VERSION;
    h->header_size = SEG_HEADER_SIZE;
    h->total_size = view->total_size;
    h->slots = view->slots;
    h->depth = view->depth;
    h->max_message = view->max_message;
    h->ring_bytes = view->ring_bytes;
    h->dir_off = view->dir_off;
    h->mailbox_off = view->mailbox_off;
    h->mailbox_stride = view->mailbox_stride;
    h->mode = mode;
    h->subscriptions = view->subscriptions;
    h->retained = view->retained;
    h->sub_off = view->sub_off;
    h->retain_off = view->retain_off;
    h->retain_stride = view->retain_stride;
    strncpy(h->namespace_name, ns, MBX_NAME_MAX);
    atomic_store(&h->state, SEG_INITIALIZING);
    mbx_err sem_err = plat_sem_init(&h->dir_sem, 0);
    if (sem_err == MBX_OK)
        sem_err = plat_mutex_init(&h->topics_lock);
    if (sem_err != MBX_OK)
        return sem_err;
    memset(view->base + view->sub_off, 0, view->mailbox_off - view->sub_off);
    for (uint32_t i = 0; i < view->slots; i++) {
        memset(segment_dir(view, i), 0, sizeof(seg_dir_entry));
        mbx_err err = mailbox_init(segment_mailbox(view, i));
        if (err != MBX_OK)
            return err;
    }
    return MBX_OK;
}

mbx_err segment_validate(void *base, size_t size, seg_view *view)
{
    if (base == NULL || size < SEG_HEADER_SIZE)
        return MBX_ECORRUPT;
    const seg_header *h = base;
    if (h->magic != SEG_MAGIC)
        return MBX_ECORRUPT;
    if (h->layout_version != SEG_LAYOUT_VERSION)
        return MBX_EVERSION;
    seg_view expect;
    seg_params p = {.slots = h->slots,
                    .depth = h->depth,
                    .max_message = h->max_message,
                    .ring_bytes = h->ring_bytes,
                    .subscriptions = h->subscriptions,
                    .retained = h->retained};
    if (h->header_size != SEG_HEADER_SIZE || segment_layout(&p, &expect) != MBX_OK)
        return MBX_ECORRUPT;
    if (h->total_size != expect.total_size || expect.total_size > size ||
        h->ring_bytes != expect.ring_bytes || h->dir_off != expect.dir_off ||
        h->mailbox_off != expect.mailbox_off || h->mailbox_stride != expect.mailbox_stride ||
        h->sub_off != expect.sub_off || h->retain_off != expect.retain_off ||
        h->retain_stride != expect.retain_stride)
        return MBX_ECORRUPT;
    if (!names_valid_bounded(h->namespace_name, sizeof h->namespace_name))
        return MBX_ECORRUPT;
    *view = expect;
    view->base = base;
    return MBX_OK;
}

seg_dir_entry *segment_dir(const seg_view *v, uint32_t slot)
{
    assert(slot < v->slots);
    return (seg_dir_entry *)(void *)(v->base + v->dir_off + (uint64_t)slot * sizeof(seg_dir_entry));
}

seg_mailbox *segment_mailbox(const seg_view *v, uint32_t slot)
{
    assert(slot < v->slots);
    return (seg_mailbox *)(void *)(v->base + v->mailbox_off + (uint64_t)slot * v->mailbox_stride);
}

seg_record *segment_record(const seg_view *v, seg_mailbox *mb, uint64_t position)
{
    unsigned char *ring = (unsigned char *)mb + sizeof(seg_mailbox);
    /* ring_bytes is a power of two; record positions are multiples of SEG_RECORD_ALIGN,
     * which the mask keeps them (a misaligned one is refused before any use). */
    uint32_t off = (uint32_t)position & (v->ring_bytes - 1) & ~(SEG_RECORD_ALIGN - 1);
    return (seg_record *)(void *)(ring + off);
}

seg_sub *segment_sub(const seg_view *v, uint32_t i)
{
    assert(i < v->subscriptions);
    return (seg_sub *)(void *)(v->base + v->sub_off + (uint64_t)i * sizeof(seg_sub));
}

seg_retained *segment_retained(const seg_view *v, uint32_t i)
{
    assert(i < v->retained);
    return (seg_retained *)(void *)(v->base + v->retain_off + (uint64_t)i * v->retain_stride);
}

bool segment_read_entry(const seg_view *v, uint32_t slot, char *name_out, uint32_t *generation,
                        int64_t *pid)
{
    seg_dir_entry *e = segment_dir(v, slot);
    uint32_t g1 = atomic_load_explicit(&e->generation, memory_order_acquire);
    if ((g1 & 1u) != 0 || atomic_load_explicit(&e->state, memory_order_acquire) != SLOT_ACTIVE)
        return false;
    char name[MBX_NAME_MAX + 1];
    memcpy(name, e->name, sizeof name);
    int64_t p = atomic_load_explicit(&e->pid, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->generation, memory_order_relaxed) != g1)
        return false;
    /* The copy is stable; it may still be garbage written by a hostile process. */
    if (!names_valid_bounded(name, sizeof name))
        return false;
    memcpy(name_out, name, sizeof name);
    if (generation != NULL)
        *generation = g1;
    if (pid != NULL)
        *pid = p;
    return true;
}

bool segment_read_node(const seg_view *v, uint32_t slot, uint32_t generation, char *node_out)
{
    seg_dir_entry *e = segment_dir(v, slot);
    node_out[0] = '\0';
    char node[MBX_NAME_MAX + 1];
    uint32_t flags = atomic_load_explicit(&e->flags, memory_order_acquire);
    memcpy(node, e->node, sizeof node);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->generation, memory_order_relaxed) != generation ||
        (flags & DIR_REMOTE) == 0 || !names_valid_bounded(node, sizeof node))
        return false;
    memcpy(node_out, node, sizeof node);
    return true;
}

bool segment_entry_is(const seg_view *v, uint32_t slot, const char *name, size_t len,
                      uint32_t *generation)
{
    seg_dir_entry *e = segment_dir(v, slot);
    uint32_t g = atomic_load_explicit(&e->generation, memory_order_acquire);
    if ((g & 1u) != 0 || atomic_load_explicit(&e->state, memory_order_acquire) != SLOT_ACTIVE)
        return false;
    /* Compared, not validated: what equals a valid name (terminator included) is valid. */
    if (memcmp(e->name, name, len + 1) != 0)
        return false;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->generation, memory_order_relaxed) != g)
        return false;
    *generation = g;
    return true;
}

mbx_err segment_find(const seg_view *v, const char *name, uint32_t *slot, uint32_t *generation)
{
    size_t len = strlen(name); /* a valid name: at most MBX_NAME_MAX */
    for (uint32_t i = 0; i < v->slots; i++) {
        if (segment_entry_is(v, i, name, len, generation)) {
            *slot = i;
            return MBX_OK;
        }
    }
    return MBX_ENORECIPIENT;
}
