/* Queue length: scraped engine queue + Voro's own in-flight per unit of weight; stale metrics fall back to in-flight. */
#include <errno.h>

#include "node/balance/lb_internal.h"

/* Work ahead of a new request, in requests. Fresh: the engine's waiting queue (everyone's) plus
 * Voro's node-wide in-flight (live, so picks between two scrapes still spread). Stale: the
 * queue is unknown, so assume it is as long as our own in-flight and add one phantom request:
 * an idle stale server loses to an idle fresh one, yet still takes traffic when fresh ones queue.
 * Never scraped (or no signals): in-flight only, so new servers get tried. */
static uint64_t work_ahead(const struct voro_lb *lb, const struct voro_lb_server *s)
{
    uint64_t inflight = voro_lb_inflight(s);
    if (voro_lb_metrics_never(s))
        return inflight;
    if (!voro_lb_metrics_fresh(lb, s))
        return 2 * inflight + 1;
    return (uint64_t)atomic_load_explicit(&s->signals->queue_depth, memory_order_relaxed) + inflight;
}

int voro_lb_ql_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    size_t n = lb->n_servers;
    int best_i = -EHOSTUNREACH;
    uint64_t best_q = 0, best_w = 1;
    size_t start = lb->rr_next % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        uint64_t q = work_ahead(lb, &lb->servers[i]);
        uint64_t w = voro_lb_eff_weight(&lb->servers[i]);
        /* q/w < best_q/best_w without division; strictly less, so ties go round robin from the cursor */
        if (best_i < 0 || (unsigned __int128)q * best_w < (unsigned __int128)best_q * w) {
            best_i = (int)i;
            best_q = q;
            best_w = w;
        }
    }
    if (best_i >= 0)
        lb->rr_next = (size_t)best_i + 1;
    return best_i;
}
