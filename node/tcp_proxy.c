/* The L4 TCP proxy: one client connection bridged to one server connection, two one-buffer
 * pipelines (client->server, server->client) so each direction holds at most one loop buffer
 * (backpressure: a direction is not read again until its last chunk was sent), half-close
 * propagated with shutdown(SHUT_WR), connect timeout and retry on the next server, and a lazy
 * idle timer (activity only stamps a time; the wheel timer re-arms itself when it fires). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/worker.h"

enum {
    P_CONNECT = 1u << 0,
    P_CLIENT_RECV = 1u << 1,
    P_CLIENT_SEND = 1u << 2,
    P_SERVER_RECV = 1u << 3,
    P_SERVER_SEND = 1u << 4,
};

enum tcp_conn_state {
    CONN_CONNECTING = 0,
    CONN_ESTABLISHED,
    CONN_CLOSING,
};

struct voro_tcp_conn {
    struct voro_worker *w;
    struct voro_worker_view *view;
    struct voro_tcp_conn *next, *prev;
    int cfd, sfd;
    int listener, pool, server;
    uint8_t state;
    uint8_t pending;       /* P_* bits of ops in flight */
    uint8_t attempts;
    bool client_eof, server_eof, connect_timed_out, lb_counted, admitted;
    struct voro_lb_exclude tried;
    struct voro_op connect_op, client_recv, client_send, server_recv, server_send;
    struct voro_buf *up_buf, *down_buf; /* in flight client->server, server->client */
    struct voro_timer timer;
    uint64_t last_active_ms;
    uint32_t idle_timeout_ms;
    uint64_t hash_key;
    struct voro_conn_admission adm;
    struct voro_server_counters *sc;
    struct voro_listener_counters *lc;
};

static void conn_abort(struct voro_tcp_conn *c);
static void conn_connect_next(struct voro_tcp_conn *c);

static void conn_maybe_free(struct voro_tcp_conn *c)
{
    if (c->state != CONN_CLOSING || c->pending)
        return;
    struct voro_worker *w = c->w;
    voro_timer_del(&w->wheel, &c->timer);
    if (c->up_buf)
        voro_loop_buf_release(w->loop, c->up_buf);
    if (c->down_buf)
        voro_loop_buf_release(w->loop, c->down_buf);
    if (c->sfd >= 0)
        voro_loop_close(w->loop, c->sfd);
    if (c->cfd >= 0)
        voro_loop_close(w->loop, c->cfd);
    if (c->lb_counted) {
        voro_lb_conn_end(&c->view->lbs[c->pool], c->server);
        voro_counter_sub(&c->sc->active, 1);
    }
    if (c->admitted)
        voro_conn_limits_release(&w->dp->limits, &c->adm);
    voro_worker_view_release(w, c->view);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    voro_counter_sub(&w->stats.active, 1);
    voro_slab_free(&w->conn_slab, c);
}

static void conn_cancel_pending(struct voro_tcp_conn *c)
{
    struct voro_loop *loop = c->w->loop;
    if (c->pending & P_CONNECT)
        voro_loop_cancel(loop, &c->connect_op);
    if (c->pending & P_CLIENT_RECV)
        voro_loop_cancel(loop, &c->client_recv);
    if (c->pending & P_CLIENT_SEND)
        voro_loop_cancel(loop, &c->client_send);
    if (c->pending & P_SERVER_RECV)
        voro_loop_cancel(loop, &c->server_recv);
    if (c->pending & P_SERVER_SEND)
        voro_loop_cancel(loop, &c->server_send);
}

static void conn_abort(struct voro_tcp_conn *c)
{
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    c->state = CONN_CLOSING;
    conn_cancel_pending(c);
    conn_maybe_free(c);
}

/* Both directions saw EOF and every chunk went out: a graceful close. */
static void conn_maybe_finish(struct voro_tcp_conn *c)
{
    if (c->client_eof && c->server_eof && !(c->pending & (P_CLIENT_SEND | P_SERVER_SEND)))
        conn_abort(c);
}

/* Both arm helpers abort on failure, which may free `c`: callers must not touch it after a
 * non-zero return. */
static int arm_client_recv(struct voro_tcp_conn *c)
{
    if (voro_loop_recv(c->w->loop, &c->client_recv, c->cfd) == 0) {
        c->pending |= P_CLIENT_RECV;
        return 0;
    }
    conn_abort(c);
    return -1;
}

static int arm_server_recv(struct voro_tcp_conn *c)
{
    if (voro_loop_recv(c->w->loop, &c->server_recv, c->sfd) == 0) {
        c->pending |= P_SERVER_RECV;
        return 0;
    }
    conn_abort(c);
    return -1;
}

static void on_client_recv(struct voro_op *op, int res)
{
    struct voro_tcp_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CLIENT_RECV;
    if (c->state == CONN_CLOSING) {
        if (op->buf)
            voro_loop_buf_release(w->loop, op->buf);
        conn_maybe_free(c);
        return;
    }
    if (res > 0) {
        c->last_active_ms = w->now_ms;
        c->up_buf = op->buf;
        voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
        voro_counter_add(&c->lc->bytes_in, (uint64_t)res);
        voro_counter_add(&c->sc->bytes_out, (uint64_t)res);
        if (voro_loop_send(w->loop, &c->server_send, c->sfd, op->buf->data, (size_t)res) == 0)
            c->pending |= P_SERVER_SEND;
        else
            conn_abort(c);
        return;
    }
    if (res == 0) {
        c->client_eof = true;
        shutdown(c->sfd, SHUT_WR);
        conn_maybe_finish(c);
        return;
    }
    if (op->buf)
        voro_loop_buf_release(w->loop, op->buf);
    voro_counter_add(&w->stats.errors, 1);
    voro_counter_add(&c->lc->errors, 1);
    conn_abort(c);
}

static void on_server_send(struct voro_op *op, int res)
{
    struct voro_tcp_conn *c = op->data;
    c->pending &= (uint8_t)~P_SERVER_SEND;
    voro_loop_buf_release(c->w->loop, c->up_buf);
    c->up_buf = NULL;
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0) {
        voro_counter_add(&c->w->stats.errors, 1);
        conn_abort(c);
        return;
    }
    arm_client_recv(c);
}

static void on_server_recv(struct voro_op *op, int res)
{
    struct voro_tcp_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_SERVER_RECV;
    if (c->state == CONN_CLOSING) {
        if (op->buf)
            voro_loop_buf_release(w->loop, op->buf);
        conn_maybe_free(c);
        return;
    }
    if (res > 0) {
        c->last_active_ms = w->now_ms;
        c->down_buf = op->buf;
        voro_counter_add(&w->stats.bytes_to_clients, (uint64_t)res);
        voro_counter_add(&c->lc->bytes_out, (uint64_t)res);
        voro_counter_add(&c->sc->bytes_in, (uint64_t)res);
        if (voro_loop_send(w->loop, &c->client_send, c->cfd, op->buf->data, (size_t)res) == 0)
            c->pending |= P_CLIENT_SEND;
        else
            conn_abort(c);
        return;
    }
    if (res == 0) {
        c->server_eof = true;
        shutdown(c->cfd, SHUT_WR);
        conn_maybe_finish(c);
        return;
    }
    if (op->buf)
        voro_loop_buf_release(w->loop, op->buf);
    voro_counter_add(&w->stats.errors, 1);
    conn_abort(c);
}

static void on_client_send(struct voro_op *op, int res)
{
    struct voro_tcp_conn *c = op->data;
    c->pending &= (uint8_t)~P_CLIENT_SEND;
    voro_loop_buf_release(c->w->loop, c->down_buf);
    c->down_buf = NULL;
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0) {
        voro_counter_add(&c->w->stats.errors, 1);
        conn_abort(c);
        return;
    }
    arm_server_recv(c);
}

static void on_timer(struct voro_timer *t)
{
    struct voro_tcp_conn *c = t->data;
    struct voro_worker *w = c->w;
    if (c->state == CONN_CONNECTING) {
        c->connect_timed_out = true;
        voro_counter_add(&w->stats.connect_timeouts, 1);
        voro_loop_cancel(w->loop, &c->connect_op);
        return;
    }
    if (c->state != CONN_ESTABLISHED || c->idle_timeout_ms == 0)
        return;
    uint64_t idle_for = w->now_ms - c->last_active_ms;
    if (idle_for >= c->idle_timeout_ms) {
        voro_counter_add(&w->stats.idle_timeouts, 1);
        conn_abort(c);
        return;
    }
    voro_timer_add(&w->wheel, t, c->idle_timeout_ms - idle_for);
}

static void on_connect(struct voro_op *op, int res)
{
    struct voro_tcp_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CONNECT;
    voro_timer_del(&w->wheel, &c->timer);
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res == 0 && !c->connect_timed_out) {
        c->state = CONN_ESTABLISHED;
        c->last_active_ms = w->now_ms;
        int one = 1;
        setsockopt(c->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (c->idle_timeout_ms)
            voro_timer_add(&w->wheel, &c->timer, c->idle_timeout_ms);
        if (arm_client_recv(c) == 0)
            arm_server_recv(c);
        return;
    }
    /* Failed attempt: count it (the control thread turns the counter into passive health). */
    voro_counter_add(&w->stats.connect_failures, 1);
    voro_counter_add(&c->sc->connect_failures, 1);
    voro_counter_sub(&c->sc->active, 1);
    voro_lb_conn_end(&c->view->lbs[c->pool], c->server);
    c->lb_counted = false;
    voro_loop_close(w->loop, c->sfd);
    c->sfd = -1;
    voro_lb_exclude_add(&c->tried, c->server);
    const struct voro_pool_config *pc = &c->view->snap->cfg->pools[c->pool];
    if (c->attempts <= pc->retries) {
        voro_counter_add(&w->stats.connect_retries, 1);
        conn_connect_next(c);
        return;
    }
    VORO_DEBUG("tcp", "connect to pool %s failed after %u attempts: %s", pc->name, c->attempts,
               c->connect_timed_out ? "timeout" : strerror(-res));
    voro_counter_add(&w->stats.no_server, 1);
    conn_abort(c);
}

static void conn_connect_next(struct voro_tcp_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_pool_config *pc = &c->view->snap->cfg->pools[c->pool];
    struct voro_lb *lb = &c->view->lbs[c->pool];
    c->connect_timed_out = false;
    int idx = voro_lb_pick(lb, c->hash_key, &c->tried);
    if (idx < 0) {
        voro_counter_add(&w->stats.no_server, 1);
        conn_abort(c);
        return;
    }
    c->server = idx;
    c->attempts++;
    const struct voro_sockaddr *addr = &pc->servers[idx].addr;
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: accepting more clients would only mean closing them again. */
            voro_counter_add(&w->stats.accept_errors, 1);
            voro_worker_pause_accepts(w);
        } else {
            voro_counter_add(&w->stats.errors, 1);
        }
        conn_abort(c);
        return;
    }
    c->sfd = fd;
    c->sc = voro_worker_server_counters(w, c->view, (size_t)c->pool, (size_t)idx);
    voro_lb_conn_begin(lb, idx);
    c->lb_counted = true;
    voro_counter_add(&c->sc->connections, 1);
    voro_counter_add(&c->sc->active, 1);
    int rc = voro_loop_connect(w->loop, &c->connect_op, fd, (const struct sockaddr *)&addr->ss, addr->len);
    if (rc != 0) {
        conn_abort(c);
        return;
    }
    c->pending |= P_CONNECT;
    voro_timer_add(&w->wheel, &c->timer, pc->connect_timeout_ms ? pc->connect_timeout_ms : 3000);
}

static bool pool_needs_client_address(const struct voro_pool_config *pc)
{
    return pc->algorithm == VORO_LB_CONSISTENT_HASH;
}

void voro_tcp_proxy_accepted(struct voro_worker *w, int listener, int fd)
{
    struct voro_worker_view *view = w->view;
    const struct voro_config *cfg = view->snap->cfg;
    const struct voro_listener_config *lc = &cfg->listeners[listener];
    const struct voro_pool_config *pc = &cfg->pools[lc->pool_index];
    struct voro_listener_counters *lcount = voro_snapshot_listener_counters(view->snap, w->slot, (size_t)listener);
    voro_counter_add(&w->stats.accepted, 1);

    if (!voro_token_bucket_take(&w->rate, w->now_ms)) {
        voro_counter_add(&w->stats.rejected_rate, 1);
        voro_counter_add(&lcount->rejected, 1);
        voro_loop_close(w->loop, fd);
        return;
    }
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    bool need_peer = cfg->max_connections_per_ip || pool_needs_client_address(pc);
    if (need_peer && getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0) {
        voro_counter_add(&w->stats.errors, 1);
        voro_loop_close(w->loop, fd);
        return;
    }
    struct voro_conn_admission adm = {.ip_slot = -1};
    bool admitted = false;
    /* Like HAProxy's maxconn derived from ulimit: never take more connections than the fd
     * limit can hold, so the process keeps descriptors for its admin API and health checks. */
    uint32_t max_total = cfg->max_connections;
    uint32_t cap = w->dp->fd_connection_cap;
    if (cap && (max_total == 0 || max_total > cap))
        max_total = cap;
    if (max_total || cfg->max_connections_per_ip) {
        static const struct sockaddr_in any = {.sin_family = AF_INET};
        const struct sockaddr *who = need_peer ? (const struct sockaddr *)&peer : (const struct sockaddr *)&any;
        enum voro_admit_result ar = voro_conn_limits_admit(&w->dp->limits, who, max_total,
                                                           cfg->max_connections_per_ip, &adm);
        if (ar != VORO_ADMIT_OK) {
            voro_counter_add(ar == VORO_ADMIT_MAX_PER_IP ? &w->stats.rejected_per_ip
                                                         : &w->stats.rejected_max_connections, 1);
            voro_counter_add(&lcount->rejected, 1);
            voro_loop_close(w->loop, fd);
            return;
        }
        admitted = true;
    }
    struct voro_tcp_conn *c = voro_slab_alloc(&w->conn_slab);
    if (!c) {
        voro_counter_add(&w->stats.rejected_max_connections, 1);
        if (admitted)
            voro_conn_limits_release(&w->dp->limits, &adm);
        voro_loop_close(w->loop, fd);
        return;
    }
    c->w = w;
    c->lc = lcount;
    voro_counter_add(&lcount->accepted, 1);
    c->view = voro_worker_view_acquire(w);
    c->cfd = fd;
    c->sfd = -1;
    c->listener = listener;
    c->pool = (int)lc->pool_index;
    c->adm = adm;
    c->admitted = admitted;
    c->idle_timeout_ms = lc->idle_timeout_ms;
    c->hash_key = need_peer ? voro_addr_ip_hash((const struct sockaddr *)&peer) : 0;
    c->connect_op = (struct voro_op){.cb = on_connect, .data = c};
    c->client_recv = (struct voro_op){.cb = on_client_recv, .data = c};
    c->client_send = (struct voro_op){.cb = on_client_send, .data = c};
    c->server_recv = (struct voro_op){.cb = on_server_recv, .data = c};
    c->server_send = (struct voro_op){.cb = on_server_send, .data = c};
    voro_timer_init(&c->timer, on_timer, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    voro_counter_add(&w->stats.active, 1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_connect_next(c);
}

void voro_tcp_proxy_abort_all(struct voro_worker *w)
{
    struct voro_tcp_conn *c = w->conns;
    while (c) {
        struct voro_tcp_conn *next = c->next;
        voro_counter_add(&w->stats.drained_aborts, 1);
        conn_abort(c); /* may free c */
        c = next;
    }
}

size_t voro_tcp_conn_size(void) { return sizeof(struct voro_tcp_conn); }
