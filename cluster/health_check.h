/* Active TCP health checks on the control loop: per server connect probes, rise/fall verdicts, passive failures. */
#ifndef VORO_CLUSTER_HEALTH_CHECK_H
#define VORO_CLUSTER_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "cluster/config.h"

/*
 * Every server of a pool whose health.type is TCP is probed every interval_ms with a
 * non-blocking connect bounded by timeout_ms. `fall` consecutive failures turn an up server
 * down, `rise` consecutive successes turn a down server up; each change calls `cb` with a
 * static reason ("ok", "connect refused", "connect timeout", "unreachable", "connect error",
 * "passive failure"). A server starts up (so traffic flows before the first verdict) and its
 * first probe runs after a random delay in [0, min(interval_ms, 1000) / 2] ms so probes of many
 * servers do not align. health.type NONE: always up, never probed.
 * Everything runs on the loop's thread.
 */

struct voro_health;

typedef void (*voro_health_cb)(void *ctx, size_t pool, size_t server, bool up, const char *reason);

/* *out is owned by the caller (voro_health_destroy); `loop` and `ctx` are borrowed. */
int voro_health_create(struct voro_health **out, uv_loop_t *loop, voro_health_cb cb, void *ctx);
/* Replaces the targets with the pools/servers of `cfg` (read during the call only; may be NULL).
 * A server whose pool name and address text are unchanged (and still TCP-checked) keeps its
 * verdict and counters; those that are down are announced again with cb(..., false, reason)
 * under their new indices, so a consumer that starts every server of a new config as up
 * converges. Returns 0 or -ENOMEM (the old targets stay then). */
int voro_health_set_config(struct voro_health *h, const struct voro_config *cfg);
/* A failure seen by the data plane: counts as one failed check toward `fall`. */
void voro_health_report_failure(struct voro_health *h, size_t pool, size_t server);
/* Current verdict; unknown indices report up with reason "unknown". */
bool voro_health_server_up(const struct voro_health *h, size_t pool, size_t server, const char **reason);
/* Stops every check and closes its handles; memory of the handles is released by their close
 * callbacks, so run the loop afterwards until it has no handles. Frees `h`. */
void voro_health_destroy(struct voro_health *h);

#endif
