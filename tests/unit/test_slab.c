/* Unit tests for the slab pool and the huge-page-aware mapping helper. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#include "node/slab.h"

/* Counts occurrences of `needle` in what fd `fd` (a tmpfile) received. */
static int count_in_file(FILE *f, const char *needle)
{
    char buf[4096];
    int n = 0;
    rewind(f);
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[len] = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static long nr_hugepages(void)
{
    FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
    long v = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void test_init_validation(void **state)
{
    (void)state;
    struct voro_slab s;
    assert_int_equal(voro_slab_init(&s, 0, 8, 0, false), -EINVAL);
    assert_int_equal(voro_slab_init(&s, 8, 0, 0, false), -EINVAL);
    assert_int_equal(voro_slab_init(&s, 1, 8, 0, false), 0);
    assert_int_equal(s.obj_size, 16); /* rounded up to the 16-byte alignment */
    assert_int_equal(s.capacity, 0);  /* nothing mapped before the first alloc */
    assert_null(s.chunks);
    voro_slab_destroy(&s);
    assert_int_equal(voro_slab_init(&s, 33, 8, 0, false), 0);
    assert_int_equal(s.obj_size, 48);
    voro_slab_destroy(&s);
}

static void test_reuse_and_zeroing(void **state)
{
    (void)state;
    struct voro_slab s;
    assert_int_equal(voro_slab_init(&s, 100, 4, 0, false), 0);
    unsigned char *a = voro_slab_alloc(&s);
    unsigned char *b = voro_slab_alloc(&s);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_int_equal((uintptr_t)b % 16, 0);
    assert_int_equal(s.in_use, 2);
    memset(a, 0xAB, 100);
    voro_slab_free(&s, a);
    assert_int_equal(s.in_use, 1);
    unsigned char *c = voro_slab_alloc(&s);
    assert_ptr_equal(c, a); /* LIFO reuse */
    for (size_t i = 0; i < s.obj_size; i++)
        assert_int_equal(c[i], 0);
    assert_int_equal(s.capacity, 4); /* still one chunk */
    voro_slab_free(&s, b);
    voro_slab_free(&s, c);
    assert_int_equal(s.in_use, 0);
    voro_slab_destroy(&s);
    assert_null(s.chunks);
}

static void test_max_bound(void **state)
{
    (void)state;
    struct voro_slab s;
    void *objs[5];
    assert_int_equal(voro_slab_init(&s, 64, 4, 5, false), 0);
    for (int i = 0; i < 5; i++) {
        objs[i] = voro_slab_alloc(&s);
        assert_non_null(objs[i]);
    }
    assert_null(voro_slab_alloc(&s));
    assert_int_equal(s.in_use, 5);
    voro_slab_free(&s, objs[2]);
    objs[2] = voro_slab_alloc(&s);
    assert_non_null(objs[2]);
    assert_null(voro_slab_alloc(&s));
    voro_slab_destroy(&s);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_many_chunks(void **state)
{
    (void)state;
    enum { N = 5000, SZ = 40 };
    struct voro_slab s;
    void **objs = calloc(N, sizeof(*objs));
    assert_non_null(objs);
    assert_int_equal(voro_slab_init(&s, SZ, 64, 0, false), 0);
    for (int i = 0; i < N; i++) {
        objs[i] = voro_slab_alloc(&s);
        assert_non_null(objs[i]);
        memset(objs[i], i & 0xff, SZ); /* each object is writable and private */
    }
    assert_int_equal(s.in_use, N);
    assert_int_equal(s.capacity, (N + 63) / 64 * 64);
    for (int i = 0; i < N; i++)
        assert_int_equal(((unsigned char *)objs[i])[SZ - 1], i & 0xff);
    void **sorted = malloc(N * sizeof(*sorted));
    assert_non_null(sorted);
    memcpy(sorted, objs, N * sizeof(*sorted));
    qsort(sorted, N, sizeof(*sorted), cmp_ptr);
    for (int i = 1; i < N; i++) /* no overlap */
        assert_true((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] >= s.obj_size);
    for (int i = 0; i < N; i += 2)
        voro_slab_free(&s, objs[i]);
    size_t cap = s.capacity;
    for (int i = 0; i < N; i += 2)
        assert_non_null(voro_slab_alloc(&s));
    assert_int_equal(s.capacity, cap); /* freed slots were reused, no growth */
    free(sorted);
    free(objs);
    voro_slab_destroy(&s);
}

static void test_hugepage_fallback(void **state)
{
    (void)state;
    long reserved = nr_hugepages();
    bool huge = true;
    /* Capture stderr so the "log once per process" promise can be checked. */
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), 2) >= 0);
    unsigned char *p = voro_mem_map(10000, true, &huge);
    bool huge2 = true;
    unsigned char *q = voro_mem_map(5000, true, &huge2);
    assert_non_null(q);
    voro_mem_unmap(q, 5000, huge2);
    dup2(saved, 2);
    close(saved);
    if (reserved == 0)
        assert_int_equal(count_in_file(cap, "hugepages requested but none reserved (vm.nr_hugepages=0)"), 1);
    fclose(cap);
    assert_non_null(p);
    if (reserved == 0)
        assert_false(huge);
    memset(p, 0x5a, 10000);
    assert_int_equal(p[9999], 0x5a);
    voro_mem_unmap(p, 10000, huge);

    p = voro_mem_map(100, false, &huge);
    assert_non_null(p);
    assert_false(huge);
    voro_mem_unmap(p, 100, huge);

    struct voro_slab s;
    assert_int_equal(voro_slab_init(&s, 256, 32, 0, true), 0);
    for (int i = 0; i < 100; i++)
        assert_non_null(voro_slab_alloc(&s));
    if (reserved == 0)
        assert_false(s.hugepages);
    voro_slab_destroy(&s);
}

#ifdef HAVE_ASAN
/* Runs `misuse` in a child; the slab must make it die (ASan report or abort), not survive. */
static void expect_child_dies(void (*misuse)(struct voro_slab *s))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2); /* keep the expected report out of the test log */
        struct voro_slab s;
        voro_slab_init(&s, 64, 8, 0, false);
        misuse(&s);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void use_after_free(struct voro_slab *s)
{
    volatile char *p = voro_slab_alloc(s);
    voro_slab_free(s, (void *)p);
    p[20] = 1;
}

static void double_free(struct voro_slab *s)
{
    void *p = voro_slab_alloc(s);
    voro_slab_free(s, p);
    voro_slab_free(s, p);
}
#endif

static void test_misuse_caught_under_asan(void **state)
{
    (void)state;
#ifdef HAVE_ASAN
    expect_child_dies(use_after_free);
    expect_child_dies(double_free);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_validation),
        cmocka_unit_test(test_reuse_and_zeroing),
        cmocka_unit_test(test_max_bound),
        cmocka_unit_test(test_many_chunks),
        cmocka_unit_test(test_hugepage_fallback),
        cmocka_unit_test(test_misuse_caught_under_asan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
