/* Node-wide and per-IP connection admission with lock-free counters, and the per-worker QPS bucket. */
#include "node/conn_limit.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "node/balance/balance.h"

#define IP_COUNT_BITS 24
#define IP_COUNT_MASK ((1ull << IP_COUNT_BITS) - 1)
#define IP_KEY_MASK ((1ull << 40) - 1)
#define IP_PROBE_LIMIT 32

uint64_t voro_addr_ip_hash(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        return voro_hash64(&a6->sin6_addr, sizeof(a6->sin6_addr), 0x76316970u);
    }
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
    return voro_hash64(&a4->sin_addr, sizeof(a4->sin_addr), 0x76346970u);
}

int voro_conn_limits_init(struct voro_conn_limits *l, size_t ip_table_size)
{
    memset(l, 0, sizeof(*l));
    size_t size = 1024;
    while (size < ip_table_size && size < (1u << 24))
        size <<= 1;
    l->ip_table = calloc(size, sizeof(*l->ip_table));
    if (!l->ip_table)
        return -ENOMEM;
    l->ip_table_size = size;
    return 0;
}

void voro_conn_limits_destroy(struct voro_conn_limits *l)
{
    free(l->ip_table);
    l->ip_table = NULL;
}

static uint64_t ip_key(const struct sockaddr *addr)
{
    uint64_t k = voro_addr_ip_hash(addr) & IP_KEY_MASK;
    return k ? k : 1; /* 0 marks a never-used slot */
}

/* Takes one count in the slot of `key`; a slot whose count fell to 0 may be taken over. */
static int32_t ip_slot_acquire(struct voro_conn_limits *l, uint64_t key, uint32_t max_per_ip, bool *over)
{
    size_t mask = l->ip_table_size - 1;
    size_t start = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;
    int32_t reusable = -1;
    for (size_t i = 0; i < IP_PROBE_LIMIT; i++) {
        size_t idx = (start + i) & mask;
        uint64_t w = atomic_load_explicit(&l->ip_table[idx], memory_order_relaxed);
        for (;;) {
            uint64_t wkey = w >> IP_COUNT_BITS, count = w & IP_COUNT_MASK;
            if (wkey != key) {
                if (reusable < 0 && count == 0)
                    reusable = (int32_t)idx;
                if (wkey == 0)
                    goto claim; /* end of the probe chain: the key is not present */
                break;
            }
            if (max_per_ip && count >= max_per_ip) {
                *over = true;
                return -1;
            }
            if (count >= IP_COUNT_MASK)
                return -1;
            if (atomic_compare_exchange_weak(&l->ip_table[idx], &w, w + 1))
                return (int32_t)idx;
        }
    }
claim:
    while (reusable >= 0) {
        uint64_t w = atomic_load(&l->ip_table[reusable]);
        if ((w & IP_COUNT_MASK) == 0 && atomic_compare_exchange_strong(&l->ip_table[reusable], &w, key << IP_COUNT_BITS | 1))
            return reusable;
        /* Lost a race for the slot: search again from scratch (bounded by the caller's retry). */
        return -2;
    }
    return -1;
}

enum voro_admit_result voro_conn_limits_admit(struct voro_conn_limits *l, const struct sockaddr *addr,
                                              uint32_t max_total, uint32_t max_per_ip, uint32_t fds,
                                              struct voro_conn_admission *out)
{
    out->ip_slot = -1;
    out->fds = 0;
    if (!voro_conn_limits_fd_take(l, fds))
        return VORO_ADMIT_MAX_FDS;
    out->fds = fds;
    uint32_t total = atomic_fetch_add(&l->total, 1) + 1;
    if (max_total && total > max_total) {
        atomic_fetch_sub(&l->total, 1);
        voro_conn_limits_fd_give(l, fds);
        return VORO_ADMIT_MAX_CONNECTIONS;
    }
    if (max_per_ip == 0)
        return VORO_ADMIT_OK; /* no per-IP cap: the shared IP table is not touched */
    uint64_t key = ip_key(addr);
    for (int attempt = 0; attempt < 4; attempt++) {
        bool over = false;
        int32_t slot = ip_slot_acquire(l, key, max_per_ip, &over);
        if (over) {
            atomic_fetch_sub(&l->total, 1);
            voro_conn_limits_fd_give(l, fds);
            return VORO_ADMIT_MAX_PER_IP;
        }
        if (slot >= 0) {
            out->ip_slot = slot;
            return VORO_ADMIT_OK;
        }
        if (slot == -1)
            break;
    }
    atomic_fetch_add_explicit(&l->ip_table_full, 1, memory_order_relaxed);
    return VORO_ADMIT_OK;
}

void voro_conn_limits_release(struct voro_conn_limits *l, const struct voro_conn_admission *adm)
{
    if (adm->ip_slot >= 0)
        atomic_fetch_sub(&l->ip_table[adm->ip_slot], 1);
    atomic_fetch_sub(&l->total, 1);
    voro_conn_limits_fd_give(l, adm->fds);
}

bool voro_conn_limits_fd_take(struct voro_conn_limits *l, uint32_t n)
{
    if (n == 0)
        return true;
    uint32_t used = atomic_fetch_add_explicit(&l->fds, n, memory_order_relaxed) + n;
    if (l->fd_cap && used > l->fd_cap) {
        atomic_fetch_sub_explicit(&l->fds, n, memory_order_relaxed);
        return false;
    }
    return true;
}

void voro_conn_limits_fd_give(struct voro_conn_limits *l, uint32_t n)
{
    if (n)
        atomic_fetch_sub_explicit(&l->fds, n, memory_order_relaxed);
}

uint32_t voro_conn_limits_ip_count(struct voro_conn_limits *l, const struct sockaddr *addr)
{
    uint64_t key = ip_key(addr);
    size_t mask = l->ip_table_size - 1;
    size_t start = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;
    for (size_t i = 0; i < IP_PROBE_LIMIT; i++) {
        uint64_t w = atomic_load(&l->ip_table[(start + i) & mask]);
        if ((w >> IP_COUNT_BITS) == key)
            return (uint32_t)(w & IP_COUNT_MASK);
        if (w == 0)
            break;
    }
    return 0;
}

void voro_token_bucket_init(struct voro_token_bucket *b, double rate, uint64_t now_ms)
{
    b->rate = rate;
    b->tokens = rate;
    b->last_ms = now_ms;
}

void voro_token_bucket_set_rate(struct voro_token_bucket *b, double rate)
{
    /* Coming from "unlimited", start with a full burst rather than an empty bucket. */
    if (b->rate <= 0 || b->tokens > rate)
        b->tokens = rate;
    b->rate = rate;
}

bool voro_token_bucket_take(struct voro_token_bucket *b, uint64_t now_ms)
{
    if (b->rate <= 0)
        return true;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->rate)
            b->tokens = b->rate;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    return false;
}
