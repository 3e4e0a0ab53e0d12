/* Per-worker fixed-size object pool: grows in chunks (optionally huge-page backed), O(1)
 * alloc/free, never returns memory until destroyed; keeps malloc off the hot path. */
#ifndef VORO_NODE_SLAB_H
#define VORO_NODE_SLAB_H

#include <stdbool.h>
#include <stddef.h>

struct voro_slab_chunk;

struct voro_slab {
    size_t obj_size;
    size_t objs_per_chunk;
    size_t max_objs;    /* 0 = unbounded */
    size_t in_use;
    size_t capacity;
    bool want_hugepages;
    bool hugepages;     /* at least the first chunk really is huge-page backed */
    void *free_list;
    struct voro_slab_chunk *chunks; /* owned */
};

/* Returns 0 or -EINVAL. No memory is taken until the first alloc. */
int voro_slab_init(struct voro_slab *s, size_t obj_size, size_t objs_per_chunk, size_t max_objs, bool hugepages);
/* Returns zeroed memory owned by the slab (give it back with voro_slab_free), or NULL when
 * max_objs is reached or memory is exhausted. */
void *voro_slab_alloc(struct voro_slab *s);
/* Same, without zeroing: for buffers the caller fills before reading (big objects on the hot
 * path, where clearing them would cost more than using them). */
void *voro_slab_alloc_uninit(struct voro_slab *s);
void voro_slab_free(struct voro_slab *s, void *obj);
void voro_slab_destroy(struct voro_slab *s);

/* Maps `size` bytes, trying MAP_HUGETLB first when `hugepages` is set; *is_huge says which.
 * Logs once per process when huge pages were asked for but none are reserved. Returns NULL
 * on failure. Free with voro_mem_unmap. */
void *voro_mem_map(size_t size, bool hugepages, bool *is_huge);
void voro_mem_unmap(void *p, size_t size, bool is_huge);

#endif
