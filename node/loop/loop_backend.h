/* Internal contract between the loop dispatcher (loop.c) and its backends: the vtable and the loop object. */
#ifndef VORO_NODE_LOOP_BACKEND_H
#define VORO_NODE_LOOP_BACKEND_H

#include "node/loop/buf_pool.h"
#include "node/loop/loop.h"

/* One poller. The dispatcher validates arguments, resets the op's loop-set fields and fills
 * type/fd/fd2/wait_out/u before calling arm(); every hook runs on the loop's thread except
 * wakeup(). Backends keep their state behind loop->state (allocated in init, freed in fini). */
struct voro_loop_backend {
    const char *name;
    enum voro_io_model model;
    /* Returns 0 or a negative errno (then fini is not called and the next poller is tried). */
    int (*init)(struct voro_loop *loop);
    void (*fini)(struct voro_loop *loop);
    int (*run)(struct voro_loop *loop, int timeout_ms);
    void (*wakeup)(struct voro_loop *loop);
    int (*arm)(struct voro_loop *loop, struct voro_op *op);
    void (*cancel)(struct voro_loop *loop, struct voro_op *op);
    /* Forgets fd; the dispatcher closes it afterwards unless this returns a negative errno
     * (the fd is the loop's own). */
    int (*forget_fd)(struct voro_loop *loop, int fd);
    /* A caller handed a buffer back (already returned to loop->pool). */
    void (*buf_released)(struct voro_loop *loop, struct voro_buf *buf);
};

struct voro_loop {
    const struct voro_loop_backend *be;
    struct voro_loop_opts opts; /* with defaults filled in */
    struct voro_buf_pool pool;
    uint64_t completions;
    uint64_t buf_waits;
    void *state; /* backend-owned */
};

extern const struct voro_loop_backend voro_loop_backend_uring;

/* io_uring only (no-ops elsewhere), for tests: the next `n` requests for a submission-queue
 * entry fail as if the queue were full and could not be submitted. */
void voro_loop_uring_fail_sqes(struct voro_loop *loop, unsigned n);
/* Completion-queue entries of an io_uring loop's ring; 0 for other backends. */
unsigned voro_loop_uring_cq_entries(const struct voro_loop *loop);
extern const struct voro_loop_backend voro_loop_backend_epoll;
extern const struct voro_loop_backend voro_loop_backend_poll;
extern const struct voro_loop_backend voro_loop_backend_select;

/* A FIFO of ops linked through op->next/prev (an op is on at most one list). */
struct voro_op_list {
    struct voro_op *head;
    struct voro_op *tail;
};

static inline void voro_op_list_push(struct voro_op_list *l, struct voro_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
}

static inline void voro_op_list_unlink(struct voro_op_list *l, struct voro_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->next = op->prev = NULL;
}

static inline struct voro_op *voro_op_list_pop(struct voro_op_list *l)
{
    struct voro_op *op = l->head;
    if (op)
        voro_op_list_unlink(l, op);
    return op;
}

/* Which side of its fd an op occupies: read-side (accept, recv, read, recvmsg, splice waiting
 * on input) or write-side. */
static inline int voro_op_is_write_side(const struct voro_op *op)
{
    return op->type == VORO_OP_SEND || op->type == VORO_OP_CONNECT || op->type == VORO_OP_SENDMSG ||
           (op->type == VORO_OP_SPLICE && op->wait_out);
}

#endif
