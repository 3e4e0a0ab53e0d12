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
            atomic_init(&snap->servers[p][s].learned, NULL);
            struct voro_model_set *was = old ? atomic_load(&old->learned) : NULL;
            if (was) { /* carry what was learned across the reload (a copy: sets die with their snapshot) */
                const char *ids[was->n ? was->n : 1];
                for (uint32_t i = 0; i < was->n; i++)
                    ids[i] = was->ids[i];
                (void)voro_snapshot_set_learned(snap, p, s, ids, was->n);
            }
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
        for (size_t p = 0; p < snap->cfg->n_pools; p++) {
            for (size_t s = 0; snap->servers[p] && s < snap->cfg->pools[p].n_servers; s++) {
                struct voro_model_set *set = atomic_load(&snap->servers[p][s].learned);
                while (set) {
                    struct voro_model_set *older = set->older;
                    free(set);
                    set = older;
                }
            }
            free(snap->servers[p]);
        }
        free(snap->servers);
    }
    free(snap->counters);
    free(snap->listen);
    free(snap->listener_counters);
    voro_config_free(snap->cfg);
    free(snap);
}

int voro_snapshot_set_learned(struct voro_snapshot *snap, size_t pool, size_t server, const char *const *ids, size_t n)
{
    if (pool >= snap->cfg->n_pools || server >= snap->cfg->pools[pool].n_servers)
        return -EINVAL;
    struct voro_server_state *st = &snap->servers[pool][server];
    struct voro_model_set *old = atomic_load(&st->learned);
    if (old && old->updates >= VORO_LEARNED_MAX_UPDATES)
        return -EBUSY;
    struct voro_model_set *set = calloc(1, sizeof(*set) + n * sizeof(set->ids[0]));
    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        if (len >= VORO_LEARNED_ID_MAX)
            continue; /* no model name is that long; ignore rather than truncate */
        memcpy(set->ids[set->n++], ids[i], len + 1);
    }
    set->older = old;
    set->updates = old ? old->updates + 1 : 0;
    atomic_store_explicit(&st->learned, set, memory_order_release);
    return 0;
}

bool voro_snapshot_learned_lacks(const struct voro_server_state *st, const char *model)
{
    const struct voro_model_set *set = atomic_load_explicit(&((struct voro_server_state *)st)->learned, memory_order_acquire);
    if (!set)
        return false;
    size_t len = strcspn(model, "@");
    for (uint32_t i = 0; i < set->n; i++)
        if (strlen(set->ids[i]) == len && memcmp(set->ids[i], model, len) == 0)
            return false;
    return true;
}
