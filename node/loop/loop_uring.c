/* io_uring backend: native completions, one ring per loop, batched submission, registered recv buffer ring.
 *
 * At scale: the completion queue is sized for every op the loop may have pending (two per fd,
 * IORING_SETUP_CQSIZE, capped at the kernel's 65536) and a kernel overflow is flushed while
 * reaping. No request is ever dropped for want of a submission-queue entry: an op, a poll or a
 * cancel that finds the queue full and unsubmittable waits on a list flushed before the next
 * wait, so every cancelled connection is still freed.
 *
 * Splice runs as splice(2) from the loop (SPLICE_F_NONBLOCK, polled through the ring after
 * -EAGAIN), not as IORING_OP_SPLICE: the kernel always punts that op to an io-wq thread, a thread
 * hop per splice. Measured with tests/bench/uring_splice_bench.py (iperf3 through one worker,
 * docs/performance.md): a single bulk flow moves 16.4-16.7 Gbit per proxy CPU-second with
 * splice(2) against 11.3-12.4 with IORING_OP_SPLICE; with 4-8 flows the two are within the
 * run-to-run spread. IORING_OP_SPLICE showed more wall-clock Gbit/s for one flow only because its
 * extra thread takes more of a shared core. Build with -DURING_SPLICE_DIRECT=0 to measure again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/loop/loop_backend.h"

/* user_data: an op pointer (8-byte aligned) with a tag in the low bits. A zero pointer part means
 * an internal request: UD_CANCEL for cancel SQEs (only failures post, thanks to
 * IOSQE_CQE_SKIP_SUCCESS, and are ignored), UD_WAKE for the wakeup eventfd read. */
#define UD_CANCEL 0u
#define UD_WAKE 1u
#define UD_TAG_MASK 7u
#define UD_TAG_POLL 2u /* the op waits for readiness before retrying (read/splice got -EAGAIN) */

/* op->state: a phase plus a cancel-requested bit (the op's own CQE will report -ECANCELED). */
enum { US_IDLE = 0, US_INFLIGHT = 1, US_POLLING = 2, US_PARKED = 3, US_DONE = 4, US_WAIT_OP = 5, US_WAIT_POLL = 6 };
#define US_PHASE(st) ((st)&0x3f)
#define US_CANCEL 0x80
#define US_CANCEL_Q 0x40 /* on the cancels list: its cancel SQE is not submitted yet */

#define CQ_MAX 65536u /* the kernel's IORING_MAX_CQ_ENTRIES */

#ifndef URING_SPLICE_DIRECT
#define URING_SPLICE_DIRECT 1 /* splice(2) from the loop; 0: IORING_OP_SPLICE (see the header) */
#endif

/* Buffer groups are per ring: group id = buffer class (VORO_BUF_GENERAL, VORO_BUF_REQUEST), each
 * with its own provided-buffer ring, so the kernel picks a recv's buffer from its class only. */

/* Deferred completions (parked ops cancelled, failed re-submissions) carry their result in fd2,
 * which a finished op no longer needs. */
#define OP_RES(op) ((op)->fd2)

struct uring_state {
    struct io_uring ring;
    bool ring_ok;
    bool enabled; /* created with IORING_SETUP_R_DISABLED until the running thread enables it */
    struct io_uring_buf_ring *br[VORO_BUF_CLASSES]; /* owned (posix_memalign); NULL for an empty class */
    unsigned br_entries[VORO_BUF_CLASSES];
    int wake_fd; /* owned, blocking eventfd: io_uring would fail a non-blocking read with -EAGAIN */
    uint64_t wake_val;
    bool woken;
    struct voro_op_list parked[VORO_BUF_CLASSES]; /* recvs that got -ENOBUFS, waiting for a released buffer */
    struct voro_op_list done;   /* completions decided outside a CQE */
    /* Work that found no free submission-queue entry, flushed before the next wait: ops (phase
     * US_WAIT_OP or US_WAIT_POLL) and in-flight ops whose cancel is still to be sent. */
    struct voro_op_list unsubmitted;
    struct voro_op_list cancels;
    bool wake_unarmed;
    bool overflow_logged;
    unsigned fail_sqes; /* tests: this many SQE requests fail as if the queue could not be submitted */
    /* Per-fd sides, only to refuse a second read-side or write-side op with -EBUSY like the
     * readiness backends do; fds >= nfdt are not tracked. */
    struct uring_fd {
        struct voro_op *rd;
        struct voro_op *wr;
    } *fdt; /* owned */
    unsigned nfdt;
};

_Static_assert(sizeof(((struct voro_op *)0)->u) >= sizeof(struct __kernel_timespec), "timeout spec must fit in op->u");

static void ensure_enabled(struct uring_state *s)
{
    if (s->enabled)
        return;
    /* SINGLE_ISSUER binds the ring to the task that enables it: that must be the loop's thread,
     * which may differ from the thread that created the loop. */
    /* liburing 2.3 declares io_uring_enable_rings() but does not export it. */
    int rc = io_uring_register(s->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (rc < 0)
        VORO_ERROR("loop", "io_uring enable failed err=%s", strerror(-rc));
    s->enabled = true;
}

static struct io_uring_sqe *get_sqe(struct uring_state *s)
{
    if (__builtin_expect(s->fail_sqes != 0, 0)) {
        s->fail_sqes--;
        return NULL;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        ensure_enabled(s);
        io_uring_submit(&s->ring);
        sqe = io_uring_get_sqe(&s->ring);
    }
    return sqe;
}

/* Hands buffer `b` to the kernel through the ring of its class. */
static void ring_give(struct voro_loop *loop, struct uring_state *s, struct voro_buf *b)
{
    unsigned c = voro_buf_pool_class_of(&loop->pool, b->id);
    io_uring_buf_ring_add(s->br[c], b->data, b->cap, (unsigned short)b->id, io_uring_buf_ring_mask(s->br_entries[c]),
                          0);
    io_uring_buf_ring_advance(s->br[c], 1);
}

static void defer_complete(struct uring_state *s, struct voro_op *op, int res)
{
    op->more = false;
    OP_RES(op) = res;
    op->state = US_DONE;
    voro_op_list_push(&s->done, op);
}

static int arm_wake(struct uring_state *s)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, s->wake_fd, &s->wake_val, sizeof(s->wake_val), 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    return 0;
}

/* Prepares the op's SQE; keeps the cancel bit. */
static int submit_op(struct voro_loop *loop, struct uring_state *s, struct voro_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    if (!sqe)
        return -EBUSY;
    switch (op->type) {
    case VORO_OP_ACCEPT:
        io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case VORO_OP_RECV:
        io_uring_prep_recv(sqe, op->fd, NULL, loop->pool.size, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = (uint16_t)voro_buf_pool_class(&loop->pool, op->buf_class);
        break;
    case VORO_OP_SEND:
        io_uring_prep_send(sqe, op->fd, op->u.io.ptr + op->u.io.done, op->u.io.len - op->u.io.done, MSG_NOSIGNAL);
        break;
    case VORO_OP_CONNECT:
        io_uring_prep_connect(sqe, op->fd, op->u.connect.addr, op->u.connect.addrlen);
        break;
    case VORO_OP_READ:
        io_uring_prep_read(sqe, op->fd, (void *)op->u.io.ptr,
                           op->u.io.len > UINT_MAX ? UINT_MAX : (unsigned)op->u.io.len, (uint64_t)-1);
        break;
    case VORO_OP_RECVMSG:
        io_uring_prep_recvmsg(sqe, op->fd, op->u.msg, 0);
        break;
    case VORO_OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, op->fd, op->u.msg, MSG_NOSIGNAL);
        break;
    case VORO_OP_SPLICE: {
        int in = op->wait_out ? op->fd2 : op->fd;
        int out = op->wait_out ? op->fd : op->fd2;
        io_uring_prep_splice(sqe, in, -1, out, -1, op->u.splice.len > UINT_MAX ? UINT_MAX : (unsigned)op->u.splice.len,
                             SPLICE_F_MOVE);
        break;
    }
    case VORO_OP_TIMEOUT:
        io_uring_prep_timeout(sqe, (struct __kernel_timespec *)(void *)&op->u, 0, 0);
        break;
    default:
        io_uring_prep_nop(sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    op->state = (uint8_t)(US_INFLIGHT | (op->state & US_CANCEL));
    return 0;
}

/* read/splice on a non-blocking fd report -EAGAIN instead of waiting: poll, then retry. */
static int submit_poll(struct uring_state *s, struct voro_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, op->fd, voro_op_is_write_side(op) ? POLLOUT : POLLIN);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | UD_TAG_POLL);
    op->state = (uint8_t)(US_POLLING | (op->state & US_CANCEL));
    return 0;
}

/* Submits the op (or its readiness poll); without a free SQE it waits on s->unsubmitted. */
static void submit_or_queue(struct voro_loop *loop, struct uring_state *s, struct voro_op *op, bool poll)
{
    if ((poll ? submit_poll(s, op) : submit_op(loop, s, op)) == 0)
        return;
    op->state = (uint8_t)((poll ? US_WAIT_POLL : US_WAIT_OP) | (op->state & US_CANCEL));
    voro_op_list_push(&s->unsubmitted, op);
}

static void prep_cancel(struct io_uring_sqe *sqe, const struct voro_op *op)
{
    uint64_t target = (uint64_t)(uintptr_t)op | (US_PHASE(op->state) == US_POLLING ? UD_TAG_POLL : 0);
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* Sends what waited for an SQE: cancels first (they free connections), then ops, then the
 * wakeup read. Stops at the first SQE it cannot get. */
static void flush_unsubmitted(struct voro_loop *loop, struct uring_state *s)
{
    struct io_uring_sqe *sqe;
    while (s->cancels.head && (sqe = get_sqe(s))) {
        struct voro_op *op = voro_op_list_pop(&s->cancels);
        op->state &= (uint8_t)~US_CANCEL_Q;
        prep_cancel(sqe, op);
    }
    while (s->unsubmitted.head) {
        struct voro_op *op = s->unsubmitted.head;
        bool poll = US_PHASE(op->state) == US_WAIT_POLL;
        if ((poll ? submit_poll(s, op) : submit_op(loop, s, op)) != 0)
            return;
        voro_op_list_unlink(&s->unsubmitted, op);
    }
    if (s->wake_unarmed && arm_wake(s) == 0)
        s->wake_unarmed = false;
}

static bool has_unsubmitted(const struct uring_state *s)
{
    return s->cancels.head || s->unsubmitted.head || s->wake_unarmed;
}

/* One non-blocking splice(2) for the op: bytes moved, or a negative errno (-EAGAIN: the side it
 * waits on is not ready; the caller keeps the other side ready, see loop_ready.c). */
static int splice_once(const struct voro_op *op)
{
    int in = op->wait_out ? op->fd2 : op->fd;
    int out = op->wait_out ? op->fd : op->fd2;
    ssize_t n;
    do
        n = splice(in, NULL, out, NULL, op->u.splice.len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* Arming a splice: try it now and complete it from the next run (never inside the arming call),
 * or poll the side it waits on. */
static void splice_arm(struct voro_loop *loop, struct uring_state *s, struct voro_op *op)
{
    int res = splice_once(op);
    if (res == -EAGAIN)
        submit_or_queue(loop, s, op, true);
    else
        defer_complete(s, op, res);
}

/* The side a splice waited on became ready (inside reap, where callbacks run): complete at once. */
static int deliver(struct voro_loop *loop, struct voro_op *op, int res, bool more);
static int splice_ready(struct voro_loop *loop, struct uring_state *s, struct voro_op *op)
{
    int res = splice_once(op);
    if (res != -EAGAIN)
        return deliver(loop, op, res, false);
    submit_or_queue(loop, s, op, true);
    return 0;
}

static struct voro_op **side_of(struct uring_state *s, const struct voro_op *op)
{
    if (op->type == VORO_OP_TIMEOUT || (unsigned)op->fd >= s->nfdt)
        return NULL;
    return voro_op_is_write_side(op) ? &s->fdt[op->fd].wr : &s->fdt[op->fd].rd;
}

static int deliver(struct voro_loop *loop, struct voro_op *op, int res, bool more)
{
    op->more = more;
    if (!more) {
        struct uring_state *s = loop->state;
        if (op->state & US_CANCEL_Q)
            voro_op_list_unlink(&s->cancels, op); /* completed before its cancel went out */
        struct voro_op **side = side_of(s, op);
        if (side && *side == op)
            *side = NULL;
        op->state = US_IDLE;
    }
    loop->completions++;
    op->cb(op, res);
    return 1;
}

static unsigned bufs_in_ring(const struct voro_loop *loop, unsigned cls)
{
    return loop->pool.class_count[cls] - loop->pool.nfree[cls] - loop->pool.owned_class[cls];
}

static void kick_parked(struct voro_loop *loop, struct uring_state *s, unsigned cls)
{
    if (!s->parked[cls].head || bufs_in_ring(loop, cls) == 0)
        return;
    struct voro_op *op = voro_op_list_pop(&s->parked[cls]);
    op->state = US_IDLE;
    submit_or_queue(loop, s, op, false);
}

static int handle_cqe(struct voro_loop *loop, struct uring_state *s, uint64_t ud, int res, unsigned flags)
{
    struct voro_op *op = (struct voro_op *)(uintptr_t)(ud & ~(uint64_t)UD_TAG_MASK);
    if (!op) {
        if (ud == UD_WAKE) {
            s->woken = true;
            if (arm_wake(s) < 0)
                s->wake_unarmed = true; /* re-armed by flush_unsubmitted */
        }
        return 0;
    }
    bool cancelled = (op->state & US_CANCEL) != 0;
    if ((ud & UD_TAG_MASK) == UD_TAG_POLL) {
        if (res < 0 || cancelled)
            return deliver(loop, op, cancelled ? -ECANCELED : res, false);
        if (URING_SPLICE_DIRECT && op->type == VORO_OP_SPLICE)
            return splice_ready(loop, s, op);
        submit_or_queue(loop, s, op, false);
        return 0;
    }
    switch (op->type) {
    case VORO_OP_ACCEPT: {
        bool more = (flags & IORING_CQE_F_MORE) != 0;
        return deliver(loop, op, res, more);
    }
    case VORO_OP_RECV:
        if (flags & IORING_CQE_F_BUFFER) {
            uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
            if (res > 0) {
                op->buf = voro_buf_pool_claim(&loop->pool, bid);
                if (!op->buf) {
                    VORO_ERROR("loop", "io_uring returned an unknown buffer id=%u", bid);
                    return deliver(loop, op, -EIO, false);
                }
                op->buf->len = (uint32_t)res;
            } else if (bid < loop->pool.count) {
                /* Consumed without data (EOF or error): straight back into the ring. */
                ring_give(loop, s, &loop->pool.bufs[bid]);
                kick_parked(loop, s, voro_buf_pool_class_of(&loop->pool, bid));
            }
        }
        if (res == -ENOBUFS && !cancelled) {
            unsigned cls = voro_buf_pool_class(&loop->pool, op->buf_class);
            op->state = US_PARKED;
            voro_op_list_push(&s->parked[cls], op);
            loop->buf_waits++;
            /* A buffer may have come back between the kernel's failure and now. */
            kick_parked(loop, s, cls);
            return 0;
        }
        if (cancelled && res == -ENOBUFS)
            res = -ECANCELED;
        return deliver(loop, op, res, false);
    case VORO_OP_SEND:
        if (res > 0) {
            op->u.io.done += (size_t)res;
            if (op->u.io.done < op->u.io.len) {
                if (cancelled)
                    return deliver(loop, op, -ECANCELED, false);
                submit_or_queue(loop, s, op, false);
                return 0;
            }
            res = op->u.io.len > INT_MAX ? INT_MAX : (int)op->u.io.len;
        } else if (res == 0 && op->u.io.len == 0) {
            res = 0;
        }
        return deliver(loop, op, res, false);
    case VORO_OP_READ:
    case VORO_OP_SPLICE:
        if (res == -EAGAIN && !cancelled) {
            submit_or_queue(loop, s, op, true);
            return 0;
        }
        if (res == -EAGAIN)
            res = -ECANCELED;
        return deliver(loop, op, res, false);
    case VORO_OP_TIMEOUT:
        return deliver(loop, op, res == -ETIME ? 0 : res, false);
    default:
        return deliver(loop, op, res, false);
    }
}

static int reap(struct voro_loop *loop, struct uring_state *s)
{
    int n = 0;
    unsigned budget = 4 * s->ring.cq.ring_entries;
    struct io_uring_cqe *cqe;
    for (;;) {
        while (budget > 0 && io_uring_peek_cqe(&s->ring, &cqe) == 0) {
            budget--;
            uint64_t ud = cqe->user_data;
            int res = cqe->res;
            unsigned flags = cqe->flags;
            /* Seen before the callback runs: it may arm more work and submit. */
            io_uring_cqe_seen(&s->ring, cqe);
            n += handle_cqe(loop, s, ud, res, flags);
        }
        /* Completions the full ring could not take wait in the kernel's overflow list: move
         * them into the ring now rather than on the next wait. */
        if (budget == 0 || !io_uring_cq_has_overflow(&s->ring) || io_uring_get_events(&s->ring) < 0)
            break;
    }
    if (*s->ring.cq.koverflow && !s->overflow_logged) {
        s->overflow_logged = true; /* only kernels without IORING_FEAT_NODROP drop completions */
        VORO_ERROR("loop", "io_uring dropped %u completions (completion queue overflow)", *s->ring.cq.koverflow);
    }
    return n;
}

static int dispatch_deferred(struct voro_loop *loop, struct uring_state *s)
{
    struct voro_op_list batch = s->done;
    s->done.head = s->done.tail = NULL;
    struct voro_op *op;
    int n = 0;
    while ((op = voro_op_list_pop(&batch)))
        n += deliver(loop, op, OP_RES(op), false);
    return n;
}

static int ur_run(struct voro_loop *loop, int timeout_ms)
{
    struct uring_state *s = loop->state;
    ensure_enabled(s);
    uint64_t start = voro_now_ms();
    int n = 0;
    s->woken = false;
    for (;;) {
        int rc;
        flush_unsubmitted(loop, s);
        /* Work still waiting for an SQE: wait at most a millisecond before trying again. */
        int wait_ms = has_unsubmitted(s) && (timeout_ms < 0 || timeout_ms > 1) ? 1 : timeout_ms;
        if (s->done.head || wait_ms == 0) {
            rc = io_uring_submit_and_get_events(&s->ring);
        } else if (wait_ms < 0) {
            rc = io_uring_submit_and_wait(&s->ring, 1);
        } else {
            uint64_t el = voro_now_ms() - start;
            uint64_t left = el >= (uint64_t)wait_ms ? 0 : (uint64_t)wait_ms - el;
            struct __kernel_timespec ts = {.tv_sec = (long long)(left / 1000), .tv_nsec = (long long)(left % 1000) * 1000000};
            struct io_uring_cqe *cqe;
            rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
        }
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
            return n > 0 ? n : rc;
        n += reap(loop, s);
        /* Completions decided in the loop (direct splices) chain: a splice into a pipe arms
         * the splice out of it. A few rounds here save a ring round trip each, bounded so
         * that ring completions are not starved. */
        for (int round = 0; round < 4 && s->done.head; round++)
            n += dispatch_deferred(loop, s);
        if (n > 0 || s->woken || timeout_ms == 0)
            break;
        if (timeout_ms > 0 && voro_now_ms() - start >= (uint64_t)timeout_ms)
            break;
    }
    return n;
}

static void ur_wakeup(struct voro_loop *loop)
{
    struct uring_state *s = loop->state;
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) < 0)
        VORO_WARN("loop", "wakeup write failed err=%s", strerror(errno));
}

static int ur_arm(struct voro_loop *loop, struct voro_op *op)
{
    struct uring_state *s = loop->state;
    if (op->type == VORO_OP_TIMEOUT) {
        uint64_t ms = op->u.deadline_ms;
        struct __kernel_timespec *ts = (struct __kernel_timespec *)(void *)&op->u;
        ts->tv_sec = (long long)(ms / 1000);
        ts->tv_nsec = (long long)(ms % 1000) * 1000000;
    }
    struct voro_op **side = side_of(s, op);
    if (side && *side)
        return -EBUSY;
    op->state = US_IDLE;
    if (side)
        *side = op;
    if (URING_SPLICE_DIRECT && op->type == VORO_OP_SPLICE)
        splice_arm(loop, s, op);
    else
        submit_or_queue(loop, s, op, false);
    return 0;
}

static void ur_cancel(struct voro_loop *loop, struct voro_op *op)
{
    struct uring_state *s = loop->state;
    if (op->state & US_CANCEL)
        return;
    switch (US_PHASE(op->state)) {
    case US_INFLIGHT:
    case US_POLLING: {
        /* From here on the op is never re-submitted: its next CQE completes it. */
        op->state |= US_CANCEL;
        struct io_uring_sqe *sqe = get_sqe(s);
        if (sqe) {
            prep_cancel(sqe, op);
        } else {
            op->state |= US_CANCEL_Q;
            voro_op_list_push(&s->cancels, op);
        }
        break;
    }
    case US_PARKED:
        voro_op_list_unlink(&s->parked[voro_buf_pool_class(&loop->pool, op->buf_class)], op);
        defer_complete(s, op, -ECANCELED);
        break;
    case US_WAIT_OP:
    case US_WAIT_POLL:
        voro_op_list_unlink(&s->unsubmitted, op);
        defer_complete(s, op, -ECANCELED);
        break;
    default:
        break;
    }
}

/* The kernel drops an fd's requests itself once they are cancelled; nothing is registered per fd. */
static int ur_forget_fd(struct voro_loop *loop, int fd)
{
    struct uring_state *s = loop->state;
    if (fd == s->wake_fd)
        return -EPERM;
    if ((unsigned)fd < s->nfdt) {
        if (s->fdt[fd].rd || s->fdt[fd].wr)
            VORO_ERROR("loop", "voro_loop_close with a pending op fd=%d", fd);
        s->fdt[fd].rd = s->fdt[fd].wr = NULL;
    }
    return 0;
}

static void ur_buf_released(struct voro_loop *loop, struct voro_buf *buf)
{
    struct uring_state *s = loop->state;
    unsigned cls = voro_buf_pool_class_of(&loop->pool, buf->id);
    struct voro_buf *b = voro_buf_pool_lend(&loop->pool, cls);
    if (b)
        ring_give(loop, s, b);
    kick_parked(loop, s, cls);
}

static void ur_fini(struct voro_loop *loop)
{
    struct uring_state *s = loop->state;
    if (!s)
        return;
    if (s->ring_ok)
        io_uring_queue_exit(&s->ring);
    for (unsigned c = 0; c < VORO_BUF_CLASSES; c++)
        free(s->br[c]);
    free(s->fdt);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    free(s);
    loop->state = NULL;
}

static int ur_init(struct voro_loop *loop)
{
    int rc;
    const struct voro_loop_opts *o = &loop->opts;
    if (o->buf_count > 32768) {
        VORO_WARN("loop", "io_uring buffer rings hold at most 32768 buffers buf_count=%u", o->buf_count);
        return -EINVAL;
    }
    struct uring_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->wake_fd = -1;
    loop->state = s;
    s->nfdt = o->max_fds;
    s->fdt = calloc(s->nfdt, sizeof(*s->fdt));
    if (!s->fdt) {
        rc = -ENOMEM;
        goto fail;
    }

    /* Every fd has at most a read-side and a write-side op pending, each ending in one CQE: a
     * completion queue that holds them all never overflows in practice (the kernel rounds up
     * to a power of two; CQ_MAX is its maximum). */
    unsigned long cq = 2ul * o->max_fds + o->queue_depth;
    if (cq < 2ul * o->queue_depth)
        cq = 2ul * o->queue_depth;
    if (cq > CQ_MAX)
        cq = CQ_MAX;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
    p.cq_entries = (unsigned)cq;
    rc = io_uring_queue_init_params(o->queue_depth, &s->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = (unsigned)cq;
        rc = io_uring_queue_init_params(o->queue_depth, &s->ring, &p);
        s->enabled = true;
        if (rc == 0)
            VORO_INFO("loop", "io_uring single-issuer/deferred task-run unsupported, using a plain ring");
    }
    if (rc < 0)
        goto fail;
    s->ring_ok = true;
    if (!(p.features & IORING_FEAT_NODROP))
        VORO_WARN("loop", "this kernel drops io_uring completions on overflow: completion queue %u entries",
                  s->ring.cq.ring_entries);
    VORO_DEBUG("loop", "io_uring ring: %u submission, %u completion entries", s->ring.sq.ring_entries,
               s->ring.cq.ring_entries);

    for (unsigned c = 0; c < VORO_BUF_CLASSES; c++) {
        if (loop->pool.class_count[c] == 0)
            continue;
        s->br_entries[c] = 1;
        while (s->br_entries[c] < loop->pool.class_count[c])
            s->br_entries[c] <<= 1;
        void *mem = NULL;
        rc = -posix_memalign(&mem, (size_t)sysconf(_SC_PAGESIZE), s->br_entries[c] * sizeof(struct io_uring_buf));
        if (rc < 0)
            goto fail;
        s->br[c] = mem;
        memset(s->br[c], 0, s->br_entries[c] * sizeof(struct io_uring_buf));
        struct io_uring_buf_reg reg;
        memset(&reg, 0, sizeof(reg));
        reg.ring_addr = (uint64_t)(uintptr_t)s->br[c];
        reg.ring_entries = s->br_entries[c];
        reg.bgid = (uint16_t)c;
        rc = io_uring_register_buf_ring(&s->ring, &reg, 0);
        if (rc < 0)
            goto fail;
        io_uring_buf_ring_init(s->br[c]);
        struct voro_buf *b;
        while ((b = voro_buf_pool_lend(&loop->pool, c)))
            ring_give(loop, s, b);
    }

    s->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (s->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = arm_wake(s);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    VORO_WARN("loop", "io_uring setup failed err=%s", strerror(-rc));
    /* The pool may have lent buffers to the ring: take them back for the next poller. */
    for (uint32_t i = 0; i < loop->pool.count; i++)
        voro_buf_pool_unlend(&loop->pool, i);
    ur_fini(loop);
    return rc;
}

void voro_loop_uring_fail_sqes(struct voro_loop *loop, unsigned n)
{
    if (loop->be == &voro_loop_backend_uring)
        ((struct uring_state *)loop->state)->fail_sqes = n;
}

unsigned voro_loop_uring_cq_entries(const struct voro_loop *loop)
{
    return loop->be == &voro_loop_backend_uring ? ((const struct uring_state *)loop->state)->ring.cq.ring_entries : 0;
}

const struct voro_loop_backend voro_loop_backend_uring = {
    .name = "io_uring",
    .model = VORO_IO_URING,
    .init = ur_init,
    .fini = ur_fini,
    .run = ur_run,
    .wakeup = ur_wakeup,
    .arm = ur_arm,
    .cancel = ur_cancel,
    .forget_fd = ur_forget_fd,
    .buf_released = ur_buf_released,
};
