/* Balancer lifecycle, pick dispatch, in-flight accounting and the shared 64-bit hash. */
#include "node/balance/balance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/balance/lb_internal.h"

static inline uint64_t rd_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

/* Murmur3-style 64-bit block mixing with a splitmix64 finalizer. Bytes are read
 * little-endian explicitly so every node computes the same value. */
uint64_t voro_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;
    const unsigned char *p = data;
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
    size_t n = len;
    while (n >= 8) {
        uint64_t k = rd_le(p, 8);
        k *= c1;
        k = rotl64(k, 31);
        k *= c2;
        h ^= k;
        h = rotl64(h, 27) * 5 + 0x52dce729;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t k = rd_le(p, n);
        k *= c1;
        k = rotl64(k, 31);
        k *= c2;
        h ^= k;
    }
    h ^= (uint64_t)len;
    return voro_lb_mix64(h);
}

int voro_lb_init(struct voro_lb *lb, enum voro_lb_algorithm algorithm, const struct voro_lb_server_init *servers,
                 size_t n, double balance_factor, uint64_t seed)
{
    int rc;
    if (!lb || !servers || n == 0 || n > VORO_POOL_MAX_SERVERS || (unsigned)algorithm >= VORO_LB_ALGORITHM_COUNT)
        return -EINVAL;
    memset(lb, 0, sizeof(*lb));
    lb->algorithm = algorithm;
    /* Below 1.0 the bound could refuse every server; NaN and 0 ("unset") also land on 1.0. */
    lb->balance_factor = balance_factor >= 1.0 ? balance_factor : 1.0;
    lb->stale_ms = VORO_LB_DEFAULT_STALE_MS;
    lb->rng = voro_lb_mix64(seed + 0x9e3779b97f4a7c15ull);
    if (lb->rng == 0)
        lb->rng = 0x2545f4914f6cdd1dull; /* xorshift must not start at zero */
    lb->servers = calloc(n, sizeof(*lb->servers));
    if (!lb->servers)
        return -ENOMEM;
    lb->n_servers = n;
    for (size_t i = 0; i < n; i++) {
        struct voro_lb_server *s = &lb->servers[i];
        s->weight = servers[i].weight;
        s->health = servers[i].health;
        s->signals = servers[i].signals;
        if (s->signals) {
            /* The snapshot's signals are written by the control thread and read here, except
             * `inflight`, which every worker updates: the only field a worker may write. */
            s->inflight = (_Atomic uint32_t *)&s->signals->inflight;
            lb->has_signals = 1;
        }
        if (servers[i].identity)
            s->identity_hash = voro_hash64(servers[i].identity, strlen(servers[i].identity), 0);
        else {
            uint64_t idx = i;
            s->identity_hash = voro_hash64(&idx, sizeof(idx), 1);
        }
    }
    if (algorithm == VORO_LB_CONSISTENT_HASH) {
        rc = voro_lb_ch_build(lb);
        if (rc < 0)
            goto fail_servers;
    }
    return 0;

fail_servers:
    free(lb->servers);
    lb->servers = NULL;
    lb->n_servers = 0;
    return rc;
}

void voro_lb_destroy(struct voro_lb *lb)
{
    if (!lb)
        return;
    free(lb->table);
    free(lb->servers);
    lb->table = NULL;
    lb->servers = NULL;
    lb->n_servers = 0;
    lb->table_size = 0;
}

/* A backend whose GPU reported an XID error is a last resort: hide it from the algorithm while
 * any other candidate remains. Costs one scan, only for pools that have signals. */
static const struct voro_lb_exclude *avoid_gpu_errors(const struct voro_lb *lb, const struct voro_lb_exclude *ex,
                                                      struct voro_lb_exclude *buf)
{
    int any_ok = 0, any_err = 0;
    *buf = ex ? *ex : (struct voro_lb_exclude){{0}};
    for (size_t i = 0; i < lb->n_servers; i++) {
        const struct voro_lb_server *s = &lb->servers[i];
        if (!voro_lb_candidate(lb, i, ex))
            continue;
        if (s->signals &&
            (atomic_load_explicit(&s->signals->flags, memory_order_relaxed) & VORO_SIGNAL_GPU_ERROR)) {
            voro_lb_exclude_add(buf, (int)i);
            any_err = 1;
        } else {
            any_ok = 1;
        }
    }
    return any_err && any_ok ? buf : ex;
}

int voro_lb_pick(struct voro_lb *lb, uint64_t key, const struct voro_lb_exclude *exclude)
{
    struct voro_lb_exclude buf;
    if (lb->has_signals)
        exclude = avoid_gpu_errors(lb, exclude, &buf);
    switch (lb->algorithm) {
    case VORO_LB_ROUND_ROBIN:
        return voro_lb_rr_pick(lb, exclude);
    case VORO_LB_LEAST_CONNECTIONS:
        return voro_lb_lc_pick(lb, exclude);
    case VORO_LB_CONSISTENT_HASH:
        return voro_lb_ch_pick(lb, key, exclude);
    case VORO_LB_POWER_OF_TWO:
        return voro_lb_p2c_pick(lb, exclude);
    case VORO_LB_EWMA:
        return voro_lb_ewma_pick(lb, exclude);
    case VORO_LB_QUEUE_LENGTH:
        return voro_lb_ql_pick(lb, exclude);
    case VORO_LB_GPU_AWARE:
        return voro_lb_gpu_pick(lb, exclude);
    }
    return -EHOSTUNREACH;
}

void voro_lb_conn_begin(struct voro_lb *lb, int index)
{
    if (index < 0 || (size_t)index >= lb->n_servers)
        return;
    lb->servers[index].active++;
    lb->total_active++;
}

void voro_lb_conn_end(struct voro_lb *lb, int index)
{
    if (index < 0 || (size_t)index >= lb->n_servers || lb->servers[index].active == 0)
        return;
    lb->servers[index].active--;
    lb->total_active--;
}

void voro_lb_request_begin(struct voro_lb *lb, int index)
{
    if (index < 0 || (size_t)index >= lb->n_servers)
        return;
    struct voro_lb_server *s = &lb->servers[index];
    s->active++;
    lb->total_active++;
    if (s->inflight)
        atomic_fetch_add_explicit(s->inflight, 1, memory_order_relaxed);
}

void voro_lb_request_end(struct voro_lb *lb, int index, uint64_t latency_us, bool ok)
{
    if (index < 0 || (size_t)index >= lb->n_servers)
        return;
    struct voro_lb_server *s = &lb->servers[index];
    /* Only undo what this worker added, so a stray end cannot steal another worker's count. */
    if (s->active > 0) {
        s->active--;
        lb->total_active--;
        if (s->inflight)
            atomic_fetch_sub_explicit(s->inflight, 1, memory_order_relaxed);
    }
    double sample = (double)latency_us;
    if (!ok && sample < 2.0 * s->ewma_us)
        sample = 2.0 * s->ewma_us;
    if (sample > 0)
        voro_lb_ewma_sample(lb, s, sample);
}

void voro_lb_observe_ttft(struct voro_lb *lb, int index, uint64_t ttft_us)
{
    if (index < 0 || (size_t)index >= lb->n_servers || ttft_us == 0)
        return;
    struct voro_lb_server *s = &lb->servers[index];
    voro_lb_ewma_sample(lb, s, (double)ttft_us);
    /* A plain moving average of the TTFT alone (gpu_aware's speed factor): 1/16 per sample. */
    s->ttft_us = s->ttft_us > 0.0 ? s->ttft_us + ((double)ttft_us - s->ttft_us) / 16.0 : (double)ttft_us;
}

void voro_lb_set_now(struct voro_lb *lb, uint64_t now_ms) { lb->now_ms = now_ms; }

void voro_lb_set_stale_ms(struct voro_lb *lb, uint32_t stale_ms)
{
    lb->stale_ms = stale_ms ? stale_ms : VORO_LB_DEFAULT_STALE_MS;
}
