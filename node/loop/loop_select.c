/* select backend: level-triggered waiting for the readiness core; fds >= FD_SETSIZE are refused. */
#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

#include "common/log.h"
#include "node/loop/loop_ready.h"

struct select_state {
    fd_set rd;
    fd_set wr;
    int maxfd; /* highest fd in either set, -1 when empty */
};

static int sl_init(struct voro_ready *r)
{
    struct select_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    FD_ZERO(&s->rd);
    FD_ZERO(&s->wr);
    s->maxfd = -1;
    r->wstate = s;
    return 0;
}

static void sl_fini(struct voro_ready *r)
{
    free(r->wstate);
    r->wstate = NULL;
}

static int sl_check(struct voro_ready *r, int fd)
{
    if (fd < FD_SETSIZE)
        return 0;
    if (!r->select_warned) {
        r->select_warned = true;
        VORO_ERROR("loop", "select backend cannot watch fd=%d >= FD_SETSIZE=%d; use io_model epoll or poll", fd,
                   FD_SETSIZE);
    }
    return -ERANGE;
}

static void sl_shrink(struct select_state *s)
{
    while (s->maxfd >= 0 && !FD_ISSET(s->maxfd, &s->rd) && !FD_ISSET(s->maxfd, &s->wr))
        s->maxfd--;
}

static int sl_update(struct voro_ready *r, int fd)
{
    struct select_state *s = r->wstate;
    if (fd >= FD_SETSIZE)
        return -ERANGE;
    unsigned bits = voro_ready_interest(r, fd);
    if (bits & VORO_READY_R)
        FD_SET(fd, &s->rd);
    else
        FD_CLR(fd, &s->rd);
    if (bits & VORO_READY_W)
        FD_SET(fd, &s->wr);
    else
        FD_CLR(fd, &s->wr);
    if (bits && fd > s->maxfd)
        s->maxfd = fd;
    else if (!bits && fd == s->maxfd)
        sl_shrink(s);
    return 0;
}

static void sl_forget(struct voro_ready *r, int fd)
{
    struct select_state *s = r->wstate;
    if (fd >= FD_SETSIZE)
        return;
    FD_CLR(fd, &s->rd);
    FD_CLR(fd, &s->wr);
    if (fd == s->maxfd)
        sl_shrink(s);
}

static int sl_wait(struct voro_ready *r, int timeout_ms)
{
    struct select_state *s = r->wstate;
    fd_set rd = s->rd, wr = s->wr;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int maxfd = s->maxfd;
    int n = select(maxfd + 1, &rd, &wr, NULL, timeout_ms < 0 ? NULL : &tv);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int fd = 0; fd <= maxfd && n > 0; fd++) {
        unsigned bits = (FD_ISSET(fd, &rd) ? VORO_READY_R : 0) | (FD_ISSET(fd, &wr) ? VORO_READY_W : 0);
        if (bits)
            voro_ready_mark(r, fd, bits);
    }
    return n;
}

static const struct voro_ready_waiter g_select_waiter = {
    .name = "select",
    .model = VORO_IO_SELECT,
    .init = sl_init,
    .fini = sl_fini,
    .check = sl_check,
    .update = sl_update,
    .forget = sl_forget,
    .wait = sl_wait,
};

VORO_READY_BACKEND(voro_loop_backend_select, g_select_waiter, "select", VORO_IO_SELECT);
