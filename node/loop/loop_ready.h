/* The shared readiness core behind the epoll, poll and select backends: fd table, op execution, queues, timers. */
#ifndef VORO_NODE_LOOP_READY_H
#define VORO_NODE_LOOP_READY_H

#include <stdbool.h>
#include <stdint.h>

#include "node/loop/loop_backend.h"

#define VORO_READY_R 0x1u /* readable (or error/hang-up: the next syscall reports it) */
#define VORO_READY_W 0x2u /* writable (or error) */
#define VORO_READY_HUP 0x4u /* the peer hung up or the socket failed: reads never block again */

/* fd-table flags */
#define VORO_READY_F_REGISTERED 0x1u /* waiter-private: e.g. added to the epoll set */
#define VORO_READY_F_INTERNAL 0x2u   /* the loop's own wakeup eventfd */

struct voro_ready_fd {
    struct voro_op *rd; /* read-side op, not owned */
    struct voro_op *wr; /* write-side op, not owned */
    uint8_t ready;      /* VORO_READY_* bits known true (cleared on EAGAIN) */
    uint8_t flags;
    int32_t slot;       /* waiter-private (poll: index in its pollfd array), -1 when unused */
};

struct voro_ready;

/* How one backend waits. wait() reports each ready fd with voro_ready_mark(). */
struct voro_ready_waiter {
    const char *name;
    enum voro_io_model model;
    int (*init)(struct voro_ready *r);
    void (*fini)(struct voro_ready *r);
    /* 0 if fd can be watched at all, else a negative errno (select: -ERANGE). Optional. */
    int (*check)(struct voro_ready *r, int fd);
    /* The fd's interest changed (see voro_ready_interest()); 0 or a negative errno. */
    int (*update)(struct voro_ready *r, int fd);
    /* The fd is about to be closed: drop it. */
    void (*forget)(struct voro_ready *r, int fd);
    /* Waits up to timeout_ms (-1 forever); returns >= 0 or a negative errno (EINTR is 0). */
    int (*wait)(struct voro_ready *r, int timeout_ms);
};

struct voro_ready {
    struct voro_loop *loop; /* not owned */
    const struct voro_ready_waiter *w;
    struct voro_ready_fd *fds; /* owned, nfds entries (opts.max_fds) */
    unsigned nfds;
    struct voro_op_list attempt; /* ops whose syscall should be tried now */
    struct voro_op_list done;    /* completed ops waiting for their callback */
    struct voro_op_list bufwait[VORO_BUF_CLASSES]; /* recvs waiting for a free buffer of their class */
    struct voro_op_list timers;  /* sorted by deadline */
    int wake_fd;                 /* owned eventfd */
    bool woken;
    bool select_warned;
    void *wstate; /* waiter-owned */
};

/* Backend hooks shared by the three readiness pollers (see struct voro_loop_backend). */
int voro_ready_init(struct voro_loop *loop, const struct voro_ready_waiter *w);
void voro_ready_fini(struct voro_loop *loop);
int voro_ready_run(struct voro_loop *loop, int timeout_ms);
void voro_ready_wakeup(struct voro_loop *loop);
int voro_ready_arm(struct voro_loop *loop, struct voro_op *op);
void voro_ready_cancel(struct voro_loop *loop, struct voro_op *op);
int voro_ready_forget_fd(struct voro_loop *loop, int fd);
void voro_ready_buf_released(struct voro_loop *loop, struct voro_buf *buf);

/* Called by wait(): fd became ready for `bits`. */
void voro_ready_mark(struct voro_ready *r, int fd, unsigned bits);
/* The VORO_READY_* bits a level-triggered waiter should watch on fd now. */
unsigned voro_ready_interest(const struct voro_ready *r, int fd);

#define VORO_READY_BACKEND(sym, waiter, nm, mdl)                                                                       \
    static int sym##_init(struct voro_loop *loop) { return voro_ready_init(loop, &(waiter)); }                  \
    const struct voro_loop_backend sym = {                                                                      \
        .name = (nm), .model = (mdl),                     .init = sym##_init, .fini = voro_ready_fini,            \
        .run = voro_ready_run, .wakeup = voro_ready_wakeup, .arm = voro_ready_arm, .cancel = voro_ready_cancel, \
        .forget_fd = voro_ready_forget_fd, .buf_released = voro_ready_buf_released,                             \
    }

#endif
