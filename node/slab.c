/* Fixed-size object pool grown in mmap'd chunks (huge pages when reserved) with an intrusive free list. */
#include "node/slab.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define VORO_SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VORO_SLAB_ASAN 1
#endif
#endif
#ifdef VORO_SLAB_ASAN
#include <sanitizer/asan_interface.h>
/* Free objects stay poisoned (link included, unpoisoned only while touched) so use-after-free
 * trips ASan and a double free is recognisable by the object already being poisoned. */
#define SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define SLAB_IS_POISONED(p) __asan_address_is_poisoned(p)
#else
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#define SLAB_IS_POISONED(p) ((void)(p), 0)
#endif

#define HUGE_PAGE_SIZE ((size_t)2 << 20)
#define SLAB_ALIGN ((size_t)16)

/* Lives at the start of each mapping; objects follow at the next 16-byte boundary. */
struct voro_slab_chunk {
    struct voro_slab_chunk *next;
    size_t map_size;
    bool huge;
};

#define CHUNK_HDR ((sizeof(struct voro_slab_chunk) + SLAB_ALIGN - 1) & ~(SLAB_ALIGN - 1))

/* Process-wide on purpose: the warning is about the host, not about one pool. */
static atomic_bool g_hugepage_warned;

static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

void *voro_mem_map(size_t size, bool hugepages, bool *is_huge)
{
    bool huge = false;
    void *p = MAP_FAILED;
    if (size == 0)
        goto out;
    if (hugepages) {
        p = mmap(NULL, round_up(size, HUGE_PAGE_SIZE), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (p != MAP_FAILED) {
            huge = true;
            goto out;
        }
        if (!atomic_exchange(&g_hugepage_warned, true))
            VORO_WARN("slab", "hugepages requested but none reserved (vm.nr_hugepages=0); using normal pages");
    }
    p = mmap(NULL, round_up(size, page_size()), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
out:
    if (is_huge)
        *is_huge = huge;
    return p == MAP_FAILED ? NULL : p;
}

void voro_mem_unmap(void *p, size_t size, bool is_huge)
{
    if (!p || size == 0)
        return;
    munmap(p, round_up(size, is_huge ? HUGE_PAGE_SIZE : page_size()));
}

int voro_slab_init(struct voro_slab *s, size_t obj_size, size_t objs_per_chunk, size_t max_objs, bool hugepages)
{
    if (!s || obj_size == 0 || objs_per_chunk == 0)
        return -EINVAL;
    if (obj_size < sizeof(void *))
        obj_size = sizeof(void *);
    if (obj_size > SIZE_MAX / 2)
        return -EINVAL;
    obj_size = round_up(obj_size, SLAB_ALIGN);
    if (objs_per_chunk > (SIZE_MAX / 2 - CHUNK_HDR) / obj_size)
        return -EINVAL;
    memset(s, 0, sizeof(*s));
    s->obj_size = obj_size;
    s->objs_per_chunk = objs_per_chunk;
    s->max_objs = max_objs;
    s->want_hugepages = hugepages;
    return 0;
}

static int slab_grow(struct voro_slab *s)
{
    size_t size = CHUNK_HDR + s->objs_per_chunk * s->obj_size;
    bool huge = false;
    struct voro_slab_chunk *c = voro_mem_map(size, s->want_hugepages, &huge);
    if (!c)
        return -ENOMEM;
    c->map_size = size;
    c->huge = huge;
    c->next = s->chunks;
    if (!s->chunks)
        s->hugepages = huge;
    s->chunks = c;
    /* Thread back to front so the free list hands out ascending addresses. */
    char *base = (char *)c + CHUNK_HDR;
    for (size_t i = s->objs_per_chunk; i-- > 0;) {
        void *obj = base + i * s->obj_size;
        *(void **)obj = s->free_list;
        s->free_list = obj;
        SLAB_POISON(obj, s->obj_size);
    }
    s->capacity += s->objs_per_chunk;
    return 0;
}

void *voro_slab_alloc_uninit(struct voro_slab *s)
{
    if (s->max_objs && s->in_use >= s->max_objs)
        return NULL;
    if (!s->free_list && slab_grow(s) < 0)
        return NULL;
    void *obj = s->free_list;
    SLAB_UNPOISON(obj, s->obj_size);
    s->free_list = *(void **)obj;
    s->in_use++;
    return obj;
}

void *voro_slab_alloc(struct voro_slab *s)
{
    void *obj = voro_slab_alloc_uninit(s);
    if (obj)
        memset(obj, 0, s->obj_size);
    return obj;
}

void voro_slab_free(struct voro_slab *s, void *obj)
{
    if (!obj)
        return;
    if (SLAB_IS_POISONED(obj)) {
        VORO_ERROR("slab", "double free of %p", obj);
        abort();
    }
    *(void **)obj = s->free_list;
    s->free_list = obj;
    SLAB_POISON(obj, s->obj_size);
    s->in_use--;
}

void voro_slab_destroy(struct voro_slab *s)
{
    struct voro_slab_chunk *c = s->chunks;
    while (c) {
        struct voro_slab_chunk *next = c->next;
        size_t size = c->map_size;
        bool huge = c->huge;
        /* The shadow outlives the mapping: clear it so a later mapping here is not "poisoned". */
        SLAB_UNPOISON(c, size);
        voro_mem_unmap(c, size, huge);
        c = next;
    }
    s->chunks = NULL;
    s->free_list = NULL;
    s->in_use = 0;
    s->capacity = 0;
    s->hugepages = false;
}
