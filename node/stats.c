/* /stats (JSON) and /metrics (Prometheus text) for the data plane. */
#include "node/stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cluster/prom_text.h"
#include "common/clock.h"

#ifndef VORO_VERSION
#define VORO_VERSION "0.1.0"
#endif

struct server_sum {
    uint64_t connections, active, bytes_in, bytes_out, connect_failures, http_5xx;
};

struct listener_sum {
    uint64_t accepted, rejected, bytes_in, bytes_out, errors;
};

static void sum_server(const struct voro_snapshot *snap, size_t pool, size_t server, struct server_sum *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t gi = snap->servers[pool][server].global_index;
    for (unsigned slot = 0; slot < snap->n_slots; slot++) {
        const struct voro_server_counters *c = &snap->counters[(size_t)slot * snap->n_servers_total + gi];
        out->connections += voro_counter_get(&c->connections);
        out->active += voro_counter_get(&c->active);
        out->bytes_in += voro_counter_get(&c->bytes_in);
        out->bytes_out += voro_counter_get(&c->bytes_out);
        out->connect_failures += voro_counter_get(&c->connect_failures);
        out->http_5xx += voro_counter_get(&c->http_5xx);
    }
}

static void sum_listener(const struct voro_snapshot *snap, size_t l, struct listener_sum *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned slot = 0; slot < snap->n_slots; slot++) {
        const struct voro_listener_counters *c = &snap->listener_counters[(size_t)slot * snap->cfg->n_listeners + l];
        out->accepted += voro_counter_get(&c->accepted);
        out->rejected += voro_counter_get(&c->rejected);
        out->bytes_in += voro_counter_get(&c->bytes_in);
        out->bytes_out += voro_counter_get(&c->bytes_out);
        out->errors += voro_counter_get(&c->errors);
    }
}

/* The worker counters, named once for both renderings. */
#define WORKER_COUNTERS(X)                                                                                  \
    X(accepted, "connections_accepted_total", "counter", "TCP connections accepted")                     \
    X(active, "connections_active", "gauge", "TCP connections open now")                                  \
    X(bytes_from_clients, "client_received_bytes_total", "counter", "Bytes received from clients")       \
    X(bytes_to_clients, "client_sent_bytes_total", "counter", "Bytes sent to clients")                   \
    X(rejected_max_connections, "rejected_max_connections_total", "counter", "Connections refused by max_connections") \
    X(rejected_per_ip, "rejected_per_ip_total", "counter", "Connections refused by max_connections_per_ip") \
    X(rejected_rate, "rejected_rate_total", "counter", "Connections refused by global_qps")              \
    X(rejected_fds, "rejected_fd_budget_total", "counter", "Connections refused: the descriptor budget was spent") \
    X(no_server, "no_server_total", "counter", "Connections closed because no server was usable")        \
    X(connect_failures, "connect_failures_total", "counter", "Failed connects to servers")               \
    X(connect_retries, "connect_retries_total", "counter", "Connects retried on another server")         \
    X(connect_timeouts, "connect_timeouts_total", "counter", "Connects that timed out")                   \
    X(idle_timeouts, "idle_timeouts_total", "counter", "Connections closed for being idle")               \
    X(errors, "io_errors_total", "counter", "Connections ended by an I/O error")                         \
    X(accept_errors, "accept_errors_total", "counter", "accept() failures (EMFILE and friends)")         \
    X(udp_sessions, "udp_sessions_active", "gauge", "UDP sessions open now")                              \
    X(udp_sessions_total, "udp_sessions_total", "counter", "UDP sessions created")                        \
    X(udp_datagrams_in, "udp_datagrams_received_total", "counter", "Datagrams received from clients")    \
    X(udp_datagrams_out, "udp_datagrams_sent_total", "counter", "Datagrams sent to clients")             \
    X(udp_drops, "udp_dropped_total", "counter", "Datagrams dropped (no session, send failure)")         \
    X(drained_aborts, "drain_aborted_total", "counter", "Connections cut when a drain period ended")            \
    X(http_requests, "http_requests_total", "counter", "HTTP requests read from clients")                  \
    X(http_local_errors, "http_local_errors_total", "counter", "HTTP error responses written by Voro itself") \
    X(http_upstream_reused, "http_upstream_reused_total", "counter", "HTTP requests sent on a pooled server connection") \
    X(http_client_aborts, "http_client_aborts_total", "counter", "HTTP requests aborted upstream because the client left") \
    X(http_slow_clients, "http_slow_clients_total", "counter", "HTTP clients cut for a head or body slower than the deadline") \
    X(http_body_memory_refused, "http_body_memory_refused_total", "counter", "HTTP requests refused (503): buffered-body memory cap reached")

static void for_each_worker(const struct voro_node *node, void (*fn)(const struct voro_worker *w, bool retiring, void *ctx),
                            void *ctx)
{
    for (unsigned i = 0; i < node->n_workers; i++)
        fn(node->workers[i], false, ctx);
    for (unsigned i = 0; i < node->n_retiring; i++)
        fn(node->retiring[i], true, ctx);
}

struct json_ctx {
    struct voro_strbuf *out;
    bool first;
};

static void json_worker(const struct voro_worker *w, bool retiring, void *arg)
{
    struct json_ctx *jc = arg;
    struct voro_strbuf *o = jc->out;
    voro_strbuf_printf(o, "%s{\"slot\":%u,\"id\":%u,\"state\":\"%s\",\"io_model\":\"%s\"", jc->first ? "" : ",",
                       w->slot, w->id, retiring ? "draining" : "running", voro_io_model_name(voro_loop_model(w->loop)));
#define X(field, name, type, help) \
    voro_strbuf_printf(o, ",\"%s\":%" PRIu64, #field, voro_counter_get(&w->stats.field));
    WORKER_COUNTERS(X)
#undef X
    voro_strbuf_printf(o, ",\"http_responses\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
                          ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 "}",
                       voro_counter_get(&w->stats.http_responses[0]), voro_counter_get(&w->stats.http_responses[1]),
                       voro_counter_get(&w->stats.http_responses[2]), voro_counter_get(&w->stats.http_responses[3]),
                       voro_counter_get(&w->stats.http_responses[4]));
    struct voro_loop_stats ls;
    voro_loop_get_stats(w->loop, &ls);
    voro_strbuf_printf(o,
                       ",\"buffers_in_use\":%u,\"buffers_total\":%u,\"request_buffers_in_use\":%u,"
                       "\"request_buffers_total\":%u,\"buffer_waits\":%" PRIu64 ",\"hugepages\":%s}",
                       ls.bufs_in_use, ls.bufs_total, ls.request_bufs_in_use, ls.request_bufs_total, ls.buf_waits,
                       ls.hugepages ? "true" : "false");
    jc->first = false;
}

int voro_stats_write_json(const struct voro_stats_source *src, struct voro_strbuf *o)
{
    const struct voro_node *node = src->node;
    const struct voro_snapshot *snap = node->current;
    if (!snap)
        return voro_strbuf_puts(o, "{\"error\":\"not started\"}");
    const struct voro_config *cfg = snap->cfg;
    enum voro_io_model running = node->n_workers ? voro_loop_model(node->workers[0]->loop) : node->io_model;

    voro_strbuf_puts(o, "{\"node\":{\"name\":");
    voro_strbuf_json_string(o, cfg->node_name);
    voro_strbuf_printf(o, ",\"version\":\"%s\",\"uptime_seconds\":%" PRIu64 ",\"config_generation\":%" PRIu64
                          ",\"config_path\":",
                       VORO_VERSION, (voro_now_ms() - node->started_ms) / 1000, snap->generation);
    voro_strbuf_json_string(o, src->config_path ? src->config_path : "");
    voro_strbuf_printf(o, ",\"draining\":%s},", node->draining ? "true" : "false");
    voro_strbuf_printf(o, "\"io_model\":{\"configured\":\"%s\",\"running\":\"%s\"},", voro_io_model_name(node->io_model),
                       voro_io_model_name(running));
    voro_strbuf_printf(o, "\"threads\":%u,", node->n_workers);
    voro_strbuf_printf(o,
                       "\"limits\":{\"max_connections\":%u,\"max_connections_per_ip\":%u,\"global_qps\":%u,"
                       "\"connections\":%u,\"descriptors\":%u,\"descriptor_budget\":%u,"
                       "\"body_memory_bytes\":%" PRIu64 ",\"per_ip_table_full\":%" PRIu64 "},",
                       cfg->max_connections, cfg->max_connections_per_ip, cfg->global_qps,
                       atomic_load(&((struct voro_node *)node)->dp.limits.total),
                       atomic_load(&((struct voro_node *)node)->dp.limits.fds), node->dp.limits.fd_cap,
                       (uint64_t)atomic_load(&((struct voro_node *)node)->dp.body_memory),
                       (uint64_t)atomic_load(&((struct voro_node *)node)->dp.limits.ip_table_full));

    voro_strbuf_puts(o, "\"listeners\":[");
    for (size_t l = 0; l < cfg->n_listeners; l++) {
        const struct voro_listener_config *lc = &cfg->listeners[l];
        struct listener_sum ls;
        sum_listener(snap, l, &ls);
        voro_strbuf_printf(o, "%s{\"name\":", l ? "," : "");
        voro_strbuf_json_string(o, lc->name);
        voro_strbuf_printf(o, ",\"mode\":\"%s\",\"bind\":", voro_listener_mode_name(lc->mode));
        voro_strbuf_json_string(o, lc->bind.text);
        voro_strbuf_puts(o, ",\"pool\":");
        voro_strbuf_json_string(o, lc->pool_name);
        voro_strbuf_printf(o,
                           ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"bytes_in\":%" PRIu64
                           ",\"bytes_out\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
                           ls.accepted, ls.rejected, ls.bytes_in, ls.bytes_out, ls.errors);
    }
    voro_strbuf_puts(o, "],\"pools\":[");
    for (size_t p = 0; p < cfg->n_pools; p++) {
        const struct voro_pool_config *pc = &cfg->pools[p];
        voro_strbuf_printf(o, "%s{\"name\":", p ? "," : "");
        voro_strbuf_json_string(o, pc->name);
        voro_strbuf_printf(o, ",\"algorithm\":\"%s\",\"servers\":[", voro_lb_algorithm_name(pc->algorithm));
        for (size_t s = 0; s < pc->n_servers; s++) {
            const struct voro_server_config *sc = &pc->servers[s];
            struct server_sum sum;
            sum_server(snap, p, s, &sum);
            const char *reason = NULL;
            bool up = src->health ? src->health(src->health_ctx, p, s, &reason)
                                  : (atomic_load(&snap->servers[p][s].health) & 1u);
            voro_strbuf_printf(o, "%s{\"name\":", s ? "," : "");
            voro_strbuf_json_string(o, sc->name);
            voro_strbuf_puts(o, ",\"address\":");
            voro_strbuf_json_string(o, sc->addr.text);
            voro_strbuf_printf(o, ",\"weight\":%u,\"health\":\"%s\",\"reason\":", sc->weight, up ? "up" : "down");
            voro_strbuf_json_string(o, reason ? reason : "");
            voro_strbuf_printf(o,
                               ",\"connections\":%" PRIu64 ",\"active\":%" PRIu64 ",\"bytes_in\":%" PRIu64
                               ",\"bytes_out\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"http_5xx\":%" PRIu64,
                               sum.connections, sum.active, sum.bytes_in, sum.bytes_out, sum.connect_failures, sum.http_5xx);
            const struct voro_backend_signals *sig = &snap->servers[p][s].signals;
            uint64_t mt = atomic_load_explicit(&sig->metrics_time_ms, memory_order_relaxed);
            voro_strbuf_printf(o,
                               ",\"signals\":{\"inflight\":%u,\"weight_permille\":%u,\"queue_depth\":%u,\"running\":%u"
                               ",\"kv_usage_permille\":%u,\"gpu_util_permille\":%u,\"capacity\":%u,\"gpu_error\":%s"
                               ",\"metrics_age_ms\":%" PRId64 "}}",
                               atomic_load(&sig->inflight), atomic_load(&sig->weight_permille), atomic_load(&sig->queue_depth),
                               atomic_load(&sig->running), atomic_load(&sig->kv_usage_permille),
                               atomic_load(&sig->gpu_util_permille), atomic_load(&sig->capacity),
                               (atomic_load(&sig->flags) & VORO_SIGNAL_GPU_ERROR) ? "true" : "false",
                               mt ? (int64_t)(voro_now_ms() - mt) : (int64_t)-1);
        }
        voro_strbuf_puts(o, "]}");
    }
    voro_strbuf_puts(o, "],\"workers\":[");
    struct json_ctx jc = {.out = o, .first = true};
    for_each_worker(node, json_worker, &jc);
    const struct voro_retired_totals *rt = &node->retired_totals;
    voro_strbuf_printf(o,
                       "],\"retired_workers\":{\"accepted\":%" PRIu64 ",\"bytes_from_clients\":%" PRIu64
                       ",\"bytes_to_clients\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"connect_failures\":%" PRIu64 "}}\n",
                       rt->accepted, rt->bytes_from_clients, rt->bytes_to_clients, rt->errors, rt->connect_failures);
    return o->failed ? -ENOMEM : 0;
}

int voro_stats_write_prometheus(const struct voro_stats_source *src, struct voro_strbuf *o)
{
    const struct voro_node *node = src->node;
    const struct voro_snapshot *snap = node->current;
    if (!snap)
        return 0;
    const struct voro_config *cfg = snap->cfg;
    char num[32];

    voro_prom_header(o, "voro_info", "gauge", "Build and runtime information");
    enum voro_io_model running = node->n_workers ? voro_loop_model(node->workers[0]->loop) : node->io_model;
    const char *info[] = {"version", VORO_VERSION, "io_model", voro_io_model_name(running), "io_model_configured",
                          voro_io_model_name(node->io_model), NULL};
    voro_prom_sample(o, "voro_info", info, 1);
    voro_prom_header(o, "voro_config_generation", "gauge", "Configuration generation in force");
    voro_prom_sample_u64(o, "voro_config_generation", NULL, snap->generation);
    voro_prom_header(o, "voro_uptime_seconds", "gauge", "Seconds since the process started");
    voro_prom_sample_u64(o, "voro_uptime_seconds", NULL, (voro_now_ms() - node->started_ms) / 1000);
    voro_prom_header(o, "voro_connections", "gauge", "Connections admitted node-wide (limits accounting)");
    voro_prom_sample_u64(o, "voro_connections", NULL, atomic_load(&((struct voro_node *)node)->dp.limits.total));

    /* Per worker. */
#define X(field, name, type, help)                                                                   \
    voro_prom_header(o, "voro_worker_" name, type, help);                                           \
    for (unsigned i = 0; i < node->n_workers + node->n_retiring; i++) {                              \
        const struct voro_worker *w = i < node->n_workers ? node->workers[i] : node->retiring[i - node->n_workers]; \
        snprintf(num, sizeof(num), "%u", w->id);                                                     \
        const char *labels[] = {"worker", num, NULL};                                               \
        voro_prom_sample_u64(o, "voro_worker_" name, labels, voro_counter_get(&w->stats.field));     \
    }
    WORKER_COUNTERS(X)
#undef X
    voro_prom_header(o, "voro_worker_http_responses_total", "counter", "HTTP responses from servers passed to clients, by class");
    for (unsigned i = 0; i < node->n_workers + node->n_retiring; i++) {
        const struct voro_worker *w = i < node->n_workers ? node->workers[i] : node->retiring[i - node->n_workers];
        snprintf(num, sizeof(num), "%u", w->id);
        for (int k = 0; k < 5; k++) {
            char cls[4] = {(char)('1' + k), 'x', 'x', 0};
            const char *labels[] = {"worker", num, "class", cls, NULL};
            voro_prom_sample_u64(o, "voro_worker_http_responses_total", labels, voro_counter_get(&w->stats.http_responses[k]));
        }
    }

    /* Per listener. */
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } lmetrics[] = {
        {"voro_listener_accepted_total", "counter", "Connections or UDP sessions accepted", offsetof(struct listener_sum, accepted)},
        {"voro_listener_rejected_total", "counter", "Connections refused by a limit", offsetof(struct listener_sum, rejected)},
        {"voro_listener_received_bytes_total", "counter", "Bytes received from clients", offsetof(struct listener_sum, bytes_in)},
        {"voro_listener_sent_bytes_total", "counter", "Bytes sent to clients", offsetof(struct listener_sum, bytes_out)},
        {"voro_listener_errors_total", "counter", "Connections ended by an error", offsetof(struct listener_sum, errors)},
    };
    for (size_t m = 0; m < sizeof(lmetrics) / sizeof(lmetrics[0]); m++) {
        voro_prom_header(o, lmetrics[m].name, lmetrics[m].type, lmetrics[m].help);
        for (size_t l = 0; l < cfg->n_listeners; l++) {
            struct listener_sum ls;
            sum_listener(snap, l, &ls);
            const struct voro_listener_config *lc = &cfg->listeners[l];
            const char *labels[] = {"listener", lc->name, "mode", voro_listener_mode_name(lc->mode), NULL};
            voro_prom_sample_u64(o, lmetrics[m].name, labels, *(const uint64_t *)((const char *)&ls + lmetrics[m].offset));
        }
    }

    /* Per server. */
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } smetrics[] = {
        {"voro_server_connections_total", "counter", "Connections or UDP sessions sent to the server", offsetof(struct server_sum, connections)},
        {"voro_server_connections_active", "gauge", "Connections or UDP sessions open to the server", offsetof(struct server_sum, active)},
        {"voro_server_received_bytes_total", "counter", "Bytes received from the server", offsetof(struct server_sum, bytes_in)},
        {"voro_server_sent_bytes_total", "counter", "Bytes sent to the server", offsetof(struct server_sum, bytes_out)},
        {"voro_server_connect_failures_total", "counter", "Failed connects to the server", offsetof(struct server_sum, connect_failures)},
    };
    voro_prom_header(o, "voro_server_up", "gauge", "1 when the server passes its health checks");
    for (size_t p = 0; p < cfg->n_pools; p++) {
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++) {
            const char *labels[] = {"pool", cfg->pools[p].name, "server", cfg->pools[p].servers[s].name, "address",
                                    cfg->pools[p].servers[s].addr.text, NULL};
            bool up = src->health ? src->health(src->health_ctx, p, s, NULL) : (atomic_load(&snap->servers[p][s].health) & 1u);
            voro_prom_sample_u64(o, "voro_server_up", labels, up ? 1 : 0);
        }
    }
    for (size_t m = 0; m < sizeof(smetrics) / sizeof(smetrics[0]); m++) {
        voro_prom_header(o, smetrics[m].name, smetrics[m].type, smetrics[m].help);
        for (size_t p = 0; p < cfg->n_pools; p++) {
            for (size_t s = 0; s < cfg->pools[p].n_servers; s++) {
                struct server_sum sum;
                sum_server(snap, p, s, &sum);
                const char *labels[] = {"pool", cfg->pools[p].name, "server", cfg->pools[p].servers[s].name, "address",
                                        cfg->pools[p].servers[s].addr.text, NULL};
                voro_prom_sample_u64(o, smetrics[m].name, labels,
                                     *(const uint64_t *)((const char *)&sum + smetrics[m].offset));
            }
        }
    }
    return o->failed ? -ENOMEM : 0;
}
