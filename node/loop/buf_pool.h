/* The receive-buffer pool every loop backend lends recv buffers from (one mapping, fixed-size buffers). */
#ifndef VORO_NODE_LOOP_BUF_POOL_H
#define VORO_NODE_LOOP_BUF_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct voro_buf;

/* Each buffer is FREE (in the pool), LENT (handed to the kernel, io_uring) or OWNED (by a caller). */
struct voro_buf_pool {
    uint8_t *mem;           /* owned mapping, count * size bytes (rounded up) */
    size_t map_len;
    bool huge;              /* the mapping really is huge-page backed */
    uint32_t count;
    uint32_t size;
    uint32_t nfree;
    uint32_t owned;         /* buffers currently owned by callers */
    struct voro_buf *bufs;  /* owned, count entries; bufs[i].id == i */
    uint32_t *free_ids;     /* owned stack of FREE ids */
    uint8_t *state;         /* owned, per buffer */
};

/* Returns 0, -EINVAL (count or size 0) or -ENOMEM. With hugepages, tries MAP_HUGETLB first and
 * logs one line when it has to fall back to normal pages. */
int voro_buf_pool_init(struct voro_buf_pool *p, unsigned count, unsigned size, bool hugepages);
void voro_buf_pool_fini(struct voro_buf_pool *p);
/* FREE -> OWNED; NULL when none is free. */
struct voro_buf *voro_buf_pool_get(struct voro_buf_pool *p);
/* FREE -> LENT (the kernel will pick it); NULL when none is free. */
struct voro_buf *voro_buf_pool_lend(struct voro_buf_pool *p);
/* LENT -> OWNED for buffer `id` picked by the kernel; NULL if id is bad or not lent. */
struct voro_buf *voro_buf_pool_claim(struct voro_buf_pool *p, uint32_t id);
/* OWNED -> FREE. Returns 0, or -EINVAL for a buffer that is not from this pool or not owned. */
int voro_buf_pool_put(struct voro_buf_pool *p, struct voro_buf *buf);
/* LENT -> FREE: the kernel handed a buffer back unused. */
void voro_buf_pool_unlend(struct voro_buf_pool *p, uint32_t id);

#endif
