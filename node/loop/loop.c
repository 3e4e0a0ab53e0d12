/* Event-loop dispatcher: picks a backend (pollers tried in order), validates and prepares ops, keeps shared stats. */
#include "node/loop/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "node/loop/loop_backend.h"

/* Preference order; a failing poller falls through to the next one (io_uring -> epoll -> ...). */
static const struct voro_loop_backend *const g_pollers[VORO_IO_MODEL_COUNT] = {
    &voro_loop_backend_uring,
    &voro_loop_backend_epoll,
    &voro_loop_backend_poll,
    &voro_loop_backend_select,
};

static void fill_defaults(struct voro_loop_opts *o)
{
    if (o->buf_count == 0)
        o->buf_count = 1024;
    if (o->buf_size == 0)
        o->buf_size = 16384;
    if (o->queue_depth == 0)
        o->queue_depth = 1024;
    if (o->max_fds == 0) {
        /* The fd table is sized up front: cap an unlimited or huge limit at 4M entries. */
        struct rlimit rl;
        o->max_fds = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 0)
            o->max_fds = rl.rlim_cur > (1u << 22) ? (1u << 22) : (unsigned)rl.rlim_cur;
    }
}

int voro_loop_create(struct voro_loop **out, const struct voro_loop_opts *opts)
{
    *out = NULL;
    if (!opts || (unsigned)opts->model >= VORO_IO_MODEL_COUNT)
        return -EINVAL;
    struct voro_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->opts = *opts;
    fill_defaults(&loop->opts);
    int rc = voro_buf_pool_init(&loop->pool, loop->opts.buf_count, loop->opts.buf_size, loop->opts.hugepages,
                                loop->opts.request_buf_count);
    if (rc < 0)
        goto fail_loop;
    rc = -ENOSYS;
    for (int i = 0; i < VORO_IO_MODEL_COUNT; i++) {
        const struct voro_loop_backend *be = g_pollers[i];
        if ((int)be->model < (int)opts->model)
            continue;
        rc = be->init(loop);
        if (rc == 0) {
            loop->be = be;
            break;
        }
        VORO_WARN("loop", "%s backend unavailable, trying the next one err=%s", be->name, strerror(-rc));
        loop->state = NULL;
    }
    if (rc < 0)
        goto fail_pool;
    if (loop->be->model != opts->model)
        VORO_WARN("loop", "io_model %s requested, running %s", voro_io_model_name(opts->model), loop->be->name);
    *out = loop;
    return 0;
fail_pool:
    voro_buf_pool_fini(&loop->pool);
fail_loop:
    free(loop);
    return rc;
}

void voro_loop_destroy(struct voro_loop *loop)
{
    if (!loop)
        return;
    loop->be->fini(loop);
    voro_buf_pool_fini(&loop->pool);
    free(loop);
}

enum voro_io_model voro_loop_model(const struct voro_loop *loop) { return loop->be->model; }

void voro_loop_get_stats(const struct voro_loop *loop, struct voro_loop_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->completions = loop->completions;
    out->buf_waits = loop->buf_waits;
    out->bufs_in_use = loop->pool.owned;
    out->bufs_total = loop->pool.count;
    out->request_bufs_in_use = loop->pool.owned_class[1];
    out->request_bufs_total = loop->pool.class_count[1];
    out->hugepages = loop->pool.huge;
}

int voro_loop_run(struct voro_loop *loop, int timeout_ms) { return loop->be->run(loop, timeout_ms < 0 ? -1 : timeout_ms); }

void voro_loop_wakeup(struct voro_loop *loop) { loop->be->wakeup(loop); }

/* Common validation and reset; the op becomes the loop's only if arm() returns 0. */
static int prepare(struct voro_op *op, enum voro_op_type type, int fd, int fd2)
{
    if (!op || !op->cb)
        return -EINVAL;
    if (op->state != 0)
        return -EBUSY;
    if (type != VORO_OP_TIMEOUT && (fd < 0 || fd2 < -1))
        return -EBADF;
    op->type = (uint8_t)type;
    op->fd = fd;
    op->fd2 = fd2;
    op->buf = NULL;
    op->more = false;
    op->wait_out = 0;
    op->next = op->prev = NULL;
    return 0;
}

static int arm(struct voro_loop *loop, struct voro_op *op)
{
    int rc = loop->be->arm(loop, op);
    if (rc < 0)
        op->state = 0;
    return rc;
}

int voro_loop_accept(struct voro_loop *loop, struct voro_op *op, int listen_fd)
{
    int rc = prepare(op, VORO_OP_ACCEPT, listen_fd, -1);
    return rc < 0 ? rc : arm(loop, op);
}

int voro_loop_recv(struct voro_loop *loop, struct voro_op *op, int fd)
{
    int rc = prepare(op, VORO_OP_RECV, fd, -1);
    return rc < 0 ? rc : arm(loop, op);
}

int voro_loop_send(struct voro_loop *loop, struct voro_op *op, int fd, const void *data, size_t len)
{
    int rc = prepare(op, VORO_OP_SEND, fd, -1);
    if (rc < 0)
        return rc;
    if (!data && len)
        return -EINVAL;
    op->u.io.ptr = data;
    op->u.io.len = len;
    op->u.io.done = 0;
    return arm(loop, op);
}

int voro_loop_connect(struct voro_loop *loop, struct voro_op *op, int fd, const struct sockaddr *addr,
                      socklen_t addrlen)
{
    int rc = prepare(op, VORO_OP_CONNECT, fd, -1);
    if (rc < 0)
        return rc;
    if (!addr)
        return -EINVAL;
    op->u.connect.addr = addr;
    op->u.connect.addrlen = addrlen;
    return arm(loop, op);
}

int voro_loop_read(struct voro_loop *loop, struct voro_op *op, int fd, void *data, size_t len)
{
    int rc = prepare(op, VORO_OP_READ, fd, -1);
    if (rc < 0)
        return rc;
    if (!data && len)
        return -EINVAL;
    op->u.io.ptr = data;
    op->u.io.len = len;
    op->u.io.done = 0;
    return arm(loop, op);
}

int voro_loop_recvmsg(struct voro_loop *loop, struct voro_op *op, int fd, struct msghdr *msg)
{
    int rc = prepare(op, VORO_OP_RECVMSG, fd, -1);
    if (rc < 0)
        return rc;
    if (!msg)
        return -EINVAL;
    op->u.msg = msg;
    return arm(loop, op);
}

int voro_loop_sendmsg(struct voro_loop *loop, struct voro_op *op, int fd, struct msghdr *msg)
{
    int rc = prepare(op, VORO_OP_SENDMSG, fd, -1);
    if (rc < 0)
        return rc;
    if (!msg)
        return -EINVAL;
    op->u.msg = msg;
    return arm(loop, op);
}

/* The op's fd is the one it waits on (fd_in, or fd_out with wait_out); fd2 is the other end. */
int voro_loop_splice(struct voro_loop *loop, struct voro_op *op, int fd_in, int fd_out, size_t len, bool wait_out)
{
    if (fd_out < 0 || fd_in < 0)
        return op && op->cb ? -EBADF : -EINVAL;
    int rc = prepare(op, VORO_OP_SPLICE, wait_out ? fd_out : fd_in, wait_out ? fd_in : fd_out);
    if (rc < 0)
        return rc;
    op->wait_out = wait_out;
    op->u.splice.len = len;
    op->u.splice.flags = 0;
    return arm(loop, op);
}

int voro_loop_timeout(struct voro_loop *loop, struct voro_op *op, unsigned ms)
{
    int rc = prepare(op, VORO_OP_TIMEOUT, -1, -1);
    if (rc < 0)
        return rc;
    op->u.deadline_ms = ms;
    return arm(loop, op);
}

void voro_loop_cancel(struct voro_loop *loop, struct voro_op *op)
{
    if (op && op->state != 0)
        loop->be->cancel(loop, op);
}

void voro_loop_close(struct voro_loop *loop, int fd)
{
    if (fd < 0)
        return;
    if (loop->be->forget_fd(loop, fd) == 0)
        close(fd);
}

void voro_loop_forget(struct voro_loop *loop, int fd)
{
    if (fd >= 0)
        (void)loop->be->forget_fd(loop, fd);
}

void voro_loop_buf_release(struct voro_loop *loop, struct voro_buf *buf)
{
    if (voro_buf_pool_put(&loop->pool, buf) < 0) {
        VORO_ERROR("loop", "buffer released twice or not from this loop id=%u", buf ? buf->id : 0u);
        return;
    }
    loop->be->buf_released(loop, buf);
}
