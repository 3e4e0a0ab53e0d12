/* Passive outlier ejection of one pool: consecutive data-plane failures eject a server for a growing time. */
#ifndef VORO_CLUSTER_OUTLIER_H
#define VORO_CLUSTER_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Pure logic; time is passed in (monotonic ms), so the caller owns the timers. `consecutive`
 * failures in a row (a success resets the streak) eject a server for
 * base_ms x 2^(times ejected - 1), capped at VORO_OUTLIER_MAX_EJECT_MS. At most
 * floor(n x max_percent / 100) servers of the pool are ejected at once: a failure that would
 * exceed that keeps the streak and ejects at a later failure once room is free. The ejection
 * count (the exponent) drops back to 0 when a server stays un-ejected for the cap (5 min).
 */

#define VORO_OUTLIER_MAX_EJECT_MS (5u * 60u * 1000u)

struct voro_outlier_server {
    uint32_t streak;        /* consecutive failures */
    uint32_t times_ejected; /* ejections so far (exponent of the next duration) */
    bool ejected;
    uint64_t until_ms;      /* ejected: when it comes back */
    uint64_t back_ms;       /* when it last came back (for the decay of times_ejected) */
    uint64_t last_eject_ms; /* duration of the current / last ejection */
};

struct voro_outlier {
    uint32_t consecutive; /* 0 = off */
    uint32_t base_ms;
    uint32_t max_percent;
    size_t n;
    size_t n_ejected;
    struct voro_outlier_server *s; /* owned, [n] */
};

/* Zero `consecutive` disables ejection; zero base_ms means 10 s. Returns 0 or -ENOMEM. */
int voro_outlier_init(struct voro_outlier *o, size_t n, uint32_t consecutive, uint32_t base_ms, uint32_t max_percent);
void voro_outlier_destroy(struct voro_outlier *o);
/* One failure of `server`. Returns true when it ejected the server now (*eject_ms = duration). */
bool voro_outlier_failure(struct voro_outlier *o, size_t server, uint64_t now_ms, uint64_t *eject_ms);
/* One success: resets the streak. */
void voro_outlier_success(struct voro_outlier *o, size_t server);
/* Un-ejects every server whose time has come; calls cb(ctx, server) for each. Returns how many. */
size_t voro_outlier_expire(struct voro_outlier *o, uint64_t now_ms, void (*cb)(void *ctx, size_t server), void *ctx);
bool voro_outlier_is_ejected(const struct voro_outlier *o, size_t server);
/* The most servers that may be ejected at once. */
size_t voro_outlier_max_ejected(const struct voro_outlier *o);

#endif
