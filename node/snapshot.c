/* Builds and frees the immutable worker snapshot (config + shared health words + counters). */
#include "node/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/balance/balance.h"

static const struct voro_server_state *find_prev_state(const struct voro_snapshot *prev, const char *pool_name,
                                                       const struct voro_sockaddr *addr)
{
    if (!prev)
        return NULL;
    for (size_t p = 0; p < prev->cfg->n_pools; p++) {
        const struct voro_pool_config *pc = &prev->cfg->pools[p];
        if (strcmp(pc->name, pool_name) != 0)
            continue;
        for (size_t s = 0; s < pc->n_servers; s++)
            if (strcmp(pc->servers[s].addr.text, addr->text) == 0)
                return &prev->servers[p][s];
    }
    return NULL;
}

static void init_signals(struct voro_backend_signals *sg, const struct voro_backend_signals *old, uint32_t capacity)
{
#define CARRY(field, dflt) atomic_init(&sg->field, old ? atomic_load(&old->field) : (dflt))
    CARRY(weight_permille, 1000u);
    atomic_init(&sg->inflight, 0u); /* old requests end against the old snapshot's counter */
    CARRY(queue_depth, 0u);
    CARRY(running, 0u);
    CARRY(kv_usage_permille, 0u);
    CARRY(gpu_util_permille, 0u);
    CARRY(capacity, 0u);
    CARRY(flags, 0u);
    CARRY(gpu_mem_free_bytes, 0u);
    CARRY(metrics_time_ms, 0u);
#undef CARRY
    if (capacity)
        atomic_store(&sg->capacity, capacity);
}

int voro_snapshot_create(struct voro_snapshot **out, struct voro_config *cfg, const struct voro_snapshot *prev,
                         uint32_t n_slots, uint64_t generation)
{
    int rc = -ENOMEM;
    struct voro_snapshot *snap = calloc(1, sizeof(*snap));
    if (!snap)
        goto fail_cfg;
    snap->cfg = cfg;
    snap->generation = generation;
    snap->n_slots = n_slots ? n_slots : 1;
    atomic_init(&snap->refs, 1);

    snap->servers = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*snap->servers));
    if (!snap->servers)
        goto fail_snap;
    uint32_t total = 0;
    for (size_t p = 0; p < cfg->n_pools; p++) {
        const struct voro_pool_config *pc = &cfg->pools[p];
        snap->servers[p] = calloc(pc->n_servers ? pc->n_servers : 1, sizeof(**snap->servers));
        if (!snap->servers[p])
            goto fail_snap;
        for (size_t s = 0; s < pc->n_servers; s++) {
            const struct voro_server_state *old = find_prev_state(prev, pc->name, &pc->servers[s].addr);
            uint32_t health = old ? atomic_load(&old->health) : VORO_SERVER_UP;
            atomic_init(&snap->servers[p][s].health, health);
            init_signals(&snap->servers[p][s].signals, old ? &old->signals : NULL, pc->servers[s].capacity);
            snap->servers[p][s].global_index = total++;
        }
    }
    snap->n_servers_total = total;
    snap->listener_counters = calloc((size_t)snap->n_slots * (cfg->n_listeners ? cfg->n_listeners : 1),
                                     sizeof(*snap->listener_counters));
    if (!snap->listener_counters)
        goto fail_snap;
    snap->listen = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*snap->listen));
    if (!snap->listen)
        goto fail_snap;
    snap->counters = calloc((size_t)snap->n_slots * (total ? total : 1), sizeof(*snap->counters));
    if (!snap->counters)
        goto fail_snap;
    *out = snap;
    return 0;

fail_snap:
    voro_snapshot_destroy(snap);
    return rc;
fail_cfg:
    voro_config_free(cfg);
    return rc;
}

void voro_snapshot_destroy(struct voro_snapshot *snap)
{
    if (!snap)
        return;
    if (snap->servers) {
        for (size_t p = 0; p < snap->cfg->n_pools; p++)
            free(snap->servers[p]);
        free(snap->servers);
    }
    free(snap->counters);
    free(snap->listen);
    free(snap->listener_counters);
    voro_config_free(snap->cfg);
    free(snap);
}
