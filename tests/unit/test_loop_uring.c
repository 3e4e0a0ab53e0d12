/* Unit tests for the io_uring backend at scale: completion queue sized for every pending op, and
 * no op, poll or cancel dropped when no submission-queue entry can be had. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "node/loop/loop_backend.h"

#define NPAIRS 64
#define MAX_RUNS 400 /* x 50 ms: a bound, never an expectation */
#define RUN_UNTIL(loop, cond)                                                  \
    do {                                                                       \
        for (int run_i_ = 0; run_i_ < MAX_RUNS && !(cond); run_i_++)          \
            assert_true(voro_loop_run((loop), 50) >= 0);                       \
        assert_true(cond);                                                     \
    } while (0)

struct rec {
    int calls;
    int res;
    struct voro_buf *buf;
};

static int g_calls;

static void rec_cb(struct voro_op *op, int res)
{
    struct rec *r = op->data;
    r->calls++;
    r->res = res;
    r->buf = op->buf;
    g_calls++;
}

static struct voro_loop *make_loop(unsigned max_fds, unsigned queue_depth)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0)
        skip();
    io_uring_queue_exit(&ring);
    struct voro_loop_opts o = {.model = VORO_IO_URING, .buf_count = 256, .buf_size = 4096,
                               .queue_depth = queue_depth, .max_fds = max_fds};
    struct voro_loop *loop = NULL;
    assert_int_equal(voro_loop_create(&loop, &o), 0);
    if (voro_loop_model(loop) != VORO_IO_URING) {
        voro_loop_destroy(loop);
        skip();
    }
    return loop;
}

struct pairs {
    int sv[NPAIRS][2];
    struct voro_op op[NPAIRS];
    struct rec r[NPAIRS];
};

static void pairs_open(struct pairs *p)
{
    memset(p, 0, sizeof(*p));
    g_calls = 0;
    for (int i = 0; i < NPAIRS; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->sv[i]), 0);
        p->op[i] = (struct voro_op){.cb = rec_cb, .data = &p->r[i]};
    }
}

static void pairs_close(struct voro_loop *loop, struct pairs *p)
{
    for (int i = 0; i < NPAIRS; i++) {
        if (p->r[i].buf)
            voro_loop_buf_release(loop, p->r[i].buf);
        voro_loop_close(loop, p->sv[i][0]);
        close(p->sv[i][1]);
    }
}

/* The completion queue holds two ops per fd (capped at the kernel's 65536), not the default 2 x SQ. */
static void test_cq_sized_for_fds(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop(20000, 256);
    assert_true(voro_loop_uring_cq_entries(loop) >= 40000);
    voro_loop_destroy(loop);
    loop = make_loop(1000, 256);
    unsigned cq = voro_loop_uring_cq_entries(loop);
    assert_true(cq >= 2000 && cq <= 4096);
    voro_loop_destroy(loop);
}

/* Cancels that get no SQE are sent later: every cancelled op still calls back. */
static void test_cancel_without_sqe(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop(1024, 16);
    struct pairs p;
    pairs_open(&p);
    for (int i = 0; i < NPAIRS; i++)
        assert_int_equal(voro_loop_recv(loop, &p.op[i], p.sv[i][0]), 0);
    assert_true(voro_loop_run(loop, 10) >= 0);
    assert_int_equal(g_calls, 0);
    voro_loop_uring_fail_sqes(loop, NPAIRS); /* every cancel below finds the queue unusable */
    for (int i = 0; i < NPAIRS; i++)
        voro_loop_cancel(loop, &p.op[i]);
    RUN_UNTIL(loop, g_calls == NPAIRS);
    for (int i = 0; i < NPAIRS; i++) {
        assert_int_equal(p.r[i].calls, 1);
        assert_int_equal(p.r[i].res, -ECANCELED);
    }
    /* The fds are free again and data still flows. */
    for (int i = 0; i < NPAIRS; i++) {
        assert_int_equal(voro_loop_recv(loop, &p.op[i], p.sv[i][0]), 0);
        assert_int_equal(write(p.sv[i][1], "y", 1), 1);
    }
    RUN_UNTIL(loop, g_calls == 2 * NPAIRS);
    for (int i = 0; i < NPAIRS; i++)
        assert_int_equal(p.r[i].res, 1);
    pairs_close(loop, &p);
    voro_loop_destroy(loop);
}

/* Ops armed without an SQE are submitted later instead of failing; one cancelled while it
 * waits completes with -ECANCELED. */
static void test_arm_without_sqe(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop(1024, 16);
    struct pairs p;
    pairs_open(&p);
    voro_loop_uring_fail_sqes(loop, NPAIRS);
    for (int i = 0; i < NPAIRS; i++)
        assert_int_equal(voro_loop_recv(loop, &p.op[i], p.sv[i][0]), 0);
    voro_loop_cancel(loop, &p.op[0]); /* still waiting for an SQE */
    for (int i = 1; i < NPAIRS; i++)
        assert_int_equal(write(p.sv[i][1], "z", 1), 1);
    RUN_UNTIL(loop, g_calls == NPAIRS);
    assert_int_equal(p.r[0].res, -ECANCELED);
    for (int i = 1; i < NPAIRS; i++) {
        assert_int_equal(p.r[i].calls, 1);
        assert_int_equal(p.r[i].res, 1);
        assert_non_null(p.r[i].buf);
        assert_int_equal(p.r[i].buf->data[0], 'z');
    }
    pairs_close(loop, &p);
    voro_loop_destroy(loop);
}

/* A wakeup read that could not be re-armed is re-armed later: wakeups keep working. */
static void test_wakeup_rearm_without_sqe(void **state)
{
    (void)state;
    struct voro_loop *loop = make_loop(1024, 16);
    voro_loop_uring_fail_sqes(loop, 1);
    voro_loop_wakeup(loop); /* its CQE re-arms the read: that SQE request fails */
    assert_true(voro_loop_run(loop, 1000) >= 0);
    for (int i = 0; i < 3; i++) {
        voro_loop_wakeup(loop);
        int64_t t0 = (int64_t)time(NULL);
        assert_true(voro_loop_run(loop, 5000) >= 0);
        assert_true((int64_t)time(NULL) - t0 < 4); /* woken, not timed out */
    }
    voro_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cq_sized_for_fds),
        cmocka_unit_test(test_cancel_without_sqe),
        cmocka_unit_test(test_arm_without_sqe),
        cmocka_unit_test(test_wakeup_rearm_without_sqe),
    };
    return cmocka_run_group_tests_name("loop_uring", tests, NULL, NULL);
}
