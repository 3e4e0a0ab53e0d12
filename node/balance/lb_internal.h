/* Private interface between the balancer dispatcher (lb.c) and the per-algorithm files. */
#ifndef VORO_NODE_BALANCE_LB_INTERNAL_H
#define VORO_NODE_BALANCE_LB_INTERNAL_H

#include "node/balance/balance.h"

/* A server a pick may return: usable (weight, health) and not already tried. */
static inline int voro_lb_candidate(const struct voro_lb *lb, size_t i, const struct voro_lb_exclude *ex)
{
    return voro_lb_server_usable(&lb->servers[i]) && !voro_lb_exclude_has(ex, (int)i);
}

/* Strict "a carries less load than b": active/weight compared without division. */
static inline int voro_lb_less_loaded(const struct voro_lb_server *a, const struct voro_lb_server *b)
{
    return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
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

#endif
