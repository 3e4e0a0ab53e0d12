/* Health verdicts on the control loop: active TCP/HTTP/script checks with rise/fall, passive outlier ejection, warm-up, slow start. */
#ifndef VORO_CLUSTER_HEALTH_CHECK_H
#define VORO_CLUSTER_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 *
 * HTTP checks send `method path` (Host = the server address) and pass when the status equals
 * expect_status (default 200) and the body contains expect_body (if set); reasons "ok",
 * "http 503", "body mismatch", "connect refused", "timeout", "connect error", "bad response".
 * Script checks run `script` split on spaces, with {host} and {port} replaced in every word,
 * stdio on /dev/null, killed (SIGKILL, by pid) after timeout_ms; exit 0 passes; reasons "ok",
 * "exit 1", "signal 9", "timeout", "spawn failed: <error>".
 *
 * The published verdict (cb) is: check verdict up AND not ejected AND warmed up.
 * - Ejection (pool l7.eject_*): see cluster/outlier.h; reported failures of any kind feed it, a
 *   reported success resets the streak. Verdict down with reason
 *   "ejected: 5 consecutive failures (10s)"; back up with reason "ejection ended".
 * - Warm-up (pool l7.warmup, servers with declared models): when the check verdict turns up
 *   after being down, one POST /v1/completions {"model":M,"max_tokens":1} per declared model is
 *   sent; the server is published up when all answered 2xx, or with reason "warm-up timed out"
 *   after 10 x timeout_ms. Another answer keeps it down ("warm-up failed: http 500") and the
 *   next passing check retries. Servers start up as before: no warm-up at start.
 * - Slow start (pool l7.slow_start_ms): when a server is published up again (after down or
 *   ejected), or appears in a config after the first one, weight_cb gets 50 permille at once and
 *   a linear ramp to 1000 every 100 ms over slow_start_ms.
 * Everything runs on the loop's thread.
 */

struct voro_health;

typedef void (*voro_health_cb)(void *ctx, size_t pool, size_t server, bool up, const char *reason);
/* Slow-start weight, 50..1000 permille (same ctx as the health cb). */
typedef void (*voro_health_weight_cb)(void *ctx, size_t pool, size_t server, uint32_t permille);

/* What a passive report saw. */
enum voro_failure_kind {
    VORO_FAILURE_CONNECT = 0, /* connect failed: also counts toward `fall` of an active check */
    VORO_FAILURE_5XX = 1,     /* the server answered 5xx: only feeds outlier ejection */
};

/* *out is owned by the caller (voro_health_destroy); `loop` and `ctx` are borrowed. */
int voro_health_create(struct voro_health **out, uv_loop_t *loop, voro_health_cb cb, void *ctx);
/* Replaces the targets with the pools/servers of `cfg` (read during the call only; may be NULL).
 * A server whose pool name and address text are unchanged (and still TCP-checked) keeps its
 * verdict and counters; those that are down are announced again with cb(..., false, reason)
 * under their new indices, so a consumer that starts every server of a new config as up
 * converges. Returns 0 or -ENOMEM (the old targets stay then). */
int voro_health_set_config(struct voro_health *h, const struct voro_config *cfg);
/* Sets the slow-start weight callback (NULL = none). */
void voro_health_set_weight_cb(struct voro_health *h, voro_health_weight_cb cb);
/* A failure seen by the data plane: counts as one failed check toward `fall` (unless health.type
 * is NONE) and one failure toward ejection. Same as ..._kind(VORO_FAILURE_CONNECT). */
void voro_health_report_failure(struct voro_health *h, size_t pool, size_t server);
void voro_health_report_failure_kind(struct voro_health *h, size_t pool, size_t server, enum voro_failure_kind kind);
/* A success seen by the data plane: resets the ejection streak. */
void voro_health_report_success(struct voro_health *h, size_t pool, size_t server);
/* Whether the server is ejected now (false for unknown indices). */
bool voro_health_server_ejected(const struct voro_health *h, size_t pool, size_t server);
/* Current verdict; unknown indices report up with reason "unknown". */
bool voro_health_server_up(const struct voro_health *h, size_t pool, size_t server, const char **reason);
/* Stops every check and closes its handles; memory of the handles is released by their close
 * callbacks, so run the loop afterwards until it has no handles. Frees `h`. */
void voro_health_destroy(struct voro_health *h);

#endif
