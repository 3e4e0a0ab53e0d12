/* Unit tests for cluster/health_check's L7 parts: HTTP and script checks, warm-up gating, slow-start ramps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cluster/health_check.h"
#include "common/clock.h"
#include "mini_http_server.h"

struct event {
    size_t pool, server;
    bool up;
    char reason[96];
    int posts_seen; /* mini server POSTs when the event came */
};

struct recorder {
    struct event ev[64];
    size_t n;
    uint32_t weights[256];
    size_t n_weights;
    struct mini_server *m;
};

static void record(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct recorder *r = ctx;
    if (r->n < 64) {
        r->ev[r->n] = (struct event){.pool = pool, .server = server, .up = up};
        snprintf(r->ev[r->n].reason, sizeof(r->ev[r->n].reason), "%s", reason);
        r->ev[r->n].posts_seen = r->m ? atomic_load(&r->m->posts) : 0;
        r->n++;
    }
}

static void record_weight(void *ctx, size_t pool, size_t server, uint32_t permille)
{
    (void)pool;
    (void)server;
    struct recorder *r = ctx;
    if (r->n_weights < 256)
        r->weights[r->n_weights++] = permille;
}

static bool run_until(uv_loop_t *loop, struct recorder *r, size_t n)
{
    uint64_t deadline = voro_now_ms() + 10000;
    while (r->n < n && voro_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    return r->n >= n;
}

/* Runs the loop until the server's current reason is `want` (bounded: 10 s). */
static bool run_until_reason(uv_loop_t *loop, struct voro_health *h, size_t pool, const char *want)
{
    uint64_t deadline = voro_now_ms() + 10000;
    const char *reason = "";
    while (voro_now_ms() < deadline) {
        voro_health_server_up(h, pool, 0, &reason);
        if (strcmp(reason, want) == 0)
            return true;
        uv_run(loop, UV_RUN_ONCE);
    }
    print_error("reason is \"%s\", wanted \"%s\"\n", reason, want);
    return false;
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

static void set_pool(struct voro_pool_config *p, const char *name, struct voro_server_config *servers, size_t n,
                     enum voro_health_type type)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->servers = servers;
    p->n_servers = n;
    p->health = (struct voro_health_config){.type = type, .interval_ms = 20, .timeout_ms = 300, .rise = 1, .fall = 1};
}

static void finish_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(loop), 0);
}

#define OK_RESPONSE "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"

static void test_http_check_reasons(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, OK_RESPONSE);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv;
    set_server(&srv, m.port);
    struct voro_pool_config pool;
    set_pool(&pool, "p", &srv, 1, VORO_HEALTH_CHECK_HTTP);
    snprintf(pool.health.path, sizeof(pool.health.path), "/healthz");
    snprintf(pool.health.expect_body, sizeof(pool.health.expect_body), "\"ok\"");
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    assert_true(run_until_reason(&loop, h, 0, "ok"));
    assert_int_equal(rec.n, 0);
    pthread_mutex_lock(&m.lock);
    assert_non_null(strstr(m.last_request, "GET /healthz HTTP/1.1\r\n"));
    pthread_mutex_unlock(&m.lock);

    mini_set(&m, MINI_RESPOND, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    assert_true(run_until(&loop, &rec, 1));
    assert_false(rec.ev[0].up);
    assert_string_equal(rec.ev[0].reason, "http 503");

    mini_set(&m, MINI_RESPOND, OK_RESPONSE);
    assert_true(run_until(&loop, &rec, 2));
    assert_true(rec.ev[1].up);
    assert_string_equal(rec.ev[1].reason, "ok");

    mini_set(&m, MINI_RESPOND, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnope");
    assert_true(run_until(&loop, &rec, 3));
    assert_false(rec.ev[2].up);
    assert_string_equal(rec.ev[2].reason, "body mismatch");

    mini_set(&m, MINI_RESPOND, OK_RESPONSE);
    assert_true(run_until(&loop, &rec, 4));
    assert_true(rec.ev[3].up);

    mini_set(&m, MINI_HANG, NULL);
    assert_true(run_until(&loop, &rec, 5));
    assert_false(rec.ev[4].up);
    assert_string_equal(rec.ev[4].reason, "timeout");

    mini_stop(&m);
    assert_true(run_until_reason(&loop, h, 0, "connect refused"));
    voro_health_destroy(h);
    finish_loop(&loop);
}

static void test_script_checks(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv[4];
    for (int i = 0; i < 4; i++)
        set_server(&srv[i], 12345);
    struct voro_pool_config pools[4];
    const char *scripts[4] = {"/usr/bin/test {host}:{port} = 127.0.0.1:12345", "/bin/false", "/bin/sleep 5",
                              "/nonexistent/voro-check"};
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "p%d", i);
        set_pool(&pools[i], name, &srv[i], 1, VORO_HEALTH_CHECK_SCRIPT);
        pools[i].health.interval_ms = 50;
        pools[i].health.timeout_ms = 100;
        snprintf(pools[i].health.script, sizeof(pools[i].health.script), "%s", scripts[i]);
    }
    struct voro_config cfg = {.pools = pools, .n_pools = 4};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    voro_health_report_failure(h, 0, 0); /* pool 0 down by a passive report; its script must bring it back */
    assert_int_equal(rec.n, 1);
    assert_true(run_until(&loop, &rec, 5));
    bool seen[4] = {false};
    for (size_t i = 1; i < 5; i++) {
        struct event *e = &rec.ev[i];
        seen[e->pool] = true;
        switch (e->pool) {
        case 0:
            assert_true(e->up);
            assert_string_equal(e->reason, "ok");
            break;
        case 1:
            assert_false(e->up);
            assert_string_equal(e->reason, "exit 1");
            break;
        case 2:
            assert_false(e->up);
            assert_string_equal(e->reason, "timeout");
            break;
        case 3:
            assert_false(e->up);
            assert_string_equal(e->reason, "spawn failed: no such file or directory");
            break;
        }
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i]);
    voro_health_destroy(h);
    finish_loop(&loop);
}

static void test_warmup_gates_up(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {.m = &m};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    struct voro_server_config srv;
    set_server(&srv, m.port);
    struct voro_model_ref models[2] = {{.name = "llama"}, {.name = "qwen"}};
    srv.models = models;
    srv.n_models = 2;
    struct voro_pool_config pool;
    set_pool(&pool, "p", &srv, 1, VORO_HEALTH_CHECK_TCP);
    pool.health.timeout_ms = 100; /* warm-up bound: 1 s */
    pool.health.interval_ms = 50;
    pool.l7.warmup = true;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);

    /* down, then the TCP check passes: warm-up answers 500, so it stays down */
    voro_health_report_failure(h, 0, 0);
    assert_int_equal(rec.n, 1);
    assert_true(run_until_reason(&loop, h, 0, "warm-up failed: http 500"));
    assert_int_equal(rec.n, 1);
    assert_false(voro_health_server_up(h, 0, 0, NULL));
    pthread_mutex_lock(&m.lock);
    assert_non_null(strstr(m.last_request, "POST /v1/completions HTTP/1.1\r\n"));
    assert_non_null(strstr(m.last_request, "\"max_tokens\":1"));
    pthread_mutex_unlock(&m.lock);

    /* the completions succeed: published up only now, after both models' requests */
    int posts_before = atomic_load(&m.posts);
    mini_set(&m, MINI_RESPOND, OK_RESPONSE);
    assert_true(run_until(&loop, &rec, 2));
    assert_true(rec.ev[1].up);
    assert_string_equal(rec.ev[1].reason, "ok");
    assert_true(rec.ev[1].posts_seen >= posts_before + 2);

    /* a hung server: up anyway once the warm-up times out, with the reason saying so */
    mini_set(&m, MINI_HANG, NULL);
    voro_health_report_failure(h, 0, 0);
    assert_int_equal(rec.n, 3);
    assert_true(run_until(&loop, &rec, 4));
    assert_true(rec.ev[3].up);
    assert_string_equal(rec.ev[3].reason, "warm-up timed out");

    voro_health_destroy(h);
    finish_loop(&loop);
    mini_stop(&m);
}

static void test_slow_start_ramp(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, OK_RESPONSE);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct recorder rec = {0};
    struct voro_health *h;
    assert_int_equal(voro_health_create(&h, &loop, record, &rec), 0);
    voro_health_set_weight_cb(h, record_weight);
    struct voro_server_config srv[2];
    set_server(&srv[0], m.port);
    set_server(&srv[1], m.port);
    snprintf(srv[1].addr.text, sizeof(srv[1].addr.text), "127.0.0.1:%u/second", (unsigned)m.port); /* distinct identity */
    struct voro_pool_config pool;
    set_pool(&pool, "p", srv, 1, VORO_HEALTH_CHECK_TCP);
    pool.l7.slow_start_ms = 600;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    assert_int_equal(rec.n_weights, 0); /* first config: full weight from the start */

    voro_health_report_failure(h, 0, 0);
    assert_true(run_until(&loop, &rec, 2)); /* down, then up by the check */
    assert_true(rec.ev[1].up);
    assert_true(rec.n_weights >= 1);
    assert_int_equal(rec.weights[0], 50);
    uint64_t deadline = voro_now_ms() + 10000;
    while ((rec.n_weights == 0 || rec.weights[rec.n_weights - 1] != 1000) && voro_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(rec.weights[rec.n_weights - 1], 1000);
    assert_true(rec.n_weights >= 3); /* intermediate steps */
    for (size_t i = 1; i < rec.n_weights; i++)
        assert_true(rec.weights[i] >= rec.weights[i - 1]);

    /* a server added by a later config ramps too */
    size_t before = rec.n_weights;
    pool.n_servers = 2;
    assert_int_equal(voro_health_set_config(h, &cfg), 0);
    assert_int_equal(rec.n_weights, before + 1);
    assert_int_equal(rec.weights[before], 50);

    voro_health_destroy(h);
    finish_loop(&loop);
    mini_stop(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_check_reasons),
        cmocka_unit_test(test_script_checks),
        cmocka_unit_test(test_warmup_gates_up),
        cmocka_unit_test(test_slow_start_ramp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
