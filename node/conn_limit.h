/* Connection admission: the node-wide connection cap and per-client-IP counts shared by all
 * workers (lock-free: one atomic word per table slot holding key and count), and each
 * worker's token bucket for its share of global_qps (worker-local, no sharing). */
#ifndef VORO_NODE_CONN_LIMIT_H
#define VORO_NODE_CONN_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct voro_conn_limits {
    _Atomic uint64_t *ip_table;  /* owned; word = key(40 bits) << 24 | count(24 bits) */
    size_t ip_table_size;        /* power of two */
    _Atomic uint32_t total;      /* connections admitted and not yet released */
    /* The descriptor budget: sockets the workers hold for traffic (client connections, server
     * connections in use or pooled) against what the fd limit leaves for them. */
    _Atomic uint32_t fds;
    uint32_t fd_cap;             /* 0 = not enforced */
    _Atomic uint64_t ip_table_full; /* admissions with no free slot (allowed, counted) */
};

/* A handle a worker keeps per admitted connection, to release exactly what it took. */
struct voro_conn_admission {
    int32_t ip_slot; /* -1: not counted per IP */
    uint32_t fds;    /* descriptors of the budget this connection holds */
};

enum voro_admit_result {
    VORO_ADMIT_OK = 0,
    VORO_ADMIT_MAX_CONNECTIONS,
    VORO_ADMIT_MAX_PER_IP,
    VORO_ADMIT_MAX_FDS,
};

int voro_conn_limits_init(struct voro_conn_limits *l, size_t ip_table_size);
void voro_conn_limits_destroy(struct voro_conn_limits *l);
/* Admits a connection from `addr` under the given caps (0 = unlimited), taking `fds` slots of
 * the descriptor budget (an L4 connection holds two sockets, an HTTP client one: its server
 * socket is counted only while it exists). On VORO_ADMIT_OK the caller must later call
 * voro_conn_limits_release with the same handle. */
enum voro_admit_result voro_conn_limits_admit(struct voro_conn_limits *l, const struct sockaddr *addr,
                                              uint32_t max_total, uint32_t max_per_ip, uint32_t fds,
                                              struct voro_conn_admission *out);
/* Takes `n` descriptor slots (a server socket about to be opened): false when the budget is spent. */
bool voro_conn_limits_fd_take(struct voro_conn_limits *l, uint32_t n);
/* Gives back `n` slots (a socket taken with voro_conn_limits_fd_take was closed). */
void voro_conn_limits_fd_give(struct voro_conn_limits *l, uint32_t n);
void voro_conn_limits_release(struct voro_conn_limits *l, const struct voro_conn_admission *adm);
/* Current count for `addr` (tests, /stats). */
uint32_t voro_conn_limits_ip_count(struct voro_conn_limits *l, const struct sockaddr *addr);

/* Token bucket (worker-local): `rate` tokens per second, burst of one second. rate 0 = no limit. */
struct voro_token_bucket {
    double rate;
    double tokens;
    uint64_t last_ms;
};
void voro_token_bucket_init(struct voro_token_bucket *b, double rate, uint64_t now_ms);
/* Changes the rate keeping the current fill (reloads). */
void voro_token_bucket_set_rate(struct voro_token_bucket *b, double rate);
bool voro_token_bucket_take(struct voro_token_bucket *b, uint64_t now_ms);

/* Hash of the client IP (port ignored), stable within the process. */
uint64_t voro_addr_ip_hash(const struct sockaddr *addr);

#endif
