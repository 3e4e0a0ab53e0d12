/* Unit tests for the L4 balancers: smooth WRR, least connections, Maglev with bounded load, P2C, hash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "node/balance/balance.h"

#define MAXS 8

struct pool {
    struct voro_lb lb;
    _Atomic uint32_t health[MAXS];
    char names[MAXS][32];
};

static void pool_init(struct pool *p, enum voro_lb_algorithm algo, const uint32_t *weights, size_t n, double c)
{
    struct voro_lb_server_init init[MAXS];
    memset(init, 0, sizeof(init)); /* signals = NULL: the L7 algorithms must work without them */
    for (size_t i = 0; i < n; i++) {
        atomic_store(&p->health[i], VORO_SERVER_UP);
        snprintf(p->names[i], sizeof(p->names[i]), "srv-%zu", i);
        init[i].weight = weights[i];
        init[i].health = &p->health[i];
        init[i].identity = p->names[i];
    }
    assert_int_equal(voro_lb_init(&p->lb, algo, init, n, c, 42), 0);
}

static void set_up(struct pool *p, size_t i, int up) { atomic_store(&p->health[i], up ? VORO_SERVER_UP : 0); }

static void test_init_errors(void **state)
{
    (void)state;
    struct voro_lb lb;
    struct voro_lb_server_init s = {.weight = 1};
    assert_int_equal(voro_lb_init(&lb, VORO_LB_ROUND_ROBIN, &s, 0, 1.0, 1), -EINVAL);
    assert_int_equal(voro_lb_init(&lb, VORO_LB_ROUND_ROBIN, &s, VORO_POOL_MAX_SERVERS + 1, 1.0, 1), -EINVAL);
    assert_int_equal(voro_lb_init(&lb, (enum voro_lb_algorithm)VORO_LB_ALGORITHM_COUNT, &s, 1, 1.0, 1), -EINVAL);
    assert_int_equal(voro_lb_init(&lb, VORO_LB_CONSISTENT_HASH, &s, 1, 0.5, 1), 0);
    assert_true(lb.balance_factor == 1.0); /* clamped: c >= 1 */
    voro_lb_destroy(&lb);
    assert_int_equal(voro_lb_init(&lb, VORO_LB_CONSISTENT_HASH, &s, 1, 1.25, 1), 0);
    assert_true(lb.table_size >= 100);
    assert_int_equal(voro_lb_pick(&lb, 123, NULL), 0); /* NULL health = always up */
    voro_lb_destroy(&lb);
}

static void test_hash64(void **state)
{
    (void)state;
    /* Stable: the same bytes always give the same value; a one-bit change flips ~half the bits. */
    uint64_t a = voro_hash64("10.0.0.1:8080", 13, 0);
    assert_true(a == voro_hash64("10.0.0.1:8080", 13, 0));
    uint64_t b = voro_hash64("10.0.0.1:8081", 13, 0);
    int diff = __builtin_popcountll(a ^ b);
    assert_true(diff > 16 && diff < 48);
    assert_true(voro_hash64("abc", 3, 0) != voro_hash64("abc", 3, 1));
    assert_true(voro_hash64("", 0, 0) != voro_hash64("\0", 1, 0));
}

static void test_rr_nginx_sequence(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[3] = {5, 1, 1};
    pool_init(&p, VORO_LB_ROUND_ROBIN, w, 3, 1.0);
    const int want[7] = {0, 0, 1, 0, 2, 0, 0};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 7; i++)
            assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), want[i]);
    int counts[3] = {0};
    for (int i = 0; i < 7000; i++)
        counts[voro_lb_pick(&p.lb, 0, NULL)]++;
    assert_int_equal(counts[0], 5000);
    assert_int_equal(counts[1], 1000);
    assert_int_equal(counts[2], 1000);
    voro_lb_destroy(&p.lb);
}

static void test_rr_health_exclude(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[4] = {1, 1, 1, 0};
    pool_init(&p, VORO_LB_ROUND_ROBIN, w, 4, 1.0);
    set_up(&p, 1, 0);
    for (int i = 0; i < 50; i++) {
        int s = voro_lb_pick(&p.lb, 0, NULL);
        assert_true(s == 0 || s == 2); /* down and weight-0 servers never picked */
    }
    struct voro_lb_exclude ex = {{0}};
    voro_lb_exclude_add(&ex, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, &ex), 2);
    voro_lb_exclude_add(&ex, 2);
    assert_int_equal(voro_lb_pick(&p.lb, 0, &ex), -EHOSTUNREACH);
    set_up(&p, 0, 0);
    set_up(&p, 2, 0);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), -EHOSTUNREACH);
    set_up(&p, 1, 1);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    voro_lb_destroy(&p.lb);
}

static void test_all_down_every_algorithm(void **state)
{
    (void)state;
    const uint32_t w[3] = {1, 2, 3};
    for (int a = 0; a < VORO_LB_ALGORITHM_COUNT; a++) {
        struct pool p;
        pool_init(&p, (enum voro_lb_algorithm)a, w, 3, 1.25);
        for (int i = 0; i < 3; i++)
            set_up(&p, (size_t)i, 0);
        for (uint64_t k = 0; k < 20; k++)
            assert_int_equal(voro_lb_pick(&p.lb, k, NULL), -EHOSTUNREACH);
        set_up(&p, 1, 1);
        for (uint64_t k = 0; k < 20; k++)
            assert_int_equal(voro_lb_pick(&p.lb, k * 7919, NULL), 1);
        struct voro_lb_exclude ex = {{0}};
        voro_lb_exclude_add(&ex, 1);
        assert_int_equal(voro_lb_pick(&p.lb, 5, &ex), -EHOSTUNREACH);
        voro_lb_destroy(&p.lb);
    }
}

static void test_least_conn(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[3] = {1, 1, 1};
    pool_init(&p, VORO_LB_LEAST_CONNECTIONS, w, 3, 1.0);
    /* ties spread: three picks without accounting hit three different servers */
    int seen = 0;
    for (int i = 0; i < 3; i++)
        seen |= 1 << voro_lb_pick(&p.lb, 0, NULL);
    assert_int_equal(seen, 7);
    voro_lb_conn_begin(&p.lb, 0);
    voro_lb_conn_begin(&p.lb, 0);
    voro_lb_conn_begin(&p.lb, 2);
    assert_int_equal(p.lb.total_active, 3);
    for (int i = 0; i < 5; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    /* with accounting, load evens out */
    for (int i = 0; i < 30; i++)
        voro_lb_conn_begin(&p.lb, voro_lb_pick(&p.lb, 0, NULL));
    assert_int_equal(p.lb.servers[0].active, 11);
    assert_int_equal(p.lb.servers[1].active, 11);
    assert_int_equal(p.lb.servers[2].active, 11);
    voro_lb_conn_end(&p.lb, 1);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    set_up(&p, 1, 0);
    assert_true(voro_lb_pick(&p.lb, 0, NULL) != 1);
    voro_lb_destroy(&p.lb);

    /* weights: a weight-3 server takes three times the connections */
    const uint32_t w2[2] = {3, 1};
    pool_init(&p, VORO_LB_LEAST_CONNECTIONS, w2, 2, 1.0);
    for (int i = 0; i < 40; i++)
        voro_lb_conn_begin(&p.lb, voro_lb_pick(&p.lb, 0, NULL));
    assert_int_equal(p.lb.servers[0].active, 30);
    assert_int_equal(p.lb.servers[1].active, 10);
    for (int i = 0; i < 40; i++)
        voro_lb_conn_end(&p.lb, i % 2);
    voro_lb_conn_end(&p.lb, 1); /* never underflows */
    assert_int_equal(p.lb.servers[1].active, 0);
    voro_lb_destroy(&p.lb);
}

static uint64_t key_of(uint32_t i) { return voro_hash64(&i, sizeof(i), 7); }

static void test_ch_stable_and_minimal_moves(void **state)
{
    (void)state;
    enum { KEYS = 100000 };
    struct pool p;
    const uint32_t w[5] = {1, 1, 1, 1, 1};
    pool_init(&p, VORO_LB_CONSISTENT_HASH, w, 5, 1.25);
    assert_true(p.lb.table_size >= 500);
    static uint8_t before[KEYS];
    int counts[5] = {0};
    for (uint32_t i = 0; i < KEYS; i++) {
        int s = voro_lb_pick(&p.lb, key_of(i), NULL);
        assert_true(s >= 0 && s < 5);
        before[i] = (uint8_t)s;
        counts[s]++;
    }
    for (int s = 0; s < 5; s++) /* 20% each, allow +-4 points */
        assert_true(counts[s] > 16000 && counts[s] < 24000);
    for (uint32_t i = 0; i < KEYS; i += 97)
        assert_int_equal(voro_lb_pick(&p.lb, key_of(i), NULL), before[i]);

    set_up(&p, 3, 0);
    uint32_t others = 0, stayed = 0;
    for (uint32_t i = 0; i < KEYS; i++) {
        int s = voro_lb_pick(&p.lb, key_of(i), NULL);
        assert_true(s >= 0 && s != 3);
        if (before[i] != 3) {
            others++;
            stayed += s == before[i];
        }
    }
    assert_true((uint64_t)stayed * 100 >= (uint64_t)others * 99);
    /* back up: every key returns home */
    set_up(&p, 3, 1);
    for (uint32_t i = 0; i < KEYS; i += 13)
        assert_int_equal(voro_lb_pick(&p.lb, key_of(i), NULL), before[i]);
    /* a retry excluding the home server lands elsewhere, deterministically */
    struct voro_lb_exclude ex = {{0}};
    voro_lb_exclude_add(&ex, before[0]);
    int alt = voro_lb_pick(&p.lb, key_of(0), &ex);
    assert_true(alt >= 0 && alt != before[0]);
    assert_int_equal(voro_lb_pick(&p.lb, key_of(0), &ex), alt);
    voro_lb_destroy(&p.lb);
}

static void test_ch_weights(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[3] = {3, 1, 0};
    pool_init(&p, VORO_LB_CONSISTENT_HASH, w, 3, 1.25);
    int counts[3] = {0};
    for (uint32_t i = 0; i < 40000; i++)
        counts[voro_lb_pick(&p.lb, key_of(i), NULL)]++;
    assert_int_equal(counts[2], 0);
    assert_true(counts[0] > 27000 && counts[0] < 33000); /* ~75% */
    voro_lb_destroy(&p.lb);
}

static void test_ch_bounded_load(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct pool p;
    const uint32_t w[5] = {1, 1, 1, 1, 1};
    const double c = 1.25;
    pool_init(&p, VORO_LB_CONSISTENT_HASH, w, 5, c);
    int home = voro_lb_pick(&p.lb, 99, NULL);
    for (int i = 0; i < N; i++) {
        int s = voro_lb_pick(&p.lb, 99, NULL); /* every connection has the same key */
        assert_true(s >= 0);
        voro_lb_conn_begin(&p.lb, s);
    }
    uint32_t cap = (uint32_t)ceil(c * N / 5.0);
    for (int s = 0; s < 5; s++)
        assert_true(p.lb.servers[s].active <= cap);
    assert_int_equal(p.lb.servers[home].active, cap); /* the home server is filled first */
    /* once load drains, the key goes home again */
    for (int s = 0; s < 5; s++)
        while (p.lb.servers[s].active)
            voro_lb_conn_end(&p.lb, s);
    assert_int_equal(voro_lb_pick(&p.lb, 99, NULL), home);
    voro_lb_destroy(&p.lb);
}

static void test_p2c(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[2] = {1, 1};
    pool_init(&p, VORO_LB_POWER_OF_TWO, w, 2, 1.0);
    /* with two servers both are always the candidates: the less loaded always wins */
    voro_lb_conn_begin(&p.lb, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    set_up(&p, 1, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0);
    voro_lb_destroy(&p.lb);

    /* four servers, one heavily loaded: it loses every pair it is drawn into, so it never wins */
    const uint32_t w4[4] = {1, 1, 1, 1};
    pool_init(&p, VORO_LB_POWER_OF_TWO, w4, 4, 1.0);
    for (int i = 0; i < 10; i++)
        voro_lb_conn_begin(&p.lb, 2);
    int counts[4] = {0};
    for (int i = 0; i < 3000; i++)
        counts[voro_lb_pick(&p.lb, 0, NULL)]++;
    assert_int_equal(counts[2], 0);
    for (int s = 0; s < 4; s++)
        if (s != 2)
            assert_true(counts[s] > 700); /* ~1000 each: ties go to the first draw */
    /* with accounting the load stays balanced */
    for (int i = 0; i < 3000; i++) {
        int s = voro_lb_pick(&p.lb, 0, NULL);
        voro_lb_conn_begin(&p.lb, s);
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int s = 0; s < 4; s++) {
        lo = p.lb.servers[s].active < lo ? p.lb.servers[s].active : lo;
        hi = p.lb.servers[s].active > hi ? p.lb.servers[s].active : hi;
    }
    assert_true(hi - lo <= 10);
    voro_lb_destroy(&p.lb);

    /* weighted draw: with equal (zero) load the first draw wins, so picks follow the weights;
     * a zero-weight server is never drawn */
    const uint32_t w3[4] = {8, 1, 1, 0};
    pool_init(&p, VORO_LB_POWER_OF_TWO, w3, 4, 1.0);
    int wc[4] = {0};
    for (int i = 0; i < 3000; i++)
        wc[voro_lb_pick(&p.lb, 0, NULL)]++;
    assert_int_equal(wc[3], 0);
    assert_true(wc[0] > 2100); /* ~80% expected */
    assert_true(wc[1] > 100 && wc[2] > 100);
    voro_lb_destroy(&p.lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_hash64),
        cmocka_unit_test(test_rr_nginx_sequence),
        cmocka_unit_test(test_rr_health_exclude),
        cmocka_unit_test(test_all_down_every_algorithm),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_ch_stable_and_minimal_moves),
        cmocka_unit_test(test_ch_weights),
        cmocka_unit_test(test_ch_bounded_load),
        cmocka_unit_test(test_p2c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
