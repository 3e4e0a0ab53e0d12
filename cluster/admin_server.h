/* The admin HTTP/1.1 server on the control loop (private to cluster/: control.c drives it). */
#ifndef VORO_CLUSTER_ADMIN_SERVER_H
#define VORO_CLUSTER_ADMIN_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "cluster/admin.h"
#include "cluster/config.h"

/*
 * Behaviour: heads are parsed by proto/http1 (head <= 16 KiB); bodies only with Content-Length
 * (<= 1 MiB, else 413; chunked request bodies get 411). Routing is an exact match on the path
 * (target before '?', not percent-decoded; only origin-form targets). Unknown path: 404
 * {"error":"not found","path":...}; known path, method not in its set: 405 with Allow.
 * Keep-alive by default on HTTP/1.1; "Connection: close" and HTTP/1.0 close after the answer.
 * Protocol errors: the parser's status + {"error": reason}, then the connection is closed.
 * A connection gets 10 s to deliver each request (idle time between requests included); at
 * most 256 connections are served, further ones are closed at once.
 */

#define VORO_ADMIN_MAX_CONNS 256
#define VORO_ADMIN_MAX_HEAD 16384
#define VORO_ADMIN_MAX_BODY (1024 * 1024)
#define VORO_ADMIN_TIMEOUT_MS 10000

struct voro_admin_server;

/* Binds and listens on `bind`. *out owned by the caller (voro_admin_server_close). */
int voro_admin_server_create(struct voro_admin_server **out, uv_loop_t *loop, const struct voro_sockaddr *bind);
/* Adds or replaces the endpoint `path` (copied); `ctx` borrowed. Returns 0, -EINVAL, -ENOMEM. */
int voro_admin_server_register(struct voro_admin_server *s, const char *path, unsigned methods,
                               voro_admin_handler handler, void *ctx);
uint16_t voro_admin_server_port(const struct voro_admin_server *s);
/* Closes the listener and every connection; the memory goes in the close callbacks, so run the
 * loop afterwards until it has no handles. */
void voro_admin_server_close(struct voro_admin_server *s);

#endif
