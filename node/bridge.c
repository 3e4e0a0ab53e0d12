/* Control plane <-> data plane bridge: reload, drain, health publication, passive health. */
#include "node/bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Re-sizes the passive-failure bookkeeping for a new snapshot. */
static void reset_failures(struct voro_bridge *b)
{
    const struct voro_snapshot *snap = b->node->current;
    free(b->failures_seen);
    b->failures_seen = calloc(snap->n_servers_total ? snap->n_servers_total : 1, sizeof(uint64_t));
    b->failures_generation = snap->generation;
    if (!b->failures_seen)
        return;
    for (size_t p = 0; p < snap->cfg->n_pools; p++) {
        for (size_t s = 0; s < snap->cfg->pools[p].n_servers; s++) {
            uint32_t gi = snap->servers[p][s].global_index;
            for (unsigned slot = 0; slot < snap->n_slots; slot++)
                b->failures_seen[gi] += voro_counter_get(&snap->counters[(size_t)slot * snap->n_servers_total + gi].connect_failures);
        }
    }
}

/* Failed connects counted by workers become passive health signals (one per failure). */
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
            uint64_t total = 0;
            for (unsigned slot = 0; slot < snap->n_slots; slot++)
                total += voro_counter_get(&snap->counters[(size_t)slot * snap->n_servers_total + gi].connect_failures);
            uint64_t fresh = total - b->failures_seen[gi];
            b->failures_seen[gi] = total;
            for (uint64_t i = 0; i < fresh && i < 16; i++)
                voro_control_report_failure(b->control, p, s);
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
}
