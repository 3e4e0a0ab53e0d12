/* What all workers of a node share: the published snapshot pointer, the node-wide connection
 * admission state, and UDP sessions in transit between workers. Written by the control thread, read by workers. */
#ifndef VORO_NODE_DATAPLANE_H
#define VORO_NODE_DATAPLANE_H

#include <stdatomic.h>
#include <stdint.h>

#include "node/conn_limit.h"
#include "node/snapshot.h"
#include "node/udp_handover.h"

struct voro_dataplane {
    _Atomic(struct voro_snapshot *) current; /* the node holds one ref */
    struct voro_conn_limits limits;
    /* Bytes of request bodies buffered for model routing, node-wide, against [http]
     * max_buffered_body_memory (reserved per body, never per byte). */
    _Atomic uint64_t body_memory;
    uint32_t pipes_per_worker;  /* splice pipes the fd budget allows each worker (UINT32_MAX = as configured) */
    _Atomic uint64_t generation;
    struct voro_udp_handovers udp_handovers;
};

#endif
