/* The event-loop contract: one completion-shaped interface (accept, recv, send, connect,
 * read, recvmsg/sendmsg, splice, timeout) implemented by four backends chosen at run time:
 * io_uring (native completions), and epoll/poll/select (readiness emulated by one shared core).
 *
 * Rules every caller and backend follows:
 *  - A `struct voro_op` is caller-owned memory. It is armed by one of the voro_loop_* calls and
 *    stays owned by the loop until its callback runs with `op->more == false`. Never free or
 *    re-arm an op before that.
 *  - Callbacks run only from inside voro_loop_run(), never from inside an arming call, so a
 *    callback may freely re-arm the same op or arm others.
 *  - At most one "read-side" op (accept, recv, read, recvmsg, splice waiting on input) and one
 *    "write-side" op (send, connect, sendmsg, splice waiting on output) may be pending per fd.
 *  - recv completes with a loop-owned buffer in `op->buf` (op result = bytes in it). The caller
 *    owns that buffer until it hands it back with voro_loop_buf_release(), normally after the
 *    matching send completed. When the pool is empty, recv simply waits for a buffer (never an
 *    error), and not re-arming recv on a connection is the backpressure: one slow peer can
 *    hold at most the buffers its connection took.
 *  - Before closing an fd, cancel its pending ops and wait for their callbacks; then call
 *    voro_loop_close(), which forgets the fd in the backend and closes it.
 *  - Backend state lives in the loop object; two loops with different backends can coexist
 *    in one process. A loop is used by one thread only, except voro_loop_wakeup().
 */
#ifndef VORO_NODE_LOOP_H
#define VORO_NODE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum voro_io_model {
    VORO_IO_URING = 0,
    VORO_IO_EPOLL = 1,
    VORO_IO_POLL = 2,
    VORO_IO_SELECT = 3,
};
#define VORO_IO_MODEL_COUNT 4

/* "io_uring", "epoll", "poll", "select". */
const char *voro_io_model_name(enum voro_io_model model);
/* Returns 0 and sets *out, or -EINVAL for an unknown name. */
int voro_io_model_parse(const char *name, enum voro_io_model *out);

/* Receive buffers come in two classes, so that one kind of traffic cannot take every buffer from
 * another: VORO_BUF_REQUEST buffers carry what HTTP clients send (heads, bodies, pipelined
 * requests), VORO_BUF_GENERAL everything else (responses, L4 and UDP traffic). A loop created
 * without request buffers serves both from one pool. */
#define VORO_BUF_GENERAL 0
#define VORO_BUF_REQUEST 1

/* A loop-owned receive buffer. `data` points at `cap` bytes; `len` bytes are valid after recv. */
struct voro_buf {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
    uint32_t id;     /* index in the loop's pool (io_uring buffer id) */
    uint32_t offset; /* free for the caller: e.g. bytes of it already sent */
};

enum voro_op_type {
    VORO_OP_NONE = 0,
    VORO_OP_ACCEPT,
    VORO_OP_RECV,
    VORO_OP_SEND,
    VORO_OP_CONNECT,
    VORO_OP_READ,
    VORO_OP_RECVMSG,
    VORO_OP_SENDMSG,
    VORO_OP_SPLICE,
    VORO_OP_TIMEOUT,
};

struct voro_op;
/* `res`: >= 0 on success (accept: the new fd, non-blocking and close-on-exec; recv/read/
 * recvmsg/send/sendmsg/splice: bytes; connect/timeout: 0), or a negative errno
 * (-ECANCELED after voro_loop_cancel, -ETIME never: a fired timeout reports 0). */
typedef void (*voro_op_cb)(struct voro_op *op, int res);

struct voro_op {
    /* Set by the caller before arming. */
    voro_op_cb cb;
    void *data;
    /* Set by the loop before the callback runs. */
    struct voro_buf *buf; /* recv only: the buffer now owned by the caller (NULL on EOF/error) */
    bool more;            /* accept only: the op stays armed and will complete again */
    /* Set by the caller (kept across arms): recv on a datagram socket. A short read on a stream
     * socket means it is drained, which lets edge-triggered backends skip a futile recv; a
     * datagram socket may hold more datagrams after a short one. */
    bool dgram;
    /* Set by the caller (kept across arms): the buffer class a recv draws from
     * (VORO_BUF_GENERAL or VORO_BUF_REQUEST). */
    uint8_t buf_class;
    /* Private to the loop backends. */
    uint8_t type;
    uint8_t state;
    uint8_t wait_out; /* splice: wait for fd_out writability instead of fd_in readability */
    int fd;
    int fd2;
    union {
        struct {
            const uint8_t *ptr;
            size_t len;
            size_t done;
        } io;
        struct {
            const struct sockaddr *addr;
            socklen_t addrlen;
        } connect;
        struct msghdr *msg;
        struct {
            size_t len;
            unsigned flags;
        } splice;
        uint64_t deadline_ms;
    } u;
    struct voro_op *next; /* backend queues */
    struct voro_op *prev;
};

struct voro_loop_opts {
    enum voro_io_model model; /* requested backend */
    unsigned buf_count;       /* receive buffers in the pool (io_uring: <= 32768); default 1024 */
    unsigned request_buf_count; /* of those, VORO_BUF_REQUEST ones (0 = one shared class); < buf_count */
    unsigned buf_size;        /* bytes per buffer; default 16384 */
    unsigned queue_depth;     /* io_uring SQ entries; default 1024 */
    unsigned max_fds;         /* readiness backends size their fd table to this; default RLIMIT_NOFILE */
    bool hugepages;           /* back the buffer pool with MAP_HUGETLB, falling back with a log line */
};

struct voro_loop_stats {
    uint64_t completions;
    uint64_t buf_waits;    /* recvs that had to wait for a free buffer */
    uint32_t bufs_in_use;  /* buffers currently owned by callers */
    uint32_t bufs_total;
    uint32_t request_bufs_in_use; /* of those, VORO_BUF_REQUEST ones */
    uint32_t request_bufs_total;
    bool hugepages;        /* the pool really is backed by huge pages */
};

struct voro_loop;

/* Creates a loop. If io_uring is requested but cannot be set up, falls back to epoll and logs
 * why; voro_loop_model() then says what runs. *out is owned by the caller (voro_loop_destroy). */
int voro_loop_create(struct voro_loop **out, const struct voro_loop_opts *opts);
/* Frees the loop; every op must have completed. Does not close caller fds. */
void voro_loop_destroy(struct voro_loop *loop);
enum voro_io_model voro_loop_model(const struct voro_loop *loop);
void voro_loop_get_stats(const struct voro_loop *loop, struct voro_loop_stats *out);

/* Waits at most timeout_ms (-1: no limit, 0: poll) for completions and runs their callbacks.
 * Returns the number of callbacks run, or a negative errno on a fatal backend error. */
int voro_loop_run(struct voro_loop *loop, int timeout_ms);
/* Thread-safe: makes a voro_loop_run() in progress (or the next one) return promptly. */
void voro_loop_wakeup(struct voro_loop *loop);

/* Arming calls: return 0, or a negative errno without ever calling the callback
 * (-EBUSY: that side of the fd already has an op; -ERANGE: select cannot watch fd >= FD_SETSIZE). */
int voro_loop_accept(struct voro_loop *loop, struct voro_op *op, int listen_fd); /* multishot */
int voro_loop_recv(struct voro_loop *loop, struct voro_op *op, int fd);
/* Completes once all `len` bytes are sent, or with an error. `data` must stay valid until then. */
int voro_loop_send(struct voro_loop *loop, struct voro_op *op, int fd, const void *data, size_t len);
/* `fd` is a non-blocking socket; `addr` must stay valid until completion. */
int voro_loop_connect(struct voro_loop *loop, struct voro_op *op, int fd, const struct sockaddr *addr,
                      socklen_t addrlen);
/* Reads into caller memory (eventfds, pipes); res = bytes. */
int voro_loop_read(struct voro_loop *loop, struct voro_op *op, int fd, void *data, size_t len);
/* Datagram I/O with caller-owned msghdr (and its buffers, control data): res = bytes. */
int voro_loop_recvmsg(struct voro_loop *loop, struct voro_op *op, int fd, struct msghdr *msg);
int voro_loop_sendmsg(struct voro_loop *loop, struct voro_op *op, int fd, struct msghdr *msg);
/* One splice(2) of up to len bytes from fd_in to fd_out (one of them a pipe). With wait_out
 * false the op waits for fd_in to be readable (socket -> pipe), else for fd_out to be
 * writable (pipe -> socket). res = bytes moved (0 = EOF on fd_in). */
int voro_loop_splice(struct voro_loop *loop, struct voro_op *op, int fd_in, int fd_out, size_t len,
                     bool wait_out);
/* Completes with res 0 after `ms` milliseconds. */
int voro_loop_timeout(struct voro_loop *loop, struct voro_op *op, unsigned ms);

/* Asks for a pending op to finish early; its callback still runs (with -ECANCELED, or with
 * its real result if it had already completed). A no-op for an op that is not pending. */
void voro_loop_cancel(struct voro_loop *loop, struct voro_op *op);
/* Forgets `fd` in the backend and closes it. No op may be pending on it. */
void voro_loop_close(struct voro_loop *loop, int fd);

/* Forgets `fd` in the backend without closing it (a socket shared with other loops, such as a
 * listening socket another owner closes later). No op may be pending on it. */
void voro_loop_forget(struct voro_loop *loop, int fd);

/* Hands a recv buffer back to the pool. */
void voro_loop_buf_release(struct voro_loop *loop, struct voro_buf *buf);

#endif
