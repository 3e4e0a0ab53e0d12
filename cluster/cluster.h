/* A node's membership in a Voro cluster: canonical/raft (libuv backend) on the control loop,
 * the replicated state, the /cluster HTTP API (docs/cluster-api.md) and the hand-over of
 * replicated config versions to the node. Everything runs on the control thread. */
#ifndef VORO_CLUSTER_CLUSTER_H
#define VORO_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"
#include "cluster/control.h"

struct voro_cluster;
struct voro_backend; /* raft/state.h */

struct voro_cluster_hooks {
    void *ctx;
    /* Config `version` with cluster text `text` (borrowed for the call, text_len bytes, NUL
     * terminated) is now current. Runs outside Raft callbacks. The node builds its effective
     * config and applies it, then calls voro_cluster_report_active (possibly later). */
    void (*on_config)(void *ctx, uint64_t version, const char *text, size_t text_len);
    /* The dynamic backends (voro_cluster_backends) changed through backend_add / remove / drain
     * or a snapshot restore, and no new config version is being handed over in the same round
     * (on_config then reads them itself). Runs outside Raft callbacks. May be NULL. */
    void (*on_backends)(void *ctx);
    /* This node's data-plane verdict on the server at `address` (ip:port) of `pool`: 1 up, 0
     * down (*reason set, borrowed for the call), -1 when the config in force has no such
     * server. Used by GET /cluster/backends and /cluster/status. May be NULL. */
    int (*server_health)(void *ctx, const char *pool, const char *address, const char **reason);
    /* Every server of every pool in the config in force (configured and merged dynamic ones),
     * counted by this node's verdict into *up and *down. Returns 0, or -ENOENT when no config
     * is in force. Used by /cluster/status. May be NULL. */
    int (*server_counts)(void *ctx, size_t *up, size_t *down);
};

/* Creates the cluster member described by cfg's [cluster] keys (cfg->cluster_enabled must be
 * set; cfg is only read during the call) and registers the /cluster endpoints on `control`
 * (borrowed; it must outlive the cluster). A data directory that already holds Raft state is
 * resumed (Raft starts at once); an empty one waits for POST /cluster/init or join-via.
 * *out is owned by the caller (voro_cluster_destroy). Returns 0 or a negative errno. */
int voro_cluster_create(struct voro_cluster **out, struct voro_control *control, const struct voro_config *cfg,
                        const struct voro_cluster_hooks *hooks);
/* The node activated config `version` (ok) or could not (reason says why): committed as
 * node_config_active through the leader, retried until it is. `reason` is copied. */
void voro_cluster_report_active(struct voro_cluster *cl, uint64_t version, bool ok, const char *reason);
/* The current replicated config text (NUL-terminated, valid until the next loop iteration) and
 * its version, or NULL when none was pushed yet. */
const char *voro_cluster_config_text(const struct voro_cluster *cl, uint64_t *version, size_t *len);
/* The dynamic backends registered through the API (sorted by pool then address), borrowed:
 * valid until the next loop iteration. *n is their count (0 with a non-NULL `cl` and none). */
const struct voro_backend *voro_cluster_backends(const struct voro_cluster *cl, size_t *n);
/* Answers pending API requests with 503, cancels node-to-node calls, closes Raft (canonical/raft
 * close order) and frees `cl`, running the control loop until all of it is closed. Call after
 * voro_control_run returned and before voro_control_destroy. NULL is a no-op. */
/* Offline disaster recovery (`voro --recover-raft`): with every node stopped, makes this node
 * (cfg's [cluster] keys) the only voter of its Raft configuration. Returns 0 or a negative
 * errno (logged). */
int voro_cluster_recover(const struct voro_config *cfg);
void voro_cluster_destroy(struct voro_cluster *cl);

#endif
