/* Unit tests for the L7 balancers (ewma, queue_length, gpu_aware), request accounting, slow start,
 * GPU-error avoidance, and a discrete-event simulation of a heterogeneous GPU farm. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/balance/balance.h"

#define MAXS 8

struct pool {
    struct voro_lb lb;
    _Atomic uint32_t health[MAXS];
    struct voro_backend_signals sig[MAXS];
    char names[MAXS][32];
    size_t n;
};

/* Every server up, full slow-start weight, never scraped. */
static void pool_init(struct pool *p, enum voro_lb_algorithm algo, const uint32_t *weights, size_t n)
{
    struct voro_lb_server_init init[MAXS];
    memset(init, 0, sizeof(init));
    memset(p->sig, 0, sizeof(p->sig));
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        atomic_store(&p->health[i], VORO_SERVER_UP);
        atomic_store(&p->sig[i].weight_permille, 1000);
        snprintf(p->names[i], sizeof(p->names[i]), "gpu-%zu", i);
        init[i].weight = weights[i];
        init[i].health = &p->health[i];
        init[i].identity = p->names[i];
        init[i].signals = &p->sig[i];
    }
    assert_int_equal(voro_lb_init(&p->lb, algo, init, n, 1.25, 7), 0);
}

static void scrape(struct pool *p, size_t i, uint32_t queue, uint32_t running, uint64_t at_ms)
{
    atomic_store(&p->sig[i].queue_depth, queue);
    atomic_store(&p->sig[i].running, running);
    atomic_store(&p->sig[i].metrics_time_ms, at_ms);
}

static void end_all(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        while (p->lb.servers[i].active)
            voro_lb_request_end(&p->lb, (int)i, 0, true);
}

static void test_request_accounting(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[2] = {1, 1};
    pool_init(&p, VORO_LB_LEAST_CONNECTIONS, w, 2);
    voro_lb_request_begin(&p.lb, 1);
    voro_lb_request_begin(&p.lb, 1);
    assert_int_equal(p.lb.servers[1].active, 2);
    assert_int_equal(atomic_load(&p.sig[1].inflight), 2);
    assert_int_equal(p.lb.total_active, 2);
    /* another worker's requests are visible through the shared counter and not taken back */
    atomic_fetch_add(&p.sig[0].inflight, 5);
    voro_lb_request_end(&p.lb, 0, 100, true);
    assert_int_equal(atomic_load(&p.sig[0].inflight), 5);
    voro_lb_request_end(&p.lb, 1, 100, true);
    voro_lb_request_end(&p.lb, 1, 100, true);
    voro_lb_request_end(&p.lb, 1, 100, true); /* never underflows */
    assert_int_equal(p.lb.servers[1].active, 0);
    assert_int_equal(atomic_load(&p.sig[1].inflight), 0);
    assert_int_equal(p.lb.total_active, 0);
    voro_lb_request_begin(&p.lb, -1); /* out of range: ignored */
    voro_lb_request_end(&p.lb, 2, 0, true);
    voro_lb_set_stale_ms(&p.lb, 0);
    assert_int_equal(p.lb.stale_ms, VORO_LB_DEFAULT_STALE_MS);
    voro_lb_destroy(&p.lb);
}

/* Every algorithm: down, excluded and weight-0 servers are never picked; a server ramping at
 * 10% of its weight gets a trickle, far below its full share; a GPU error makes a last resort. */
static void test_filters_every_algorithm(void **state)
{
    (void)state;
    for (int a = 0; a < VORO_LB_ALGORITHM_COUNT; a++) {
        struct pool p;
        const uint32_t w[5] = {1, 1, 1, 0, 1};
        pool_init(&p, (enum voro_lb_algorithm)a, w, 5);
        voro_lb_set_now(&p.lb, 1000);
        atomic_store(&p.health[4], 0);
        struct voro_lb_exclude ex = {{0}};
        voro_lb_exclude_add(&ex, 2);
        for (uint64_t k = 0; k < 200; k++) {
            int s = voro_lb_pick(&p.lb, k * 2654435761u, &ex);
            assert_true(s == 0 || s == 1);
            voro_lb_request_begin(&p.lb, s);
        }
        end_all(&p);

        /* GPU error on 1: avoided while 0 is usable, used when it is the only one left */
        atomic_store(&p.sig[1].flags, VORO_SIGNAL_GPU_ERROR);
        for (uint64_t k = 0; k < 50; k++)
            assert_int_equal(voro_lb_pick(&p.lb, k * 2654435761u, &ex), 0);
        atomic_store(&p.health[0], 0);
        for (uint64_t k = 0; k < 10; k++)
            assert_int_equal(voro_lb_pick(&p.lb, k * 2654435761u, &ex), 1);
        voro_lb_exclude_add(&ex, 1);
        assert_int_equal(voro_lb_pick(&p.lb, 3, &ex), -EHOSTUNREACH);
        voro_lb_destroy(&p.lb);

        if (a == VORO_LB_CONSISTENT_HASH)
            continue; /* the Maglev table is built from static weights (documented) */
        /* slow start: 0 at 10% of the weight of 1 and 2; requests stay open so load builds */
        const uint32_t w3[3] = {1, 1, 1};
        pool_init(&p, (enum voro_lb_algorithm)a, w3, 3);
        voro_lb_set_now(&p.lb, 1000);
        atomic_store(&p.sig[0].weight_permille, 100);
        int count[3] = {0};
        for (int i = 0; i < 420; i++) {
            int s = voro_lb_pick(&p.lb, (uint64_t)i, NULL);
            assert_true(s >= 0 && s < 3);
            count[s]++;
            voro_lb_request_begin(&p.lb, s);
        }
        /* full share would be 140; 10% of the weight is ~20 */
        assert_true(count[0] > 0);
        assert_true(count[0] < 45);
        /* permille 0 on a weight > 0 keeps it usable (at least 1) */
        atomic_store(&p.sig[1].weight_permille, 0);
        atomic_store(&p.health[2], 0);
        atomic_store(&p.health[0], 0);
        assert_int_equal(voro_lb_pick(&p.lb, 1, NULL), 1);
        voro_lb_destroy(&p.lb);
    }
}

/* Slow start is exact where the algorithm is: half the permille, half the share. */
static void test_slow_start_exact(void **state)
{
    (void)state;
    const enum voro_lb_algorithm algos[3] = {VORO_LB_ROUND_ROBIN, VORO_LB_LEAST_CONNECTIONS, VORO_LB_QUEUE_LENGTH};
    for (int a = 0; a < 3; a++) {
        struct pool p;
        const uint32_t w[2] = {1, 1};
        pool_init(&p, algos[a], w, 2);
        atomic_store(&p.sig[0].weight_permille, 500);
        int count[2] = {0};
        for (int i = 0; i < 300; i++) {
            int s = voro_lb_pick(&p.lb, 0, NULL);
            count[s]++;
            voro_lb_request_begin(&p.lb, s); /* open: the load-based ones see the load */
        }
        assert_int_equal(count[0], 100);
        assert_int_equal(count[1], 200);
        /* ramp complete: the next 300 go mostly to 0 until the load per weight is even */
        atomic_store(&p.sig[0].weight_permille, 1000);
        for (int i = 0; i < 300; i++)
            voro_lb_request_begin(&p.lb, voro_lb_pick(&p.lb, 0, NULL));
        if (algos[a] != VORO_LB_ROUND_ROBIN)
            assert_int_equal(p.lb.servers[0].active, 300);
        voro_lb_destroy(&p.lb);
    }
}

static void feed(struct pool *p, int s, uint64_t latency_us)
{
    voro_lb_request_begin(&p->lb, s);
    voro_lb_request_end(&p->lb, s, latency_us, true);
}

static void test_ewma(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[2] = {1, 1};
    pool_init(&p, VORO_LB_EWMA, w, 2);
    voro_lb_set_now(&p.lb, 1000);
    feed(&p, 0, 10000);
    feed(&p, 1, 100000);
    for (int i = 0; i < 50; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0);
    /* in-flight counts: the fast server takes ~10x the concurrent requests, not all of them */
    int count[2] = {0};
    for (int i = 0; i < 110; i++) {
        int s = voro_lb_pick(&p.lb, 0, NULL);
        count[s]++;
        voro_lb_request_begin(&p.lb, s);
    }
    assert_true(count[0] >= 95 && count[0] <= 102);
    assert_true(count[1] >= 8);
    end_all(&p);

    /* peak: one slow reply from 0 is believed at once */
    feed(&p, 0, 500000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    /* recovery: 0 answers in 5 ms from now on, 1 keeps 100 ms; the estimate decays by time */
    uint64_t t = 1000;
    int first_back = -1;
    for (int sec = 1; sec <= 120; sec++) {
        t += 1000;
        voro_lb_set_now(&p.lb, t);
        feed(&p, 0, 5000);
        feed(&p, 1, 100000);
        if (first_back < 0 && voro_lb_pick(&p.lb, 0, NULL) == 0)
            first_back = sec;
    }
    /* 500 ms decaying with tau 10 s passes 100 ms after ~16 s, not at the first fast sample */
    assert_true(first_back >= 10 && first_back <= 25);
    for (int i = 0; i < 20; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0);
    /* failures count as slow: a fast-failing server stops attracting traffic */
    voro_lb_request_begin(&p.lb, 0);
    voro_lb_request_end(&p.lb, 0, 100, false);
    voro_lb_request_begin(&p.lb, 0);
    voro_lb_request_end(&p.lb, 0, 100, false);
    voro_lb_request_begin(&p.lb, 0);
    voro_lb_request_end(&p.lb, 0, 100, false);
    voro_lb_request_begin(&p.lb, 0);
    voro_lb_request_end(&p.lb, 0, 100, false);
    voro_lb_request_begin(&p.lb, 0);
    voro_lb_request_end(&p.lb, 0, 100, false);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    voro_lb_destroy(&p.lb);

    /* a server without samples gets the median estimate: tried before the slow one */
    const uint32_t w3[3] = {1, 1, 1};
    pool_init(&p, VORO_LB_EWMA, w3, 3);
    voro_lb_set_now(&p.lb, 5000);
    feed(&p, 0, 10000);
    feed(&p, 1, 40000);
    struct voro_lb_exclude ex = {{0}};
    voro_lb_exclude_add(&ex, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, &ex), 2);
    /* TTFT samples feed the same estimate */
    voro_lb_observe_ttft(&p.lb, 2, 90000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, &ex), 1);
    voro_lb_destroy(&p.lb);
}

static void test_queue_length(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[3] = {1, 1, 1};
    pool_init(&p, VORO_LB_QUEUE_LENGTH, w, 3);
    /* never scraped: in-flight only, ties round robin */
    int seen = 0;
    for (int i = 0; i < 3; i++)
        seen |= 1 << voro_lb_pick(&p.lb, 0, NULL);
    assert_int_equal(seen, 7);

    voro_lb_set_now(&p.lb, 10000);
    scrape(&p, 0, 5, 8, 9500);
    scrape(&p, 1, 0, 8, 9500);
    scrape(&p, 2, 2, 8, 9500);
    for (int i = 0; i < 10; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    /* in-flight counts between scrapes: 1 takes requests until its score passes 2's */
    int count[3] = {0};
    for (int i = 0; i < 8; i++) {
        int s = voro_lb_pick(&p.lb, 0, NULL);
        count[s]++;
        voro_lb_request_begin(&p.lb, s);
    }
    /* scores 0: 5, 1: 0+k, 2: 2+m; 8 picks level all three at 5 */
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 5);
    assert_int_equal(count[2], 3);
    end_all(&p);
    /* another worker's in-flight counts too */
    atomic_store(&p.sig[1].inflight, 4);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    atomic_store(&p.sig[1].inflight, 0);

    /* stale: 1 reports an empty queue, but 5 s ago; with 2 requests of ours in flight it scores
     * 2*2+1 = 5 and loses to 2 (queue 2); trusted, it would have scored 2 and won */
    scrape(&p, 1, 0, 0, 5000);
    scrape(&p, 2, 2, 8, 9900);
    voro_lb_request_begin(&p.lb, 1);
    voro_lb_request_begin(&p.lb, 1);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    /* whatever the stale scrape said is ignored */
    scrape(&p, 1, 100, 0, 5000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    end_all(&p);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1); /* idle stale (1) beats queue 2 */
    /* a longer stale threshold makes the scrape fresh again: the queue of 100 counts */
    voro_lb_set_stale_ms(&p.lb, 6000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    /* weight: twice the weight tolerates twice the queue */
    voro_lb_destroy(&p.lb);
    const uint32_t w2[2] = {2, 1};
    pool_init(&p, VORO_LB_QUEUE_LENGTH, w2, 2);
    voro_lb_set_now(&p.lb, 10000);
    scrape(&p, 0, 7, 0, 10000);
    scrape(&p, 1, 4, 0, 10000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0); /* 7/2 < 4/1 */
    voro_lb_destroy(&p.lb);
}

static void test_gpu_aware_basics(void **state)
{
    (void)state;
    struct pool p;
    const uint32_t w[3] = {1, 1, 1};
    pool_init(&p, VORO_LB_GPU_AWARE, w, 3);
    voro_lb_set_now(&p.lb, 20000);
    for (int i = 0; i < 3; i++)
        atomic_store(&p.sig[i].capacity, 8);
    scrape(&p, 0, 0, 4, 20000);
    scrape(&p, 1, 0, 2, 20000);
    scrape(&p, 2, 0, 6, 20000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    /* KV cache nearly full: 1 looks busier than its running count says */
    atomic_store(&p.sig[1].kv_usage_permille, 1000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0);
    atomic_store(&p.sig[1].kv_usage_permille, 0);

    /* capacity filter: 0 and 1 are full (they queue), 2 has one free slot: it takes the request
     * although its normalised load (8/8) is not lower than theirs */
    scrape(&p, 0, 3, 8, 20000);
    scrape(&p, 1, 1, 8, 20000);
    scrape(&p, 2, 0, 7, 20000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    atomic_store(&p.sig[2].inflight, 8); /* Voro's live in-flight: now 2 is full too */
    /* all full: the shortest expected time to start wins; no latency known, so the queue
     * position per capacity: 0: 4/8, 1: 2/8, 2: 1/8 */
    for (int i = 0; i < 10; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    /* ... times the service time: 1 answers in 10 ms, 2 in 100 ms -> 1 (2x10 < 1x100) */
    voro_lb_request_begin(&p.lb, 1);
    voro_lb_request_end(&p.lb, 1, 10000, true);
    voro_lb_request_begin(&p.lb, 2);
    voro_lb_request_end(&p.lb, 2, 100000, true);
    for (int i = 0; i < 10; i++)
        assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 1);
    /* a free slot anywhere still beats every full server, whatever the latencies */
    atomic_store(&p.sig[2].inflight, 0);
    scrape(&p, 2, 0, 6, 20000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    end_all(&p);

    /* stale: 2 reported idle 10 s ago; a fresh server at half load wins over it */
    scrape(&p, 0, 0, 4, 20000);
    scrape(&p, 1, 0, 4, 20000);
    scrape(&p, 2, 0, 0, 10000);
    int s = voro_lb_pick(&p.lb, 0, NULL);
    assert_true(s == 0 || s == 1);
    /* once the fresh ones are nearly full, the stale one is used (it still has Voro-known room) */
    scrape(&p, 0, 0, 7, 20000);
    scrape(&p, 1, 0, 7, 20000);
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 2);
    /* Voro's own in-flight fills a stale server: it is full when in-flight reaches capacity */
    atomic_store(&p.sig[2].inflight, 8);
    s = voro_lb_pick(&p.lb, 0, NULL);
    assert_true(s == 0 || s == 1);
    atomic_store(&p.sig[2].inflight, 0);
    voro_lb_destroy(&p.lb);

    /* never scraped, no capacity: unknown but usable; equal servers share */
    pool_init(&p, VORO_LB_GPU_AWARE, w, 3);
    int count[3] = {0};
    for (int i = 0; i < 300; i++)
        count[voro_lb_pick(&p.lb, 0, NULL)]++;
    for (int i = 0; i < 3; i++)
        assert_true(count[i] > 60);
    /* learned capacity: a scrape with a queue shows the saturation point */
    voro_lb_set_now(&p.lb, 30000);
    scrape(&p, 0, 2, 5, 30000);
    scrape(&p, 1, 0, 1, 30000);
    scrape(&p, 2, 0, 1, 30000);
    assert_true(voro_lb_pick(&p.lb, 0, NULL) != 0);
    assert_int_equal(p.lb.servers[0].cap_learned, 5);
    atomic_store(&p.sig[1].inflight, 16);
    atomic_store(&p.sig[2].inflight, 16);
    scrape(&p, 0, 0, 4, 31000); /* room on 0 again; 1 and 2 carry 16 (unknown capacity: 16) */
    assert_int_equal(voro_lb_pick(&p.lb, 0, NULL), 0);
    voro_lb_destroy(&p.lb);
}

/* ---- discrete-event simulation of a heterogeneous farm ---- */

enum { SIM_SERVERS = 4, SIM_MAXQ = 1 << 16, SIM_MAXREQ = 1 << 16 };

struct sim_server {
    uint32_t cap;
    double speed;
    double finish[32];     /* finish time of each running slot */
    double started[32];    /* arrival time of the request in each slot */
    uint32_t running;
    double *queue;         /* arrival times, FIFO ring */
    size_t qhead, qlen;
    double q_area;         /* integral of queue length over the measured period */
    uint32_t served;
};

struct sim_result {
    double p99_wait;
    double mean_q[SIM_SERVERS];
    uint32_t served[SIM_SERVERS];
    uint32_t end_queue[SIM_SERVERS];
};

static uint64_t sim_rng;
static double uniform01(void)
{
    sim_rng ^= sim_rng << 13;
    sim_rng ^= sim_rng >> 7;
    sim_rng ^= sim_rng << 17;
    return ((double)(sim_rng >> 11) + 0.5) / 9007199254740992.0;
}
static double expo(double mean) { return -mean * log(uniform01()); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Capacities 24/24/16/10, speeds 1/1/0.5/0.25, mean service 4 s at speed 1: throughput 58.5/4
 * requests per second; Poisson arrivals at 80% of it. One balancer (one worker), a scraper every
 * second publishing queue and running, in-flight live through request_begin/end. */
static void simulate(enum voro_lb_algorithm algo, int configure_capacity, struct sim_result *out)
{
    const uint32_t caps[SIM_SERVERS] = {24, 24, 16, 10};
    const double speeds[SIM_SERVERS] = {1.0, 1.0, 0.5, 0.25};
    const double base = 4.0, horizon = 1800.0, measure_from = 600.0;
    double rate = 0.8 * (24 + 24 + 16 * 0.5 + 10 * 0.25) / base;
    struct pool p;
    const uint32_t w[SIM_SERVERS] = {1, 1, 1, 1};
    pool_init(&p, algo, w, SIM_SERVERS);
    struct sim_server sv[SIM_SERVERS];
    memset(sv, 0, sizeof(sv));
    for (int i = 0; i < SIM_SERVERS; i++) {
        sv[i].cap = caps[i];
        sv[i].speed = speeds[i];
        sv[i].queue = calloc(SIM_MAXQ, sizeof(double));
        assert_non_null(sv[i].queue);
        if (configure_capacity)
            atomic_store(&p.sig[i].capacity, caps[i]);
    }
    double *waits = calloc(SIM_MAXREQ, sizeof(double));
    assert_non_null(waits);
    size_t n_waits = 0;
    sim_rng = 0x9e3779b97f4a7c15ull;

    double now = 0.0, next_arrival = expo(1.0 / rate), next_scrape = 1.0;
    const uint64_t t0_ms = 100000; /* monotonic clocks do not start at zero */
    for (int steps = 0; steps < 10000000; steps++) {
        /* next completion */
        int cs = -1, cslot = -1;
        double ct = INFINITY;
        for (int i = 0; i < SIM_SERVERS; i++)
            for (uint32_t k = 0; k < sv[i].running; k++)
                if (sv[i].finish[k] < ct) {
                    ct = sv[i].finish[k];
                    cs = i;
                    cslot = (int)k;
                }
        double t = next_arrival;
        int kind = 0; /* 0 arrival, 1 completion, 2 scrape */
        if (ct < t) {
            t = ct;
            kind = 1;
        }
        if (next_scrape < t) {
            t = next_scrape;
            kind = 2;
        }
        if (t > horizon)
            break;
        if (t > measure_from)
            for (int i = 0; i < SIM_SERVERS; i++)
                sv[i].q_area += (double)sv[i].qlen * (t - (now > measure_from ? now : measure_from));
        now = t;
        voro_lb_set_now(&p.lb, t0_ms + (uint64_t)(now * 1000.0));
        if (kind == 2) {
            for (int i = 0; i < SIM_SERVERS; i++) {
                scrape(&p, (size_t)i, (uint32_t)sv[i].qlen, sv[i].running, t0_ms + (uint64_t)(now * 1000.0));
                atomic_store(&p.sig[i].kv_usage_permille, sv[i].running * 900 / sv[i].cap);
                atomic_store(&p.sig[i].gpu_util_permille, sv[i].running ? 1000 : 0);
            }
            next_scrape += 1.0;
        } else if (kind == 0) {
            int s = voro_lb_pick(&p.lb, (uint64_t)steps, NULL);
            assert_true(s >= 0 && s < SIM_SERVERS);
            voro_lb_request_begin(&p.lb, s);
            struct sim_server *x = &sv[s];
            if (x->running < x->cap) {
                x->started[x->running] = now;
                x->finish[x->running++] = now + expo(base / x->speed);
                if (now > measure_from && n_waits < SIM_MAXREQ)
                    waits[n_waits++] = 0.0;
            } else {
                assert_true(x->qlen < SIM_MAXQ);
                x->queue[(x->qhead + x->qlen++) % SIM_MAXQ] = now;
            }
            next_arrival = now + expo(1.0 / rate);
        } else {
            struct sim_server *x = &sv[cs];
            x->served++;
            voro_lb_request_end(&p.lb, cs, (uint64_t)((now - x->started[cslot]) * 1e6) + 1, true);
            x->running--;
            x->finish[cslot] = x->finish[x->running];
            x->started[cslot] = x->started[x->running];
            if (x->qlen) {
                double arrived = x->queue[x->qhead];
                x->qhead = (x->qhead + 1) % SIM_MAXQ;
                x->qlen--;
                x->started[x->running] = arrived;
                x->finish[x->running++] = now + expo(base / x->speed);
                if (arrived > measure_from && n_waits < SIM_MAXREQ)
                    waits[n_waits++] = now - arrived;
            }
        }
    }
    assert_true(n_waits > 1000);
    qsort(waits, n_waits, sizeof(double), cmp_double);
    out->p99_wait = waits[(size_t)(0.99 * (double)n_waits)];
    for (int i = 0; i < SIM_SERVERS; i++) {
        out->mean_q[i] = sv[i].q_area / (horizon - measure_from);
        out->served[i] = sv[i].served;
        out->end_queue[i] = (uint32_t)sv[i].qlen;
        free(sv[i].queue);
    }
    free(waits);
    voro_lb_destroy(&p.lb);
}

static void print_result(const char *name, const struct sim_result *r)
{
    printf("# %-22s p99 wait %7.3f s; mean queue %.2f %.2f %.2f %.2f; served %u %u %u %u; end queue %u %u %u %u\n",
           name, r->p99_wait, r->mean_q[0], r->mean_q[1], r->mean_q[2], r->mean_q[3], r->served[0], r->served[1],
           r->served[2], r->served[3], r->end_queue[0], r->end_queue[1], r->end_queue[2], r->end_queue[3]);
}

static void check_gpu_aware(const struct sim_result *lc, const struct sim_result *ga)
{
    /* least connections equalises in-flight counts, so the quarter-speed server keeps a queue */
    assert_true(lc->p99_wait > 1.0);
    assert_true(lc->mean_q[3] > 1.0);
    assert_true(ga->p99_wait <= 0.3 * lc->p99_wait);
    uint32_t total = 0;
    for (int i = 0; i < SIM_SERVERS; i++) {
        assert_true(ga->mean_q[i] < 0.5); /* no standing queue anywhere */
        assert_true(ga->end_queue[i] <= 2);
        total += ga->served[i];
    }
    /* traffic follows throughput capacity: 24 : 24 : 8 : 2.5 */
    const double share[SIM_SERVERS] = {24 / 58.5, 24 / 58.5, 8 / 58.5, 2.5 / 58.5};
    for (int i = 0; i < SIM_SERVERS; i++) {
        double got = (double)ga->served[i] / (double)total;
        assert_true(got > 0.6 * share[i] && got < 1.4 * share[i]);
    }
}

static void test_gpu_aware_simulation(void **state)
{
    (void)state;
    struct sim_result lc, ga, ga_learned;
    simulate(VORO_LB_LEAST_CONNECTIONS, 1, &lc);
    simulate(VORO_LB_GPU_AWARE, 1, &ga);
    simulate(VORO_LB_GPU_AWARE, 0, &ga_learned);
    print_result("least_connections", &lc);
    print_result("gpu_aware (configured)", &ga);
    print_result("gpu_aware (learned)", &ga_learned);
    check_gpu_aware(&lc, &ga);
    check_gpu_aware(&lc, &ga_learned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_accounting),
        cmocka_unit_test(test_filters_every_algorithm),
        cmocka_unit_test(test_slow_start_exact),
        cmocka_unit_test(test_ewma),
        cmocka_unit_test(test_queue_length),
        cmocka_unit_test(test_gpu_aware_basics),
        cmocka_unit_test(test_gpu_aware_simulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
