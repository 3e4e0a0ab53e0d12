/* Periodic scrapes on the control loop: each server's Prometheus metrics_url and, for pools that learn models, GET /v1/models. */
#ifndef VORO_CLUSTER_METRICS_SCRAPE_H
#define VORO_CLUSTER_METRICS_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster/config.h"
#include "cluster/engine_metrics.h"

/*
 * Metrics: every server with a metrics_url is scraped every l7.metrics_interval_ms (default
 * 1000; first scrape after a small random delay), the body parsed with the default engine map
 * (vLLM, SGLang, TGI, Triton, DCGM names), and on_metrics called with the figures and the
 * CLOCK_MONOTONIC ms of the scrape. A failed scrape (connect error, timeout, non-200, parse
 * error) calls nothing: the last values stay and go stale by their time. Timeout of one scrape:
 * the interval, at most 5 s. Responses are bounded to 4 MiB.
 * Models: servers of pools with l7.learn_models get GET /v1/models at start and every 10 s;
 * on_models receives the ids of each good answer (also when unchanged).
 * Everything runs on the loop's thread; hooks are called from it.
 */

struct voro_scrape;

struct voro_scrape_hooks {
    void *ctx;
    /* `m` is valid during the call only. */
    void (*on_metrics)(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms);
    /* `ids` (n entries) valid during the call only. */
    void (*on_models)(void *ctx, size_t pool, size_t server, const char *const *ids, size_t n);
};

#define VORO_SCRAPE_MODELS_INTERVAL_MS 10000

/* *out owned by the caller (voro_scrape_destroy); `loop` borrowed; hooks copied. 0 or -ENOMEM. */
int voro_scrape_create(struct voro_scrape **out, uv_loop_t *loop, const struct voro_scrape_hooks *hooks);
/* Replaces every target with those of `cfg` (read during the call; NULL = none). Scrapes in
 * flight for the old targets are cancelled. Returns 0 or -ENOMEM (then no targets). */
int voro_scrape_set_config(struct voro_scrape *sc, const struct voro_config *cfg);
/* Period of the /v1/models refresh (tests shorten it); applies from the next set_config. */
void voro_scrape_set_models_interval(struct voro_scrape *sc, uint32_t ms);
/* Stops everything; handle memory is released by close callbacks (run the loop afterwards). */
void voro_scrape_destroy(struct voro_scrape *sc);

#endif
