/* Control plane <-> data plane bridge: reload, drain, health publication, passive health. */
#include "node/bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/model_list.h"
#include "cluster/prom_text.h"
#include "common/log.h"
#include "node/stats.h"

void voro_bridge_init(struct voro_bridge *b, struct voro_node *node, const char *config_path)
{
    memset(b, 0, sizeof(*b));
    b->node = node;
    b->config_path = config_path;
}

static bool bridge_health(void *ctx, size_t pool, size_t server, const char **reason)
{
    struct voro_bridge *b = ctx;
    return voro_control_server_up(b->control, pool, server, reason);
}

static void handle_stats(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct voro_bridge *b = ctx;
    struct voro_stats_source src = {.node = b->node, .health = bridge_health, .health_ctx = b, .config_path = b->config_path};
    if (voro_stats_write_json(&src, &resp->body) != 0)
        resp->status = 500;
    resp->content_type = "application/json";
}

static void handle_metrics(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct voro_bridge *b = ctx;
    struct voro_stats_source src = {.node = b->node, .health = bridge_health, .health_ctx = b, .config_path = b->config_path};
    if (voro_stats_write_prometheus(&src, &resp->body) != 0)
        resp->status = 500;
    resp->content_type = VORO_PROM_CONTENT_TYPE;
}

static void handle_healthz(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct voro_bridge *b = ctx;
    resp->content_type = "application/json";
    if (b->node->draining) {
        resp->status = 503;
        voro_strbuf_puts(&resp->body, "{\"status\":\"draining\"}\n");
    } else {
        voro_strbuf_puts(&resp->body, "{\"status\":\"ok\"}\n");
    }
}

/* What the bridge last forwarded of each server's passive signals. */
struct voro_bridge_seen {
    uint64_t connect_failures, http_5xx, recoveries;
};

static void sum_passive(const struct voro_snapshot *snap, uint32_t gi, struct voro_bridge_seen *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned slot = 0; slot < snap->n_slots; slot++) {
        const struct voro_server_counters *c = &snap->counters[(size_t)slot * snap->n_servers_total + gi];
        out->connect_failures += voro_counter_get(&c->connect_failures);
        out->http_5xx += voro_counter_get(&c->http_5xx);
        out->recoveries += voro_counter_get(&c->recoveries);
    }
}

/* Re-sizes the passive-signal bookkeeping for a new snapshot. */
static void reset_failures(struct voro_bridge *b)
{
    const struct voro_snapshot *snap = b->node->current;
    free(b->failures_seen);
    b->failures_seen = calloc(snap->n_servers_total ? snap->n_servers_total : 1, sizeof(*b->failures_seen));
    b->failures_generation = snap->generation;
    if (!b->failures_seen)
        return;
    for (size_t p = 0; p < snap->cfg->n_pools; p++)
        for (size_t s = 0; s < snap->cfg->pools[p].n_servers; s++)
            sum_passive(snap, snap->servers[p][s].global_index, &b->failures_seen[snap->servers[p][s].global_index]);
}

/* Workers count failed connects, 5xx answers and recoveries per server; the bridge turns the
 * new ones into passive health reports (failures first, then a recovery resets the streak). */
static void forward_passive_failures(struct voro_bridge *b)
{
    const struct voro_snapshot *snap = b->node->current;
    if (!snap || !b->control)
        return;
    if (snap->generation != b->failures_generation || !b->failures_seen) {
        reset_failures(b);
        return;
    }
    for (size_t p = 0; p < snap->cfg->n_pools; p++) {
        for (size_t s = 0; s < snap->cfg->pools[p].n_servers; s++) {
            uint32_t gi = snap->servers[p][s].global_index;
            struct voro_bridge_seen now, *seen = &b->failures_seen[gi];
            sum_passive(snap, gi, &now);
            for (uint64_t i = 0; i < now.connect_failures - seen->connect_failures && i < 16; i++)
                voro_control_report_failure_kind(b->control, p, s, VORO_FAILURE_CONNECT);
            for (uint64_t i = 0; i < now.http_5xx - seen->http_5xx && i < 16; i++)
                voro_control_report_failure_kind(b->control, p, s, VORO_FAILURE_5XX);
            if (now.recoveries != seen->recoveries)
                voro_control_report_success(b->control, p, s);
            *seen = now;
        }
    }
}

static void on_reload(void *ctx)
{
    struct voro_bridge *b = ctx;
    if (b->shutting_down)
        return;
    VORO_INFO("config", "SIGHUP: reloading %s", b->config_path);
    struct voro_config *cfg = NULL;
    struct voro_config_errors errors = {0};
    int rc = voro_config_load(b->config_path, &cfg, &errors);
    if (rc) {
        for (size_t i = 0; i < errors.count; i++)
            VORO_ERROR("config", "%s", errors.items[i].message);
        VORO_ERROR("config", "reload refused: %zu error%s; the running configuration stays in force", errors.count,
                   errors.count == 1 ? "" : "s");
        voro_config_errors_free(&errors);
        return;
    }
    voro_config_errors_free(&errors);
    const struct voro_config *old = b->node->current->cfg;
    if (strcmp(old->admin_bind.text, cfg->admin_bind.text) != 0)
        VORO_WARN("config", "admin address change (%s -> %s) takes effect at the next restart", old->admin_bind.text,
                  cfg->admin_bind.text);
    rc = voro_node_apply(b->node, cfg);
    if (rc) {
        VORO_ERROR("config", "reload failed: %s; the running configuration stays in force", strerror(-rc));
        return;
    }
    voro_control_set_config(b->control, b->node->current->cfg);
    reset_failures(b);
    VORO_INFO("config", "configuration generation %llu in force", (unsigned long long)b->node->generation);
}

static void on_shutdown(void *ctx, int signo)
{
    struct voro_bridge *b = ctx;
    if (b->shutting_down) {
        VORO_WARN("node", "second signal %d: closing every connection now", signo);
        voro_node_stop_now(b->node);
        return;
    }
    b->shutting_down = true;
    VORO_INFO("node", "signal %d: running %u pre-stop hook%s, then draining (grace %u ms)", signo, b->n_pre_stop,
              b->n_pre_stop == 1 ? "" : "s", b->node->current->cfg->drain_timeout_ms);
    for (unsigned i = 0; i < b->n_pre_stop; i++)
        b->pre_stop[i].fn(b->pre_stop[i].ctx);
    voro_node_drain(b->node);
}

static void on_health(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct voro_bridge *b = ctx;
    const struct voro_config *cfg = b->node->current->cfg;
    if (pool < cfg->n_pools && server < cfg->pools[pool].n_servers)
        VORO_INFO("health", "pool %s server %s (%s) is %s: %s", cfg->pools[pool].name, cfg->pools[pool].servers[server].name,
                  cfg->pools[pool].servers[server].addr.text, up ? "UP" : "DOWN", reason ? reason : "");
    voro_node_set_health(b->node, pool, server, up);
}

/* The signals of pools[pool].servers[server] in the current snapshot, or NULL. */
static struct voro_backend_signals *signals_of(struct voro_bridge *b, size_t pool, size_t server)
{
    struct voro_snapshot *snap = b->node->current;
    if (!snap || pool >= snap->cfg->n_pools || server >= snap->cfg->pools[pool].n_servers)
        return NULL;
    return &snap->servers[pool][server].signals;
}

static uint32_t to_u32(double v)
{
    if (!(v > 0))
        return 0;
    return v >= 4294967295.0 ? UINT32_MAX : (uint32_t)(v + 0.5);
}

static uint32_t to_permille(double v)
{
    if (!(v > 0))
        return 0;
    return v >= 1.0 ? 1000u : (uint32_t)(v * 1000.0 + 0.5);
}

/* Writes a good scrape into the snapshot's signals. Absent fields are left as they were.
 * Capacity: the configured one (server capacity=N) if set, else the most sequences ever seen
 * running at once on that server (it only grows; a restart of the node learns it again). */
static void on_metrics(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms)
{
    struct voro_bridge *b = ctx;
    struct voro_backend_signals *sg = signals_of(b, pool, server);
    if (!sg)
        return;
    const memory_order rx = memory_order_relaxed;
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_QUEUE_DEPTH))
        atomic_store_explicit(&sg->queue_depth, to_u32(m->queue_depth), rx);
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_RUNNING)) {
        uint32_t running = to_u32(m->running);
        atomic_store_explicit(&sg->running, running, rx);
        uint32_t configured = b->node->current->cfg->pools[pool].servers[server].capacity;
        if (configured)
            atomic_store_explicit(&sg->capacity, configured, rx);
        else if (running > atomic_load_explicit(&sg->capacity, rx))
            atomic_store_explicit(&sg->capacity, running, rx);
    }
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_KV_CACHE_USAGE))
        atomic_store_explicit(&sg->kv_usage_permille, to_permille(m->kv_cache_usage), rx);
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_GPU_UTIL))
        atomic_store_explicit(&sg->gpu_util_permille, to_permille(m->gpu_util), rx);
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_FREE))
        atomic_store_explicit(&sg->gpu_mem_free_bytes,
                              m->gpu_mem_free_bytes > 0 ? (uint64_t)m->gpu_mem_free_bytes : 0, rx);
    if (m->present & VORO_ENGINE_HAS(VORO_ENGINE_XID_ERRORS)) {
        uint32_t f = atomic_load_explicit(&sg->flags, rx);
        f = m->xid_errors != 0 ? (f | VORO_SIGNAL_GPU_ERROR) : (f & ~VORO_SIGNAL_GPU_ERROR);
        atomic_store_explicit(&sg->flags, f, rx);
    }
    /* release: a worker that sees the new time also sees the figures above */
    atomic_store_explicit(&sg->metrics_time_ms, mono_ms ? mono_ms : 1, memory_order_release);
}

static void on_weight(void *ctx, size_t pool, size_t server, uint32_t permille)
{
    struct voro_bridge *b = ctx;
    struct voro_backend_signals *sg = signals_of(b, pool, server);
    if (sg)
        atomic_store_explicit(&sg->weight_permille, permille, memory_order_relaxed);
}

/* Learned model lists, keyed by pool name and server address (for /stats and logs); routing
 * reads the copy published into the snapshot. */
struct bridge_models_entry {
    char pool[VORO_NAME_MAX];
    char addr[VORO_ADDR_TEXT_MAX];
    size_t n;
    char (*ids)[VORO_MODEL_ID_MAX];
};

struct voro_bridge_models {
    struct bridge_models_entry *items;
    size_t n, cap;
};

static struct bridge_models_entry *models_entry(struct voro_bridge *b, const char *pool, const char *addr, bool add)
{
    if (!b->models) {
        if (!add || !(b->models = calloc(1, sizeof(*b->models))))
            return NULL;
    }
    struct voro_bridge_models *t = b->models;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].pool, pool) == 0 && strcmp(t->items[i].addr, addr) == 0)
            return &t->items[i];
    if (!add)
        return NULL;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        struct bridge_models_entry *ni = realloc(t->items, ncap * sizeof(*ni));
        if (!ni)
            return NULL;
        t->items = ni;
        t->cap = ncap;
    }
    struct bridge_models_entry *e = &t->items[t->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->pool, sizeof(e->pool), "%s", pool);
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    return e;
}

static void on_models(void *ctx, size_t pool, size_t server, const char *const *ids, size_t n)
{
    struct voro_bridge *b = ctx;
    const struct voro_config *cfg = b->node->current->cfg;
    if (pool >= cfg->n_pools || server >= cfg->pools[pool].n_servers)
        return;
    const struct voro_pool_config *pc = &cfg->pools[pool];
    const struct voro_server_config *sc = &pc->servers[server];
    struct bridge_models_entry *e = models_entry(b, pc->name, sc->addr.text, true);
    if (!e)
        return;
    bool same = e->n == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(e->ids[i], ids[i]) == 0;
    if (same)
        return;
    char (*nids)[VORO_MODEL_ID_MAX] = n ? calloc(n, sizeof(*nids)) : NULL;
    if (n && !nids)
        return;
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(nids[i], sizeof(nids[i]), "%s", ids[i]);
        if (used < sizeof(list))
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? "," : "", ids[i]);
    }
    free(e->ids);
    e->ids = nids;
    e->n = n;
    VORO_INFO("models", "pool %s server %s (%s) serves %zu model%s: %s", pc->name, sc->name, sc->addr.text, n,
              n == 1 ? "" : "s", list);
    /* Routing narrows a model's servers to those that list it (servers without declared models). */
    int rc = voro_snapshot_set_learned(b->node->current, pool, server, ids, n);
    if (rc == -EBUSY)
        VORO_WARN("models", "pool %s server %s: its model list keeps changing; routing keeps the last one until the next reload",
                  pc->name, sc->name);
}

const char (*voro_bridge_learned_models(const struct voro_bridge *b, const char *pool_name, const char *addr_text,
                                        size_t *n))[128]
{
    *n = 0;
    if (!b->models)
        return NULL;
    for (size_t i = 0; i < b->models->n; i++) {
        const struct bridge_models_entry *e = &b->models->items[i];
        if (strcmp(e->pool, pool_name) == 0 && strcmp(e->addr, addr_text) == 0) {
            *n = e->n;
            return (const char(*)[128])e->ids;
        }
    }
    return NULL;
}

static void on_tick(void *ctx)
{
    struct voro_bridge *b = ctx;
    voro_node_tick(b->node);
    forward_passive_failures(b);
    if (b->shutting_down && voro_node_stopped(b->node)) {
        VORO_INFO("node", "all workers stopped");
        voro_control_stop(b->control);
    }
}

struct voro_control_hooks voro_bridge_hooks(struct voro_bridge *b)
{
    return (struct voro_control_hooks){
        .ctx = b,
        .on_reload = on_reload,
        .on_shutdown = on_shutdown,
        .on_health = on_health,
        .on_tick = on_tick,
        .on_metrics = on_metrics,
        .on_models = on_models,
        .on_weight = on_weight,
    };
}

int voro_bridge_attach(struct voro_bridge *b, struct voro_control *control)
{
    b->control = control;
    int rc;
    if ((rc = voro_control_register(control, "/stats", handle_stats, b)) ||
        (rc = voro_control_register(control, "/metrics", handle_metrics, b)) ||
        (rc = voro_control_register(control, "/healthz", handle_healthz, b)))
        return rc;
    reset_failures(b);
    return voro_control_set_config(control, b->node->current->cfg);
}

int voro_bridge_add_pre_stop_hook(struct voro_bridge *b, voro_pre_stop_hook fn, void *ctx)
{
    if (b->n_pre_stop >= VORO_MAX_PRE_STOP_HOOKS)
        return -ENOSPC;
    b->pre_stop[b->n_pre_stop].fn = fn;
    b->pre_stop[b->n_pre_stop].ctx = ctx;
    b->n_pre_stop++;
    return 0;
}

void voro_bridge_destroy(struct voro_bridge *b)
{
    free(b->failures_seen);
    b->failures_seen = NULL;
    if (b->models) {
        for (size_t i = 0; i < b->models->n; i++)
            free(b->models->items[i].ids);
        free(b->models->items);
        free(b->models);
        b->models = NULL;
    }
}
