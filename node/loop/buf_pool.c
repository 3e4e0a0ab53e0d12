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

int voro_buf_pool_init(struct voro_buf_pool *p, unsigned count, unsigned size, bool hugepages)
{
    memset(p, 0, sizeof(*p));
    if (count == 0 || size == 0)
        return -EINVAL;
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
    /* Lowest ids on top of the stack, so a fresh pool hands out 0, 1, 2, ... */
    for (uint32_t i = 0; i < count; i++) {
        p->bufs[i].data = p->mem + (size_t)i * size;
        p->bufs[i].cap = size;
        p->bufs[i].id = i;
        p->free_ids[i] = count - 1 - i;
    }
    p->nfree = count;
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

static struct voro_buf *pool_pop(struct voro_buf_pool *p, uint8_t to)
{
    if (p->nfree == 0)
        return NULL;
    uint32_t id = p->free_ids[--p->nfree];
    p->state[id] = to;
    return &p->bufs[id];
}

struct voro_buf *voro_buf_pool_get(struct voro_buf_pool *p)
{
    struct voro_buf *b = pool_pop(p, BUF_OWNED);
    if (b) {
        p->owned++;
        b->len = 0;
        b->offset = 0;
    }
    return b;
}

struct voro_buf *voro_buf_pool_lend(struct voro_buf_pool *p) { return pool_pop(p, BUF_LENT); }

struct voro_buf *voro_buf_pool_claim(struct voro_buf_pool *p, uint32_t id)
{
    if (id >= p->count || p->state[id] != BUF_LENT)
        return NULL;
    p->state[id] = BUF_OWNED;
    p->owned++;
    p->bufs[id].len = 0;
    p->bufs[id].offset = 0;
    return &p->bufs[id];
}

int voro_buf_pool_put(struct voro_buf_pool *p, struct voro_buf *buf)
{
    if (!buf || (uintptr_t)buf < (uintptr_t)p->bufs || (uintptr_t)buf >= (uintptr_t)(p->bufs + p->count))
        return -EINVAL;
    uint32_t id = (uint32_t)(buf - p->bufs);
    if (p->state[id] != BUF_OWNED)
        return -EINVAL;
    p->state[id] = BUF_FREE;
    p->owned--;
    p->free_ids[p->nfree++] = id;
    return 0;
}

void voro_buf_pool_unlend(struct voro_buf_pool *p, uint32_t id)
{
    if (id >= p->count || p->state[id] != BUF_LENT)
        return;
    p->state[id] = BUF_FREE;
    p->free_ids[p->nfree++] = id;
}
