/* The receive-buffer pool every loop backend lends recv buffers from (one mapping, fixed-size buffers). */
#ifndef VORO_NODE_LOOP_BUF_POOL_H
#define VORO_NODE_LOOP_BUF_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct voro_buf;

/* Each buffer is FREE (in the pool), LENT (handed to the kernel, io_uring) or OWNED (by a caller).
 * Buffers belong to one of two classes (see VORO_BUF_REQUEST in loop.h): ids [0, class_count[0])
 * are class 0, the rest class 1. With class_count[1] == 0 every request for class 1 is served
 * from class 0. */
#define VORO_BUF_CLASSES 2
struct voro_buf_pool {
    uint8_t *mem;           /* owned mapping, count * size bytes (rounded up) */
    size_t map_len;
    bool huge;              /* the mapping really is huge-page backed */
    uint32_t count;
    uint32_t size;
    uint32_t class_count[VORO_BUF_CLASSES];
    uint32_t nfree[VORO_BUF_CLASSES];
    uint32_t owned;         /* buffers currently owned by callers */
    uint32_t owned_class[VORO_BUF_CLASSES];
    struct voro_buf *bufs;  /* owned, count entries; bufs[i].id == i */
    uint32_t *free_ids;     /* owned: one stack of FREE ids per class, class c's at class_start(c) */
    uint8_t *state;         /* owned, per buffer */
};

/* Returns 0, -EINVAL (count or size 0, or class1_count >= count) or -ENOMEM. `class1_count` of
 * the buffers form class 1 (0 = one class). With hugepages, tries MAP_HUGETLB first and logs one
 * line when it has to fall back to normal pages. */
int voro_buf_pool_init(struct voro_buf_pool *p, unsigned count, unsigned size, bool hugepages, unsigned class1_count);
/* The class a request for class `cls` is served from (1 folds into 0 without a split). */
static inline unsigned voro_buf_pool_class(const struct voro_buf_pool *p, unsigned cls)
{
    return cls && p->class_count[1] ? 1u : 0u;
}
static inline unsigned voro_buf_pool_class_of(const struct voro_buf_pool *p, uint32_t id)
{
    return id >= p->class_count[0] ? 1u : 0u;
}
void voro_buf_pool_fini(struct voro_buf_pool *p);
/* FREE -> OWNED, from class `cls`; NULL when none of it is free. */
struct voro_buf *voro_buf_pool_get(struct voro_buf_pool *p, unsigned cls);
/* FREE -> LENT (the kernel will pick it), from class `cls`; NULL when none of it is free. */
struct voro_buf *voro_buf_pool_lend(struct voro_buf_pool *p, unsigned cls);
/* LENT -> OWNED for buffer `id` picked by the kernel; NULL if id is bad or not lent. */
struct voro_buf *voro_buf_pool_claim(struct voro_buf_pool *p, uint32_t id);
/* OWNED -> FREE. Returns 0, or -EINVAL for a buffer that is not from this pool or not owned. */
int voro_buf_pool_put(struct voro_buf_pool *p, struct voro_buf *buf);
/* LENT -> FREE: the kernel handed a buffer back unused. */
void voro_buf_pool_unlend(struct voro_buf_pool *p, uint32_t id);

#endif
