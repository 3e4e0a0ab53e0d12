/* Unit tests for cluster/metrics_scrape and cluster/model_list: gpusim as a real backend, an in-test server for failures. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "cluster/control.h"
#include "cluster/metrics_scrape.h"
#include "cluster/model_list.h"
#include "common/clock.h"
#include "mini_http_server.h"

/* ---- model_list ------------------------------------------------------------------------- */

static void test_model_list_parse(void **state)
{
    (void)state;
    char ids[4][VORO_MODEL_ID_MAX];
    size_t n;
    int trunc;
    const char *vllm = "{\"object\":\"list\",\"data\":[{\"id\":\"llama\",\"object\":\"model\",\"root\":\"llama\","
                       "\"permission\":[{\"id\":\"modelperm-1\",\"object\":\"model_permission\"}]},"
                       "{\"object\":\"model\",\"id\":\"lo\\\"ra\",\"parent\":\"llama\"}]}";
    assert_int_equal(voro_model_list_parse(vllm, strlen(vllm), ids, 4, &n, &trunc), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "llama");
    assert_string_equal(ids[1], "lo\"ra");
    assert_int_equal(trunc, 0);

    const char *many = "{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}],\"id\":\"top\"}";
    assert_int_equal(voro_model_list_parse(many, strlen(many), ids, 2, &n, &trunc), 0);
    assert_int_equal(n, 2);
    assert_int_equal(trunc, 1);

    const char *empty = " {\"object\":\"list\",\"data\":[]}";
    assert_int_equal(voro_model_list_parse(empty, strlen(empty), ids, 4, &n, NULL), 0);
    assert_int_equal(n, 0);

    const char *bad[] = {"", "[]", "{\"data\":{\"id\":\"x\"}}", "{\"data\":[{\"id\":\"x\"}", "{\"data\":[}", "{\"id\":\"x\"}",
                         "{\"data\":[{\"id\":\"unterminated}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(voro_model_list_parse(bad[i], strlen(bad[i]), ids, 4, &n, NULL), -EINVAL);
    /* nesting bound */
    char deep[100];
    memset(deep, '[', sizeof(deep));
    deep[0] = '{';
    assert_int_equal(voro_model_list_parse(deep, sizeof(deep), ids, 4, &n, NULL), -EINVAL);
}

/* ---- scrapes ------------------------------------------------------------------------------- */

struct seen {
    int metrics[2];             /* good scrapes per server */
    struct voro_engine_metrics last[2];
    uint64_t last_ms[2];
    int models_calls;
    size_t n_models;
    char models[8][VORO_MODEL_ID_MAX];
};

static void on_metrics(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms)
{
    struct seen *s = ctx;
    assert_int_equal(pool, 0);
    assert_true(server < 2);
    s->metrics[server]++;
    s->last[server] = *m;
    s->last_ms[server] = mono_ms;
}

static void on_models(void *ctx, size_t pool, size_t server, const char *const *ids, size_t n)
{
    struct seen *s = ctx;
    assert_int_equal(pool, 0);
    assert_int_equal(server, 0);
    s->models_calls++;
    s->n_models = n < 8 ? n : 8;
    for (size_t i = 0; i < s->n_models; i++)
        snprintf(s->models[i], sizeof(s->models[i]), "%s", ids[i]);
}

struct gpusim {
    pid_t pid;
    uint16_t port;
};

static void gpusim_start(struct gpusim *g)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char path[4200];
    snprintf(path, sizeof(path), "%s/gpusim/gpusim", dirname(exe));
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    g->pid = fork();
    assert_true(g->pid >= 0);
    if (g->pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execl(path, "gpusim", "--port", "0", "--max-batch", "1", "--step-ms", "20", "--name", "g", "--models",
              "llama,llama-70b@v2,lora:llama-sql", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[512];
    size_t len = 0;
    g->port = 0;
    uint64_t deadline = voro_now_ms() + 10000;
    while (!g->port && voro_now_ms() < deadline && len + 1 < sizeof(line)) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(pfd[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = '\0';
        const char *at = strstr(line, "listening on 127.0.0.1:");
        if (at && strchr(at, ' ' ) && strchr(at + 23, ' '))
            g->port = (uint16_t)atoi(at + 23);
    }
    close(pfd[0]);
    assert_true(g->port != 0);
}

static void gpusim_stop(struct gpusim *g)
{
    kill(g->pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(g->pid, &st, 0), g->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A long completion on its own connection: it occupies gpusim's one batch slot until closed. */
static int long_request(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *body = "{\"model\":\"llama\",\"prompt\":\"x\",\"max_tokens\":60000}";
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    return fd;
}

/* Runs the loop until a good scrape of server 0 shows running/waiting (bounded: 10 s). */
static bool run_until_load(uv_loop_t *loop, struct seen *s, double running, double waiting)
{
    uint64_t deadline = voro_now_ms() + 10000;
    while (voro_now_ms() < deadline) {
        int before = s->metrics[0];
        uv_run(loop, UV_RUN_ONCE);
        if (s->metrics[0] != before && s->last[0].running == running && s->last[0].queue_depth == waiting)
            return true;
    }
    return false;
}

static void set_server(struct voro_server_config *s, uint16_t port, uint16_t metrics_port)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "s%u", (unsigned)port);
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addr.len = sizeof(*sin);
    snprintf(s->addr.text, sizeof(s->addr.text), "127.0.0.1:%u", (unsigned)port);
    snprintf(s->metrics_url, sizeof(s->metrics_url), "http://127.0.0.1:%u/metrics", (unsigned)metrics_port);
    s->weight = 1;
}

static void test_scrape_gpusim(void **state)
{
    (void)state;
    struct gpusim g;
    gpusim_start(&g);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    struct voro_scrape_hooks hooks = {.ctx = &seen, .on_metrics = on_metrics, .on_models = on_models};
    struct voro_scrape *sc;
    assert_int_equal(voro_scrape_create(&sc, &loop, &hooks), 0);
    struct voro_server_config srv;
    set_server(&srv, g.port, g.port);
    struct voro_pool_config pool;
    memset(&pool, 0, sizeof(pool));
    snprintf(pool.name, sizeof(pool.name), "p");
    pool.servers = &srv;
    pool.n_servers = 1;
    pool.l7.metrics_interval_ms = 50;
    pool.l7.learn_models = true;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_scrape_set_config(sc, &cfg), 0);

    /* idle, and the model list */
    assert_true(run_until_load(&loop, &seen, 0, 0));
    uint64_t deadline = voro_now_ms() + 10000;
    while (seen.models_calls == 0 && voro_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(seen.n_models, 3);
    assert_string_equal(seen.models[0], "llama");
    assert_string_equal(seen.models[1], "llama-70b");
    assert_string_equal(seen.models[2], "llama-sql");
    const struct voro_engine_metrics *m = &seen.last[0];
    assert_true(m->present & VORO_ENGINE_HAS(VORO_ENGINE_RUNNING));
    assert_true(m->present & VORO_ENGINE_HAS(VORO_ENGINE_QUEUE_DEPTH));
    assert_true(m->present & VORO_ENGINE_HAS(VORO_ENGINE_KV_CACHE_USAGE));
    assert_true(m->present & VORO_ENGINE_HAS(VORO_ENGINE_GPU_UTIL));
    assert_true(m->present & VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_FREE));
    assert_true(seen.last_ms[0] > 0 && seen.last_ms[0] <= voro_now_ms());

    /* one long request runs (batch of 1), a second one waits */
    int a = long_request(g.port);
    assert_true(run_until_load(&loop, &seen, 1, 0));
    assert_true(seen.last[0].gpu_util > 0);
    int b = long_request(g.port);
    assert_true(run_until_load(&loop, &seen, 1, 1));
    /* disconnects cancel both */
    close(a);
    close(b);
    assert_true(run_until_load(&loop, &seen, 0, 0));

    voro_scrape_destroy(sc);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
    gpusim_stop(&g);
}

static void test_failed_scrape_publishes_nothing(void **state)
{
    (void)state;
    struct mini_server ms;
    mini_start(&ms, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 57\r\n\r\n"
                    "vllm:num_requests_running 3\nvllm:num_requests_waiting 7\n\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen seen;
    memset(&seen, 0, sizeof(seen));
    struct voro_scrape_hooks hooks = {.ctx = &seen, .on_metrics = on_metrics};
    struct voro_scrape *sc;
    assert_int_equal(voro_scrape_create(&sc, &loop, &hooks), 0);
    struct voro_server_config srv[2];
    set_server(&srv[0], 1, ms.port);
    set_server(&srv[1], 2, ms.port);
    snprintf(srv[1].metrics_url, sizeof(srv[1].metrics_url), "not a url"); /* skipped, never scraped */
    struct voro_pool_config pool;
    memset(&pool, 0, sizeof(pool));
    snprintf(pool.name, sizeof(pool.name), "p");
    pool.servers = srv;
    pool.n_servers = 2;
    pool.l7.metrics_interval_ms = 20;
    struct voro_config cfg = {.pools = &pool, .n_pools = 1};
    assert_int_equal(voro_scrape_set_config(sc, &cfg), 0);
    uint64_t deadline = voro_now_ms() + 10000;
    while (seen.metrics[0] == 0 && voro_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(seen.metrics[0], 1);
    assert_true(seen.last[0].running == 3 && seen.last[0].queue_depth == 7);

    /* 500, then a body that is not Prometheus text: requests go on, nothing is published */
    const char *bad[] = {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{not: \"prom\""};
    for (int k = 0; k < 2; k++) {
        mini_set(&ms, MINI_RESPOND, bad[k]);
        /* a request may already be in flight with the good answer: count from the next one */
        int from = atomic_load(&ms.requests) + 1;
        int published = -1;
        deadline = voro_now_ms() + 10000;
        while (atomic_load(&ms.requests) < from + 4 && voro_now_ms() < deadline) {
            if (published < 0 && atomic_load(&ms.requests) >= from + 1)
                published = seen.metrics[0];
            uv_run(&loop, UV_RUN_ONCE);
        }
        assert_true(atomic_load(&ms.requests) >= from + 4);
        assert_true(published >= 0);
        assert_true(seen.metrics[0] <= published + 1); /* at most the answer in flight when switching */
        assert_true(seen.last[0].running == 3 && seen.last[0].queue_depth == 7);
    }
    assert_int_equal(seen.metrics[1], 0);

    voro_scrape_destroy(sc);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
    mini_stop(&ms);
}

/* Through the control plane: its scraper feeds the on_metrics hook on the control thread. */
struct ctl_seen {
    atomic_int metrics;
    atomic_int running;
};

static void ctl_metrics(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms)
{
    struct ctl_seen *c = ctx;
    (void)pool;
    (void)server;
    (void)mono_ms;
    atomic_store(&c->running, (int)m->running);
    atomic_fetch_add(&c->metrics, 1);
}

static void *run_thread(void *arg)
{
    voro_control_run(arg);
    return NULL;
}

static void test_control_on_metrics(void **state)
{
    (void)state;
    struct mini_server ms;
    mini_start(&ms, "HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\nvllm:num_requests_running 4\n");
    struct voro_server_config srv;
    set_server(&srv, 1, ms.port);
    struct voro_pool_config pool;
    memset(&pool, 0, sizeof(pool));
    snprintf(pool.name, sizeof(pool.name), "p");
    pool.servers = &srv;
    pool.n_servers = 1;
    pool.l7.metrics_interval_ms = 20;
    struct voro_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.pools = &pool;
    cfg.n_pools = 1;
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.admin_bind.ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg.admin_bind.len = sizeof(*sin);
    snprintf(cfg.admin_bind.text, sizeof(cfg.admin_bind.text), "127.0.0.1:0");
    struct ctl_seen cs;
    atomic_init(&cs.metrics, 0);
    atomic_init(&cs.running, 0);
    struct voro_control_hooks hooks = {.ctx = &cs, .on_metrics = ctl_metrics};
    struct voro_control *c;
    assert_int_equal(voro_control_create(&c, &cfg, &hooks), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, c), 0);
    for (int i = 0; i < 1000 && atomic_load(&cs.metrics) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    voro_control_stop(c);
    pthread_join(th, NULL);
    assert_true(atomic_load(&cs.metrics) >= 1);
    assert_int_equal(atomic_load(&cs.running), 4);
    assert_int_equal(voro_control_destroy(c), 0);
    mini_stop(&ms);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_list_parse),
        cmocka_unit_test(test_scrape_gpusim),
        cmocka_unit_test(test_failed_scrape_publishes_nothing),
        cmocka_unit_test(test_control_on_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
