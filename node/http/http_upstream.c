/* Keep-alive pools of server connections (per worker, per view, per server). */
#include "node/http/http_upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "node/worker.h"

struct voro_http_view *voro_http_view_create(uint32_t n_servers_total)
{
    struct voro_http_view *hv = calloc(1, sizeof(*hv));
    if (!hv)
        return NULL;
    hv->idle = calloc(n_servers_total ? n_servers_total : 1, sizeof(*hv->idle));
    if (!hv->idle) {
        free(hv);
        return NULL;
    }
    hv->n = n_servers_total;
    return hv;
}

void voro_http_view_destroy(struct voro_worker *w, struct voro_http_view *hv)
{
    if (!hv)
        return;
    for (uint32_t i = 0; i < hv->n; i++) {
        struct voro_http_idle_conn *c = hv->idle[i].head;
        while (c) {
            struct voro_http_idle_conn *next = c->next;
            voro_http_upstream_close(w, c->fd);
            voro_slab_free(&w->idle_slab, c);
            c = next;
        }
    }
    free(hv->idle);
    free(hv);
}

static struct voro_http_idle_list *idle_list(struct voro_worker_view *view, size_t pool, size_t server)
{
    if (!view->http)
        return NULL;
    return &view->http->idle[view->snap->servers[pool][server].global_index];
}

/* A pooled connection is usable when the server neither closed it nor sent anything. */
static int still_open(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A connection idle for less than this was alive a moment ago: skip the MSG_PEEK syscall unless
 * the request could not be retried (a race with the server's close is then caught by the
 * proxy's one retry on a fresh connection). */
#define FRESH_IDLE_MS 200

int voro_http_upstream_take(struct voro_worker *w, struct voro_worker_view *view, size_t pool, size_t server,
                            bool must_check)
{
    struct voro_http_idle_list *l = idle_list(view, pool, server);
    if (!l)
        return -1;
    uint32_t timeout = view->snap->cfg->pools[pool].l7.upstream_idle_timeout_ms;
    while (l->head) {
        struct voro_http_idle_conn *c = l->head;
        l->head = c->next;
        l->count--;
        int fd = c->fd;
        bool fresh = timeout == 0 || w->now_ms - c->since_ms < timeout;
        bool recent = w->now_ms - c->since_ms < FRESH_IDLE_MS;
        voro_slab_free(&w->idle_slab, c);
        if (fresh && ((recent && !must_check) || still_open(fd)))
            return fd;
        voro_http_upstream_close(w, fd);
    }
    return -1;
}

void voro_http_upstream_put(struct voro_worker *w, struct voro_worker_view *view, size_t pool, size_t server, int fd)
{
    struct voro_http_idle_list *l = idle_list(view, pool, server);
    uint32_t max_idle = view->snap->cfg->pools[pool].l7.upstream_max_idle;
    struct voro_http_idle_conn *c = NULL;
    if (l && l->count < max_idle)
        c = voro_slab_alloc(&w->idle_slab);
    if (!c) {
        voro_http_upstream_close(w, fd);
        return;
    }
    c->fd = fd;
    c->since_ms = w->now_ms;
    c->next = l->head;
    l->head = c;
    l->count++;
}

void voro_http_upstream_expire(struct voro_worker *w, struct voro_worker_view *view)
{
    if (!view->http)
        return;
    const struct voro_config *cfg = view->snap->cfg;
    for (size_t p = 0; p < cfg->n_pools; p++) {
        uint32_t timeout = cfg->pools[p].l7.upstream_idle_timeout_ms;
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++) {
            struct voro_http_idle_list *l = idle_list(view, p, s);
            struct voro_http_idle_conn **pp = &l->head;
            while (*pp) {
                struct voro_http_idle_conn *c = *pp;
                if (timeout && w->now_ms - c->since_ms >= timeout) {
                    *pp = c->next;
                    l->count--;
                    voro_http_upstream_close(w, c->fd);
                    voro_slab_free(&w->idle_slab, c);
                } else {
                    pp = &c->next;
                }
            }
        }
    }
}

void voro_http_upstream_close(struct voro_worker *w, int fd)
{
    voro_loop_close(w->loop, fd);
    voro_conn_limits_fd_give(&w->dp->limits, 1);
}

/* Closes the pooled connection idle the longest in `view` (any server); false when none. */
static bool evict_oldest_idle(struct voro_worker *w, struct voro_worker_view *view)
{
    if (!view->http)
        return false;
    struct voro_http_idle_list *best_list = NULL;
    struct voro_http_idle_conn **best = NULL;
    for (uint32_t i = 0; i < view->http->n; i++) {
        struct voro_http_idle_list *l = &view->http->idle[i];
        struct voro_http_idle_conn **pp = &l->head;
        if (!*pp)
            continue;
        while ((*pp)->next) /* most recently used first: the tail is the oldest */
            pp = &(*pp)->next;
        if (!best || (*pp)->since_ms < (*best)->since_ms) {
            best = pp;
            best_list = l;
        }
    }
    if (!best)
        return false;
    struct voro_http_idle_conn *c = *best;
    *best = NULL;
    best_list->count--;
    voro_http_upstream_close(w, c->fd);
    voro_slab_free(&w->idle_slab, c);
    return true;
}

int voro_http_upstream_reserve_fd(struct voro_worker *w, struct voro_worker_view *view)
{
    for (int i = 0; i < 2; i++) {
        if (voro_conn_limits_fd_take(&w->dp->limits, 1))
            return 0;
        /* Spent: an idle pooled connection is worth less than a request waiting for a server. */
        if (!evict_oldest_idle(w, view))
            break;
    }
    return -EMFILE;
}
