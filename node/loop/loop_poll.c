/* poll backend: level-triggered waiting for the readiness core over a compact pollfd array. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "node/loop/loop_ready.h"

struct poll_state {
    struct pollfd *pfds; /* owned, r->nfds entries; fds[fd].slot indexes it */
    unsigned n;
};

static int pl_init(struct voro_ready *r)
{
    struct poll_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->pfds = calloc(r->nfds, sizeof(*s->pfds));
    if (!s->pfds) {
        free(s);
        return -ENOMEM;
    }
    r->wstate = s;
    return 0;
}

static void pl_fini(struct voro_ready *r)
{
    struct poll_state *s = r->wstate;
    free(s->pfds);
    free(s);
    r->wstate = NULL;
}

static void pl_remove(struct voro_ready *r, int fd)
{
    struct poll_state *s = r->wstate;
    int idx = r->fds[fd].slot;
    if (idx < 0)
        return;
    unsigned last = --s->n;
    if ((unsigned)idx != last) {
        s->pfds[idx] = s->pfds[last];
        r->fds[s->pfds[idx].fd].slot = idx;
    }
    r->fds[fd].slot = -1;
}

/* Only fds with a waiting op are polled: level-triggered polling of idle fds would spin. */
static int pl_update(struct voro_ready *r, int fd)
{
    struct poll_state *s = r->wstate;
    unsigned bits = voro_ready_interest(r, fd);
    short ev = (short)(((bits & VORO_READY_R) ? POLLIN | POLLRDHUP : 0) | ((bits & VORO_READY_W) ? POLLOUT : 0));
    struct voro_ready_fd *e = &r->fds[fd];
    if (!ev) {
        pl_remove(r, fd);
        return 0;
    }
    if (e->slot < 0) {
        e->slot = (int32_t)s->n++;
        s->pfds[e->slot].fd = fd;
        s->pfds[e->slot].revents = 0;
    }
    s->pfds[e->slot].events = ev;
    return 0;
}

static void pl_forget(struct voro_ready *r, int fd) { pl_remove(r, fd); }

static int pl_wait(struct voro_ready *r, int timeout_ms)
{
    struct poll_state *s = r->wstate;
    int n = poll(s->pfds, s->n, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* mark() never changes the array, so indexes stay valid while walking it. */
    for (unsigned i = 0; i < s->n && n > 0; i++) {
        short re = s->pfds[i].revents;
        if (!re)
            continue;
        unsigned bits = 0;
        if (re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
            bits |= VORO_READY_R;
        if (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL))
            bits |= VORO_READY_W;
        voro_ready_mark(r, s->pfds[i].fd, bits);
    }
    return n;
}

static const struct voro_ready_waiter g_poll_waiter = {
    .name = "poll",
    .model = VORO_IO_POLL,
    .init = pl_init,
    .fini = pl_fini,
    .check = NULL,
    .update = pl_update,
    .forget = pl_forget,
    .wait = pl_wait,
};

VORO_READY_BACKEND(voro_loop_backend_poll, g_poll_waiter, "poll", VORO_IO_POLL);
