/* Unit tests for cluster/health_check: rise/fall on a real loopback listener, passive failures, config swaps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/control.h"
#include "cluster/health_check.h"
#include "common/clock.h"

struct event {
    size_t pool, server;
    bool up;
    char reason[64];
};

struct recorder {
    struct event ev[64];
    size_t n;
};

static void record(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct recorder *r = ctx;
    if (r->n < 64) {
        r->ev[r->n] = (struct event){.pool = pool, .server = server, .up = up};
        snprintf(r->ev[r->n].reason, sizeof(r->ev[r->n].reason), "%s", reason);
        r->n++;
    }
}

/* Runs the loop until the recorder holds `n` events, at most 10 s. */
static bool run_until(uv_loop_t *loop, struct recorder *r, size_t n)
{
    uint64_t deadline = voro_now_ms() + 10000;
    while (r->n < n && voro_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    return r->n >= n;
}

static int listen_on(uint16_t port, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    if (bound)
        *bound = ntohs(sa.sin_port);
    return fd;
}

static void set_server(struct voro_server_config *s, const char *name, uint16_t port)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addr.len = sizeof(*sin);
    snprintf(s->addr.text, sizeof(s->addr.text), "127.0.0.1:%u", (unsigned)port);
    s->weight = 1;
}

static void set_pool(struct voro_pool_config *p, const char *name, struct voro_server_config *servers, size_t n,
                     enum voro_health_type type)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->servers = servers;
    p->n_servers = n;
    p->health = (struct voro_health_config){.type = type, .interval_ms = 20, .timeout_ms = 500, .rise = 2, .fall = 3};
}

static void finish_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_fall_rise_on_real_socket(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_on(0, &port);
    close(lfd); /* a port that nobody listens on now */

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv;
    set_server(&srv, "a", port);
    struct voro_pool_config pool;
    set_pool(&pool, "p", &srv, 1, VORO_HEALTH_CHECK_TCP);
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    assert_true(voro_health_server_up(h, 0, 0, NULL)); /* starts up */

    /* refused -> down after `fall` failed checks */
    assert_true(run_until(&loop, &rec, 1));
    assert_false(rec.ev[0].up);
    assert_string_equal(rec.ev[0].reason, "connect refused");
    assert_int_equal(rec.ev[0].pool, 0);
    assert_int_equal(rec.ev[0].server, 0);
    const char *reason;
    assert_false(voro_health_server_up(h, 0, 0, &reason));

    /* listener back -> up after `rise` */
    lfd = listen_on(port, NULL);
    assert_true(run_until(&loop, &rec, 2));
    assert_true(rec.ev[1].up);
    assert_string_equal(rec.ev[1].reason, "ok");
    assert_true(voro_health_server_up(h, 0, 0, &reason));

    /* closed again -> down again */
    close(lfd);
    assert_true(run_until(&loop, &rec, 3));
    assert_false(rec.ev[2].up);
    assert_string_equal(rec.ev[2].reason, "connect refused");

    voro_health_destroy(h);
    finish_loop(&loop);
}

static void test_passive_failures_count_toward_fall(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_on(0, &port);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv[2];
    set_server(&srv[0], "a", port);
    set_server(&srv[1], "b", port);
    struct voro_pool_config pools[2];
    set_pool(&pools[0], "p", &srv[0], 1, VORO_HEALTH_CHECK_TCP);
    set_pool(&pools[1], "none", &srv[1], 1, VORO_HEALTH_CHECK_NONE);
    struct voro_config cfg = {.pools = pools, .n_pools = 2};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);

    /* no loop turn in between: only passive reports count here */
    voro_health_report_failure(h, 0, 0);
    voro_health_report_failure(h, 0, 0);
    assert_int_equal(rec.n, 0);
    voro_health_report_failure(h, 0, 0);
    assert_int_equal(rec.n, 1);
    assert_false(rec.ev[0].up);
    assert_string_equal(rec.ev[0].reason, "passive failure");
    /* type none: never down; out-of-range indices ignored */
    for (int i = 0; i < 5; i++)
        voro_health_report_failure(h, 1, 0);
    voro_health_report_failure(h, 7, 0);
    voro_health_report_failure(h, 0, 9);
    assert_int_equal(rec.n, 1);
    assert_true(voro_health_server_up(h, 1, 0, NULL));

    /* active checks against the live listener bring it back */
    assert_true(run_until(&loop, &rec, 2));
    assert_true(rec.ev[1].up);
    assert_string_equal(rec.ev[1].reason, "ok");

    voro_health_destroy(h);
    finish_loop(&loop);
    close(lfd);
}

static void test_set_config_keeps_state(void **state)
{
    (void)state;
    uint16_t dead, live;
    int lfd = listen_on(0, &dead);
    close(lfd);
    lfd = listen_on(0, &live);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config s1[1];
    set_server(&s1[0], "dead", dead);
    struct voro_pool_config p1;
    set_pool(&p1, "p", s1, 1, VORO_HEALTH_CHECK_TCP);
    p1.health.interval_ms = 3600000; /* only passive reports and the first (jittered) check */
    struct voro_config c1 = {.pools = &p1, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &c1), 0);
    for (int i = 0; i < 3; i++)
        voro_health_report_failure(h, 0, 0);
    assert_int_equal(rec.n, 1);

    /* new config: a live server inserted first, the dead one moves to index 1 and stays down */
    struct voro_server_config s2[2];
    set_server(&s2[0], "live", live);
    set_server(&s2[1], "dead", dead);
    struct voro_pool_config p2;
    set_pool(&p2, "p", s2, 2, VORO_HEALTH_CHECK_TCP);
    p2.health.interval_ms = 3600000;
    struct voro_config c2 = {.pools = &p2, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &c2), 0);
    assert_int_equal(rec.n, 2); /* re-announced under its new index */
    assert_false(rec.ev[1].up);
    assert_int_equal(rec.ev[1].server, 1);
    assert_true(voro_health_server_up(h, 0, 0, NULL));
    assert_false(voro_health_server_up(h, 0, 1, NULL));

    /* a different pool name is a different target: starts up */
    set_pool(&p2, "q", s2, 2, VORO_HEALTH_CHECK_TCP);
    assert_int_equal(voro_health_set_config(h, &c2), 0);
    assert_int_equal(rec.n, 2);
    assert_true(voro_health_server_up(h, 0, 1, NULL));
    assert_int_equal(voro_health_set_config(h, NULL), 0);

    voro_health_destroy(h);
    finish_loop(&loop);
    close(lfd);
}

/* A listener that never accepts, with its accept queue full: the kernel drops further SYNs. */
static void test_connect_timeout(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t len = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv;
    set_server(&srv, "a", ntohs(sa.sin_port));
    struct voro_pool_config pool;
    set_pool(&pool, "p", &srv, 1, VORO_HEALTH_CHECK_TCP);
    pool.health.timeout_ms = 30;
    pool.health.interval_ms = 40;
    pool.health.fall = 2;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    assert_true(run_until(&loop, &rec, 1));
    assert_false(rec.ev[0].up);
    assert_string_equal(rec.ev[0].reason, "connect timeout");
    voro_health_destroy(h);
    finish_loop(&loop);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

/* Through the control plane: passive reports from another thread reach on_health via uv_async. */
struct ctl_state {
    atomic_int downs;
    atomic_int ups;
};

static void ctl_health(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct ctl_state *st = ctx;
    (void)pool;
    (void)server;
    if (!up && strcmp(reason, "passive failure") == 0)
        atomic_fetch_add(&st->downs, 1);
    if (up)
        atomic_fetch_add(&st->ups, 1);
}

static void *run_thread(void *arg)
{
    voro_control_run(arg);
    return NULL;
}

static void test_control_report_failure(void **state)
{
    (void)state;
    uint16_t live;
    int lfd = listen_on(0, &live);
    struct voro_server_config srv;
    set_server(&srv, "a", live);
    struct voro_pool_config pool;
    set_pool(&pool, "p", &srv, 1, VORO_HEALTH_CHECK_TCP);
    pool.health.interval_ms = 3600000;
    pool.health.fall = 1; /* one report decides, whatever the live listener's checks say meanwhile */
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
    atomic_init(&st.downs, 0);
    atomic_init(&st.ups, 0);
    struct voro_control_hooks hooks = {.ctx = &st, .on_health = ctl_health};
    struct voro_control *c;
    assert_int_equal(voro_control_create(&c, &cfg, &hooks), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, c), 0);
    voro_control_report_failure(c, 0, 0);
    for (int i = 0; i < 1000 && atomic_load(&st.downs) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&st.downs), 1);
    voro_control_stop(c);
    pthread_join(th, NULL);
    assert_int_equal(voro_control_destroy(c), 0);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fall_rise_on_real_socket),
        cmocka_unit_test(test_passive_failures_count_toward_fall),
        cmocka_unit_test(test_set_config_keeps_state),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_control_report_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
