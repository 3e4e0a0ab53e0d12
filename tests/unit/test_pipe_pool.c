/* Unit tests for the splice pipe pool: bounded, recycles empty pipes, never recycles one that holds bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "node/pipe_pool.h"

static void test_recycles_empty_pipe(void **state)
{
    (void)state;
    struct voro_pipe_pool p;
    assert_int_equal(voro_pipe_pool_init(&p, 2), 0);
    struct voro_pipe a;
    assert_int_equal(voro_pipe_get(&p, &a), 0);
    assert_int_equal(write(a.wr, "abc", 3), 3);
    char buf[3];
    assert_int_equal(read(a.rd, buf, 3), 3);
    voro_pipe_put(&p, &a, 1);
    assert_int_equal(p.n_free, 1);
    assert_int_equal(p.dirty, 0);
    struct voro_pipe b;
    assert_int_equal(voro_pipe_get(&p, &b), 0);
    assert_int_equal(b.rd, a.rd); /* the same pipe again */
    voro_pipe_put(&p, &b, 1);
    voro_pipe_pool_destroy(&p);
}

/* A caller that wrongly says "empty" (the bug class behind bytes crossing connections) does not
 * get the pipe recycled: the kernel's count decides, and the pipe is closed. */
static void test_never_recycles_pipe_with_bytes(void **state)
{
    (void)state;
    struct voro_pipe_pool p;
    assert_int_equal(voro_pipe_pool_init(&p, 2), 0);
    struct voro_pipe a;
    assert_int_equal(voro_pipe_get(&p, &a), 0);
    assert_int_equal(write(a.wr, "left over", 9), 9);
    int rd = a.rd;
    voro_pipe_put(&p, &a, 1);
    assert_int_equal(p.n_free, 0);
    assert_int_equal(p.dirty, 1);
    assert_int_equal(p.in_use, 0);
    assert_int_equal(fcntl(rd, F_GETFD), -1); /* closed */
    /* Said non-empty: closed without asking the kernel. */
    assert_int_equal(voro_pipe_get(&p, &a), 0);
    voro_pipe_put(&p, &a, 0);
    assert_int_equal(p.n_free, 0);
    assert_int_equal(p.dirty, 1);
    voro_pipe_pool_destroy(&p);
}

static void test_bounded(void **state)
{
    (void)state;
    struct voro_pipe_pool p;
    assert_int_equal(voro_pipe_pool_init(&p, 1), 0);
    struct voro_pipe a, b;
    assert_int_equal(voro_pipe_get(&p, &a), 0);
    assert_int_equal(voro_pipe_get(&p, &b), -ENOSPC);
    assert_int_equal(p.exhausted, 1);
    voro_pipe_put(&p, &a, 1);
    voro_pipe_pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recycles_empty_pipe),
        cmocka_unit_test(test_never_recycles_pipe_with_bytes),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests_name("pipe_pool", tests, NULL, NULL);
}
