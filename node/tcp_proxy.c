/* The L4 TCP proxy: one client connection bridged to one server connection by two
 * directions (client->server, server->client). Each direction holds at most two loop buffers:
 * one being sent while the next is received (double buffering keeps both sockets busy), and
 * it stops reading while both are taken — that is the backpressure, so a slow reader costs
 * at most two buffers. Half-close is propagated with shutdown(SHUT_WR) once a direction's last
 * byte went out; connect timeout and retry on the next server; and a lazy idle timer
 * (activity only stamps a time; the wheel timer re-arms itself when it fires).
 *
 * Bulk flows switch to splice(2) (zero copy: socket -> pipe -> socket) once a read fills a
 * whole buffer, and switch back when a splice read comes in short: only flows that move data
 * hold a pipe, so the bounded pipe pool is not drained by idle connections. A direction counts
 * the bytes in its pipe exactly, also for splices that complete after an abort, and the pool
 * recycles a pipe only when the kernel confirms it is empty (else it is closed): bytes left in a
 * pipe by one connection can never be sent by the next one that takes it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/worker.h"

enum tcp_conn_state {
    CONN_CONNECTING = 0,
    CONN_ESTABLISHED,
    CONN_CLOSING,
};

struct voro_tcp_conn;

/* One direction of the bridge: bytes read from `*from` are written to `*to`. */
struct tcp_dir {
    struct voro_tcp_conn *c;
    int *from, *to;
    struct voro_op recv_op, send_op;
    struct voro_buf *sending; /* in flight to `to` */
    struct voro_buf *queued;  /* received while `sending` was busy */
    bool recv_pending, send_pending, eof;
    bool upstream;            /* client->server (counts bytes_out on the server) */
    bool want_splice;         /* a full buffer was read: splice from the next read on */
    bool has_pipe;
    struct voro_pipe pipe;
    uint32_t in_pipe;         /* bytes spliced into the pipe and not yet out of it */
    uint32_t last_splice_in;
};

#define SPLICE_CHUNK (256u * 1024u)
#define SPLICE_STAY_MIN (16u * 1024u) /* a shorter splice read ends splice mode */

struct voro_tcp_conn {
    struct voro_worker *w;
    struct voro_worker_view *view;
    struct voro_tcp_conn *next, *prev;
    int cfd, sfd;
    int listener, pool, server;
    uint8_t state;
    uint8_t attempts;
    bool connect_pending, connect_timed_out, lb_counted, admitted;
    struct voro_lb_exclude tried;
    struct voro_op connect_op;
    struct tcp_dir up, down; /* client->server, server->client */
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

static bool dir_busy(const struct tcp_dir *d) { return d->recv_pending || d->send_pending; }

static void dir_release_pipe(struct voro_worker *w, struct tcp_dir *d)
{
    if (d->has_pipe) {
        voro_pipe_put(&w->pipes, &d->pipe, d->in_pipe == 0);
        d->has_pipe = false;
        d->in_pipe = 0;
    }
}

static void dir_release_buffers(struct voro_worker *w, struct tcp_dir *d)
{
    if (d->sending)
        voro_loop_buf_release(w->loop, d->sending);
    if (d->queued)
        voro_loop_buf_release(w->loop, d->queued);
    d->sending = d->queued = NULL;
    dir_release_pipe(w, d);
}

static void conn_maybe_free(struct voro_tcp_conn *c)
{
    if (c->state != CONN_CLOSING || c->connect_pending || dir_busy(&c->up) || dir_busy(&c->down))
        return;
    struct voro_worker *w = c->w;
    voro_timer_del(&w->wheel, &c->timer);
    dir_release_buffers(w, &c->up);
    dir_release_buffers(w, &c->down);
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

static void dir_cancel(struct voro_loop *loop, struct tcp_dir *d)
{
    if (d->recv_pending)
        voro_loop_cancel(loop, &d->recv_op);
    if (d->send_pending)
        voro_loop_cancel(loop, &d->send_op);
}

/* Closes both sides once every pending op has called back; may free `c`. */
static void conn_abort(struct voro_tcp_conn *c)
{
    if (c->state != CONN_CLOSING) {
        c->state = CONN_CLOSING;
        if (c->connect_pending)
            voro_loop_cancel(c->w->loop, &c->connect_op);
        dir_cancel(c->w->loop, &c->up);
        dir_cancel(c->w->loop, &c->down);
    }
    conn_maybe_free(c);
}

static bool dir_drained(const struct tcp_dir *d) { return d->eof && !d->sending && !d->queued && !d->in_pipe; }

/* Both directions saw EOF and every byte went out: a graceful close. May free `c`. */
static void conn_maybe_finish(struct voro_tcp_conn *c)
{
    if (dir_drained(&c->up) && dir_drained(&c->down))
        conn_abort(c);
}

static void conn_io_error(struct voro_tcp_conn *c)
{
    voro_counter_add(&c->w->stats.errors, 1);
    voro_counter_add(&c->lc->errors, 1);
    conn_abort(c);
}

static void dir_on_recv(struct voro_op *op, int res);
static void dir_on_send(struct voro_op *op, int res);
static void dir_on_splice_in(struct voro_op *op, int res);
static void dir_on_splice_out(struct voro_op *op, int res);

/* Arming helpers return -1 after aborting (which may free the connection). A direction that
 * asked for splicing reads into a pipe once its buffered bytes are out, if a pipe is free. */
static int dir_arm_recv(struct tcp_dir *d)
{
    struct voro_worker *w = d->c->w;
    int rc;
    if (d->want_splice && !d->sending && !d->queued &&
        (d->has_pipe || voro_pipe_get(&w->pipes, &d->pipe) == 0)) {
        d->has_pipe = true;
        d->recv_op.cb = dir_on_splice_in;
        rc = voro_loop_splice(w->loop, &d->recv_op, *d->from, d->pipe.wr, SPLICE_CHUNK, false);
    } else {
        d->want_splice = false;
        d->recv_op.cb = dir_on_recv;
        rc = voro_loop_recv(w->loop, &d->recv_op, *d->from);
    }
    if (rc == 0) {
        d->recv_pending = true;
        return 0;
    }
    conn_abort(d->c);
    return -1;
}

static int dir_splice_out(struct tcp_dir *d)
{
    d->send_op.cb = dir_on_splice_out;
    if (voro_loop_splice(d->c->w->loop, &d->send_op, d->pipe.rd, *d->to, d->in_pipe, true) == 0) {
        d->send_pending = true;
        return 0;
    }
    conn_abort(d->c);
    return -1;
}

static void dir_count(struct tcp_dir *d, int res)
{
    struct voro_tcp_conn *c = d->c;
    struct voro_worker *w = c->w;
    c->last_active_ms = w->now_ms;
    if (d->upstream) {
        voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
        voro_counter_add(&c->lc->bytes_in, (uint64_t)res);
        voro_counter_add(&c->sc->bytes_out, (uint64_t)res);
    } else {
        voro_counter_add(&w->stats.bytes_to_clients, (uint64_t)res);
        voro_counter_add(&c->lc->bytes_out, (uint64_t)res);
        voro_counter_add(&c->sc->bytes_in, (uint64_t)res);
    }
}

static void dir_on_eof(struct tcp_dir *d)
{
    d->eof = true;
    if (!d->sending && !d->in_pipe)
        shutdown(*d->to, SHUT_WR);
    conn_maybe_finish(d->c);
}

static void dir_on_splice_in(struct voro_op *op, int res)
{
    struct tcp_dir *d = op->data;
    struct voro_tcp_conn *c = d->c;
    d->recv_pending = false;
    if (res > 0)
        d->in_pipe += (uint32_t)res; /* counted even while closing: the pipe must not be recycled */
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res > 0) {
        dir_count(d, res);
        d->last_splice_in = (uint32_t)res;
        dir_splice_out(d);
        return;
    }
    if (res == 0) {
        dir_release_pipe(c->w, d);
        dir_on_eof(d);
        return;
    }
    conn_io_error(c);
}

static void dir_on_splice_out(struct voro_op *op, int res)
{
    struct tcp_dir *d = op->data;
    struct voro_tcp_conn *c = d->c;
    d->send_pending = false;
    if (res > 0)
        d->in_pipe -= (uint32_t)res;
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res <= 0) {
        conn_io_error(c);
        return;
    }
    if (d->in_pipe) {
        dir_splice_out(d);
        return;
    }
    if (d->last_splice_in < SPLICE_STAY_MIN) {
        /* The flow went quiet: give the pipe back, read into buffers again. */
        d->want_splice = false;
        dir_release_pipe(c->w, d);
    }
    if (d->eof) {
        shutdown(*d->to, SHUT_WR);
        conn_maybe_finish(c);
        return;
    }
    dir_arm_recv(d);
}

static int dir_start_send(struct tcp_dir *d, struct voro_buf *buf)
{
    d->sending = buf;
    d->send_op.cb = dir_on_send;
    if (voro_loop_send(d->c->w->loop, &d->send_op, *d->to, buf->data, buf->len) == 0) {
        d->send_pending = true;
        return 0;
    }
    conn_abort(d->c);
    return -1;
}

static void dir_on_recv(struct voro_op *op, int res)
{
    struct tcp_dir *d = op->data;
    struct voro_tcp_conn *c = d->c;
    struct voro_worker *w = c->w;
    d->recv_pending = false;
    if (c->state == CONN_CLOSING) {
        if (op->buf)
            voro_loop_buf_release(w->loop, op->buf);
        conn_maybe_free(c);
        return;
    }
    if (res > 0) {
        dir_count(d, res);
        op->buf->len = (uint32_t)res;
        if ((uint32_t)res == op->buf->cap && w->pipes.max)
            d->want_splice = true; /* a bulk flow: splice once the buffered bytes are out */
        if (d->sending) {
            d->queued = op->buf; /* both buffers taken: stop reading until the send completes */
            return;
        }
        if (dir_start_send(d, op->buf) == 0 && !d->want_splice)
            dir_arm_recv(d);
        return;
    }
    if (op->buf)
        voro_loop_buf_release(w->loop, op->buf);
    if (res == 0) {
        dir_on_eof(d);
        return;
    }
    conn_io_error(c);
}

static void dir_on_send(struct voro_op *op, int res)
{
    struct tcp_dir *d = op->data;
    struct voro_tcp_conn *c = d->c;
    d->send_pending = false;
    voro_loop_buf_release(c->w->loop, d->sending);
    d->sending = NULL;
    if (c->state == CONN_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0) {
        conn_io_error(c);
        return;
    }
    if (d->queued) {
        struct voro_buf *next = d->queued;
        d->queued = NULL;
        if (dir_start_send(d, next) != 0)
            return;
        if (!d->eof && !d->recv_pending && !d->want_splice)
            dir_arm_recv(d);
        return;
    }
    if (d->eof) {
        shutdown(*d->to, SHUT_WR);
        conn_maybe_finish(c);
        return;
    }
    if (!d->recv_pending)
        dir_arm_recv(d); /* reading was paused (both buffers taken, or waiting to splice) */
}

static void dir_init(struct tcp_dir *d, struct voro_tcp_conn *c, int *from, int *to, bool upstream)
{
    d->c = c;
    d->from = from;
    d->to = to;
    d->upstream = upstream;
    d->recv_op = (struct voro_op){.cb = dir_on_recv, .data = d};
    d->send_op = (struct voro_op){.cb = dir_on_send, .data = d};
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
    c->connect_pending = false;
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
        if (dir_arm_recv(&c->up) == 0)
            dir_arm_recv(&c->down);
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
    c->connect_pending = true;
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
    struct voro_admission_ticket t;
    if (!voro_worker_admit(w, listener, fd, pool_needs_client_address(pc), 2, &t))
        return;
    struct voro_conn_admission adm = t.adm;
    bool admitted = t.admitted;
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
    c->hash_key = t.have_peer ? voro_addr_ip_hash((const struct sockaddr *)&t.peer) : 0;
    c->connect_op = (struct voro_op){.cb = on_connect, .data = c};
    dir_init(&c->up, c, &c->cfd, &c->sfd, true);
    dir_init(&c->down, c, &c->sfd, &c->cfd, false);
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

int voro_tcp_proxy_adopt(struct voro_worker *w, int listener, int cfd, int sfd, struct voro_worker_view *view, int pool,
                         int server, struct voro_buf *to_client, struct voro_buf *to_server,
                         const struct voro_conn_admission *adm, bool admitted)
{
    struct voro_tcp_conn *c = voro_slab_alloc(&w->conn_slab);
    if (!c)
        return -ENOMEM;
    c->w = w;
    view->users++;
    c->view = view;
    c->cfd = cfd;
    c->sfd = sfd;
    c->listener = listener;
    c->pool = pool;
    c->server = server;
    c->state = CONN_ESTABLISHED;
    c->lb_counted = true;
    c->admitted = admitted;
    c->adm = *adm;
    c->lc = voro_snapshot_listener_counters(view->snap, w->slot, (size_t)listener);
    c->sc = voro_worker_server_counters(w, view, (size_t)pool, (size_t)server);
    c->idle_timeout_ms = view->snap->cfg->listeners[listener].idle_timeout_ms;
    c->last_active_ms = w->now_ms;
    c->connect_op = (struct voro_op){.cb = on_connect, .data = c};
    dir_init(&c->up, c, &c->cfd, &c->sfd, true);
    dir_init(&c->down, c, &c->sfd, &c->cfd, false);
    voro_timer_init(&c->timer, on_timer, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    voro_counter_add(&w->stats.active, 1);
    if (c->idle_timeout_ms)
        voro_timer_add(&w->wheel, &c->timer, c->idle_timeout_ms);
    /* What each side already sent goes first; reading starts once it is out. */
    if (to_server ? dir_start_send(&c->up, to_server) : dir_arm_recv(&c->up)) {
        /* Aborted: the connection cleans up after itself; the other buffer is ours to drop. */
        if (to_client)
            voro_loop_buf_release(w->loop, to_client);
        return 0;
    }
    if (to_client)
        dir_start_send(&c->down, to_client);
    else
        dir_arm_recv(&c->down);
    return 0;
}
