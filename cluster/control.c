/* The control thread: owns the libuv loop, the admin server, health checks, signals and the tick timer. */
#include "cluster/control.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cluster/admin_server.h"
#include "cluster/health_check.h"
#include "cluster/metrics_scrape.h"
#include "common/log.h"

#define TICK_MS 100
/* Passive reports queued between two wake-ups; beyond that they are dropped (and counted):
 * a flood of failures already says "down" after `fall` of them. */
#define REPORT_QUEUE 1024

/* Successes only fill the queue up to this mark: failures keep room. */
#define REPORT_SUCCESS_MARK (REPORT_QUEUE * 3 / 4)

enum report_kind {
    REPORT_FAIL_CONNECT = VORO_FAILURE_CONNECT,
    REPORT_FAIL_5XX = VORO_FAILURE_5XX,
    REPORT_SUCCESS = 100,
};

struct report {
    size_t pool, server;
    int kind;
};

struct voro_control {
    uv_loop_t loop;
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t tick;
    uv_async_t async;
    struct voro_admin_server *admin;
    struct voro_health *health;
    struct voro_scrape *scrape;
    struct voro_control_hooks hooks;
    atomic_bool stop_requested;

    /* Passive failures from worker threads: a short critical section on a rare (error) path. */
    pthread_mutex_t report_lock;
    struct report reports[REPORT_QUEUE];
    size_t n_reports;
    atomic_ulong reports_dropped;
};

static void on_health(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct voro_control *c = ctx;
    VORO_INFO("health", "server %s pool=%zu server=%zu reason=\"%s\"", up ? "up" : "down", pool, server, reason);
    if (c->hooks.on_health)
        c->hooks.on_health(c->hooks.ctx, pool, server, up, reason);
}

static void on_weight(void *ctx, size_t pool, size_t server, uint32_t permille)
{
    struct voro_control *c = ctx;
    if (c->hooks.on_weight)
        c->hooks.on_weight(c->hooks.ctx, pool, server, permille);
}

static void on_metrics(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms)
{
    struct voro_control *c = ctx;
    if (c->hooks.on_metrics)
        c->hooks.on_metrics(c->hooks.ctx, pool, server, m, mono_ms);
}

static void on_models(void *ctx, size_t pool, size_t server, const char *const *ids, size_t n)
{
    struct voro_control *c = ctx;
    if (c->hooks.on_models)
        c->hooks.on_models(c->hooks.ctx, pool, server, ids, n);
}

static void on_signal(uv_signal_t *h, int signo)
{
    struct voro_control *c = h->data;
    if (signo == SIGHUP) {
        if (c->hooks.on_reload)
            c->hooks.on_reload(c->hooks.ctx);
    } else if (c->hooks.on_shutdown) {
        c->hooks.on_shutdown(c->hooks.ctx, signo);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct voro_control *c = t->data;
    if (c->hooks.on_tick)
        c->hooks.on_tick(c->hooks.ctx);
}

static void on_async(uv_async_t *a)
{
    struct voro_control *c = a->data;
    struct report batch[REPORT_QUEUE];
    size_t n;
    pthread_mutex_lock(&c->report_lock);
    n = c->n_reports;
    memcpy(batch, c->reports, n * sizeof(batch[0]));
    c->n_reports = 0;
    pthread_mutex_unlock(&c->report_lock);
    for (size_t i = 0; i < n; i++) {
        if (batch[i].kind == REPORT_SUCCESS)
            voro_health_report_success(c->health, batch[i].pool, batch[i].server);
        else
            voro_health_report_failure_kind(c->health, batch[i].pool, batch[i].server,
                                            (enum voro_failure_kind)batch[i].kind);
    }
    if (atomic_load(&c->stop_requested))
        uv_stop(&c->loop);
}

/* Closes whatever was opened so far, lets the close callbacks run, and closes the loop. */
static int control_teardown(struct voro_control *c)
{
    uv_handle_t *handles[] = {(uv_handle_t *)&c->sighup, (uv_handle_t *)&c->sigterm, (uv_handle_t *)&c->sigint,
                              (uv_handle_t *)&c->tick, (uv_handle_t *)&c->async};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        if (handles[i]->loop == &c->loop && !uv_is_closing(handles[i]))
            uv_close(handles[i], NULL);
    if (c->admin)
        voro_admin_server_close(c->admin);
    c->admin = NULL;
    if (c->health)
        voro_health_destroy(c->health);
    c->health = NULL;
    if (c->scrape)
        voro_scrape_destroy(c->scrape);
    c->scrape = NULL;
    /* bounded: each pass only runs close callbacks and cancelled requests */
    for (int i = 0; i < 1000 && uv_run(&c->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    int rc = uv_loop_close(&c->loop);
    if (rc)
        VORO_ERROR("control", "loop still has handles at close: %s", uv_strerror(rc));
    pthread_mutex_destroy(&c->report_lock);
    free(c);
    return rc;
}

int voro_control_create(struct voro_control **out, const struct voro_config *cfg, const struct voro_control_hooks *hooks)
{
    struct voro_control *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (hooks)
        c->hooks = *hooks;
    atomic_init(&c->stop_requested, false);
    atomic_init(&c->reports_dropped, 0);
    int rc = pthread_mutex_init(&c->report_lock, NULL);
    if (rc) {
        free(c);
        return -rc;
    }
    rc = uv_loop_init(&c->loop);
    if (rc) {
        pthread_mutex_destroy(&c->report_lock);
        free(c);
        return rc;
    }
    if ((rc = uv_async_init(&c->loop, &c->async, on_async)) != 0)
        goto fail;
    c->async.data = c;
    if ((rc = uv_timer_init(&c->loop, &c->tick)) != 0)
        goto fail;
    c->tick.data = c;
    uv_signal_t *sigs[] = {&c->sighup, &c->sigterm, &c->sigint};
    const int signos[] = {SIGHUP, SIGTERM, SIGINT};
    for (size_t i = 0; i < 3; i++) {
        if ((rc = uv_signal_init(&c->loop, sigs[i])) != 0)
            goto fail;
        sigs[i]->data = c;
        if ((rc = uv_signal_start(sigs[i], on_signal, signos[i])) != 0)
            goto fail;
    }
    if ((rc = uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS)) != 0)
        goto fail;
    if ((rc = voro_health_create(&c->health, &c->loop, on_health, c)) != 0)
        goto fail;
    voro_health_set_weight_cb(c->health, on_weight);
    if ((rc = voro_health_set_config(c->health, cfg)) != 0)
        goto fail;
    struct voro_scrape_hooks sh = {.ctx = c, .on_metrics = on_metrics, .on_models = on_models};
    if ((rc = voro_scrape_create(&c->scrape, &c->loop, &sh)) != 0)
        goto fail;
    if ((rc = voro_scrape_set_config(c->scrape, cfg)) != 0)
        goto fail;
    if ((rc = voro_admin_server_create(&c->admin, &c->loop, &cfg->admin_bind)) != 0)
        goto fail;
    VORO_INFO("control", "admin server listening on %s port=%u", cfg->admin_bind.text,
              (unsigned)voro_admin_server_port(c->admin));
    *out = c;
    return 0;

fail:
    control_teardown(c);
    return rc;
}

int voro_control_register(struct voro_control *c, const char *path, voro_admin_handler handler, void *ctx)
{
    return voro_admin_server_register(c->admin, path, VORO_ADMIN_GET, handler, ctx);
}

int voro_control_register_methods(struct voro_control *c, const char *path, unsigned methods,
                                  voro_admin_handler handler, void *ctx)
{
    return voro_admin_server_register(c->admin, path, methods, handler, ctx);
}

uint16_t voro_control_admin_port(const struct voro_control *c) { return c->admin ? voro_admin_server_port(c->admin) : 0; }

int voro_control_set_config(struct voro_control *c, const struct voro_config *cfg)
{
    /* drop queued passive reports: their indices belong to the previous config */
    pthread_mutex_lock(&c->report_lock);
    c->n_reports = 0;
    pthread_mutex_unlock(&c->report_lock);
    int rc = voro_health_set_config(c->health, cfg);
    if (rc)
        return rc;
    return voro_scrape_set_config(c->scrape, cfg);
}

static void report(struct voro_control *c, size_t pool, size_t server, int kind)
{
    bool queued = false, wake = true;
    pthread_mutex_lock(&c->report_lock);
    if (kind == REPORT_SUCCESS) {
        const struct report *last = c->n_reports ? &c->reports[c->n_reports - 1] : NULL;
        if (last && last->kind == REPORT_SUCCESS && last->pool == pool && last->server == server) {
            queued = true; /* coalesced: the wake-up is already pending */
            wake = false;
        } else if (c->n_reports < REPORT_SUCCESS_MARK) {
            c->reports[c->n_reports++] = (struct report){.pool = pool, .server = server, .kind = kind};
            queued = true;
        }
    } else if (c->n_reports < REPORT_QUEUE) {
        c->reports[c->n_reports++] = (struct report){.pool = pool, .server = server, .kind = kind};
        queued = true;
    }
    pthread_mutex_unlock(&c->report_lock);
    if (!queued)
        atomic_fetch_add(&c->reports_dropped, 1);
    if (wake)
        uv_async_send(&c->async);
}

void voro_control_report_failure(struct voro_control *c, size_t pool, size_t server)
{
    report(c, pool, server, REPORT_FAIL_CONNECT);
}

void voro_control_report_failure_kind(struct voro_control *c, size_t pool, size_t server, enum voro_failure_kind kind)
{
    report(c, pool, server, kind == VORO_FAILURE_5XX ? REPORT_FAIL_5XX : REPORT_FAIL_CONNECT);
}

void voro_control_report_success(struct voro_control *c, size_t pool, size_t server)
{
    report(c, pool, server, REPORT_SUCCESS);
}

int voro_control_run(struct voro_control *c)
{
    uv_run(&c->loop, UV_RUN_DEFAULT);
    atomic_store(&c->stop_requested, false);
    return 0;
}

void voro_control_stop(struct voro_control *c)
{
    atomic_store(&c->stop_requested, true);
    uv_async_send(&c->async);
}

int voro_control_destroy(struct voro_control *c)
{
    if (!c)
        return 0;
    return control_teardown(c);
}

bool voro_control_server_up(const struct voro_control *c, size_t pool, size_t server, const char **reason)
{
    return voro_health_server_up(c->health, pool, server, reason);
}

struct uv_loop_s *voro_control_loop(struct voro_control *c) { return &c->loop; }
