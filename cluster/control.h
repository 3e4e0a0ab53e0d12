/* The control thread: a libuv loop running the admin HTTP server, active health checks and
 * signal handling. It never touches a worker's connections; it meets the data plane through
 * registered handlers, hooks and published health words (DESIGN.md). */
#ifndef VORO_CLUSTER_CONTROL_H
#define VORO_CLUSTER_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/admin.h"
#include "cluster/config.h"
#include "cluster/engine_metrics.h"
#include "cluster/health_check.h"

struct voro_control;

/* Hooks the node gives the control plane; all run on the control thread. */
struct voro_control_hooks {
    void *ctx;
    /* SIGHUP. */
    void (*on_reload)(void *ctx);
    /* SIGTERM / SIGINT (a second one means "stop now"). */
    void (*on_shutdown)(void *ctx, int signo);
    /* A health verdict changed for pools[pool].servers[server] of the config last given
     * to voro_control_set_config (down also when ejected or warming up). `reason` is valid
     * during the call only. */
    void (*on_health)(void *ctx, size_t pool, size_t server, bool up, const char *reason);
    /* Called about every 100 ms (e.g. to free retired snapshots, check a drain). */
    void (*on_tick)(void *ctx);
    /* Optional L7 publications (NULL = ignored), indices as for on_health: */
    /* A good metrics scrape of the server's metrics_url; `m` valid during the call only;
     * `mono_ms` = CLOCK_MONOTONIC ms of the scrape. */
    void (*on_metrics)(void *ctx, size_t pool, size_t server, const struct voro_engine_metrics *m, uint64_t mono_ms);
    /* The model ids the server listed on GET /v1/models (pool l7.learn_models); valid during the call. */
    void (*on_models)(void *ctx, size_t pool, size_t server, const char *const *ids, size_t n);
    /* Slow-start weight 50..1000 permille (pool l7.slow_start_ms). */
    void (*on_weight)(void *ctx, size_t pool, size_t server, uint32_t permille);
};

/* Creates the control plane on the calling thread's new libuv loop; binds the admin server
 * to cfg->admin_bind. `cfg` is borrowed until the next voro_control_set_config. *out is owned
 * by the caller (voro_control_destroy). Returns 0 or a negative errno (e.g. -EADDRINUSE). */
int voro_control_create(struct voro_control **out, const struct voro_config *cfg, const struct voro_control_hooks *hooks);
/* Registers an admin endpoint (exact path match, GET/HEAD). `ctx` is borrowed. Not thread-safe:
 * call before voro_control_run or from the control thread (a handler or hook). */
int voro_control_register(struct voro_control *c, const char *path, voro_admin_handler handler, void *ctx);
/* Same with an explicit method set (VORO_ADMIN_* bits; GET implies HEAD); the handler sees
 * req->method. voro_control_register(...) is voro_control_register_methods(..., VORO_ADMIN_GET, ...).
 * Registering an existing path replaces its handler (the built-in /healthz included). */
int voro_control_register_methods(struct voro_control *c, const char *path, unsigned methods,
                                  voro_admin_handler handler, void *ctx);
/* The admin server's bound port (useful when admin_bind asked for port 0), 0 if unknown. */
uint16_t voro_control_admin_port(const struct voro_control *c);
/* Replaces the health-check targets (pools/servers of `cfg`, borrowed until the next call).
 * Servers keep their state when pool name and server address are unchanged. */
int voro_control_set_config(struct voro_control *c, const struct voro_config *cfg);
/* Passive health signal from the data plane (e.g. a failed connect), thread-safe.
 * Same as voro_control_report_failure_kind(c, pool, server, VORO_FAILURE_CONNECT). */
void voro_control_report_failure(struct voro_control *c, size_t pool, size_t server);
/* A failed request of `kind` (connect failure or a 5xx answer), thread-safe: feeds outlier
 * ejection (and `fall` for connect failures). */
void voro_control_report_failure_kind(struct voro_control *c, size_t pool, size_t server, enum voro_failure_kind kind);
/* A request that succeeded, thread-safe: resets the ejection streak. Cheap to call often:
 * repeats for the same server are coalesced and they are dropped first when the queue fills. */
void voro_control_report_success(struct voro_control *c, size_t pool, size_t server);
/* Runs the loop on the calling thread until voro_control_stop. */
int voro_control_run(struct voro_control *c);
/* Thread-safe: makes voro_control_run return. */
void voro_control_stop(struct voro_control *c);
/* Closes every handle, runs the loop until their close callbacks ran, closes the loop and frees
 * `c`; call after voro_control_run returned (or without ever running it). Returns
 * uv_loop_close's result: 0, or a negative errno when a handle was left open (a bug). */
int voro_control_destroy(struct voro_control *c);

/* The control thread's libuv loop (for modules that add their own handles, e.g. the Raft
 * transport); owned by `c`, valid until voro_control_destroy. */
struct uv_loop_s *voro_control_loop(struct voro_control *c);

/* Current verdict as last reported (for /stats): 1 up, 0 down. */
bool voro_control_server_up(const struct voro_control *c, size_t pool, size_t server, const char **reason);

#endif
