/* Unit tests for the event-loop contract, each run against io_uring, epoll, poll and select. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "node/loop/loop.h"

static enum voro_io_model g_model;

#define MAX_RUNS 400 /* x 50 ms: a bound, never an expectation */
#define RUN_UNTIL(loop, cond)                                                  \
    do {                                                                       \
        for (int run_i_ = 0; run_i_ < MAX_RUNS && !(cond); run_i_++)          \
            assert_true(voro_loop_run((loop), 50) >= 0);                       \
        assert_true(cond);                                                     \
    } while (0)

struct rec {
    int calls;
    int finals; /* callbacks with more == false */
    int res;
    bool more;
    struct voro_buf *buf;
    int fds[16];
    int nfds;
};

static void rec_cb(struct voro_op *op, int res)
{
    struct rec *r = op->data;
    r->calls++;
    r->res = res;
    r->more = op->more;
    r->buf = op->buf;
    if (!op->more)
        r->finals++;
}

static void accept_cb(struct voro_op *op, int res)
{
    struct rec *r = op->data;
    rec_cb(op, res);
    if (res >= 0 && r->nfds < 16)
        r->fds[r->nfds++] = res;
}

/* CI=true (as CI services set it) or VORO_TEST_STRICT=1 (scripts/test.sh): a skip for a missing
 * facility the machine should have is a failure there. */
static bool strict_run(void)
{
    const char *ci = getenv("CI"), *st = getenv("VORO_TEST_STRICT");
    bool ci_on = ci && *ci && strcmp(ci, "0") && strcmp(ci, "false") && strcmp(ci, "no");
    return ci_on || (st && !strcmp(st, "1"));
}

/* The kernel offers io_uring: 5.6 or later (the operations the loop uses) and not switched off
 * with kernel.io_uring_disabled = 2. */
static bool kernel_has_io_uring(const char **release)
{
    static struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    *release = u.release;
    if (major < 5 || (major == 5 && minor < 6))
        return false;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int disabled = 0;
    if (f) {
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = 0;
        fclose(f);
    }
    return disabled != 2;
}

static struct voro_loop *make_loop_opts(struct voro_loop_opts *o)
{
    o->model = g_model;
    if (g_model == VORO_IO_URING) {
        struct io_uring ring;
        int rc = io_uring_queue_init(8, &ring, 0);
        if (rc < 0) {
            const char *release = "?";
            if (strict_run() && kernel_has_io_uring(&release))
                fail_msg("io_uring_queue_init: %s on kernel %s, which has io_uring: a failure in CI, not a skip",
                         strerror(-rc), release);
            skip();
        }
        io_uring_queue_exit(&ring);
    }
    struct voro_loop *loop = NULL;
    assert_int_equal(voro_loop_create(&loop, o), 0);
    assert_non_null(loop);
    assert_int_equal(voro_loop_model(loop), g_model);
    return loop;
}

static struct voro_loop *make_loop(void)
{
    struct voro_loop_opts o = {.buf_count = 64, .buf_size = 16384, .queue_depth = 256};
    return make_loop_opts(&o);
}

static int listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*addr);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, len), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

static int blocking_connect(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof(*addr)), 0);
    return fd;
}

/* A connected TCP loopback pair, both ends non-blocking. */
static void tcp_pair(int *a, int *b)
{
    struct sockaddr_in addr;
    int l = listener(&addr);
    *a = blocking_connect(&addr);
    fcntl(*a, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 1000 && (*b = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0; i++)
        usleep(1000);
    assert_true(*b >= 0);
    close(l);
}

static void unix_pair(int sv[2]) { assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0); }

/* --- model and fallback --- */

static void test_model(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    struct voro_loop_stats st;
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_total, 64);
    assert_int_equal(st.bufs_in_use, 0);
    assert_false(st.hugepages);
    voro_loop_destroy(loop);
    /* Huge pages asked for: either really used or a logged fallback, never a failure. */
    struct voro_loop_opts ho = {.buf_count = 8, .buf_size = 4096, .hugepages = true};
    loop = make_loop_opts(&ho);
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_total, 8);
    voro_loop_destroy(loop);
    /* io_uring cannot take more than 32768 SQ entries: it must fall back to epoll and say so. */
    if (g_model == VORO_IO_URING) {
        struct voro_loop_opts o = {.model = VORO_IO_URING, .buf_count = 8, .queue_depth = 65536};
        assert_int_equal(voro_loop_create(&loop, &o), 0);
        assert_int_equal(voro_loop_model(loop), VORO_IO_EPOLL);
        voro_loop_destroy(loop);
    }
}

/* --- accept --- */

static void test_accept_multishot(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    struct sockaddr_in addr;
    int l = listener(&addr);
    struct rec r = {0};
    struct voro_op op = {.cb = accept_cb, .data = &r};
    assert_int_equal(voro_loop_accept(loop, &op, l), 0);
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = blocking_connect(&addr);
    assert_int_equal(r.calls, 0); /* never from inside the arming call */
    RUN_UNTIL(loop, r.nfds == 3);
    assert_int_equal(r.finals, 0);
    assert_true(r.more);
    for (int i = 0; i < 3; i++) {
        assert_true(fcntl(r.fds[i], F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(r.fds[i], F_GETFD) & FD_CLOEXEC);
    }
    /* Still armed: one more connection, one more callback. */
    int c4 = blocking_connect(&addr);
    RUN_UNTIL(loop, r.nfds == 4);
    voro_loop_cancel(loop, &op);
    RUN_UNTIL(loop, r.finals == 1);
    assert_false(r.more);
    assert_int_equal(r.res, -ECANCELED);
    int calls = r.calls;
    assert_true(voro_loop_run(loop, 0) >= 0);
    assert_int_equal(r.calls, calls);
    for (int i = 0; i < r.nfds; i++)
        voro_loop_close(loop, r.fds[i]);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    close(c4);
    voro_loop_close(loop, l);
    voro_loop_destroy(loop);
}

/* --- echo --- */

struct echo {
    struct voro_loop *loop;
    /* server side: recv -> send the same buffer -> release -> recv */
    int sfd;
    struct voro_op srecv, ssend;
    struct voro_buf *inflight;
    bool server_eof;
    /* client side */
    int cfd;
    struct voro_op csend, crecv;
    const uint8_t *payload;
    size_t size;
    size_t got;
    uint64_t sum_sent, sum_got;
    bool sent;
    int err;
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void srecv_cb(struct voro_op *op, int res);

static void ssend_cb(struct voro_op *op, int res)
{
    struct echo *e = op->data;
    if (res < 0)
        e->err = res;
    voro_loop_buf_release(e->loop, e->inflight);
    e->inflight = NULL;
    /* Re-arming from inside a callback is part of the contract. */
    if (voro_loop_recv(e->loop, &e->srecv, e->sfd) < 0)
        e->err = -EIO;
}

static void srecv_cb(struct voro_op *op, int res)
{
    struct echo *e = op->data;
    if (res <= 0) {
        if (res < 0)
            e->err = res;
        e->server_eof = true;
        assert_null(op->buf);
        return;
    }
    assert_non_null(op->buf);
    assert_int_equal(op->buf->len, res);
    e->inflight = op->buf;
    if (voro_loop_send(e->loop, &e->ssend, e->sfd, op->buf->data, op->buf->len) < 0)
        e->err = -EIO;
}

static void csend_cb(struct voro_op *op, int res)
{
    struct echo *e = op->data;
    if (res != (int)e->size)
        e->err = res < 0 ? res : -EIO;
    e->sent = true;
}

static void crecv_cb(struct voro_op *op, int res)
{
    struct echo *e = op->data;
    if (res <= 0) {
        e->err = res < 0 ? res : -EPIPE;
        return;
    }
    e->sum_got = fnv(e->sum_got, op->buf->data, op->buf->len);
    e->got += op->buf->len;
    voro_loop_buf_release(e->loop, op->buf);
    if (e->got < e->size && voro_loop_recv(e->loop, &e->crecv, e->cfd) < 0)
        e->err = -EIO;
}

static void run_echo(int cfd, int sfd, size_t size)
{
    struct voro_loop *loop = make_loop();
    uint8_t *payload = malloc(size);
    assert_non_null(payload);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload[i] = (uint8_t)x;
    }
    struct echo e = {.loop = loop, .sfd = sfd, .cfd = cfd, .payload = payload, .size = size};
    e.sum_sent = fnv(1469598103934665603ull, payload, size);
    e.sum_got = 1469598103934665603ull;
    e.srecv = (struct voro_op){.cb = srecv_cb, .data = &e};
    e.ssend = (struct voro_op){.cb = ssend_cb, .data = &e};
    e.csend = (struct voro_op){.cb = csend_cb, .data = &e};
    e.crecv = (struct voro_op){.cb = crecv_cb, .data = &e};
    assert_int_equal(voro_loop_recv(loop, &e.srecv, sfd), 0);
    assert_int_equal(voro_loop_recv(loop, &e.crecv, cfd), 0);
    assert_int_equal(voro_loop_send(loop, &e.csend, cfd, payload, size), 0);
    for (int i = 0; i < 200000 && !(e.sent && e.got >= size) && !e.err; i++)
        assert_true(voro_loop_run(loop, 50) >= 0);
    assert_int_equal(e.err, 0);
    assert_true(e.sent);
    assert_int_equal(e.got, size);
    assert_true(e.sum_got == e.sum_sent);
    /* EOF reaches the server's pending recv as res 0. */
    shutdown(cfd, SHUT_WR);
    RUN_UNTIL(loop, e.server_eof);
    assert_int_equal(e.err, 0);
    struct voro_loop_stats st;
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 0);
    assert_true(st.completions > 2);
    voro_loop_close(loop, cfd);
    voro_loop_close(loop, sfd);
    voro_loop_destroy(loop);
    free(payload);
}

static void test_echo_socketpair(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    run_echo(sv[0], sv[1], 1u << 20);
}

static void test_echo_tcp(void **state)
{
    (void)state;
    int a, b;
    tcp_pair(&a, &b);
    run_echo(a, b, 4u << 20);
}

static void test_eof(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int sv[2];
    unix_pair(sv);
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    assert_int_equal(voro_loop_recv(loop, &op, sv[0]), 0);
    assert_true(voro_loop_run(loop, 0) >= 0);
    assert_int_equal(r.calls, 0);
    close(sv[1]);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, 0);
    assert_null(r.buf);
    /* voro_loop_close must forget the fd: a new socket reusing its number works. */
    int old = sv[0];
    voro_loop_close(loop, sv[0]);
    unix_pair(sv);
    assert_int_equal(sv[0], old);
    r = (struct rec){0};
    assert_int_equal(voro_loop_recv(loop, &op, sv[0]), 0);
    assert_int_equal(write(sv[1], "re", 2), 2);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, 2);
    voro_loop_buf_release(loop, r.buf);
    voro_loop_close(loop, sv[0]);
    close(sv[1]);
    voro_loop_destroy(loop);
}

/* One op per side and fd: a second recv is refused, a send on the same fd is not. */
static void test_busy(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int sv[2];
    unix_pair(sv);
    struct rec r1 = {0}, r2 = {0}, r3 = {0};
    struct voro_op a = {.cb = rec_cb, .data = &r1};
    struct voro_op b = {.cb = rec_cb, .data = &r2};
    struct voro_op c = {.cb = rec_cb, .data = &r3};
    assert_int_equal(voro_loop_recv(loop, &a, sv[0]), 0);
    assert_int_equal(voro_loop_recv(loop, &b, sv[0]), -EBUSY);
    assert_int_equal(voro_loop_recv(loop, &a, sv[1]), -EBUSY); /* an armed op cannot be re-armed */
    assert_int_equal(voro_loop_send(loop, &c, sv[0], "ping", 4), 0);
    RUN_UNTIL(loop, r3.calls == 1);
    assert_int_equal(r3.res, 4);
    assert_int_equal(r2.calls, 0);
    voro_loop_cancel(loop, &a);
    RUN_UNTIL(loop, r1.calls == 1);
    assert_int_equal(r1.res, -ECANCELED);
    assert_int_equal(voro_loop_recv(loop, &b, sv[0]), 0);
    voro_loop_cancel(loop, &b);
    RUN_UNTIL(loop, r2.calls == 1);
    voro_loop_close(loop, sv[0]);
    close(sv[1]);
    voro_loop_destroy(loop);
}

/* Accept failing with EMFILE ends the multishot with the error; re-arming works after backing off. */
static void test_accept_emfile(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    struct sockaddr_in addr;
    int l = listener(&addr);
    int c1 = blocking_connect(&addr);
    struct rec r = {0};
    struct voro_op op = {.cb = accept_cb, .data = &r};
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit old, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    tight = old;
    tight.rlim_cur = (rlim_t)lowest; /* every fd below `lowest` is taken: no new fd fits */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int rc = voro_loop_accept(loop, &op, l);
    for (int i = 0; rc == 0 && i < MAX_RUNS && r.finals == 0; i++)
        voro_loop_run(loop, 50);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(r.finals, 1);
    assert_int_equal(r.nfds, 0);
    assert_int_equal(r.res, -EMFILE);
    assert_false(r.more);
    /* Back off, re-arm: the pending connection is accepted now. */
    assert_int_equal(voro_loop_accept(loop, &op, l), 0);
    RUN_UNTIL(loop, r.nfds == 1);
    voro_loop_cancel(loop, &op);
    RUN_UNTIL(loop, r.finals == 2);
    voro_loop_close(loop, r.fds[0]);
    close(c1);
    voro_loop_close(loop, l);
    voro_loop_destroy(loop);
}

/* Two loops with different backends live side by side in one process. */
static void test_two_loops(void **state)
{
    (void)state;
    struct voro_loop *a = make_loop();
    struct voro_loop_opts o = {.model = g_model == VORO_IO_POLL ? VORO_IO_SELECT : VORO_IO_POLL, .buf_count = 8};
    struct voro_loop *b = NULL;
    assert_int_equal(voro_loop_create(&b, &o), 0);
    assert_int_equal(voro_loop_model(b), o.model);
    int s1[2], s2[2];
    unix_pair(s1);
    unix_pair(s2);
    struct rec ra = {0}, rb = {0};
    struct voro_op oa = {.cb = rec_cb, .data = &ra};
    struct voro_op ob = {.cb = rec_cb, .data = &rb};
    assert_int_equal(voro_loop_recv(a, &oa, s1[0]), 0);
    assert_int_equal(voro_loop_recv(b, &ob, s2[0]), 0);
    assert_int_equal(write(s2[1], "bb", 2), 2);
    RUN_UNTIL(b, rb.calls == 1);
    assert_true(voro_loop_run(a, 0) >= 0);
    assert_int_equal(ra.calls, 0); /* b's traffic never shows up in a */
    assert_int_equal(write(s1[1], "a", 1), 1);
    RUN_UNTIL(a, ra.calls == 1);
    assert_int_equal(ra.res, 1);
    assert_int_equal(rb.res, 2);
    voro_loop_buf_release(a, ra.buf);
    voro_loop_buf_release(b, rb.buf);
    voro_loop_close(a, s1[0]);
    voro_loop_close(b, s2[0]);
    close(s1[1]);
    close(s2[1]);
    voro_loop_destroy(a);
    voro_loop_destroy(b);
}

/* The loop may be created on one thread and run on another (io_uring's single-issuer ring). */
struct thread_run {
    struct voro_loop *loop;
    struct rec r;
    int rc;
};

static void *runner(void *arg)
{
    struct thread_run *t = arg;
    struct voro_op op = {.cb = rec_cb, .data = &t->r};
    t->rc = voro_loop_timeout(t->loop, &op, 1);
    for (int i = 0; t->rc == 0 && i < MAX_RUNS && t->r.calls == 0; i++) {
        int rc = voro_loop_run(t->loop, 50);
        if (rc < 0)
            t->rc = rc;
    }
    return NULL;
}

static void test_other_thread(void **state)
{
    (void)state;
    struct thread_run t = {.loop = make_loop()};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, runner, &t), 0);
    pthread_join(th, NULL);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.r.calls, 1);
    assert_int_equal(t.r.res, 0);
    voro_loop_destroy(t.loop);
}

/* --- connect --- */

static void test_connect(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    struct sockaddr_in addr;
    int l = listener(&addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    assert_int_equal(voro_loop_connect(loop, &op, fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(r.calls, 0);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, 0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
    assert_int_equal(peer.sin_port, addr.sin_port);
    voro_loop_close(loop, fd);
    close(l);

    /* A loopback port nobody listens on: bound, then closed. */
    struct sockaddr_in dead;
    int d = listener(&dead);
    close(d);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    r = (struct rec){0};
    assert_int_equal(voro_loop_connect(loop, &op, fd, (struct sockaddr *)&dead, sizeof(dead)), 0);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, -ECONNREFUSED);
    voro_loop_close(loop, fd);
    voro_loop_destroy(loop);
}

/* --- timeouts and re-arming --- */

struct rearm {
    struct voro_loop *loop;
    int fired;
};

static void rearm_cb(struct voro_op *op, int res)
{
    struct rearm *t = op->data;
    assert_int_equal(res, 0);
    if (++t->fired < 3)
        assert_int_equal(voro_loop_timeout(t->loop, op, 1), 0);
}

static void test_timeout(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    assert_int_equal(voro_loop_timeout(loop, &op, 20), 0);
    assert_int_equal(r.calls, 0);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, 0);
    assert_int_equal(voro_loop_run(loop, 0), 0);
    assert_int_equal(r.calls, 1);

    /* A callback that re-arms its own op. */
    struct rearm t = {.loop = loop};
    struct voro_op op2 = {.cb = rearm_cb, .data = &t};
    assert_int_equal(voro_loop_timeout(loop, &op2, 1), 0);
    RUN_UNTIL(loop, t.fired == 3);

    /* A cancelled timer reports -ECANCELED once. */
    r = (struct rec){0};
    assert_int_equal(voro_loop_timeout(loop, &op, 60000), 0);
    voro_loop_cancel(loop, &op);
    assert_int_equal(r.calls, 0);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, -ECANCELED);
    voro_loop_destroy(loop);
}

/* --- cancel --- */

static void test_cancel_recv(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int sv[2];
    unix_pair(sv);
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    assert_int_equal(voro_loop_recv(loop, &op, sv[0]), 0);
    assert_true(voro_loop_run(loop, 10) >= 0);
    assert_int_equal(r.calls, 0);
    voro_loop_cancel(loop, &op);
    assert_int_equal(r.calls, 0); /* not from inside cancel either */
    voro_loop_cancel(loop, &op);  /* twice: still one callback */
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, -ECANCELED);
    assert_null(r.buf);
    /* Data arriving later must not produce a second callback. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    for (int i = 0; i < 3; i++)
        assert_true(voro_loop_run(loop, 10) >= 0);
    assert_int_equal(r.calls, 1);
    voro_loop_cancel(loop, &op); /* not pending: no-op */
    assert_true(voro_loop_run(loop, 0) >= 0);
    assert_int_equal(r.calls, 1);
    /* The fd side is free again: a new recv gets the byte. */
    assert_int_equal(voro_loop_recv(loop, &op, sv[0]), 0);
    RUN_UNTIL(loop, r.calls == 2);
    assert_int_equal(r.res, 1);
    voro_loop_buf_release(loop, r.buf);
    voro_loop_close(loop, sv[0]);
    close(sv[1]);
    voro_loop_destroy(loop);
}

/* --- buffer exhaustion --- */

static void test_buf_exhaustion(void **state)
{
    (void)state;
    struct voro_loop_opts o = {.buf_count = 4, .buf_size = 4096, .queue_depth = 64};
    struct voro_loop *loop = make_loop_opts(&o);
    int sv[5][2];
    struct rec r[5];
    struct voro_op op[5];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 5; i++) {
        unix_pair(sv[i]);
        assert_int_equal(write(sv[i][1], "hello", 5), 5);
        op[i] = (struct voro_op){.cb = rec_cb, .data = &r[i]};
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(voro_loop_recv(loop, &op[i], sv[i][0]), 0);
        RUN_UNTIL(loop, r[i].calls == 1);
        assert_int_equal(r[i].res, 5);
    }
    struct voro_loop_stats st;
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 4);
    assert_int_equal(st.buf_waits, 0);
    /* The fifth recv has data but no buffer: it waits, it does not fail. */
    assert_int_equal(voro_loop_recv(loop, &op[4], sv[4][0]), 0);
    for (int i = 0; i < 4; i++)
        assert_true(voro_loop_run(loop, 20) >= 0);
    assert_int_equal(r[4].calls, 0);
    voro_loop_get_stats(loop, &st);
    assert_true(st.buf_waits >= 1);
    voro_loop_buf_release(loop, r[1].buf);
    RUN_UNTIL(loop, r[4].calls == 1);
    assert_int_equal(r[4].res, 5);
    assert_memory_equal(r[4].buf->data, "hello", 5);
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 4);
    voro_loop_buf_release(loop, r[0].buf);
    voro_loop_buf_release(loop, r[2].buf);
    voro_loop_buf_release(loop, r[3].buf);
    voro_loop_buf_release(loop, r[4].buf);
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 0);
    for (int i = 0; i < 5; i++) {
        voro_loop_close(loop, sv[i][0]);
        close(sv[i][1]);
    }
    voro_loop_destroy(loop);
}

/* --- buffer classes: request input cannot take the buffers the rest needs --- */

static void test_buf_classes(void **state)
{
    (void)state;
    /* 6 buffers: 4 general, 2 for request input. */
    struct voro_loop_opts o = {.buf_count = 6, .request_buf_count = 2, .buf_size = 4096, .queue_depth = 64};
    struct voro_loop *loop = make_loop_opts(&o);
    int sv[4][2];
    struct rec r[4];
    struct voro_op op[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++) {
        unix_pair(sv[i]);
        assert_int_equal(write(sv[i][1], "hello", 5), 5);
        /* Three request-class recvs, then one general recv. */
        op[i] = (struct voro_op){.cb = rec_cb, .data = &r[i], .buf_class = i < 3 ? VORO_BUF_REQUEST : VORO_BUF_GENERAL};
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(voro_loop_recv(loop, &op[i], sv[i][0]), 0);
        RUN_UNTIL(loop, r[i].calls == 1);
        assert_int_equal(r[i].res, 5);
    }
    struct voro_loop_stats st;
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.request_bufs_total, 2);
    assert_int_equal(st.request_bufs_in_use, 2);
    /* The request class is spent: a third request recv waits although general buffers are free... */
    assert_int_equal(voro_loop_recv(loop, &op[2], sv[2][0]), 0);
    for (int i = 0; i < 4; i++)
        assert_true(voro_loop_run(loop, 20) >= 0);
    assert_int_equal(r[2].calls, 0);
    /* ...and a general recv still gets one at once. */
    assert_int_equal(voro_loop_recv(loop, &op[3], sv[3][0]), 0);
    RUN_UNTIL(loop, r[3].calls == 1);
    assert_int_equal(r[3].res, 5);
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 3);
    /* Releasing a general buffer does not wake the request recv; releasing a request one does. */
    voro_loop_buf_release(loop, r[3].buf);
    for (int i = 0; i < 4; i++)
        assert_true(voro_loop_run(loop, 20) >= 0);
    assert_int_equal(r[2].calls, 0);
    voro_loop_buf_release(loop, r[0].buf);
    RUN_UNTIL(loop, r[2].calls == 1);
    assert_int_equal(r[2].res, 5);
    assert_memory_equal(r[2].buf->data, "hello", 5);
    voro_loop_buf_release(loop, r[1].buf);
    voro_loop_buf_release(loop, r[2].buf);
    voro_loop_get_stats(loop, &st);
    assert_int_equal(st.bufs_in_use, 0);
    assert_int_equal(st.request_bufs_in_use, 0);
    for (int i = 0; i < 4; i++) {
        voro_loop_close(loop, sv[i][0]);
        close(sv[i][1]);
    }
    voro_loop_destroy(loop);
}

/* --- select's FD_SETSIZE limit --- */

static void test_high_fd(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= 1500 && rl.rlim_max > 1500) { /* raise the soft limit rather than skip */
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur <= 1500) {
        if (strict_run())
            fail_msg("RLIMIT_NOFILE hard limit %llu: fd 1500 cannot be tested", (unsigned long long)rl.rlim_max);
        skip();
    }
    struct voro_loop *loop = make_loop();
    int sv[2];
    unix_pair(sv);
    assert_int_equal(dup2(sv[0], 1500), 1500);
    close(sv[0]);
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    int rc = voro_loop_recv(loop, &op, 1500);
    if (g_model == VORO_IO_SELECT) {
        assert_int_equal(rc, -ERANGE);
        assert_int_equal(voro_loop_recv(loop, &op, 1500), -ERANGE); /* still refused, logged once */
        assert_int_equal(r.calls, 0);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(write(sv[1], "abc", 3), 3);
        RUN_UNTIL(loop, r.calls == 1);
        assert_int_equal(r.res, 3);
        voro_loop_buf_release(loop, r.buf);
    }
    assert_true(voro_loop_run(loop, 0) >= 0);
    assert_true(g_model != VORO_IO_SELECT || r.calls == 0);
    voro_loop_close(loop, 1500);
    close(sv[1]);
    voro_loop_destroy(loop);
}

/* --- wakeup --- */

static void *waker(void *arg)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    voro_loop_wakeup(arg);
    return NULL;
}

static void test_wakeup(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    /* A guard far in the future: if run(-1) returned only because of it, the wakeup failed. */
    struct rec guard = {0};
    struct voro_op gop = {.cb = rec_cb, .data = &guard};
    assert_int_equal(voro_loop_timeout(loop, &gop, 30000), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waker, loop), 0);
    assert_true(voro_loop_run(loop, -1) >= 0);
    pthread_join(th, NULL);
    assert_int_equal(guard.calls, 0);
    /* A wakeup before run also makes it return. */
    voro_loop_wakeup(loop);
    assert_true(voro_loop_run(loop, -1) >= 0);
    assert_int_equal(guard.calls, 0);
    voro_loop_cancel(loop, &gop);
    RUN_UNTIL(loop, guard.calls == 1);
    assert_int_equal(guard.res, -ECANCELED);
    voro_loop_destroy(loop);
}

/* --- UDP recvmsg/sendmsg --- */

static void test_udp_msg(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int a = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int b = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in aa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in ba = aa;
    socklen_t len = sizeof(aa);
    assert_int_equal(bind(a, (struct sockaddr *)&aa, len), 0);
    assert_int_equal(bind(b, (struct sockaddr *)&ba, len), 0);
    assert_int_equal(getsockname(a, (struct sockaddr *)&aa, &len), 0);
    assert_int_equal(getsockname(b, (struct sockaddr *)&ba, &len), 0);

    char inbuf[64] = {0};
    struct sockaddr_in from;
    struct iovec riov = {.iov_base = inbuf, .iov_len = sizeof(inbuf)};
    struct msghdr rmsg = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &riov, .msg_iovlen = 1};
    struct rec rr = {0}, sr = {0};
    struct voro_op rop = {.cb = rec_cb, .data = &rr};
    struct voro_op sop = {.cb = rec_cb, .data = &sr};
    assert_int_equal(voro_loop_recvmsg(loop, &rop, b, &rmsg), 0);

    char out[] = "datagram";
    struct iovec siov = {.iov_base = out, .iov_len = 8};
    struct msghdr smsg = {.msg_name = &ba, .msg_namelen = sizeof(ba), .msg_iov = &siov, .msg_iovlen = 1};
    assert_int_equal(voro_loop_sendmsg(loop, &sop, a, &smsg), 0);
    assert_int_equal(rr.calls + sr.calls, 0);
    RUN_UNTIL(loop, rr.calls == 1 && sr.calls == 1);
    assert_int_equal(sr.res, 8);
    assert_int_equal(rr.res, 8);
    assert_memory_equal(inbuf, "datagram", 8);
    assert_int_equal(from.sin_port, aa.sin_port);
    voro_loop_close(loop, a);
    voro_loop_close(loop, b);
    voro_loop_destroy(loop);
}

/* --- splice --- */

static void test_splice(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int src_w, src_r, dst_w, dst_r, p[2];
    tcp_pair(&src_w, &src_r);
    tcp_pair(&dst_w, &dst_r);
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    const char msg[] = "spliced bytes";
    size_t n = sizeof(msg) - 1;
    struct rec r1 = {0}, r2 = {0};
    struct voro_op in = {.cb = rec_cb, .data = &r1};
    struct voro_op out = {.cb = rec_cb, .data = &r2};
    /* Armed before data exists: it has to wait for the socket. */
    assert_int_equal(voro_loop_splice(loop, &in, src_r, p[1], 65536, false), 0);
    assert_true(voro_loop_run(loop, 10) >= 0);
    assert_int_equal(r1.calls, 0);
    assert_int_equal(write(src_w, msg, n), (ssize_t)n);
    RUN_UNTIL(loop, r1.calls == 1);
    assert_int_equal(r1.res, (int)n);
    assert_int_equal(voro_loop_splice(loop, &out, p[0], dst_w, n, true), 0);
    RUN_UNTIL(loop, r2.calls == 1);
    assert_int_equal(r2.res, (int)n);
    char got[32] = {0};
    ssize_t g = 0;
    for (int i = 0; i < 1000 && g < (ssize_t)n; i++) {
        ssize_t k = read(dst_r, got + g, sizeof(got) - 1 - (size_t)g);
        if (k > 0)
            g += k;
        else
            usleep(1000);
    }
    assert_int_equal(g, (ssize_t)n);
    assert_memory_equal(got, msg, n);
    voro_loop_close(loop, src_r);
    voro_loop_close(loop, dst_w);
    voro_loop_close(loop, p[0]);
    voro_loop_close(loop, p[1]);
    close(src_w);
    close(dst_r);
    voro_loop_destroy(loop);
}

/* --- read on a pipe --- */

static void test_read_pipe(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop();
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    char buf[16] = {0};
    struct rec r = {0};
    struct voro_op op = {.cb = rec_cb, .data = &r};
    assert_int_equal(voro_loop_read(loop, &op, p[0], buf, sizeof(buf)), 0);
    assert_true(voro_loop_run(loop, 10) >= 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(write(p[1], "pipe!", 5), 5);
    RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.res, 5);
    assert_memory_equal(buf, "pipe!", 5);
    voro_loop_close(loop, p[0]);
    close(p[1]);
    voro_loop_destroy(loop);
}

#define LOOP_TESTS                                         \
    cmocka_unit_test(test_model),                          \
    cmocka_unit_test(test_accept_multishot),               \
    cmocka_unit_test(test_echo_socketpair),                \
    cmocka_unit_test(test_echo_tcp),                       \
    cmocka_unit_test(test_eof),                            \
    cmocka_unit_test(test_busy),                           \
    cmocka_unit_test(test_accept_emfile),                  \
    cmocka_unit_test(test_other_thread),                   \
    cmocka_unit_test(test_two_loops),                      \
    cmocka_unit_test(test_connect),                        \
    cmocka_unit_test(test_timeout),                        \
    cmocka_unit_test(test_cancel_recv),                    \
    cmocka_unit_test(test_buf_exhaustion),                 \
    cmocka_unit_test(test_buf_classes),                    \
    cmocka_unit_test(test_high_fd),                        \
    cmocka_unit_test(test_wakeup),                         \
    cmocka_unit_test(test_udp_msg),                        \
    cmocka_unit_test(test_splice),                         \
    cmocka_unit_test(test_read_pipe)

static int setup_uring(void **state) { (void)state; g_model = VORO_IO_URING; return 0; }
static int setup_epoll(void **state) { (void)state; g_model = VORO_IO_EPOLL; return 0; }
static int setup_poll(void **state) { (void)state; g_model = VORO_IO_POLL; return 0; }
static int setup_select(void **state) { (void)state; g_model = VORO_IO_SELECT; return 0; }

int main(void)
{
    const struct CMUnitTest tests[] = {LOOP_TESTS};
    int failed = 0;
    failed += cmocka_run_group_tests_name("loop_io_uring", tests, setup_uring, NULL);
    failed += cmocka_run_group_tests_name("loop_epoll", tests, setup_epoll, NULL);
    failed += cmocka_run_group_tests_name("loop_poll", tests, setup_poll, NULL);
    failed += cmocka_run_group_tests_name("loop_select", tests, setup_select, NULL);
    return failed ? 1 : 0;
}
