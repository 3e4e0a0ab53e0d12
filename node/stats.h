/* Renders the data plane's counters for the admin API: /stats as JSON and /metrics as
 * Prometheus text. Reads per-worker and per-snapshot counters (relaxed atomics) on the
 * control thread; never blocks a worker. */
#ifndef VORO_NODE_STATS_H
#define VORO_NODE_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"
#include "node/node.h"

/* Health verdict and reason of pools[pool].servers[server], supplied by the caller (the
 * control plane knows the reasons). `reason` may be set to NULL. */
typedef bool (*voro_stats_health_fn)(void *ctx, size_t pool, size_t server, const char **reason);

struct voro_stats_source {
    const struct voro_node *node;
    voro_stats_health_fn health;
    void *health_ctx;
    const char *config_path;
};

int voro_stats_write_json(const struct voro_stats_source *src, struct voro_strbuf *out);
int voro_stats_write_prometheus(const struct voro_stats_source *src, struct voro_strbuf *out);

#endif
