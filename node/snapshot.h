/* The immutable state the workers run on: one parsed config plus the shared, atomically
 * updated words the control plane publishes into it (server health) and per-worker
 * per-server counters. Swapped RCU-style: workers adopt a new one at a quiescent point and
 * drop their reference when none of their connections uses the old one any more. */
#ifndef VORO_NODE_SNAPSHOT_H
#define VORO_NODE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"
#include "node/balance/balance.h"

/* Per-server counters, one block per worker slot (written by that worker only, relaxed;
 * read by the stats handlers). */
struct voro_server_counters {
    _Atomic uint64_t connections;  /* proxied connections / UDP sessions started */
    _Atomic uint64_t active;       /* in flight now (a gauge kept by its worker) */
    _Atomic uint64_t bytes_in;     /* from the server */
    _Atomic uint64_t bytes_out;    /* to the server */
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t http_5xx;     /* 5xx answers (passive outlier detection) */
    _Atomic uint64_t recoveries;   /* good answers right after a failure (resets the ejection streak) */
    _Atomic uint64_t last_failed;  /* 1 while this worker's last exchange with the server failed */
};

/* Per-listener counters, one block per worker slot (same rules as the server counters). */
struct voro_listener_counters {
    _Atomic uint64_t accepted;   /* connections / UDP sessions admitted */
    _Atomic uint64_t rejected;   /* refused by a limit */
    _Atomic uint64_t bytes_in;   /* from clients */
    _Atomic uint64_t bytes_out;  /* to clients */
    _Atomic uint64_t errors;
    _Atomic uint64_t pad[3];
};

/* Models a server was seen serving (its /v1/models), published by the control thread for
 * servers whose config declares none. Immutable once published; a replaced set stays linked
 * from its successor until the snapshot is freed, so a worker that still reads it is safe. */
#define VORO_LEARNED_ID_MAX 128
#define VORO_LEARNED_MAX_UPDATES 64 /* per server and snapshot; a reload starts over */
struct voro_model_set {
    struct voro_model_set *older; /* owned: the sets this one replaced */
    uint32_t n, updates;
    char ids[][VORO_LEARNED_ID_MAX];
};

struct voro_server_state {
    _Atomic uint32_t health; /* VORO_SERVER_UP bit (balance.h); written by the control thread */
    struct voro_backend_signals signals; /* L7 load figures (balance.h); control thread + workers' inflight */
    uint32_t global_index;   /* index into the per-worker counter blocks */
    _Atomic(struct voro_model_set *) learned; /* NULL = nothing learned; owned by the snapshot */
};

/* Listening sockets of one listener, one per worker slot ever configured (SO_REUSEPORT group).
 * Worker `slot` of `n` accepts on fds[j] for every j with j % n == slot, so shrinking the
 * thread count hands sockets over instead of closing them (which would reset queued clients).
 * The fds belong to the node's socket registry; the snapshot only names them. */
#define VORO_MAX_THREADS 256
struct voro_listen_set {
    int fds[VORO_MAX_THREADS];
    unsigned n_fds;
};

struct voro_snapshot {
    struct voro_config *cfg;             /* owned */
    struct voro_server_state **servers;  /* [pool][server], owned */
    struct voro_server_counters *counters; /* [slot * n_servers_total + global_index], owned */
    struct voro_listener_counters *listener_counters; /* [slot * n_listeners + listener], owned */
    struct voro_listen_set *listen;      /* [listener], filled by the node; owned (not the fds) */
    uint32_t n_servers_total;
    uint32_t n_slots;                    /* worker slots the counters are sized for */
    uint64_t generation;
    uint64_t cohort;                     /* the worker generation that takes on new sockets */
    _Atomic int refs;                    /* holders: the node's "current" + each worker using it */
    struct voro_snapshot *retired_next;  /* node's list of snapshots waiting for refs == 0 */
};

/* Builds a snapshot taking ownership of `cfg` (freed with the snapshot, also on failure).
 * Health words start from `prev` for servers with the same pool name and address, else up.
 * Signals start from `prev` the same way (metrics, slow-start weight, learned capacity; inflight
 * starts at 0), else weight 1000 and nothing measured; a configured capacity always wins.
 * `n_slots` sizes the counters (>= every worker slot that may use it). refs starts at 1. */
int voro_snapshot_create(struct voro_snapshot **out, struct voro_config *cfg, const struct voro_snapshot *prev,
                         uint32_t n_slots, uint64_t generation);
void voro_snapshot_destroy(struct voro_snapshot *snap);

/* Control thread: publishes the models pools[pool].servers[server] serves. Returns 0, -ENOMEM,
 * or -EBUSY once the server's set changed VORO_LEARNED_MAX_UPDATES times in this snapshot. */
int voro_snapshot_set_learned(struct voro_snapshot *snap, size_t pool, size_t server, const char *const *ids, size_t n);
/* Worker side: true when the learned set exists and lacks `model` ("name" or "name@version":
 * the version is ignored, engines list names). False when nothing was learned. */
bool voro_snapshot_learned_lacks(const struct voro_server_state *st, const char *model);

static inline struct voro_server_counters *voro_snapshot_counters(struct voro_snapshot *snap, unsigned slot,
                                                                  uint32_t global_index)
{
    return &snap->counters[(size_t)(slot % snap->n_slots) * snap->n_servers_total + global_index];
}

static inline struct voro_listener_counters *voro_snapshot_listener_counters(struct voro_snapshot *snap, unsigned slot,
                                                                            size_t listener)
{
    return &snap->listener_counters[(size_t)(slot % snap->n_slots) * snap->cfg->n_listeners + listener];
}

/* Relaxed add for counters owned by one writer. */
static inline void voro_counter_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}
static inline void voro_counter_sub(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v, memory_order_relaxed);
}
static inline uint64_t voro_counter_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
