/* Readiness core shared by epoll/poll/select: emulates completions by running non-blocking syscalls when fds are ready. */
#include "node/loop/loop_ready.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* op->state values. Every pending op is in exactly one place: a list (attempt, bufwait, timers,
 * done) and/or its fd slot. */
enum {
    RS_IDLE = 0,
    RS_ATTEMPT,  /* in its slot and on the attempt list */
    RS_WAIT,     /* in its slot, waiting for readiness */
    RS_BUFWAIT,  /* recv in its slot and on the bufwait list */
    RS_TIMER,    /* on the timer list */
    RS_DONE,     /* on the done list (multishot accept: still in its slot) */
    RS_CALLBACK, /* multishot accept whose more=true callback is running */
};

/* Completed ops carry their result in fd2: once an op is done, its second fd (splice) is no
 * longer needed, and struct voro_op has no spare int. */
#define OP_RES(op) ((op)->fd2)
/* A cancel asked while a more=true accept callback was queued or running: end it afterwards.
 * wait_out has no meaning for accept. */
#define OP_CANCEL_PENDING(op) ((op)->wait_out)

#define MAX_ROUNDS 16

/* Timers are few and mostly appended in deadline order, so walk from the tail. */
static void timer_insert(struct voro_op_list *l, struct voro_op *op)
{
    struct voro_op *at = l->tail;
    while (at && at->u.deadline_ms > op->u.deadline_ms)
        at = at->prev;
    if (!at) {
        op->prev = NULL;
        op->next = l->head;
        if (l->head)
            l->head->prev = op;
        else
            l->tail = op;
        l->head = op;
        return;
    }
    op->prev = at;
    op->next = at->next;
    if (at->next)
        at->next->prev = op;
    else
        l->tail = op;
    at->next = op;
}

static unsigned side_bit(const struct voro_op *op) { return voro_op_is_write_side(op) ? VORO_READY_W : VORO_READY_R; }

static struct voro_op **slot_of(struct voro_ready *r, const struct voro_op *op)
{
    struct voro_ready_fd *e = &r->fds[op->fd];
    return voro_op_is_write_side(op) ? &e->wr : &e->rd;
}

unsigned voro_ready_interest(const struct voro_ready *r, int fd)
{
    const struct voro_ready_fd *e = &r->fds[fd];
    if (e->flags & VORO_READY_F_INTERNAL)
        return VORO_READY_R;
    unsigned bits = 0;
    /* A recv waiting for a buffer must not be watched, or level-triggered waiters spin. */
    if (e->rd && e->rd->state != RS_BUFWAIT)
        bits |= VORO_READY_R;
    if (e->wr)
        bits |= VORO_READY_W;
    return bits;
}

static void finish(struct voro_ready *r, struct voro_op *op, int res)
{
    if (op->type != VORO_OP_TIMEOUT) {
        struct voro_op **slot = slot_of(r, op);
        if (*slot == op) {
            *slot = NULL;
            (void)r->w->update(r, op->fd);
        }
    }
    op->more = false;
    OP_RES(op) = res;
    op->state = RS_DONE;
    voro_op_list_push(&r->done, op);
}

static void complete_more(struct voro_ready *r, struct voro_op *op, int res)
{
    op->more = true;
    OP_RES(op) = res;
    op->state = RS_DONE;
    voro_op_list_push(&r->done, op);
}

/* EAGAIN: the fd is not ready for this side after all; wait for the next report. */
static void wait_ready(struct voro_ready *r, struct voro_op *op)
{
    r->fds[op->fd].ready &= (uint8_t)~side_bit(op);
    op->state = RS_WAIT;
}

static void queue_attempt(struct voro_ready *r, struct voro_op *op)
{
    op->state = RS_ATTEMPT;
    voro_op_list_push(&r->attempt, op);
}

/* A buffer of class `cls` became free: let the oldest recv waiting for that class try again. */
static void buf_kick(struct voro_ready *r, unsigned cls)
{
    if (!r->bufwait[cls].head || r->loop->pool.nfree[cls] == 0)
        return;
    struct voro_op *op = voro_op_list_pop(&r->bufwait[cls]);
    queue_attempt(r, op);
    (void)r->w->update(r, op->fd);
}

static int clamp_res(size_t n) { return n > INT_MAX ? INT_MAX : (int)n; }

/* Connect runs in two steps: connect(2) once, then, when writable, SO_ERROR and a second
 * connect(2) to tell "connected" (EISCONN) from a spurious wake-up (EALREADY). */
static int do_connect(struct voro_op *op)
{
    if (!op->wait_out) {
        op->wait_out = 1;
        return connect(op->fd, op->u.connect.addr, op->u.connect.addrlen) == 0 ? 0 : -errno;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    if (err)
        return -err;
    if (connect(op->fd, op->u.connect.addr, op->u.connect.addrlen) == 0 || errno == EISCONN)
        return 0;
    return -errno;
}

static void attempt(struct voro_ready *r, struct voro_op *op)
{
    struct voro_loop *loop = r->loop;
    ssize_t n;
    int err;
    for (;;) {
        switch (op->type) {
        case VORO_OP_ACCEPT:
            n = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (n >= 0) {
                complete_more(r, op, (int)n);
                return;
            }
            err = errno;
            if (err == ECONNABORTED)
                continue;
            break;
        case VORO_OP_RECV: {
            unsigned cls = voro_buf_pool_class(&loop->pool, op->buf_class);
            struct voro_buf *b = voro_buf_pool_get(&loop->pool, cls);
            if (!b) {
                op->state = RS_BUFWAIT;
                voro_op_list_push(&r->bufwait[cls], op);
                loop->buf_waits++;
                (void)r->w->update(r, op->fd);
                return;
            }
            n = recv(op->fd, b->data, b->cap, MSG_DONTWAIT);
            err = errno;
            if (n > 0) {
                b->len = (uint32_t)n;
                op->buf = b;
                /* A short read drained a stream socket: the next recv waits for readiness
                 * instead of failing with EAGAIN first. */
                if ((size_t)n < b->cap && !op->dgram && !(r->fds[op->fd].ready & VORO_READY_HUP))
                    r->fds[op->fd].ready &= (uint8_t)~VORO_READY_R;
                finish(r, op, (int)n);
                return;
            }
            voro_buf_pool_put(&loop->pool, b);
            buf_kick(r, cls);
            if (n == 0) {
                finish(r, op, 0);
                return;
            }
            break;
        }
        case VORO_OP_SEND:
            n = 0;
            while (op->u.io.done < op->u.io.len) {
                n = send(op->fd, op->u.io.ptr + op->u.io.done, op->u.io.len - op->u.io.done,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0)
                    break;
                op->u.io.done += (size_t)n;
            }
            err = errno;
            if (n >= 0) {
                finish(r, op, clamp_res(op->u.io.len));
                return;
            }
            break;
        case VORO_OP_CONNECT: {
            int rc = do_connect(op);
            if (rc == 0) {
                finish(r, op, 0);
                return;
            }
            err = -rc;
            if (err == EINPROGRESS || err == EALREADY)
                err = EAGAIN;
            break;
        }
        case VORO_OP_READ:
            n = read(op->fd, (void *)op->u.io.ptr, op->u.io.len);
            err = errno;
            if (n >= 0) {
                finish(r, op, clamp_res((size_t)n));
                return;
            }
            break;
        case VORO_OP_RECVMSG:
            n = recvmsg(op->fd, op->u.msg, MSG_DONTWAIT);
            err = errno;
            if (n >= 0) {
                finish(r, op, clamp_res((size_t)n));
                return;
            }
            break;
        case VORO_OP_SENDMSG:
            n = sendmsg(op->fd, op->u.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            err = errno;
            if (n >= 0) {
                finish(r, op, clamp_res((size_t)n));
                return;
            }
            break;
        case VORO_OP_SPLICE: {
            /* EAGAIN is taken to mean the side the op waits on; the caller keeps the other side
             * ready (drains the pipe before splicing into it again), else edge-triggered epoll
             * would wait for an edge that never comes. */
            int in = op->wait_out ? op->fd2 : op->fd;
            int out = op->wait_out ? op->fd : op->fd2;
            n = splice(in, NULL, out, NULL, op->u.splice.len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            err = errno;
            if (n >= 0) {
                finish(r, op, clamp_res((size_t)n));
                return;
            }
            break;
        }
        default:
            err = EINVAL;
            break;
        }
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            wait_ready(r, op);
            return;
        }
        finish(r, op, -err);
        return;
    }
}

void voro_ready_mark(struct voro_ready *r, int fd, unsigned bits)
{
    if (fd < 0 || (unsigned)fd >= r->nfds)
        return;
    struct voro_ready_fd *e = &r->fds[fd];
    if (e->flags & VORO_READY_F_INTERNAL) {
        uint64_t v;
        while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
            ;
        r->woken = true;
        return;
    }
    e->ready |= (uint8_t)bits;
    if ((bits & VORO_READY_R) && e->rd && e->rd->state == RS_WAIT)
        queue_attempt(r, e->rd);
    if ((bits & VORO_READY_W) && e->wr && e->wr->state == RS_WAIT)
        queue_attempt(r, e->wr);
}

static int dispatch(struct voro_ready *r)
{
    /* Only what completed so far: completions caused by these callbacks wait for the next round. */
    struct voro_op_list batch = r->done;
    r->done.head = r->done.tail = NULL;
    struct voro_op *op;
    int n = 0;
    while ((op = voro_op_list_pop(&batch))) {
        int res = OP_RES(op);
        bool more = op->more;
        op->state = more ? RS_CALLBACK : RS_IDLE;
        r->loop->completions++;
        op->cb(op, res);
        n++;
        if (!more)
            continue;
        if (OP_CANCEL_PENDING(op)) {
            OP_CANCEL_PENDING(op) = 0;
            finish(r, op, -ECANCELED);
        } else if (r->fds[op->fd].ready & VORO_READY_R) {
            queue_attempt(r, op);
        } else {
            op->state = RS_WAIT;
        }
    }
    return n;
}

static void expire_timers(struct voro_ready *r, uint64_t now)
{
    while (r->timers.head && r->timers.head->u.deadline_ms <= now) {
        struct voro_op *op = voro_op_list_pop(&r->timers);
        finish(r, op, 0);
    }
}

int voro_ready_run(struct voro_loop *loop, int timeout_ms)
{
    struct voro_ready *r = loop->state;
    uint64_t start = voro_now_ms();
    int n = 0;
    r->woken = false;
    for (;;) {
        uint64_t now = voro_now_ms();
        int64_t t = timeout_ms;
        if (r->attempt.head || r->done.head)
            t = 0;
        else if (timeout_ms > 0)
            t = now - start >= (uint64_t)timeout_ms ? 0 : (int64_t)timeout_ms - (int64_t)(now - start);
        if (r->timers.head) {
            uint64_t dl = r->timers.head->u.deadline_ms;
            int64_t d = dl > now ? (int64_t)(dl - now) : 0;
            if (t < 0 || d < t)
                t = d;
        }
        if (t > INT_MAX)
            t = INT_MAX;
        int rc = r->w->wait(r, (int)t);
        if (rc < 0)
            return n > 0 ? n : rc;
        expire_timers(r, voro_now_ms());
        for (int round = 0; round < MAX_ROUNDS && (r->attempt.head || r->done.head); round++) {
            struct voro_op *op;
            while ((op = voro_op_list_pop(&r->attempt)))
                attempt(r, op);
            n += dispatch(r);
        }
        if (n > 0 || r->woken || timeout_ms == 0)
            break;
        if (timeout_ms > 0 && voro_now_ms() - start >= (uint64_t)timeout_ms)
            break;
    }
    return n;
}

void voro_ready_wakeup(struct voro_loop *loop)
{
    struct voro_ready *r = loop->state;
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    if (write(r->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        VORO_WARN("loop", "wakeup write failed err=%s", strerror(errno));
}

int voro_ready_arm(struct voro_loop *loop, struct voro_op *op)
{
    struct voro_ready *r = loop->state;
    if (op->type == VORO_OP_TIMEOUT) {
        op->u.deadline_ms += voro_now_ms();
        op->state = RS_TIMER;
        timer_insert(&r->timers, op);
        return 0;
    }
    if ((unsigned)op->fd >= r->nfds)
        return -ERANGE;
    if (r->w->check) {
        int rc = r->w->check(r, op->fd);
        if (rc < 0)
            return rc;
    }
    struct voro_ready_fd *e = &r->fds[op->fd];
    if (e->flags & VORO_READY_F_INTERNAL)
        return -EBUSY;
    struct voro_op **slot = slot_of(r, op);
    if (*slot)
        return -EBUSY;
    *slot = op;
    op->state = RS_WAIT;
    int rc = r->w->update(r, op->fd);
    if (rc < 0) {
        *slot = NULL;
        return rc;
    }
    /* Connect must issue connect(2) first; everything else waits unless the side is known ready.
     * The syscall itself runs in voro_loop_run(), never here. */
    if (op->type == VORO_OP_CONNECT || (e->ready & side_bit(op)))
        queue_attempt(r, op);
    return 0;
}

void voro_ready_cancel(struct voro_loop *loop, struct voro_op *op)
{
    struct voro_ready *r = loop->state;
    switch (op->state) {
    case RS_ATTEMPT:
        voro_op_list_unlink(&r->attempt, op);
        finish(r, op, -ECANCELED);
        break;
    case RS_WAIT:
        finish(r, op, -ECANCELED);
        break;
    case RS_BUFWAIT:
        voro_op_list_unlink(&r->bufwait[voro_buf_pool_class(&loop->pool, op->buf_class)], op);
        finish(r, op, -ECANCELED);
        break;
    case RS_TIMER:
        voro_op_list_unlink(&r->timers, op);
        finish(r, op, -ECANCELED);
        break;
    case RS_DONE:
    case RS_CALLBACK:
        if (op->more)
            OP_CANCEL_PENDING(op) = 1;
        break;
    default:
        break;
    }
}

int voro_ready_forget_fd(struct voro_loop *loop, int fd)
{
    struct voro_ready *r = loop->state;
    if ((unsigned)fd >= r->nfds)
        return 0;
    struct voro_ready_fd *e = &r->fds[fd];
    if (e->flags & VORO_READY_F_INTERNAL)
        return -EPERM;
    /* A caller bug, but a dangling op pointer would be worse: end them with -ECANCELED. */
    if (e->rd || e->wr) {
        VORO_ERROR("loop", "voro_loop_close with a pending op fd=%d", fd);
        if (e->rd)
            voro_ready_cancel(loop, e->rd);
        if (e->wr)
            voro_ready_cancel(loop, e->wr);
    }
    r->w->forget(r, fd);
    e->rd = e->wr = NULL;
    e->ready = 0;
    e->flags = 0;
    e->slot = -1;
    return 0;
}

void voro_ready_buf_released(struct voro_loop *loop, struct voro_buf *buf)
{
    buf_kick(loop->state, voro_buf_pool_class_of(&loop->pool, buf->id));
}

int voro_ready_init(struct voro_loop *loop, const struct voro_ready_waiter *w)
{
    int rc = -ENOMEM;
    struct voro_ready *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    r->w = w;
    r->nfds = loop->opts.max_fds;
    r->wake_fd = -1;
    r->fds = calloc(r->nfds, sizeof(*r->fds));
    if (!r->fds)
        goto fail;
    for (unsigned i = 0; i < r->nfds; i++)
        r->fds[i].slot = -1;
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((unsigned)r->wake_fd >= r->nfds) {
        rc = -EMFILE;
        goto fail;
    }
    loop->state = r;
    rc = w->init(r);
    if (rc < 0)
        goto fail;
    if (w->check && (rc = w->check(r, r->wake_fd)) < 0)
        goto fail_waiter;
    r->fds[r->wake_fd].flags = VORO_READY_F_INTERNAL;
    rc = w->update(r, r->wake_fd);
    if (rc < 0)
        goto fail_waiter;
    return 0;
fail_waiter:
    w->fini(r);
fail:
    loop->state = NULL;
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    free(r->fds);
    free(r);
    return rc;
}

void voro_ready_fini(struct voro_loop *loop)
{
    struct voro_ready *r = loop->state;
    if (!r)
        return;
    r->w->fini(r);
    close(r->wake_fd);
    free(r->fds);
    free(r);
    loop->state = NULL;
}
