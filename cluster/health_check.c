/* Active TCP health checks: one timer per server drives connect probes and the rise/fall state machine. */
#include "cluster/health_check.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hc_server;

/* One connect attempt; outlives its server when the server is removed mid-probe. */
struct hc_probe {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct hc_server *srv; /* NULL once detached */
};

struct hc_server {
    struct voro_health *h;
    uv_timer_t timer;
    struct hc_probe *probe;
    char pool_name[VORO_NAME_MAX];
    char addr_text[VORO_ADDR_TEXT_MAX];
    struct sockaddr_storage ss;
    size_t pool, server;
    struct voro_health_config cfg;
    uint64_t check_start;
    uint32_t oks, fails;
    bool up;
    const char *reason;
};

struct hc_pool {
    struct hc_server **servers;
    size_t n;
};

struct voro_health {
    uv_loop_t *loop;
    voro_health_cb cb;
    void *ctx;
    struct hc_pool *pools;
    size_t n_pools;
    uint64_t rng;
};

static uint32_t hc_rand(struct voro_health *h)
{
    /* xorshift64*: jitter only, no need for quality */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return (uint32_t)((h->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void notify(struct hc_server *s)
{
    if (s->h->cb)
        s->h->cb(s->h->ctx, s->pool, s->server, s->up, s->reason);
}

static void count_result(struct hc_server *s, bool ok, const char *reason)
{
    if (ok) {
        s->fails = 0;
        s->oks++;
        if (!s->up && s->oks >= s->cfg.rise) {
            s->up = true;
            s->reason = reason;
            notify(s);
        } else if (s->up) {
            s->reason = reason;
        }
    } else {
        s->oks = 0;
        s->fails++;
        if (s->up && s->fails >= s->cfg.fall) {
            s->up = false;
            s->reason = reason;
            notify(s);
        } else if (!s->up) {
            s->reason = reason;
        }
    }
}

static const char *connect_reason(int status)
{
    switch (status) {
    case 0: return "ok";
    case UV_ECONNREFUSED: return "connect refused";
    case UV_ETIMEDOUT: return "connect timeout";
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH: return "unreachable";
    default: return "connect error";
    }
}

static void probe_closed(uv_handle_t *handle) { free(handle->data); }

static void probe_detach(struct hc_server *s)
{
    struct hc_probe *p = s->probe;
    if (!p)
        return;
    s->probe = NULL;
    p->srv = NULL;
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

static void on_timer(uv_timer_t *t);

static void finish_check(struct hc_server *s, int status)
{
    probe_detach(s);
    count_result(s, status == 0, connect_reason(status));
    uint64_t now = uv_now(s->h->loop);
    uint64_t elapsed = now - s->check_start;
    uint64_t delay = s->cfg.interval_ms > elapsed ? s->cfg.interval_ms - elapsed : 0;
    uv_timer_start(&s->timer, on_timer, delay, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct hc_probe *p = req->data;
    if (!p->srv)
        return; /* detached: timed out, removed or shutting down */
    finish_check(p->srv, status);
}

static void start_check(struct hc_server *s)
{
    s->check_start = uv_now(s->h->loop);
    struct hc_probe *p = calloc(1, sizeof(*p));
    if (!p) {
        count_result(s, false, "connect error");
        uv_timer_start(&s->timer, on_timer, s->cfg.interval_ms, 0);
        return;
    }
    int rc = uv_tcp_init(s->h->loop, &p->tcp);
    if (rc) {
        free(p);
        count_result(s, false, "connect error");
        uv_timer_start(&s->timer, on_timer, s->cfg.interval_ms, 0);
        return;
    }
    p->tcp.data = p;
    p->req.data = p;
    p->srv = s;
    s->probe = p;
    rc = uv_tcp_connect(&p->req, &p->tcp, (const struct sockaddr *)&s->ss, on_connect);
    if (rc) {
        finish_check(s, rc);
        return;
    }
    uv_timer_start(&s->timer, on_timer, s->cfg.timeout_ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct hc_server *s = t->data;
    if (s->probe)
        finish_check(s, UV_ETIMEDOUT);
    else
        start_check(s);
}

static void server_closed(uv_handle_t *handle) { free(handle->data); }

static void server_close(struct hc_server *s)
{
    probe_detach(s);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, server_closed);
}

static struct hc_server *server_new(struct voro_health *h, const struct voro_pool_config *pc)
{
    struct hc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (uv_timer_init(h->loop, &s->timer) != 0) {
        free(s);
        return NULL;
    }
    s->timer.data = s;
    s->h = h;
    s->up = true;
    s->reason = pc->health.type == VORO_HEALTH_CHECK_NONE ? "no check" : "initial";
    return s;
}

static void server_apply(struct hc_server *s, size_t pool, size_t server, const struct voro_pool_config *pc,
                         const struct voro_server_config *sc)
{
    s->pool = pool;
    s->server = server;
    s->cfg = pc->health;
    /* zeros would spin the timer or never decide: use the documented defaults */
    if (!s->cfg.interval_ms)
        s->cfg.interval_ms = 2000;
    if (!s->cfg.timeout_ms)
        s->cfg.timeout_ms = 1000;
    if (!s->cfg.rise)
        s->cfg.rise = 2;
    if (!s->cfg.fall)
        s->cfg.fall = 3;
    snprintf(s->pool_name, sizeof(s->pool_name), "%s", pc->name);
    snprintf(s->addr_text, sizeof(s->addr_text), "%s", sc->addr.text);
    memset(&s->ss, 0, sizeof(s->ss));
    memcpy(&s->ss, &sc->addr.ss, sc->addr.len <= sizeof(s->ss) ? sc->addr.len : sizeof(s->ss));
}

static struct hc_server *take_old(struct voro_health *h, const struct voro_pool_config *pc,
                                  const struct voro_server_config *sc)
{
    if (pc->health.type != VORO_HEALTH_CHECK_TCP)
        return NULL;
    for (size_t i = 0; i < h->n_pools; i++) {
        struct hc_pool *op = &h->pools[i];
        for (size_t j = 0; j < op->n; j++) {
            struct hc_server *s = op->servers[j];
            if (s && s->cfg.type == VORO_HEALTH_CHECK_TCP && strcmp(s->pool_name, pc->name) == 0 &&
                strcmp(s->addr_text, sc->addr.text) == 0) {
                op->servers[j] = NULL;
                return s;
            }
        }
    }
    return NULL;
}

static void free_table(struct hc_pool *pools, size_t n, bool close_servers)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; close_servers && j < pools[i].n; j++)
            if (pools[i].servers[j])
                server_close(pools[i].servers[j]);
        free(pools[i].servers);
    }
    free(pools);
}

int voro_health_create(struct voro_health **out, uv_loop_t *loop, voro_health_cb cb, void *ctx)
{
    struct voro_health *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->loop = loop;
    h->cb = cb;
    h->ctx = ctx;
    h->rng = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)h ^ 0x9E3779B97F4A7C15ULL;
    if (!h->rng)
        h->rng = 1;
    *out = h;
    return 0;
}

int voro_health_set_config(struct voro_health *h, const struct voro_config *cfg)
{
    size_t n_pools = cfg ? cfg->n_pools : 0;
    struct hc_pool *np = n_pools ? calloc(n_pools, sizeof(*np)) : NULL;
    if (n_pools && !np)
        return -ENOMEM;
    /* allocate everything first so a failure leaves the old targets untouched */
    for (size_t i = 0; i < n_pools; i++) {
        const struct voro_pool_config *pc = &cfg->pools[i];
        np[i].n = pc->n_servers;
        if (pc->n_servers && !(np[i].servers = calloc(pc->n_servers, sizeof(*np[i].servers)))) {
            free_table(np, n_pools, false);
            return -ENOMEM;
        }
    }
    size_t n_new = 0;
    for (size_t i = 0; i < n_pools; i++)
        n_new += np[i].n;
    struct hc_server **fresh = n_new ? calloc(n_new, sizeof(*fresh)) : NULL;
    if (n_new && !fresh) {
        free_table(np, n_pools, false);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_pools; i++)
        for (size_t j = 0; j < np[i].n; j++) {
            if (!(fresh[k++] = server_new(h, &cfg->pools[i]))) {
                for (size_t m = 0; m < k; m++)
                    if (fresh[m])
                        uv_close((uv_handle_t *)&fresh[m]->timer, server_closed);
                free(fresh);
                free_table(np, n_pools, false);
                return -ENOMEM;
            }
        }

    /* commit: move kept servers, use fresh ones for the rest */
    k = 0;
    for (size_t i = 0; i < n_pools; i++) {
        const struct voro_pool_config *pc = &cfg->pools[i];
        for (size_t j = 0; j < np[i].n; j++, k++) {
            const struct voro_server_config *sc = &pc->servers[j];
            struct hc_server *s = take_old(h, pc, sc);
            bool start = false;
            if (s) {
                uv_close((uv_handle_t *)&fresh[k]->timer, server_closed);
                /* a new interval applies now, not after the old one elapsed */
                start = !s->probe && s->cfg.interval_ms != (pc->health.interval_ms ? pc->health.interval_ms : 2000);
            } else {
                s = fresh[k];
                start = pc->health.type == VORO_HEALTH_CHECK_TCP;
            }
            server_apply(s, i, j, pc, sc);
            if (start) {
                uint32_t span = s->cfg.interval_ms < 1000 ? s->cfg.interval_ms : 1000;
                uv_timer_start(&s->timer, on_timer, hc_rand(h) % (span / 2 + 1), 0);
            }
            np[i].servers[j] = s;
        }
    }
    free(fresh);
    free_table(h->pools, h->n_pools, true);
    h->pools = np;
    h->n_pools = n_pools;
    for (size_t i = 0; i < n_pools; i++)
        for (size_t j = 0; j < np[i].n; j++)
            if (!np[i].servers[j]->up)
                notify(np[i].servers[j]);
    return 0;
}

void voro_health_report_failure(struct voro_health *h, size_t pool, size_t server)
{
    if (pool >= h->n_pools || server >= h->pools[pool].n)
        return;
    struct hc_server *s = h->pools[pool].servers[server];
    if (s->cfg.type != VORO_HEALTH_CHECK_TCP)
        return;
    count_result(s, false, "passive failure");
}

bool voro_health_server_up(const struct voro_health *h, size_t pool, size_t server, const char **reason)
{
    if (pool >= h->n_pools || server >= h->pools[pool].n) {
        if (reason)
            *reason = "unknown";
        return true;
    }
    const struct hc_server *s = h->pools[pool].servers[server];
    if (reason)
        *reason = s->reason;
    return s->up;
}

void voro_health_destroy(struct voro_health *h)
{
    if (!h)
        return;
    free_table(h->pools, h->n_pools, true);
    free(h);
}
