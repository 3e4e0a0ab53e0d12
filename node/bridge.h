/* The one place where the control plane meets the data plane: it turns control-thread events
 * (reload, shutdown, health verdicts, ticks) into node actions and published snapshots, feeds
 * passive failure counts back as health signals, and registers /stats and /metrics. */
#ifndef VORO_NODE_BRIDGE_H
#define VORO_NODE_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/control.h"
#include "node/node.h"

/* Runs before the node stops accepting on SIGTERM/SIGINT (e.g. to hand a virtual IP over). */
typedef void (*voro_pre_stop_hook)(void *ctx);

struct voro_bridge_seen;

#define VORO_MAX_PRE_STOP_HOOKS 8

struct voro_bridge {
    struct voro_node *node;        /* not owned */
    struct voro_control *control;  /* not owned; set after voro_control_create */
    const char *config_path;       /* not owned */
    struct voro_bridge_seen *failures_seen; /* [global server index] of the current snapshot, owned */
    uint64_t failures_generation;
    struct voro_bridge_models *models; /* learned /v1/models per (pool name, server address), owned */
    struct {
        voro_pre_stop_hook fn;
        void *ctx;
    } pre_stop[VORO_MAX_PRE_STOP_HOOKS];
    unsigned n_pre_stop;
    bool shutting_down;
};

void voro_bridge_init(struct voro_bridge *b, struct voro_node *node, const char *config_path);
/* The hooks to give voro_control_create (ctx = b). */
struct voro_control_hooks voro_bridge_hooks(struct voro_bridge *b);
/* Attaches the created control plane: registers /stats and /metrics, sets health targets. */
int voro_bridge_attach(struct voro_bridge *b, struct voro_control *control);
int voro_bridge_add_pre_stop_hook(struct voro_bridge *b, voro_pre_stop_hook fn, void *ctx);
void voro_bridge_destroy(struct voro_bridge *b);
/* The model ids last learned from pool `pool_name`'s server at `addr_text` (bridge-owned,
 * valid until the next control-thread event); NULL and *n = 0 when none. Control thread only. */
const char (*voro_bridge_learned_models(const struct voro_bridge *b, const char *pool_name, const char *addr_text,
                                        size_t *n))[128];

#endif
