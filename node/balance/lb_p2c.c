/* Power of two choices: two distinct weighted-random usable servers, the less loaded one wins. */
#include <errno.h>

#include "node/balance/lb_internal.h"

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Weighted draw over candidates, skipping `skip` (or -1); `total` is their weight sum. */
static int draw(struct voro_lb *lb, const struct voro_lb_exclude *ex, uint64_t total, int skip)
{
    uint64_t r = xorshift64(&lb->rng) % total;
    int last = -1;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if ((int)i == skip || !voro_lb_candidate(lb, i, ex))
            continue;
        last = (int)i;
        if (r < lb->servers[i].weight)
            return (int)i;
        r -= lb->servers[i].weight;
    }
    return last; /* only reached if health flipped between summing and drawing */
}

int voro_lb_p2c_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    uint64_t total = 0;
    size_t count = 0;
    int only = -1;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        total += lb->servers[i].weight;
        count++;
        only = (int)i;
    }
    if (count == 0)
        return -EHOSTUNREACH;
    if (count == 1)
        return only;
    int a = draw(lb, ex, total, -1);
    if (a < 0)
        return -EHOSTUNREACH;
    uint64_t rest = total - lb->servers[a].weight;
    int b = rest ? draw(lb, ex, rest, a) : -1;
    if (b < 0)
        return a;
    return voro_lb_less_loaded(&lb->servers[b], &lb->servers[a]) ? b : a;
}
