/* Private interface between the balancer dispatcher (lb.c) and the per-algorithm files. */
#ifndef VORO_NODE_BALANCE_LB_INTERNAL_H
#define VORO_NODE_BALANCE_LB_INTERNAL_H

#include "node/balance/balance.h"

/* A server a pick may return: usable (weight, health) and not already tried. */
static inline int voro_lb_candidate(const struct voro_lb *lb, size_t i, const struct voro_lb_exclude *ex)
{
    return voro_lb_server_usable(&lb->servers[i]) && !voro_lb_exclude_has(ex, (int)i);
}

/* Effective weight in thousandths: weight x slow-start permille (capped at 1000), at least 1
 * when the weight is > 0, so a ramping server keeps a trickle. No signals = full weight. */
static inline uint64_t voro_lb_eff_weight(const struct voro_lb_server *s)
{
    if (s->weight == 0)
        return 0;
    if (!s->signals)
        return (uint64_t)s->weight * 1000u;
    uint32_t p = atomic_load_explicit(&s->signals->weight_permille, memory_order_relaxed);
    uint64_t w = (uint64_t)s->weight * (p < 1000u ? p : 1000u);
    return w ? w : 1;
}

/* Strict "a carries less load than b": active/effective weight compared without division
 * (active < 2^32, weight <= 2^32 x 1000 would overflow, so the product is 128-bit). */
static inline int voro_lb_less_loaded(const struct voro_lb_server *a, const struct voro_lb_server *b)
{
    return (unsigned __int128)a->active * voro_lb_eff_weight(b) < (unsigned __int128)b->active * voro_lb_eff_weight(a);
}

/* Requests in flight to the server: node-wide when signals exist (includes this worker's). */
static inline uint32_t voro_lb_inflight(const struct voro_lb_server *s)
{
    if (!s->inflight)
        return s->active;
    uint32_t n = atomic_load_explicit(s->inflight, memory_order_relaxed);
    return n > s->active ? n : s->active;
}

/* Scraped metrics are usable: scraped at least once and not older than lb->stale_ms. A scrape
 * stamped after the cached clock (taken at the start of the loop iteration) counts as fresh. */
static inline int voro_lb_metrics_fresh(const struct voro_lb *lb, const struct voro_lb_server *s)
{
    if (!s->signals)
        return 0;
    uint64_t t = atomic_load_explicit(&s->signals->metrics_time_ms, memory_order_relaxed);
    if (t == 0)
        return 0;
    return t >= lb->now_ms || lb->now_ms - t <= lb->stale_ms;
}

static inline int voro_lb_metrics_never(const struct voro_lb_server *s)
{
    return !s->signals || atomic_load_explicit(&s->signals->metrics_time_ms, memory_order_relaxed) == 0;
}

static inline uint64_t voro_lb_xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* splitmix64 finalizer: spreads every input bit over the output. */
static inline uint64_t voro_lb_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

int voro_lb_rr_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);
int voro_lb_lc_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);
/* Allocates and fills lb->table / lb->table_size from the servers' identity hashes. */
int voro_lb_ch_build(struct voro_lb *lb);
int voro_lb_ch_pick(struct voro_lb *lb, uint64_t key, const struct voro_lb_exclude *ex);
int voro_lb_p2c_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);
/* Two distinct candidates drawn with probability proportional to effective weight. Returns the
 * number of candidates (0: none, *a = *b = -1; 1: *a only, *b = -1). */
size_t voro_lb_p2c_draw(struct voro_lb *lb, const struct voro_lb_exclude *ex, int *a, int *b);
int voro_lb_ewma_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);
/* Folds one latency sample (µs) into the server's peak-EWMA at lb->now_ms. */
void voro_lb_ewma_sample(struct voro_lb *lb, struct voro_lb_server *s, double sample_us);
int voro_lb_ql_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);
int voro_lb_gpu_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex);

#endif
