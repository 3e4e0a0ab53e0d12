/* Consistent hashing with a weighted Maglev lookup table and bounded load (walk forward past full servers). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "node/balance/lb_internal.h"

#define NO_SERVER UINT32_MAX

/* Table sizes must be prime so every (offset, skip) permutation covers all slots. */
static const uint32_t k_primes[] = {251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521};

static size_t table_size_for(size_t n)
{
    size_t want = 100 * n;
    for (size_t i = 0; i < sizeof(k_primes) / sizeof(k_primes[0]); i++)
        if (k_primes[i] >= want)
            return k_primes[i];
    return k_primes[sizeof(k_primes) / sizeof(k_primes[0]) - 1];
}

int voro_lb_ch_build(struct voro_lb *lb)
{
    int rc = -ENOMEM;
    size_t n = lb->n_servers;
    size_t m = table_size_for(n);
    uint32_t *table = malloc(m * sizeof(*table));
    uint64_t *offset = calloc(n, sizeof(*offset));
    uint64_t *skip = calloc(n, sizeof(*skip));
    uint64_t *next = calloc(n, sizeof(*next));
    uint64_t *credit = calloc(n, sizeof(*credit));
    if (!table || !offset || !skip || !next || !credit)
        goto out;
    uint32_t max_w = 0;
    for (size_t i = 0; i < n; i++) {
        const struct voro_lb_server *s = &lb->servers[i];
        if (s->weight > max_w)
            max_w = s->weight;
        /* Two independent hashes of the identity: where the preference list starts and its stride. */
        offset[i] = voro_lb_mix64(s->identity_hash ^ 0x5851f42d4c957f2dull) % m;
        skip[i] = voro_lb_mix64(s->identity_hash ^ 0x14057b7ef767814full) % (m - 1) + 1;
    }
    for (size_t j = 0; j < m; j++)
        table[j] = NO_SERVER;
    if (max_w > 0) {
        /* Each round every server earns `weight` credit and claims one slot per `max_w` credit,
         * so the heaviest claim every round and lighter ones proportionally less often. */
        size_t filled = 0;
        while (filled < m) {
            for (size_t i = 0; i < n && filled < m; i++) {
                credit[i] += lb->servers[i].weight;
                while (credit[i] >= max_w && filled < m) {
                    credit[i] -= max_w;
                    uint64_t c;
                    do {
                        c = (offset[i] + next[i] * skip[i]) % m;
                        next[i]++;
                    } while (table[c] != NO_SERVER);
                    table[c] = (uint32_t)i;
                    filled++;
                }
            }
        }
    }
    lb->table = table;
    lb->table_size = m;
    table = NULL;
    rc = 0;
out:
    free(credit);
    free(next);
    free(skip);
    free(offset);
    free(table);
    return rc;
}

int voro_lb_ch_pick(struct voro_lb *lb, uint64_t key, const struct voro_lb_exclude *ex)
{
    size_t usable = 0, candidates = 0;
    for (size_t i = 0; i < lb->n_servers; i++) {
        if (!voro_lb_server_usable(&lb->servers[i]))
            continue;
        usable++;
        candidates += !voro_lb_exclude_has(ex, (int)i);
    }
    if (candidates == 0)
        return -EHOSTUNREACH;
    double bound = ceil(lb->balance_factor * ((double)lb->total_active + 1.0) / (double)usable);
    size_t m = lb->table_size;
    size_t slot = voro_lb_mix64(key) % m;
    int first = -EHOSTUNREACH;
    /* Walking forward keeps keys of healthy servers in place: only keys landing on a
     * dead, excluded or full server move, and they move to the same next server each time. */
    for (size_t j = 0; j < m; j++) {
        uint32_t idx = lb->table[slot];
        if (++slot == m)
            slot = 0;
        if (idx == NO_SERVER || !voro_lb_candidate(lb, idx, ex))
            continue;
        if ((double)lb->servers[idx].active + 1.0 <= bound)
            return (int)idx;
        if (first < 0)
            first = (int)idx;
    }
    return first; /* every candidate is over the bound (possible only with exclusions) */
}
