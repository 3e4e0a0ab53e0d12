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

int voro_lb_pick(struct voro_lb *lb, uint64_t key, const struct voro_lb_exclude *exclude)
{
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
    case VORO_LB_QUEUE_LENGTH:
    case VORO_LB_GPU_AWARE:
        break; /* the config parser refuses these until the L7 balancers exist */
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
