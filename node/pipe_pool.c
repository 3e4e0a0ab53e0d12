/* Bounded per-worker pipe pool for splice forwarding; recycles only pipes the kernel reports empty. */
#include "node/pipe_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int voro_pipe_pool_init(struct voro_pipe_pool *p, uint32_t max)
{
    p->n_free = p->in_use = 0;
    p->exhausted = 0;
    p->dirty = 0;
    p->max = max;
    p->free = NULL;
    if (max == 0)
        return 0;
    p->free = calloc(max, sizeof(*p->free));
    return p->free ? 0 : -ENOMEM;
}

void voro_pipe_pool_destroy(struct voro_pipe_pool *p)
{
    for (uint32_t i = 0; i < p->n_free; i++) {
        close(p->free[i].rd);
        close(p->free[i].wr);
    }
    free(p->free);
    p->free = NULL;
    p->n_free = 0;
}

int voro_pipe_get(struct voro_pipe_pool *p, struct voro_pipe *out)
{
    if (p->n_free) {
        *out = p->free[--p->n_free];
        p->in_use++;
        return 0;
    }
    if (p->in_use >= p->max) {
        p->exhausted++;
        return -ENOSPC;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    out->rd = fds[0];
    out->wr = fds[1];
    p->in_use++;
    return 0;
}

/* The caller's count can be wrong only through a bug; the kernel's cannot. One ioctl per pipe
 * returned (a flow going quiet or ending), never per splice. */
static int pipe_is_empty(const struct voro_pipe *pipe)
{
    int n = -1;
    return ioctl(pipe->rd, FIONREAD, &n) == 0 && n == 0;
}

void voro_pipe_put(struct voro_pipe_pool *p, struct voro_pipe *pipe, int empty)
{
    p->in_use--;
    if (empty && p->n_free < p->max) {
        if (pipe_is_empty(pipe)) {
            p->free[p->n_free++] = *pipe;
            return;
        }
        p->dirty++;
    }
    close(pipe->rd);
    close(pipe->wr);
}
