/* Power of two choices: two distinct weighted-random usable servers, the less loaded one wins. */
#include <errno.h>

#include "node/balance/lb_internal.h"

/* Weighted draw over candidates, skipping `skip` (or -1); `total` is their effective-weight sum. */
static int draw(struct voro_lb *lb, const struct voro_lb_exclude *ex, uint64_t total, int skip)
{
    uint64_t r = voro_lb_xorshift64(&lb->rng) % total;
    int last = -1;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if ((int)i == skip || !voro_lb_candidate(lb, i, ex))
            continue;
        last = (int)i;
        uint64_t w = voro_lb_eff_weight(&lb->servers[i]);
        if (r < w)
            return (int)i;
        r -= w;
    }
    return last; /* only reached if health or slow start changed between summing and drawing */
}

size_t voro_lb_p2c_draw(struct voro_lb *lb, const struct voro_lb_exclude *ex, int *a, int *b)
{
    uint64_t total = 0;
    size_t count = 0;
    int only = -1;
    *a = *b = -1;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        total += voro_lb_eff_weight(&lb->servers[i]);
        count++;
        only = (int)i;
    }
    if (count == 0)
        return 0;
    if (count == 1) {
        *a = only;
        return 1;
    }
    *a = draw(lb, ex, total, -1);
    if (*a < 0)
        return 0;
    uint64_t wa = voro_lb_eff_weight(&lb->servers[*a]);
    uint64_t rest = total > wa ? total - wa : 0;
    *b = rest ? draw(lb, ex, rest, *a) : -1;
    return count;
}

int voro_lb_p2c_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    int a, b;
    if (voro_lb_p2c_draw(lb, ex, &a, &b) == 0)
        return -EHOSTUNREACH;
    if (b < 0)
        return a;
    return voro_lb_less_loaded(&lb->servers[b], &lb->servers[a]) ? b : a;
}
