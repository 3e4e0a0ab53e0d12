/* Periodic metrics scrapes and /v1/models learning: one timer per target, one HTTP probe at a time. */
#include "cluster/metrics_scrape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/http_probe.h"
#include "cluster/model_list.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/prom_parse.h"

#define MAX_METRICS_RESPONSE (4u << 20)
#define MAX_MODELS_RESPONSE (1u << 20)
#define MAX_SCRAPE_TIMEOUT_MS 5000

enum target_kind {
    TARGET_METRICS = 0,
    TARGET_MODELS = 1,
};

struct sc_target {
    struct voro_scrape *sc; /* owner (borrowed) */
    uv_timer_t timer;
    struct voro_http_probe *probe;
    enum target_kind kind;
    size_t pool, server;
    struct sockaddr_storage addr;
    char host[VORO_ADDR_TEXT_MAX];
    char path[256];
    uint32_t interval_ms;
    bool failing; /* logged once per change */
};

struct voro_scrape {
    uv_loop_t *loop;
    struct voro_scrape_hooks hooks;
    struct sc_target **targets;
    size_t n_targets;
    uint32_t models_interval_ms;
    uint64_t rng;
    struct voro_engine_map map;
    struct voro_prom_parser parser; /* large: one per scraper, used synchronously */
    char ids[VORO_MODEL_LIST_MAX][VORO_MODEL_ID_MAX];
};

static uint32_t sc_rand(struct voro_scrape *sc)
{
    sc->rng ^= sc->rng >> 12;
    sc->rng ^= sc->rng << 25;
    sc->rng ^= sc->rng >> 27;
    return (uint32_t)((sc->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void on_timer(uv_timer_t *t);

static void target_failed(struct sc_target *t, const char *why)
{
    if (!t->failing)
        VORO_WARN("scrape", "%s of %s%s failed: %s (keeping the last values)",
                  t->kind == TARGET_METRICS ? "metrics scrape" : "model list", t->host, t->path, why);
    t->failing = true;
}

static void handle_metrics(struct sc_target *t, const struct voro_http_result *r)
{
    struct voro_scrape *sc = t->sc;
    char ct[128];
    const char *ctp = NULL;
    if (r->content_type && r->content_type_len < sizeof(ct)) {
        memcpy(ct, r->content_type, r->content_type_len);
        ct[r->content_type_len] = '\0';
        ctp = ct;
    }
    struct voro_engine_metrics m;
    int rc = voro_engine_metrics_parse(&sc->map, &sc->parser, r->body, r->body_len, ctp, &m);
    if (rc) {
        char why[96];
        snprintf(why, sizeof(why), "parse error at line %u", (unsigned)sc->parser.err_line);
        target_failed(t, why);
        return;
    }
    t->failing = false;
    if (sc->hooks.on_metrics)
        sc->hooks.on_metrics(sc->hooks.ctx, t->pool, t->server, &m, voro_now_ms());
}

static void handle_models(struct sc_target *t, const struct voro_http_result *r)
{
    struct voro_scrape *sc = t->sc;
    size_t n = 0;
    int truncated = 0;
    if (voro_model_list_parse(r->body, r->body_len, sc->ids, VORO_MODEL_LIST_MAX, &n, &truncated) != 0) {
        target_failed(t, "not a model list");
        return;
    }
    t->failing = false;
    const char *ptrs[VORO_MODEL_LIST_MAX];
    for (size_t i = 0; i < n; i++)
        ptrs[i] = sc->ids[i];
    if (sc->hooks.on_models)
        sc->hooks.on_models(sc->hooks.ctx, t->pool, t->server, ptrs, n);
}

static void on_response(void *ctx, const struct voro_http_result *r)
{
    struct sc_target *t = ctx;
    t->probe = NULL;
    if (r->err) {
        target_failed(t, r->reason);
    } else if (r->status != 200) {
        char why[32];
        snprintf(why, sizeof(why), "http %d", r->status);
        target_failed(t, why);
    } else if (t->kind == TARGET_METRICS) {
        handle_metrics(t, r);
    } else {
        handle_models(t, r);
    }
    uv_timer_start(&t->timer, on_timer, t->interval_ms, 0);
}

static void on_timer(uv_timer_t *timer)
{
    struct sc_target *t = timer->data;
    uint32_t timeout = t->interval_ms < MAX_SCRAPE_TIMEOUT_MS ? t->interval_ms : MAX_SCRAPE_TIMEOUT_MS;
    struct voro_http_request req = {.addr = (const struct sockaddr *)&t->addr,
                                    .method = "GET",
                                    .host = t->host,
                                    .path = t->path,
                                    .timeout_ms = timeout ? timeout : 1000,
                                    .max_response = t->kind == TARGET_METRICS ? MAX_METRICS_RESPONSE : MAX_MODELS_RESPONSE};
    if (voro_http_probe_start(&t->probe, t->sc->loop, &req, on_response, t) != 0) {
        t->probe = NULL;
        uv_timer_start(&t->timer, on_timer, t->interval_ms, 0);
    }
}

static void target_closed(uv_handle_t *h) { free(h->data); }

static void target_close(struct sc_target *t)
{
    if (t->probe)
        voro_http_probe_cancel(t->probe);
    t->probe = NULL;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, target_closed);
}

static void clear_targets(struct voro_scrape *sc)
{
    for (size_t i = 0; i < sc->n_targets; i++)
        target_close(sc->targets[i]);
    free(sc->targets);
    sc->targets = NULL;
    sc->n_targets = 0;
}

int voro_scrape_create(struct voro_scrape **out, uv_loop_t *loop, const struct voro_scrape_hooks *hooks)
{
    struct voro_scrape *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return -ENOMEM;
    sc->loop = loop;
    if (hooks)
        sc->hooks = *hooks;
    sc->models_interval_ms = VORO_SCRAPE_MODELS_INTERVAL_MS;
    sc->rng = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)sc ^ 0x9E3779B97F4A7C15ULL;
    if (!sc->rng)
        sc->rng = 1;
    voro_engine_map_init(&sc->map);
    voro_engine_map_add_defaults(&sc->map);
    *out = sc;
    return 0;
}

void voro_scrape_set_models_interval(struct voro_scrape *sc, uint32_t ms) { sc->models_interval_ms = ms ? ms : 1; }

static struct sc_target *target_new(struct voro_scrape *sc, enum target_kind kind, size_t pool, size_t server,
                                    uint32_t interval)
{
    struct sc_target *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (uv_timer_init(sc->loop, &t->timer) != 0) {
        free(t);
        return NULL;
    }
    t->timer.data = t;
    t->sc = sc;
    t->kind = kind;
    t->pool = pool;
    t->server = server;
    t->interval_ms = interval ? interval : 1000;
    return t;
}

int voro_scrape_set_config(struct voro_scrape *sc, const struct voro_config *cfg)
{
    clear_targets(sc);
    size_t n = 0;
    for (size_t p = 0; cfg && p < cfg->n_pools; p++)
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++)
            n += (cfg->pools[p].servers[s].metrics_url[0] != '\0') + cfg->pools[p].l7.learn_models;
    if (!n)
        return 0;
    if (!(sc->targets = calloc(n, sizeof(*sc->targets))))
        return -ENOMEM;
    for (size_t p = 0; p < cfg->n_pools; p++) {
        const struct voro_pool_config *pc = &cfg->pools[p];
        for (size_t s = 0; s < pc->n_servers; s++) {
            const struct voro_server_config *svc = &pc->servers[s];
            if (svc->metrics_url[0]) {
                struct sockaddr_storage ss;
                char host[VORO_ADDR_TEXT_MAX], path[256];
                if (voro_http_url_parse(svc->metrics_url, &ss, host, sizeof(host), path, sizeof(path)) != 0) {
                    VORO_WARN("scrape", "pool %s server %s: metrics URL %s is not http://IP:PORT/path; not scraped",
                              pc->name, svc->name, svc->metrics_url);
                } else {
                    struct sc_target *t = target_new(sc, TARGET_METRICS, p, s, pc->l7.metrics_interval_ms);
                    if (!t)
                        goto fail;
                    t->addr = ss;
                    snprintf(t->host, sizeof(t->host), "%s", host);
                    snprintf(t->path, sizeof(t->path), "%s", path);
                    sc->targets[sc->n_targets++] = t;
                }
            }
            if (pc->l7.learn_models) {
                struct sc_target *t = target_new(sc, TARGET_MODELS, p, s, sc->models_interval_ms);
                if (!t)
                    goto fail;
                memcpy(&t->addr, &svc->addr.ss, svc->addr.len <= sizeof(t->addr) ? svc->addr.len : sizeof(t->addr));
                snprintf(t->host, sizeof(t->host), "%s", svc->addr.text);
                snprintf(t->path, sizeof(t->path), "/v1/models");
                sc->targets[sc->n_targets++] = t;
            }
        }
    }
    /* first round soon, spread so many servers do not align */
    for (size_t i = 0; i < sc->n_targets; i++) {
        uint32_t span = sc->targets[i]->interval_ms < 200 ? sc->targets[i]->interval_ms : 200;
        uv_timer_start(&sc->targets[i]->timer, on_timer, sc_rand(sc) % (span + 1), 0);
    }
    return 0;

fail:
    clear_targets(sc);
    return -ENOMEM;
}

void voro_scrape_destroy(struct voro_scrape *sc)
{
    if (!sc)
        return;
    clear_targets(sc);
    free(sc);
}
