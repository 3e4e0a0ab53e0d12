/* Per-worker load balancers over one pool's servers: smooth weighted round robin, least
 * connections, consistent hash (Maglev with bounded load) and power of two choices.
 * A balancer is owned by one worker thread: no locks, no atomics except reading health. */
#ifndef VORO_NODE_BALANCE_H
#define VORO_NODE_BALANCE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"

/* Health word shared with the control thread (it writes, workers read, relaxed). */
#define VORO_SERVER_UP 1u

/* What the control plane knows about a server, published as atomics (written by the control
 * thread except `inflight`, which workers add to and subtract from). Lives in the snapshot. */
struct voro_backend_signals {
    _Atomic uint32_t weight_permille;   /* slow-start ramp: 1000 = full weight */
    _Atomic uint32_t inflight;          /* node-wide requests in flight to it (all workers) */
    _Atomic uint32_t queue_depth;       /* engine: requests waiting */
    _Atomic uint32_t running;           /* engine: requests running */
    _Atomic uint32_t kv_usage_permille; /* engine: KV-cache usage, 0..1000 */
    _Atomic uint32_t gpu_util_permille; /* GPU utilisation, 0..1000 */
    _Atomic uint32_t capacity;          /* concurrent sequences (configured or learned), 0 = unknown */
    _Atomic uint32_t flags;             /* VORO_SIGNAL_* */
    _Atomic uint64_t gpu_mem_free_bytes;
    _Atomic uint64_t metrics_time_ms;   /* CLOCK_MONOTONIC ms of the last good scrape, 0 = never */
};
#define VORO_SIGNAL_GPU_ERROR 1u        /* XID error seen: avoid */

struct voro_lb_server_init {
    uint32_t weight;                 /* 0 = never picked */
    const _Atomic uint32_t *health;  /* VORO_SERVER_UP bit; NULL = always up. Not owned. */
    const char *identity;            /* stable identity for consistent hashing ("name" or address); copied hash only */
    const struct voro_backend_signals *signals; /* NULL = none (L4 algorithms ignore it). Not owned. */
};

struct voro_lb_server {
    uint32_t weight;
    uint32_t active;        /* in flight from this worker (voro_lb_conn_begin/end) */
    int64_t current_weight; /* smooth WRR state */
    const _Atomic uint32_t *health;
    uint64_t identity_hash;
};

/* Servers already tried by one connection (retries skip them). Index >= 256 wraps. */
struct voro_lb_exclude {
    uint64_t bits[4];
};

struct voro_lb {
    enum voro_lb_algorithm algorithm;
    struct voro_lb_server *servers; /* owned */
    size_t n_servers;
    uint32_t *table;                /* consistent_hash lookup table, owned */
    size_t table_size;              /* prime, >= 100 x servers */
    double balance_factor;          /* bounded load: c >= 1.0 */
    uint32_t total_active;
    uint64_t rng;
    size_t rr_next;
};

/* Builds a balancer; copies `servers`. Returns 0, -EINVAL (n == 0 or > VORO_POOL_MAX_SERVERS), -ENOMEM. */
int voro_lb_init(struct voro_lb *lb, enum voro_lb_algorithm algorithm, const struct voro_lb_server_init *servers,
                 size_t n, double balance_factor, uint64_t seed);
void voro_lb_destroy(struct voro_lb *lb);

static inline int voro_lb_server_usable(const struct voro_lb_server *s)
{
    return s->weight > 0 && (!s->health || (atomic_load_explicit(s->health, memory_order_relaxed) & VORO_SERVER_UP));
}

/* Picks a usable server not in `exclude` (may be NULL). `key` is the consistent-hash key
 * (e.g. a hash of the client address); other algorithms ignore it. Returns the index or
 * -EHOSTUNREACH when no server is usable. Does not count the pick as active. */
int voro_lb_pick(struct voro_lb *lb, uint64_t key, const struct voro_lb_exclude *exclude);
void voro_lb_conn_begin(struct voro_lb *lb, int index);
void voro_lb_conn_end(struct voro_lb *lb, int index);

static inline void voro_lb_exclude_add(struct voro_lb_exclude *ex, int index)
{
    ex->bits[(index >> 6) & 3] |= 1ull << (index & 63);
}
static inline int voro_lb_exclude_has(const struct voro_lb_exclude *ex, int index)
{
    return ex && (ex->bits[(index >> 6) & 3] >> (index & 63)) & 1;
}

/* 64-bit hash used for keys and identities (stable across nodes and restarts). */
uint64_t voro_hash64(const void *data, size_t len, uint64_t seed);

#endif
