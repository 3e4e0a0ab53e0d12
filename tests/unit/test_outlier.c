/* Unit tests for cluster/outlier (pure ejection logic) and ejection through the health module's verdicts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "cluster/control.h"
#include "cluster/health_check.h"
#include "cluster/outlier.h"
#include "common/clock.h"

static void fail_n(struct voro_outlier *o, size_t server, int n, uint64_t now, int *ejections, uint64_t *last_ms)
{
    for (int i = 0; i < n; i++) {
        uint64_t d = 0;
        if (voro_outlier_failure(o, server, now, &d)) {
            (*ejections)++;
            *last_ms = d;
        }
    }
}

static void test_ejects_after_consecutive(void **state)
{
    (void)state;
    struct voro_outlier o;
    assert_int_equal(voro_outlier_init(&o, 4, 5, 1000, 50), 0);
    int ej = 0;
    uint64_t d = 0;
    fail_n(&o, 0, 4, 100, &ej, &d);
    assert_int_equal(ej, 0);
    assert_false(voro_outlier_is_ejected(&o, 0));
    fail_n(&o, 0, 1, 100, &ej, &d);
    assert_int_equal(ej, 1);
    assert_int_equal(d, 1000);
    assert_true(voro_outlier_is_ejected(&o, 0));
    /* late failures while ejected change nothing */
    fail_n(&o, 0, 10, 200, &ej, &d);
    assert_int_equal(ej, 1);
    /* not yet */
    assert_int_equal(voro_outlier_expire(&o, 1099, NULL, NULL), 0);
    assert_int_equal(voro_outlier_expire(&o, 1100, NULL, NULL), 1);
    assert_false(voro_outlier_is_ejected(&o, 0));
    voro_outlier_destroy(&o);
}

static void test_success_resets_streak(void **state)
{
    (void)state;
    struct voro_outlier o;
    assert_int_equal(voro_outlier_init(&o, 2, 3, 1000, 100), 0);
    int ej = 0;
    uint64_t d = 0;
    for (int round = 0; round < 5; round++) {
        fail_n(&o, 1, 2, 10, &ej, &d);
        voro_outlier_success(&o, 1);
    }
    assert_int_equal(ej, 0);
    fail_n(&o, 1, 3, 10, &ej, &d);
    assert_int_equal(ej, 1);
    voro_outlier_destroy(&o);
}

static void test_ejection_time_doubles_and_caps(void **state)
{
    (void)state;
    struct voro_outlier o;
    assert_int_equal(voro_outlier_init(&o, 2, 1, 30000, 50), 0);
    uint64_t now = 1000, expect = 30000;
    for (int i = 0; i < 8; i++) {
        int ej = 0;
        uint64_t d = 0;
        fail_n(&o, 0, 1, now, &ej, &d);
        assert_int_equal(ej, 1);
        assert_int_equal(d, expect);
        now += d;
        assert_int_equal(voro_outlier_expire(&o, now, NULL, NULL), 1);
        expect = expect * 2 > VORO_OUTLIER_MAX_EJECT_MS ? VORO_OUTLIER_MAX_EJECT_MS : expect * 2;
    }
    assert_int_equal(expect, VORO_OUTLIER_MAX_EJECT_MS);
    /* a long quiet period forgets the history */
    now += VORO_OUTLIER_MAX_EJECT_MS;
    int ej = 0;
    uint64_t d = 0;
    fail_n(&o, 0, 1, now, &ej, &d);
    assert_int_equal(d, 30000);
    voro_outlier_destroy(&o);
}

static void test_max_percent_cap(void **state)
{
    (void)state;
    struct voro_outlier o;
    assert_int_equal(voro_outlier_init(&o, 4, 2, 1000, 50), 0);
    assert_int_equal(voro_outlier_max_ejected(&o), 2);
    int ej = 0;
    uint64_t d = 0;
    for (size_t s = 0; s < 4; s++)
        fail_n(&o, s, 2, 0, &ej, &d);
    assert_int_equal(ej, 2);
    assert_int_equal(o.n_ejected, 2);
    assert_false(voro_outlier_is_ejected(&o, 2));
    assert_false(voro_outlier_is_ejected(&o, 3));
    /* once one comes back, the next failure of a capped server ejects it (its streak was kept) */
    assert_int_equal(voro_outlier_expire(&o, 1000, NULL, NULL), 2);
    fail_n(&o, 3, 1, 1000, &ej, &d);
    assert_int_equal(ej, 3);
    assert_true(voro_outlier_is_ejected(&o, 3));
    voro_outlier_destroy(&o);

    /* a single-server pool at 50%: never ejected; off when consecutive is 0 */
    assert_int_equal(voro_outlier_init(&o, 1, 1, 1000, 50), 0);
    ej = 0;
    fail_n(&o, 0, 10, 0, &ej, &d);
    assert_int_equal(ej, 0);
    voro_outlier_destroy(&o);
    assert_int_equal(voro_outlier_init(&o, 4, 0, 1000, 100), 0);
    fail_n(&o, 0, 100, 0, &ej, &d);
    assert_int_equal(ej, 0);
    voro_outlier_destroy(&o);
}

/* Through voro_health: verdicts with the documented reasons, un-ejection by the timer. */
struct event {
    size_t server;
    bool up;
    char reason[96];
};

struct recorder {
    struct event ev[64];
    size_t n;
};

static void record(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    (void)pool;
    struct recorder *r = ctx;
    if (r->n < 64) {
        r->ev[r->n] = (struct event){.server = server, .up = up};
        snprintf(r->ev[r->n].reason, sizeof(r->ev[r->n].reason), "%s", reason);
        r->n++;
    }
}

static bool run_until(uv_loop_t *loop, struct recorder *r, size_t n)
{
    uint64_t deadline = voro_now_ms() + 10000;
    while (r->n < n && voro_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    return r->n >= n;
}

static void set_server(struct voro_server_config *s, uint16_t port)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "s%u", (unsigned)port);
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addr.len = sizeof(*sin);
    snprintf(s->addr.text, sizeof(s->addr.text), "127.0.0.1:%u", (unsigned)port);
    s->weight = 1;
}

static void test_health_ejection_verdicts(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv[4];
    for (int i = 0; i < 4; i++)
        set_server(&srv[i], (uint16_t)(1 + i)); /* never connected: health type NONE */
    struct voro_pool_config pool;
    memset(&pool, 0, sizeof(pool));
    snprintf(pool.name, sizeof(pool.name), "p");
    pool.servers = srv;
    pool.n_servers = 4;
    pool.health.type = VORO_HEALTH_CHECK_NONE;
    pool.l7.eject_consecutive = 5;
    pool.l7.eject_base_ms = 200;
    pool.l7.eject_max_percent = 50;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);

    for (int i = 0; i < 4; i++)
        voro_health_report_failure_kind(h, 0, 0, VORO_FAILURE_5XX);
    voro_health_report_success(h, 0, 0); /* resets the streak */
    for (int i = 0; i < 4; i++)
        voro_health_report_failure_kind(h, 0, 0, VORO_FAILURE_5XX);
    assert_int_equal(rec.n, 0);
    voro_health_report_failure_kind(h, 0, 0, VORO_FAILURE_5XX);
    assert_int_equal(rec.n, 1);
    assert_false(rec.ev[0].up);
    assert_string_equal(rec.ev[0].reason, "ejected: 5 consecutive failures (200ms)");
    assert_true(voro_health_server_ejected(h, 0, 0));
    const char *reason;
    assert_false(voro_health_server_up(h, 0, 0, &reason));

    /* cap: 2 of 4 */
    for (int i = 0; i < 5; i++) {
        voro_health_report_failure(h, 0, 1);
        voro_health_report_failure(h, 0, 2);
    }
    assert_int_equal(rec.n, 2);
    assert_true(voro_health_server_ejected(h, 0, 1));
    assert_false(voro_health_server_ejected(h, 0, 2));

    /* both come back by the timer */
    assert_true(run_until(&loop, &rec, 4));
    for (size_t i = 2; i < 4; i++) {
        assert_true(rec.ev[i].up);
        assert_string_equal(rec.ev[i].reason, "ejection ended");
    }
    /* second ejection of server 0 lasts twice as long */
    for (int i = 0; i < 5; i++)
        voro_health_report_failure_kind(h, 0, 0, VORO_FAILURE_5XX);
    assert_int_equal(rec.n, 5);
    assert_string_equal(rec.ev[4].reason, "ejected: 5 consecutive failures (400ms)");

    voro_health_destroy(h);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Through the control plane: kinds and successes reported from another thread. */
struct ctl_state {
    atomic_int ejected;
    char reason[96];
};

static void ctl_health(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct ctl_state *st = ctx;
    (void)pool;
    (void)server;
    if (!up && strncmp(reason, "ejected:", 8) == 0) {
        snprintf(st->reason, sizeof(st->reason), "%s", reason);
        atomic_fetch_add(&st->ejected, 1);
    }
}

static void *run_thread(void *arg)
{
    voro_control_run(arg);
    return NULL;
}

static void test_control_reports(void **state)
{
    (void)state;
    struct voro_server_config srv[2];
    set_server(&srv[0], 1);
    set_server(&srv[1], 2);
    struct voro_pool_config pool;
    memset(&pool, 0, sizeof(pool));
    snprintf(pool.name, sizeof(pool.name), "p");
    pool.servers = srv;
    pool.n_servers = 2;
    pool.health.type = VORO_HEALTH_CHECK_NONE;
    pool.l7.eject_consecutive = 3;
    pool.l7.eject_base_ms = 60000;
    pool.l7.eject_max_percent = 50;
    struct voro_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.pools = &pool;
    cfg.n_pools = 1;
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.admin_bind.ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg.admin_bind.len = sizeof(*sin);
    snprintf(cfg.admin_bind.text, sizeof(cfg.admin_bind.text), "127.0.0.1:0");
    struct ctl_state st;
    memset(&st, 0, sizeof(st));
    atomic_init(&st.ejected, 0);
    struct voro_control_hooks hooks = {.ctx = &st, .on_health = ctl_health};
    struct voro_control *c;
    assert_int_equal(voro_control_create(&c, &cfg, &hooks), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, c), 0);
    /* interleaved successes keep server 0 in; many successes in a row coalesce */
    for (int round = 0; round < 10; round++) {
        voro_control_report_failure_kind(c, 0, 0, VORO_FAILURE_5XX);
        voro_control_report_failure(c, 0, 0);
        for (int i = 0; i < 100; i++)
            voro_control_report_success(c, 0, 0);
    }
    /* three in a row eject server 1 */
    voro_control_report_failure_kind(c, 0, 1, VORO_FAILURE_5XX);
    voro_control_report_failure_kind(c, 0, 1, VORO_FAILURE_5XX);
    voro_control_report_failure(c, 0, 1);
    for (int i = 0; i < 1000 && atomic_load(&st.ejected) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    voro_control_stop(c);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&st.ejected), 1);
    assert_string_equal(st.reason, "ejected: 3 consecutive failures (60s)");
    assert_true(voro_control_server_up(c, 0, 0, NULL));
    assert_false(voro_control_server_up(c, 0, 1, NULL));
    assert_int_equal(voro_control_destroy(c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ejects_after_consecutive),
        cmocka_unit_test(test_success_resets_streak),
        cmocka_unit_test(test_ejection_time_doubles_and_caps),
        cmocka_unit_test(test_max_percent_cap),
        cmocka_unit_test(test_health_ejection_verdicts),
        cmocka_unit_test(test_control_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
