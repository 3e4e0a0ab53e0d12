/* Receive-buffer pool: one (optionally huge-page) mapping cut into fixed-size buffers, O(1) get/put. */
#include "node/loop/buf_pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"
#include "node/loop/loop.h"

enum { BUF_FREE = 0, BUF_LENT = 1, BUF_OWNED = 2 };

#define HUGE_PAGE_SIZE (2u * 1024u * 1024u)

/* Maps len bytes; huge pages first when asked. Local on purpose: node/slab.c owns the shared
 * voro_mem_map, and the pool must not depend on another module's link order. */
static void *pool_map(size_t *len, bool hugepages, bool *is_huge)
{
    *is_huge = false;
    if (hugepages) {
        size_t hlen = (*len + HUGE_PAGE_SIZE - 1) & ~((size_t)HUGE_PAGE_SIZE - 1);
        void *p = mmap(NULL, hlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (p != MAP_FAILED) {
            *len = hlen;
            *is_huge = true;
            return p;
        }
        /* Once per process, not once per worker loop. */
        static atomic_bool warned;
        if (!atomic_exchange(&warned, true))
            VORO_WARN("loop", "huge pages unavailable for the buffer pool, using normal pages bytes=%zu err=%s", hlen,
                      strerror(errno));
    }
    void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int voro_buf_pool_init(struct voro_buf_pool *p, unsigned count, unsigned size, bool hugepages, unsigned class1_count)
{
    memset(p, 0, sizeof(*p));
    if (count == 0 || size == 0 || class1_count >= count)
        return -EINVAL;
    p->class_count[0] = count - class1_count;
    p->class_count[1] = class1_count;
    p->count = count;
    p->size = size;
    p->map_len = (size_t)count * size;
    p->mem = pool_map(&p->map_len, hugepages, &p->huge);
    if (!p->mem)
        goto fail;
    p->bufs = calloc(count, sizeof(*p->bufs));
    p->free_ids = calloc(count, sizeof(*p->free_ids));
    p->state = calloc(count, 1);
    if (!p->bufs || !p->free_ids || !p->state)
        goto fail;
    for (uint32_t i = 0; i < count; i++) {
        p->bufs[i].data = p->mem + (size_t)i * size;
        p->bufs[i].cap = size;
        p->bufs[i].id = i;
    }
    /* Lowest ids on top of each stack, so a fresh pool hands out 0, 1, 2, ... */
    for (unsigned c = 0; c < VORO_BUF_CLASSES; c++) {
        uint32_t start = c ? p->class_count[0] : 0;
        for (uint32_t k = 0; k < p->class_count[c]; k++)
            p->free_ids[start + k] = start + p->class_count[c] - 1 - k;
        p->nfree[c] = p->class_count[c];
    }
    return 0;
fail:
    voro_buf_pool_fini(p);
    return -ENOMEM;
}

void voro_buf_pool_fini(struct voro_buf_pool *p)
{
    if (p->mem)
        munmap(p->mem, p->map_len);
    free(p->bufs);
    free(p->free_ids);
    free(p->state);
    memset(p, 0, sizeof(*p));
}

static uint32_t class_start(const struct voro_buf_pool *p, unsigned c) { return c ? p->class_count[0] : 0; }

static struct voro_buf *pool_pop(struct voro_buf_pool *p, unsigned cls, uint8_t to)
{
    unsigned c = voro_buf_pool_class(p, cls);
    if (p->nfree[c] == 0)
        return NULL;
    uint32_t id = p->free_ids[class_start(p, c) + --p->nfree[c]];
    p->state[id] = to;
    return &p->bufs[id];
}

static void pool_push(struct voro_buf_pool *p, uint32_t id)
{
    unsigned c = voro_buf_pool_class_of(p, id);
    p->state[id] = BUF_FREE;
    p->free_ids[class_start(p, c) + p->nfree[c]++] = id;
}

static void mark_owned(struct voro_buf_pool *p, struct voro_buf *b)
{
    p->owned++;
    p->owned_class[voro_buf_pool_class_of(p, b->id)]++;
    b->len = 0;
    b->offset = 0;
}

struct voro_buf *voro_buf_pool_get(struct voro_buf_pool *p, unsigned cls)
{
    struct voro_buf *b = pool_pop(p, cls, BUF_OWNED);
    if (b)
        mark_owned(p, b);
    return b;
}

struct voro_buf *voro_buf_pool_lend(struct voro_buf_pool *p, unsigned cls) { return pool_pop(p, cls, BUF_LENT); }

struct voro_buf *voro_buf_pool_claim(struct voro_buf_pool *p, uint32_t id)
{
    if (id >= p->count || p->state[id] != BUF_LENT)
        return NULL;
    p->state[id] = BUF_OWNED;
    mark_owned(p, &p->bufs[id]);
    return &p->bufs[id];
}

int voro_buf_pool_put(struct voro_buf_pool *p, struct voro_buf *buf)
{
    if (!buf || (uintptr_t)buf < (uintptr_t)p->bufs || (uintptr_t)buf >= (uintptr_t)(p->bufs + p->count))
        return -EINVAL;
    uint32_t id = (uint32_t)(buf - p->bufs);
    if (p->state[id] != BUF_OWNED)
        return -EINVAL;
    p->owned--;
    p->owned_class[voro_buf_pool_class_of(p, id)]--;
    pool_push(p, id);
    return 0;
}

void voro_buf_pool_unlend(struct voro_buf_pool *p, uint32_t id)
{
    if (id >= p->count || p->state[id] != BUF_LENT)
        return;
    pool_push(p, id);
}
