/* Per-worker keep-alive pools of server connections for the HTTP proxy, one idle list per
 * server of a worker view (so a reload never reuses a connection across configs). A pooled
 * connection is checked for EOF (a non-blocking MSG_PEEK) before reuse and expires after the
 * pool's upstream_idle_timeout, which should be shorter than the servers' keep-alive. */
#ifndef VORO_NODE_HTTP_UPSTREAM_H
#define VORO_NODE_HTTP_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct voro_worker;
struct voro_worker_view;

struct voro_http_idle_conn {
    struct voro_http_idle_conn *next;
    int fd;
    uint64_t since_ms;
};

struct voro_http_idle_list {
    struct voro_http_idle_conn *head; /* most recently used first */
    uint32_t count;
};

/* Idle pools of one view: [global server index]. Owned by the view. */
struct voro_http_view {
    struct voro_http_idle_list *idle;
    uint32_t n;
};

/* Creates the view's pools (NULL on allocation failure: the proxy then never pools). */
struct voro_http_view *voro_http_view_create(uint32_t n_servers_total);
/* Closes every idle connection and frees the pools. */
void voro_http_view_destroy(struct voro_worker *w, struct voro_http_view *hv);

/* Takes a live idle connection to pools[pool].servers[server], or returns -1. A connection idle
 * for a moment only is trusted without a syscall unless `must_check` (a request that could not
 * be replayed if the server had just closed it). */
int voro_http_upstream_take(struct voro_worker *w, struct voro_worker_view *view, size_t pool, size_t server,
                            bool must_check);
/* Gives a connection back (closed instead when the pool is full or pooling is off). */
void voro_http_upstream_put(struct voro_worker *w, struct voro_worker_view *view, size_t pool, size_t server, int fd);
/* Closes idle connections older than their pool's idle timeout (call about once a second). */
void voro_http_upstream_expire(struct voro_worker *w, struct voro_worker_view *view);

/* Every server socket of the HTTP proxy holds one slot of the node's descriptor budget from
 * before socket() until it is closed, whether in use or pooled. */
/* Takes a slot for a server socket about to be opened, closing this worker's longest-idle pooled
 * connection when the budget is spent. Returns 0, or -EMFILE when no slot can be had. */
int voro_http_upstream_reserve_fd(struct voro_worker *w, struct voro_worker_view *view);
/* Closes a server socket and gives its slot back. */
void voro_http_upstream_close(struct voro_worker *w, int fd);

#endif
