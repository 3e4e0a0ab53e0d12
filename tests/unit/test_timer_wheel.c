/* Unit tests for the hierarchical timer wheel: expiry ticks at every level, deletion, re-arming, random model check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "node/timer_wheel.h"

struct rec {
    struct voro_timer t;
    struct voro_timer_wheel *w;
    int id;
    int fired;
    uint64_t fired_tick;
    int *log;
    int *log_n;
    /* behaviour inside the callback */
    int rearm_times;
    uint64_t rearm_delay;
    struct voro_timer *victim;
};

static void rec_cb(struct voro_timer *t)
{
    struct rec *r = t->data;
    r->fired++;
    r->fired_tick = r->w->now_tick;
    if (r->log)
        r->log[(*r->log_n)++] = r->id;
    if (r->victim)
        voro_timer_del(r->w, r->victim);
    if (r->rearm_times > 0) {
        r->rearm_times--;
        voro_timer_add(r->w, t, r->rearm_delay);
    }
}

static void rec_init(struct rec *r, struct voro_timer_wheel *w, int id)
{
    memset(r, 0, sizeof(*r));
    r->w = w;
    r->id = id;
    voro_timer_init(&r->t, rec_cb, r);
}

static void test_fire_order(void **state)
{
    (void)state;
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 10, 1000);
    int log[8], n = 0;
    uint64_t delays[5] = {500, 30, 70000, 10, 2000};
    struct rec r[5];
    for (int i = 0; i < 5; i++) {
        rec_init(&r[i], &w, i);
        r[i].log = log;
        r[i].log_n = &n;
        voro_timer_add(&w, &r[i].t, delays[i]);
        assert_true(voro_timer_pending(&r[i].t));
    }
    assert_int_equal(w.count, 5);
    assert_int_equal(voro_timer_wheel_advance(&w, 1000 + 9), 0);
    assert_int_equal(voro_timer_wheel_advance(&w, 1000 + 10), 1);
    assert_int_equal(voro_timer_wheel_advance(&w, 1000 + 100000), 4);
    assert_int_equal(n, 5);
    int want[5] = {3, 1, 0, 4, 2};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(log[i], want[i]);
        assert_false(voro_timer_pending(&r[i].t));
    }
    assert_int_equal(w.count, 0);
    assert_int_equal(voro_timer_wheel_next_ms(&w, 1000 + 100000), -1);
}

/* Delay 25 ms on a 10 ms tick rounds up to 3 ticks; delay 0 still waits one tick. */
static void test_rounding(void **state)
{
    (void)state;
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 10, 0);
    struct rec a, b;
    rec_init(&a, &w, 0);
    rec_init(&b, &w, 1);
    voro_timer_add(&w, &a.t, 25);
    voro_timer_add(&w, &b.t, 0);
    assert_int_equal(voro_timer_wheel_next_ms(&w, 0), 10);
    voro_timer_wheel_advance(&w, 9);
    assert_int_equal(b.fired, 0);
    voro_timer_wheel_advance(&w, 10);
    assert_int_equal(b.fired, 1);
    assert_int_equal(voro_timer_wheel_next_ms(&w, 12), 18);
    voro_timer_wheel_advance(&w, 29);
    assert_int_equal(a.fired, 0);
    voro_timer_wheel_advance(&w, 30);
    assert_int_equal(a.fired, 1);
    assert_int_equal(a.fired_tick, 3);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every boundary of every level (and beyond the wheel's span) fires on exactly its tick. */
static void test_exact_tick_all_levels(void **state)
{
    (void)state;
    static const uint64_t delays[] = {
        1, 2, 63, 64, 65, 127, 128, 4095, 4096, 4097, 5000, 262143, 262144, 262145, 300001,
        (1u << 24) - 1, 1u << 24, (1u << 24) + 1, (1u << 24) + 262144 + 7, 3u * (1u << 24) + 12345,
    };
    enum { N = sizeof(delays) / sizeof(delays[0]) };
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 1, 5);
    voro_timer_wheel_advance(&w, 5 + 777777); /* start away from any level boundary */
    uint64_t start = w.now_tick;
    assert_int_equal(start, 777777);
    static struct rec r[N];
    uint64_t exp[N];
    for (size_t i = 0; i < N; i++) {
        rec_init(&r[i], &w, (int)i);
        voro_timer_add(&w, &r[i].t, delays[i]);
        assert_int_equal(r[i].t.expires, start + delays[i]);
        exp[i] = start + delays[i];
    }
    qsort(exp, N, sizeof(exp[0]), cmp_u64);
    for (size_t k = 0; k < N; k++) {
        int64_t next = voro_timer_wheel_next_ms(&w, 5 + w.now_tick);
        assert_true(next >= 1);
        assert_true((uint64_t)next <= exp[k] - w.now_tick); /* never later than the real expiry */
        voro_timer_wheel_advance(&w, 5 + exp[k] - 1);
        for (size_t i = 0; i < N; i++)
            if (start + delays[i] >= exp[k])
                assert_int_equal(r[i].fired, 0);
        voro_timer_wheel_advance(&w, 5 + exp[k]);
        for (size_t i = 0; i < N; i++) {
            if (start + delays[i] <= exp[k]) {
                assert_int_equal(r[i].fired, 1);
                assert_int_equal(r[i].fired_tick, start + delays[i]);
            }
        }
    }
    assert_int_equal(w.count, 0);
}

static void test_del_before_fire(void **state)
{
    (void)state;
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 10, 0);
    struct rec a, b, c;
    rec_init(&a, &w, 0);
    rec_init(&b, &w, 1);
    rec_init(&c, &w, 2);
    voro_timer_add(&w, &a.t, 100);
    voro_timer_add(&w, &b.t, 100);
    voro_timer_add(&w, &c.t, 100000);
    voro_timer_del(&w, &b.t);
    voro_timer_del(&w, &b.t); /* idempotent */
    voro_timer_del(&w, &c.t);
    assert_false(voro_timer_pending(&b.t));
    assert_int_equal(w.count, 1);
    assert_int_equal(voro_timer_wheel_advance(&w, 200000), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 0);
    /* re-adding a pending timer moves it instead of linking it twice */
    voro_timer_add(&w, &a.t, 50);
    voro_timer_add(&w, &a.t, 500);
    assert_int_equal(w.count, 1);
    assert_int_equal(voro_timer_wheel_advance(&w, 200000 + 490), 0);
    assert_int_equal(voro_timer_wheel_advance(&w, 200000 + 500), 1);
    assert_int_equal(a.fired, 2);
}

static void test_callback_rearm_and_delete(void **state)
{
    (void)state;
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 1, 0);
    struct rec p, killer, victim;
    rec_init(&p, &w, 0);
    rec_init(&killer, &w, 1);
    rec_init(&victim, &w, 2);
    p.rearm_times = 4;
    p.rearm_delay = 100; /* crosses into level 1 each time */
    voro_timer_add(&w, &p.t, 100);
    /* killer and victim expire on the same tick; whichever runs first, the other must not fire twice */
    killer.victim = &victim.t;
    voro_timer_add(&w, &killer.t, 7);
    voro_timer_add(&w, &victim.t, 7);
    voro_timer_wheel_advance(&w, 7);
    assert_int_equal(killer.fired, 1);
    assert_true(victim.fired <= 1);
    assert_false(voro_timer_pending(&victim.t));
    for (uint64_t now = 8; now <= 1000; now++)
        voro_timer_wheel_advance(&w, now);
    assert_int_equal(p.fired, 5);
    assert_int_equal(p.fired_tick, 500);
    assert_int_equal(w.count, 0);
    /* a callback re-arming with delay 0 runs on the next tick, not in a loop */
    rec_init(&p, &w, 0);
    p.rearm_times = 3;
    p.rearm_delay = 0;
    voro_timer_add(&w, &p.t, 1);
    assert_int_equal(voro_timer_wheel_advance(&w, 1001), 1);
    assert_int_equal(voro_timer_wheel_advance(&w, 1004), 3);
    assert_int_equal(p.fired_tick, 1004);
}

/* Random add/del/advance against a brute-force model of absolute expiry ticks. */
#define NT 10000
struct model_timer {
    struct voro_timer t;
    struct voro_timer_wheel *w;
    uint64_t want; /* 0 = not armed */
    int bad;
};

static void model_cb(struct voro_timer *t)
{
    struct model_timer *m = t->data;
    if (m->want != m->w->now_tick)
        m->bad++;
    m->want = 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_vs_model(void **state)
{
    (void)state;
    struct voro_timer_wheel w;
    voro_timer_wheel_init(&w, 1, 0);
    struct model_timer *m = calloc(NT, sizeof(*m));
    assert_non_null(m);
    for (int i = 0; i < NT; i++) {
        m[i].w = &w;
        voro_timer_init(&m[i].t, model_cb, &m[i]);
    }
    uint64_t rng = 0x1234567887654321ull;
    uint64_t now = 0;
    for (int i = 0; i < NT; i++) {
        /* delays spread over levels 0..2 plus a few level-3 ones */
        unsigned lvl = (unsigned)(rng_next(&rng) % 16);
        uint64_t range = lvl < 6 ? 64 : lvl < 11 ? 4096 : lvl < 15 ? 262144 : 3000000;
        uint64_t d = 1 + rng_next(&rng) % range;
        voro_timer_add(&w, &m[i].t, d);
        m[i].want = d;
    }
    for (int step = 0; step < 1500; step++) {
        for (int op = 0; op < 20; op++) {
            int i = (int)(rng_next(&rng) % NT);
            if (rng_next(&rng) % 3 == 0) {
                voro_timer_del(&w, &m[i].t);
                m[i].want = 0;
            } else {
                uint64_t d = rng_next(&rng) % 300000;
                voro_timer_add(&w, &m[i].t, d);
                m[i].want = w.now_tick + (d ? d : 1);
            }
        }
        int64_t next = voro_timer_wheel_next_ms(&w, now);
        uint64_t earliest = UINT64_MAX;
        uint32_t armed = 0;
        for (int i = 0; i < NT; i++) {
            if (m[i].want) {
                armed++;
                if (m[i].want < earliest)
                    earliest = m[i].want;
            }
        }
        assert_int_equal(w.count, armed);
        if (armed) {
            assert_true(next >= 0);
            assert_true((uint64_t)next <= earliest - now);
        } else {
            assert_int_equal(next, -1);
        }
        now += 1 + rng_next(&rng) % 2000;
        voro_timer_wheel_advance(&w, now);
        for (int i = 0; i < NT; i++) {
            assert_int_equal(m[i].bad, 0);
            if (m[i].want)
                assert_true(m[i].want > now && voro_timer_pending(&m[i].t));
            else
                assert_false(voro_timer_pending(&m[i].t));
        }
    }
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_order),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_exact_tick_all_levels),
        cmocka_unit_test(test_del_before_fire),
        cmocka_unit_test(test_callback_rearm_and_delete),
        cmocka_unit_test(test_random_vs_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
