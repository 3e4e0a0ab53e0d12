/* GPU-aware: normalised load (Voro in-flight vs engine queue + running) per capacity, with KV-cache,
 * GPU and staleness penalties; servers without a free slot only when nothing else is left. */
#include <errno.h>

#include "node/balance/lb_internal.h"

#define NEAR_TIE 1.05 /* scores within 5% of the best are equal: chosen at random so peers share */

static uint32_t ld(const _Atomic uint32_t *p) { return atomic_load_explicit(p, memory_order_relaxed); }

/* Folds each new scrape into the learned capacity. An engine queues only when it has no room,
 * so `running` seen while `queue_depth` > 0 is what it can run at once, if `running` is at its
 * highest level so far or the KV cache is full (this ignores a scrape that caught a request
 * between arrival and admission at a low load). The max over this and the previous window wins, so a
 * smaller saturation point (e.g. a KV-cache limit) replaces a larger one within two windows; a
 * server running more than the learned figure raises it at once; without new evidence the
 * learned figure stays (a well balanced farm never saturates, and must not forget). */
static void learn(struct voro_lb *lb)
{
    int rotate = lb->now_ms >= lb->cap_window_start_ms + VORO_LB_CAP_WINDOW_MS;
    if (rotate)
        lb->cap_window_start_ms = lb->now_ms;
    for (size_t i = 0; i < lb->n_servers; i++) {
        struct voro_lb_server *s = &lb->servers[i];
        if (rotate) {
            s->cap_sat_prev = s->cap_sat_cur;
            s->cap_sat_cur = 0;
        }
        if (!s->signals)
            continue;
        uint64_t t = atomic_load_explicit(&s->signals->metrics_time_ms, memory_order_relaxed);
        if (t == 0 || t == s->seen_metrics_ms)
            continue;
        s->seen_metrics_ms = t;
        uint32_t running = ld(&s->signals->running), queued = ld(&s->signals->queue_depth);
        if (running > s->run_max)
            s->run_max = running;
        int cache_full = ld(&s->signals->kv_usage_permille) >= 950;
        if (queued > 0 && running > 0 && (running >= s->run_max || cache_full) && running > s->cap_sat_cur)
            s->cap_sat_cur = running;
        uint32_t sat = s->cap_sat_cur > s->cap_sat_prev ? s->cap_sat_cur : s->cap_sat_prev;
        if (sat)
            s->cap_learned = sat;
        if (s->cap_learned && running > s->cap_learned)
            s->cap_learned = running;
    }
}

/* Known capacity (configured, else learned at saturation), or 0. */
static uint32_t known_capacity(const struct voro_lb_server *s)
{
    if (!s->signals)
        return 0;
    uint32_t c = ld(&s->signals->capacity);
    return c ? c : s->cap_learned;
}

/* Latency for servers without a sample: the mean over the usable sampled ones, else 1 (so the
 * full-tier score falls back to queue position per capacity). */
static double mean_latency(const struct voro_lb *lb)
{
    double sum = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < lb->n_servers; i++)
        if (voro_lb_server_usable(&lb->servers[i]) && lb->servers[i].ewma_us > 0.0) {
            sum += lb->servers[i].ewma_us;
            n++;
        }
    return n ? sum / (double)n : 1.0;
}

int voro_lb_gpu_pick(struct voro_lb *lb, const struct voro_lb_exclude *ex)
{
    size_t n = lb->n_servers;
    double score[VORO_POOL_MAX_SERVERS];
    unsigned char tier[VORO_POOL_MAX_SERVERS];
    uint32_t max_known = 0;

    learn(lb);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = voro_lb_candidate(lb, i, ex) ? known_capacity(&lb->servers[i]) : 0;
        if (c > max_known)
            max_known = c;
    }
    /* The fastest first-token time among the candidates: a server whose requests start slower
     * (a slower GPU prefills and decodes slower) counts as that much busier, so fast servers
     * take the load while they have room and slow ones take the overflow. */
    double ttft_min = 0.0;
    for (size_t i = 0; i < n; i++)
        if (voro_lb_candidate(lb, i, ex) && lb->servers[i].ttft_us > 0.0 &&
            (ttft_min == 0.0 || lb->servers[i].ttft_us < ttft_min))
            ttft_min = lb->servers[i].ttft_us;
    int best_tier = 2;
    double best = 0.0, lat_mean = -1.0;
    for (size_t i = 0; i < n; i++) {
        tier[i] = 2; /* not a candidate */
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        const struct voro_lb_server *s = &lb->servers[i];
        uint32_t cap = known_capacity(s);
        int known = cap > 0;
        if (!known) {
            /* Optimistic: as big as the biggest known peer and above anything seen running, so
             * an unknown server is loaded until it shows its limit by queueing. */
            cap = max_known ? max_known : VORO_LB_DEFAULT_CAPACITY;
            if (s->run_max + 1 > cap)
                cap = s->run_max + 1;
        }
        double inflight = (double)voro_lb_inflight(s), load, pressure = 1.0, unknown_work = 0.0;
        if (voro_lb_metrics_fresh(lb, s)) {
            const struct voro_backend_signals *g = s->signals;
            double engine = (double)ld(&g->queue_depth) + (double)ld(&g->running);
            /* Voro's in-flight is live and already inside the engine's figures when Voro is the
             * only client; the scrape also shows other clients' work. The larger one holds both
             * without counting Voro's requests twice. */
            load = engine > inflight ? engine : inflight;
            uint32_t kv = ld(&g->kv_usage_permille);
            if (kv > 800) /* a nearly full KV cache admits fewer new sequences than free slots suggest */
                pressure *= 1.0 + (double)((kv > 1000 ? 1000 : kv) - 800) / 200.0;
            uint32_t util = ld(&g->gpu_util_permille);
            pressure *= 1.0 + 0.1 * (double)(util > 1000 ? 1000 : util) / 1000.0;
            uint64_t mem_free = atomic_load_explicit(&g->gpu_mem_free_bytes, memory_order_relaxed);
            if (mem_free > 0 && mem_free < (1ull << 30))
                pressure *= 1.25;
        } else if (voro_lb_metrics_never(s)) {
            load = inflight; /* unknown but usable */
        } else {
            /* stale: only what Voro knows for sure, inflated by half, plus half a server's worth
             * of unknown work from other clients */
            load = inflight;
            pressure = 1.5;
            unknown_work = 0.5;
        }
        double sc;
        tier[i] = known && load >= (double)cap; /* no free slot: would queue */
        if (tier[i] == 0) {
            double speed = (ttft_min > 0.0 && s->ttft_us > ttft_min) ? s->ttft_us / ttft_min : 1.0;
            if (speed > 8.0)
                speed = 8.0;
            sc = (load + 1.0) / cap * pressure * speed + unknown_work;
        } else {
            /* Expected time before it starts: queue position over the service rate, which is
             * capacity / latency; the latency is the peak-EWMA of request_end samples. */
            if (lat_mean < 0.0)
                lat_mean = mean_latency(lb);
            double lat = s->ewma_us > 0.0 ? s->ewma_us : lat_mean;
            sc = (load + 1.0 - cap) * lat / cap * pressure;
        }
        sc *= 1000.0 / (double)voro_lb_eff_weight(s);
        score[i] = sc;
        if (tier[i] < best_tier || (tier[i] == best_tier && sc < best)) {
            best_tier = tier[i];
            best = sc;
        }
    }
    if (best_tier == 2)
        return -EHOSTUNREACH;
    /* Reservoir-sample one of the near-best servers of the best tier. */
    int pick = -EHOSTUNREACH;
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (tier[i] != best_tier || score[i] > best * NEAR_TIE)
            continue;
        seen++;
        if (voro_lb_xorshift64(&lb->rng) % seen == 0)
            pick = (int)i;
    }
    return pick;
}
