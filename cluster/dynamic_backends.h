/* Merging the cluster's dynamic backends (POST /cluster/backends) into a node's effective config. */
#ifndef VORO_CLUSTER_DYNAMIC_BACKENDS_H
#define VORO_CLUSTER_DYNAMIC_BACKENDS_H

#include <stddef.h>

#include "cluster/config.h"
#include "raft/state.h"

/* What a merge did, for one log line. */
struct voro_backend_merge_stats {
    size_t added;   /* servers appended to a pool ("dyn-HOST-PORT") */
    size_t updated; /* servers of the config text whose weight a dynamic backend set */
    size_t skipped; /* unknown pool, unparsable address or full pool (each logged once per merge) */
};

/* Applies `backends` (borrowed; n entries, e.g. a voro_cluster_state's table) to `cfg`, which
 * the caller owns. For each backend of pool P with address A:
 *  - P is not in cfg, A does not parse, or P already has VORO_POOL_MAX_SERVERS servers: skipped
 *    with one warning line;
 *  - P has a server whose address is A: its weight becomes 0 when draining, else the backend's
 *    weight (capped at 256);
 *  - else a server "dyn-HOST-PORT" (other characters replaced by '-', made unique in the pool)
 *    is appended with that weight, no models, no metrics URL, capacity 0.
 * Weight 0 is "never picked": a draining backend keeps its open connections but gets no new ones.
 * pools[].servers is grown with realloc, so voro_config_free still frees everything.
 * Returns 0 or -ENOMEM (then cfg is still valid and freeable, possibly partly merged).
 * `stats` may be NULL. */
int voro_config_merge_backends(struct voro_config *cfg, const struct voro_backend *backends, size_t n,
                               struct voro_backend_merge_stats *stats);

#endif
