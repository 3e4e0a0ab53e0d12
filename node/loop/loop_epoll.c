/* epoll backend: edge-triggered waiting for the readiness core (each fd registered once for in and out). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "node/loop/loop_ready.h"

#define EPOLL_BATCH 256

struct epoll_state {
    int epfd;
    struct epoll_event ev[EPOLL_BATCH];
};

static int ep_init(struct voro_ready *r)
{
    struct epoll_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int rc = -errno;
        free(s);
        return rc;
    }
    r->wstate = s;
    return 0;
}

static void ep_fini(struct voro_ready *r)
{
    struct epoll_state *s = r->wstate;
    close(s->epfd);
    free(s);
    r->wstate = NULL;
}

/* Edge-triggered for both directions from the start: interest never changes, so no epoll_ctl per op. */
static int ep_update(struct voro_ready *r, int fd)
{
    struct epoll_state *s = r->wstate;
    struct voro_ready_fd *e = &r->fds[fd];
    if (e->flags & VORO_READY_F_REGISTERED)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
    if (!(e->flags & VORO_READY_F_INTERNAL))
        ev.events |= EPOLLOUT | EPOLLRDHUP;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        /* A number reused behind our back (closed without voro_loop_close): take it over. */
        if (errno != EEXIST || epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return -errno;
    }
    e->flags |= VORO_READY_F_REGISTERED;
    return 0;
}

static void ep_forget(struct voro_ready *r, int fd)
{
    struct epoll_state *s = r->wstate;
    if (r->fds[fd].flags & VORO_READY_F_REGISTERED)
        (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_wait(struct voro_ready *r, int timeout_ms)
{
    struct epoll_state *s = r->wstate;
    int n = epoll_wait(s->epfd, s->ev, EPOLL_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t ev = s->ev[i].events;
        unsigned bits = 0;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            bits |= VORO_READY_R;
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            bits |= VORO_READY_W;
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            bits |= VORO_READY_HUP;
        voro_ready_mark(r, s->ev[i].data.fd, bits);
    }
    return n;
}

static const struct voro_ready_waiter g_epoll_waiter = {
    .name = "epoll",
    .model = VORO_IO_EPOLL,
    .init = ep_init,
    .fini = ep_fini,
    .check = NULL,
    .update = ep_update,
    .forget = ep_forget,
    .wait = ep_wait,
};

VORO_READY_BACKEND(voro_loop_backend_epoll, g_epoll_waiter, "epoll", VORO_IO_EPOLL);
