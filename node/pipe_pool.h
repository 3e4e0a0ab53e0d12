/* Per-worker pool of non-blocking pipes for splice(2) forwarding: bounded (each pipe costs two
 * descriptors), created on first use and recycled; a pipe that may still hold bytes is closed
 * instead of recycled. */
#ifndef VORO_NODE_PIPE_POOL_H
#define VORO_NODE_PIPE_POOL_H

#include <stdint.h>

struct voro_pipe {
    int rd, wr;
};

struct voro_pipe_pool {
    struct voro_pipe *free; /* owned stack of idle, empty pipes */
    uint32_t n_free;
    uint32_t in_use;
    uint32_t max;           /* pipes alive at once (idle + in use); 0 disables splicing */
    uint64_t exhausted;     /* requests refused because `max` pipes were alive */
    uint64_t dirty;         /* pipes returned as empty that still held bytes (closed instead) */
};

int voro_pipe_pool_init(struct voro_pipe_pool *p, uint32_t max);
/* Closes the idle pipes; every pipe must have been returned. */
void voro_pipe_pool_destroy(struct voro_pipe_pool *p);
/* Takes an empty pipe; returns 0, or -ENOSPC when `max` are alive, or -errno from pipe2. */
int voro_pipe_get(struct voro_pipe_pool *p, struct voro_pipe *out);
/* Returns a pipe: recycled when the caller says it is `empty` and FIONREAD agrees; else closed
 * (its bytes are lost with the flow, never handed to the next user). */
void voro_pipe_put(struct voro_pipe_pool *p, struct voro_pipe *pipe, int empty);

#endif
