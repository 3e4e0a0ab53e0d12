/* Peak-EWMA (Finagle/Linkerd style): latency estimate x (in flight + 1) / weight, power of two choices. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "node/balance/lb_internal.h"

void voro_lb_ewma_sample(struct voro_lb *lb, struct voro_lb_server *s, double sample_us)
{
    uint64_t now = lb->now_ms;
    /* Peak: a slower sample is believed at once (a server getting slow must shed load now);
     * faster samples pull the estimate down only as time passes, so one lucky reply does not
     * send a burst to a server that is still slow. */
    if (s->ewma_us <= 0.0 || sample_us >= s->ewma_us) {
        s->ewma_us = sample_us;
    } else {
        double dt = now > s->ewma_time_ms ? (double)(now - s->ewma_time_ms) : 0.0;
        double w = exp(-dt / VORO_LB_EWMA_TAU_MS);
        s->ewma_us = s->ewma_us * w + sample_us * (1.0 - w);
    }
    s->ewma_time_ms = now;
}

/* The estimate decays towards zero while no sample arrives, so a server that was slow once and
 * then avoided is eventually probed again instead of being starved forever. */
static double decayed(const struct voro_lb *lb, const struct voro_lb_server *s)
{
    if (s->ewma_us <= 0.0)
        return 0.0;
    double dt = lb->now_ms > s->ewma_time_ms ? (double)(lb->now_ms - s->ewma_time_ms) : 0.0;
    return s->ewma_us * exp(-dt / VORO_LB_EWMA_TAU_MS);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Estimate for servers without a sample: the median of the pool's sampled usable servers (tried
 * ones included), so a new server neither looks free (and gets flooded) nor looks slow (and is
 * never tried). */
static double neutral(const struct voro_lb *lb)
{
    double v[VORO_POOL_MAX_SERVERS];
    size_t n = 0;
    for (size_t i = 0; i < lb->n_servers && n < VORO_POOL_MAX_SERVERS; i++) {
        if (!voro_lb_server_usable(&lb->servers[i]) || lb->servers[i].ewma_us <= 0.0)
            continue;
        v[n++] = decayed(lb, &lb->servers[i]);
    }
    if (n == 0)
        return 1.0; /* nothing known: cost reduces to in-flight per weight */
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double cost(const struct voro_lb *lb, const struct voro_lb_server *s, double fallback)
{
    double e = s->ewma_us > 0.0 ? decayed(lb, s) : fallback;
    if (e <= 0.0)
        e = 1e-3; /* fully decayed: keep the in-flight factor meaningful */
    return e * ((double)voro_lb_inflight(s) + 1.0) * 1000.0 / (double)voro_lb_eff_weight(s);
}

int voro_lb_ewma_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    int a, b;
    if (voro_lb_p2c_draw(lb, ex, &a, &b) == 0)
        return -EHOSTUNREACH;
    if (b < 0)
        return a;
    const struct voro_lb_server *sa = &lb->servers[a], *sb = &lb->servers[b];
    double fallback = sa->ewma_us > 0.0 && sb->ewma_us > 0.0 ? 0.0 : neutral(lb);
    return cost(lb, sb, fallback) < cost(lb, sa, fallback) ? b : a;
}
