/* Least connections: fewest in-flight per unit of weight; ties rotate so equal servers share. */
#include <errno.h>

#include "node/balance/lb_internal.h"

int voro_lb_lc_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    size_t n = lb->n_servers;
    int best_i = -EHOSTUNREACH;
    size_t start = lb->rr_next % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        /* Strictly less: the first of equally loaded servers after the cursor wins. */
        if (best_i < 0 || voro_lb_less_loaded(&lb->servers[i], &lb->servers[best_i]))
            best_i = (int)i;
    }
    if (best_i >= 0)
        lb->rr_next = (size_t)best_i + 1;
    return best_i;
}
