/* Smooth weighted round robin (nginx's algorithm): interleaves heavy servers instead of bursting them. */
#include <errno.h>

#include "node/balance/lb_internal.h"

int voro_lb_rr_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    int64_t total = 0;
    struct voro_lb_server *best = NULL;
    int best_i = -EHOSTUNREACH;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        struct voro_lb_server *s = &lb->servers[i];
        int64_t w = (int64_t)voro_lb_eff_weight(s); /* slow start ramps the share */
        s->current_weight += w;
        total += w;
        if (!best || s->current_weight > best->current_weight) {
            best = s;
            best_i = (int)i;
        }
    }
    if (best)
        best->current_weight -= total;
    return best_i;
}
