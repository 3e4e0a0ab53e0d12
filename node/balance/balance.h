/* Per-worker load balancers over one pool's servers: smooth weighted round robin, least
 * connections, consistent hash (Maglev with bounded load), power of two choices and the L7
 * ones (peak-EWMA, queue length, GPU-aware; formulas in docs/algorithms.md).
 * A balancer is owned by one worker thread: no locks; health and backend signals are read
 * with relaxed atomics, and only `signals->inflight` is written (relaxed fetch_add/sub). */
#ifndef VORO_NODE_BALANCE_H
#define VORO_NODE_BALANCE_H

#include <stdatomic.h>
#include <stdbool.h>
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
    uint32_t active;        /* in flight from this worker (conn_begin/end for L4, request_begin/end for L7) */
    int64_t current_weight; /* smooth WRR state */
    const _Atomic uint32_t *health;
    uint64_t identity_hash;
    const struct voro_backend_signals *signals; /* NULL = none. Not owned. */
    _Atomic uint32_t *inflight; /* &signals->inflight (the one field workers write), or NULL */
    /* ewma: peak-EWMA of latency in microseconds, 0 = no sample yet */
    double ewma_us;
    uint64_t ewma_time_ms;
    double ttft_us;         /* gpu_aware: moving average of the time to first byte Voro measured */
    /* gpu_aware: capacity learned from scrapes (see docs/algorithms.md) */
    uint64_t seen_metrics_ms; /* metrics_time_ms of the last scrape folded in */
    uint32_t cap_sat_cur, cap_sat_prev; /* max `running` seen while saturated, this and the last window */
    uint32_t cap_learned;     /* 0 = unknown */
    uint32_t run_max;         /* max `running` ever seen (a lower bound while the capacity is unknown) */
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
    uint64_t now_ms;       /* the worker's cached CLOCK_MONOTONIC ms (voro_lb_set_now); pick never reads a clock */
    uint32_t stale_ms;     /* scraped metrics older than this are stale (default VORO_LB_DEFAULT_STALE_MS) */
    int has_signals;       /* some server has signals: GPU-error last-resort filtering applies */
    uint64_t cap_window_start_ms; /* gpu_aware capacity-learning window */
};

#define VORO_LB_DEFAULT_STALE_MS 3000u
#define VORO_LB_EWMA_TAU_MS 10000.0      /* peak-EWMA decay time constant */
#define VORO_LB_CAP_WINDOW_MS 60000u     /* a lower saturation point replaces the learned capacity after <= 2 windows */
#define VORO_LB_DEFAULT_CAPACITY 16u     /* gpu_aware: capacity assumed when nothing is known */

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
/* L4: one connection to `index` starts / ends (per-worker `active`). Out-of-range index is ignored. */
void voro_lb_conn_begin(struct voro_lb *lb, int index);
void voro_lb_conn_end(struct voro_lb *lb, int index);

/* L7: one request to `index` starts / ends. Maintains the per-worker `active` and the node-wide
 * `signals->inflight` (relaxed). `latency_us` > 0 feeds the ewma algorithm's estimate at the
 * cached clock (0 = no sample, e.g. when the TTFT was already fed); a failed request (`ok` false)
 * counts as at least twice the current estimate so fast failures do not attract traffic. */
void voro_lb_request_begin(struct voro_lb *lb, int index);
void voro_lb_request_end(struct voro_lb *lb, int index, uint64_t latency_us, bool ok);
/* Feeds a time-to-first-token sample (streamed responses) into the ewma estimate. */
void voro_lb_observe_ttft(struct voro_lb *lb, int index, uint64_t ttft_us);
/* Sets the cached monotonic clock (ms); the worker calls it once per loop iteration. */
void voro_lb_set_now(struct voro_lb *lb, uint64_t now_ms);
/* Scraped metrics older than `stale_ms` are stale (0 restores the default). */
void voro_lb_set_stale_ms(struct voro_lb *lb, uint32_t stale_ms);

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
