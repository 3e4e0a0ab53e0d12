/* A data-plane worker thread: runs its event loop, adopts published snapshots at the top of
 * each iteration (its quiescent point), keeps its accept ops in line with the listening
 * sockets the snapshot names for its slot, and drains or stops on command. */
#include "node/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/http/http_upstream.h"

#define WORKER_TICK_MS 10
#define ACCEPT_BACKOFF_MS 100
#define MAX_LOOP_WAIT_MS 500

/* ---- views ---------------------------------------------------------------------------- */

static void view_destroy(struct voro_worker *w, struct voro_worker_view *v)
{
    voro_http_view_destroy(w, v->http);
    if (v->lbs) {
        for (size_t p = 0; p < v->snap->cfg->n_pools; p++)
            voro_lb_destroy(&v->lbs[p]);
        free(v->lbs);
    }
    atomic_fetch_sub(&v->snap->refs, 1);
    free(v);
}

static struct voro_worker_view *view_create(struct voro_worker *w, struct voro_snapshot *snap)
{
    struct voro_worker_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    atomic_fetch_add(&snap->refs, 1);
    v->snap = snap;
    v->users = 1;
    const struct voro_config *cfg = snap->cfg;
    v->lbs = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*v->lbs));
    if (!v->lbs)
        goto fail;
    for (size_t l = 0; l < cfg->n_listeners; l++)
        if (cfg->listeners[l].mode == VORO_MODE_HTTP && !v->http)
            v->http = voro_http_view_create(snap->n_servers_total); /* NULL: no pooling, still works */
    for (size_t p = 0; p < cfg->n_pools; p++) {
        const struct voro_pool_config *pc = &cfg->pools[p];
        struct voro_lb_server_init init[VORO_POOL_MAX_SERVERS];
        memset(init, 0, sizeof(init));
        for (size_t s = 0; s < pc->n_servers; s++) {
            init[s].weight = pc->servers[s].weight;
            init[s].health = &snap->servers[p][s].health;
            init[s].identity = pc->servers[s].addr.text;
            init[s].signals = &snap->servers[p][s].signals;
        }
        uint64_t seed = ((uint64_t)w->id << 32) ^ snap->generation ^ (uint64_t)p;
        if (voro_lb_init(&v->lbs[p], pc->algorithm, init, pc->n_servers, pc->hash_balance_factor, seed) != 0) {
            for (size_t q = 0; q < p; q++)
                voro_lb_destroy(&v->lbs[q]);
            free(v->lbs);
            goto fail;
        }
    }
    return v;
fail:
    voro_http_view_destroy(w, v->http);
    atomic_fetch_sub(&snap->refs, 1);
    free(v);
    return NULL;
}

struct voro_worker_view *voro_worker_view_acquire(struct voro_worker *w)
{
    w->view->users++;
    return w->view;
}

void voro_worker_view_release(struct voro_worker *w, struct voro_worker_view *view)
{
    if (--view->users == 0) {
        if (view == w->view)
            w->view = NULL;
        view_destroy(w, view);
    }
}

struct voro_server_counters *voro_worker_server_counters(struct voro_worker *w, struct voro_worker_view *view,
                                                         size_t pool, size_t server)
{
    struct voro_snapshot *snap = view->snap;
    return voro_snapshot_counters(snap, w->slot, snap->servers[pool][server].global_index);
}

/* ---- accepting -------------------------------------------------------------------------- */

bool voro_worker_admit(struct voro_worker *w, int listener, int fd, bool need_peer, uint32_t fds,
                       struct voro_admission_ticket *t)
{
    const struct voro_config *cfg = w->view->snap->cfg;
    struct voro_listener_counters *lcount = voro_snapshot_listener_counters(w->view->snap, w->slot, (size_t)listener);
    t->adm.ip_slot = -1;
    t->admitted = t->have_peer = false;
    voro_counter_add(&w->stats.accepted, 1);
    if (!voro_token_bucket_take(&w->rate, w->now_ms)) {
        voro_counter_add(&w->stats.rejected_rate, 1);
        goto refuse;
    }
    if (need_peer || cfg->max_connections_per_ip) {
        socklen_t len = sizeof(t->peer);
        if (getpeername(fd, (struct sockaddr *)&t->peer, &len) != 0) {
            voro_counter_add(&w->stats.errors, 1);
            voro_loop_close(w->loop, fd);
            return false;
        }
        t->have_peer = true;
    }
    uint32_t max_total = cfg->max_connections;
    if (max_total || cfg->max_connections_per_ip || w->dp->limits.fd_cap) {
        static const struct sockaddr_in any = {.sin_family = AF_INET};
        const struct sockaddr *who = t->have_peer ? (const struct sockaddr *)&t->peer : (const struct sockaddr *)&any;
        enum voro_admit_result ar = voro_conn_limits_admit(&w->dp->limits, who, max_total, cfg->max_connections_per_ip,
                                                           fds, &t->adm);
        if (ar != VORO_ADMIT_OK) {
            voro_counter_add(ar == VORO_ADMIT_MAX_PER_IP ? &w->stats.rejected_per_ip
                             : ar == VORO_ADMIT_MAX_FDS  ? &w->stats.rejected_fds
                                                         : &w->stats.rejected_max_connections,
                             1);
            goto refuse;
        }
        t->admitted = true;
    }
    return true;
refuse:
    voro_counter_add(&lcount->rejected, 1);
    voro_loop_close(w->loop, fd);
    return false;
}

static void accept_arm(struct voro_accept_slot *a)
{
    int rc = voro_loop_accept(a->worker->loop, &a->op, a->fd);
    if (rc == 0) {
        a->armed = true;
        return;
    }
    VORO_ERROR("worker", "worker %u: cannot accept on fd %d: %s", a->worker->slot, a->fd, strerror(-rc));
}

static void on_accept(struct voro_op *op, int res)
{
    struct voro_accept_slot *a = op->data;
    struct voro_worker *w = a->worker;
    if (!op->more)
        a->armed = false;
    if (res >= 0) {
        if (a->cancelling || w->draining || !w->view)
            voro_loop_close(w->loop, res);
        else if (w->view->snap->cfg->listeners[a->listener].mode == VORO_MODE_HTTP)
            voro_http_proxy_accepted(w, a->listener, res);
        else
            voro_tcp_proxy_accepted(w, a->listener, res);
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
        voro_counter_add(&w->stats.accept_errors, 1);
        if (!a->armed && !a->cancelling && (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)) {
            /* Out of descriptors: back off rather than spin on a listener we cannot drain. */
            VORO_WARN("worker", "worker %u: accept failed: %s; pausing accepts for %d ms", w->slot, strerror(-res),
                      ACCEPT_BACKOFF_MS);
            a->backing_off = true;
            voro_timer_add(&w->wheel, &a->backoff, ACCEPT_BACKOFF_MS);
            return;
        }
    }
    if (!a->armed && !a->cancelling && !a->backing_off && !w->draining)
        accept_arm(a);
}

static void on_accept_backoff(struct voro_timer *t)
{
    struct voro_accept_slot *a = t->data;
    a->backing_off = false;
    if (!a->armed && !a->cancelling && !a->worker->draining)
        accept_arm(a);
}

void voro_worker_pause_accepts(struct voro_worker *w)
{
    for (struct voro_accept_slot *a = w->accepts; a; a = a->next) {
        if (a->cancelling || a->backing_off)
            continue;
        a->backing_off = true;
        voro_timer_add(&w->wheel, &a->backoff, ACCEPT_BACKOFF_MS);
        if (a->armed)
            voro_loop_cancel(w->loop, &a->op);
    }
}

static void accept_cancel(struct voro_worker *w, struct voro_accept_slot *a)
{
    a->cancelling = true;
    if (a->backing_off) {
        voro_timer_del(&w->wheel, &a->backoff);
        a->backing_off = false;
    }
    if (a->armed)
        voro_loop_cancel(w->loop, &a->op);
}

/* Frees accept slots whose cancellation completed, forgetting their fds in the backend (the
 * node closes the sockets later). Once nothing of an older snapshot's sockets is left, it
 * publishes the generation it runs, which tells the node those sockets may be closed. */
static void accepts_reap(struct voro_worker *w)
{
    bool clean = true;
    struct voro_accept_slot **pp = &w->accepts;
    while (*pp) {
        struct voro_accept_slot *a = *pp;
        if (a->cancelling && !a->armed) {
            *pp = a->next;
            voro_loop_forget(w->loop, a->fd);
            free(a);
        } else {
            clean = clean && !a->cancelling;
            pp = &a->next;
        }
    }
    if (clean && w->view && voro_udp_proxy_settled(w))
        atomic_store_explicit(&w->adopted_generation, w->view->snap->generation, memory_order_release);
}

bool voro_worker_serves_fd(const struct voro_worker *w, const struct voro_snapshot *snap, const struct voro_listen_set *ls,
                           int fd)
{
    unsigned threads = snap->cfg->threads ? snap->cfg->threads : 1;
    for (unsigned j = 0; j < ls->n_fds; j++) {
        if (ls->fds[j] != fd)
            continue;
        /* A worker of an older cohort (about to be replaced) keeps what it has until it is
         * told to drain; the slot mapping is the new cohort's business. */
        return w->cohort != snap->cohort || j % threads == w->slot % threads;
    }
    return false;
}

/* Makes the accept ops (TCP) and UDP readers match the sockets the snapshot gives this slot. */
static void sync_listeners(struct voro_worker *w)
{
    struct voro_snapshot *snap = w->view->snap;
    const struct voro_config *cfg = snap->cfg;
    for (struct voro_accept_slot *a = w->accepts; a; a = a->next) {
        if (a->cancelling)
            continue;
        bool keep = false;
        for (size_t l = 0; l < cfg->n_listeners && !keep; l++) {
            if (cfg->listeners[l].mode != VORO_MODE_UDP && voro_worker_serves_fd(w, snap, &snap->listen[l], a->fd)) {
                keep = true;
                a->listener = (int)l;
            }
        }
        if (!keep)
            accept_cancel(w, a);
    }
    voro_udp_proxy_detach_missing(w);
    if (w->draining || w->cohort != snap->cohort)
        return; /* only the current cohort takes on sockets */
    unsigned threads = cfg->threads ? cfg->threads : 1;
    for (size_t l = 0; l < cfg->n_listeners; l++) {
        const struct voro_listen_set *ls = &snap->listen[l];
        for (unsigned j = 0; j < ls->n_fds; j++) {
            if (j % threads != w->slot % threads)
                continue;
            int fd = ls->fds[j];
            if (cfg->listeners[l].mode == VORO_MODE_UDP) {
                voro_udp_proxy_attach(w, (int)l, fd);
                continue;
            }
            bool have = false;
            for (struct voro_accept_slot *a = w->accepts; a && !have; a = a->next)
                have = !a->cancelling && a->fd == fd;
            if (have)
                continue;
            struct voro_accept_slot *a = calloc(1, sizeof(*a));
            if (!a) {
                VORO_ERROR("worker", "worker %u: out of memory adding a listener", w->slot);
                continue;
            }
            a->fd = fd;
            a->listener = (int)l;
            a->worker = w;
            a->op = (struct voro_op){.cb = on_accept, .data = a};
            voro_timer_init(&a->backoff, on_accept_backoff, a);
            a->next = w->accepts;
            w->accepts = a;
            accept_arm(a);
        }
    }
}

/* ---- snapshots ------------------------------------------------------------------------ */

static int adopt_snapshot(struct voro_worker *w)
{
    struct voro_snapshot *snap = atomic_load_explicit(&w->dp->current, memory_order_acquire);
    if (!snap || (w->view && w->view->snap == snap))
        return 0;
    struct voro_worker_view *v = view_create(w, snap);
    if (!v) {
        VORO_ERROR("worker", "worker %u: cannot build view of config generation %llu (out of memory); keeping the old one",
                   w->slot, (unsigned long long)snap->generation);
        return -ENOMEM;
    }
    struct voro_worker_view *old = w->view;
    w->view = v;
    if (old)
        voro_worker_view_release(w, old);
    const struct voro_config *cfg = snap->cfg;
    unsigned threads = cfg->threads ? cfg->threads : 1;
    double share = cfg->global_qps ? (double)cfg->global_qps / threads : 0;
    voro_token_bucket_set_rate(&w->rate, share);
    sync_listeners(w);
    return 0;
}

/* ---- the thread ------------------------------------------------------------------------ */

static bool worker_idle(const struct voro_worker *w)
{
    for (const struct voro_accept_slot *a = w->accepts; a; a = a->next)
        if (a->armed)
            return false;
    return w->conns == NULL && w->http_conns == NULL && voro_udp_proxy_idle(w);
}

static void begin_drain(struct voro_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    uint32_t grace = w->view ? w->view->snap->cfg->drain_timeout_ms : 0;
    w->drain_deadline_ms = w->now_ms + grace;
    for (struct voro_accept_slot *a = w->accepts; a; a = a->next)
        accept_cancel(w, a);
    voro_udp_proxy_close_all(w);
    voro_http_proxy_drain(w);
}

static void *worker_main(void *arg)
{
    struct voro_worker *w = arg;
    w->now_ms = voro_now_ms();
    voro_timer_wheel_init(&w->wheel, WORKER_TICK_MS, w->now_ms);
    voro_token_bucket_init(&w->rate, 0, w->now_ms);
    adopt_snapshot(w);
    atomic_store(&w->running, true);

    bool stopping = false;
    uint64_t last_second = w->now_ms;
    for (;;) {
        int64_t next = voro_timer_wheel_next_ms(&w->wheel, w->now_ms);
        int timeout = (next < 0 || next > MAX_LOOP_WAIT_MS) ? MAX_LOOP_WAIT_MS : (int)next;
        if (timeout > 10 && atomic_load_explicit(&w->dp->udp_handovers.pending, memory_order_relaxed))
            timeout = 10; /* a predecessor may publish UDP sessions at any moment */
        int rc = voro_loop_run(w->loop, timeout);
        if (rc < 0 && rc != -EINTR) {
            VORO_ERROR("worker", "worker %u: event loop failed: %s", w->slot, strerror(-rc));
            break;
        }
        w->now_ms = voro_now_ms();
        voro_timer_wheel_advance(&w->wheel, w->now_ms);
        accepts_reap(w);
        if (w->now_ms - last_second >= 1000) {
            last_second = w->now_ms;
            voro_http_proxy_on_tick(w);
        }
        if (atomic_load_explicit(&w->dp->udp_handovers.pending, memory_order_relaxed))
            voro_udp_proxy_poll_handovers(w);

        uint32_t cmd = atomic_exchange(&w->commands, 0);
        if (!w->draining && !stopping)
            adopt_snapshot(w);
        if (cmd & VORO_WORKER_CMD_DRAIN)
            begin_drain(w);
        if ((cmd & VORO_WORKER_CMD_STOP) && !stopping) {
            stopping = true;
            begin_drain(w);
            voro_tcp_proxy_abort_all(w);
            voro_http_proxy_abort_all(w);
        }
        if (w->draining && !stopping && w->now_ms >= w->drain_deadline_ms) {
            VORO_INFO("worker", "worker %u: drain grace period over; closing the remaining connections", w->slot);
            stopping = true;
            voro_tcp_proxy_abort_all(w);
            voro_http_proxy_abort_all(w);
        }
        if (w->draining && !w->accepts && voro_udp_proxy_idle(w))
            atomic_store(&w->listeners_released, true);
        if (w->draining && worker_idle(w))
            break;
    }
    if (w->view) {
        struct voro_worker_view *v = w->view;
        w->view = NULL;
        view_destroy(w, v); /* every connection is gone: nobody else uses it */
    }
    atomic_store(&w->listeners_released, true);
    atomic_store(&w->exited, true);
    return NULL;
}

/* With HTTP listeners, a quarter of the receive buffers carry what clients send (heads, bodies,
 * pipelined requests) and the rest responses and L4 traffic: clients holding request buffers
 * (slow bodies, pipelining) can never take the buffers responses need, and the quarter is the
 * per-worker cap on request input held at once. A node without HTTP listeners keeps one pool
 * (workers are created with the config in force; a reload that adds the first HTTP listener
 * keeps the pool undivided until threads or io_model change). */
static unsigned request_buffers(const struct voro_config *cfg)
{
    unsigned count = cfg->buf_count ? cfg->buf_count : 1024;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].mode == VORO_MODE_HTTP && count >= 16)
            return count / 4;
    return 0;
}

int voro_worker_create(struct voro_worker **out, struct voro_dataplane *dp, unsigned slot, unsigned id,
                       uint64_t cohort, enum voro_io_model model, const struct voro_config *cfg)
{
    int rc = -ENOMEM;
    struct voro_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->slot = slot;
    w->id = id;
    w->cohort = cohort;
    w->dp = dp;
    w->requested_model = model;
    struct voro_loop_opts lo = {
        .model = model,
        .buf_count = cfg->buf_count,
        .request_buf_count = request_buffers(cfg),
        .buf_size = cfg->buf_size,
        .queue_depth = 1024,
        /* 0: RLIMIT_NOFILE (raised to the hard limit by the fd budget before workers start).
         * It sizes the fd tables and io_uring's completion queue: one worker may hold every
         * connection, each fd with a read-side and a write-side op pending. */
        .max_fds = 0,
        .hugepages = cfg->hugepages,
    };
    rc = voro_loop_create(&w->loop, &lo);
    if (rc)
        goto fail_w;
    size_t max_conns = cfg->max_connections ? cfg->max_connections : 0;
    rc = voro_slab_init(&w->conn_slab, voro_tcp_conn_size(), 256, max_conns, cfg->hugepages);
    if (rc)
        goto fail_loop;
    uint32_t pipes = cfg->splice ? cfg->pipes : 0;
    if (pipes > dp->pipes_per_worker)
        pipes = dp->pipes_per_worker;
    rc = voro_pipe_pool_init(&w->pipes, pipes);
    if (rc)
        goto fail_slab;
    if ((rc = voro_slab_init(&w->http_slab, voro_http_conn_size(), 64, max_conns, cfg->hugepages)) ||
        (rc = voro_slab_init(&w->http_req_slab, voro_http_req_size(), 64, 0, cfg->hugepages)) ||
        (rc = voro_slab_init(&w->http_small_slab, voro_http_small_head_size(), 64, 0, false)) ||
        (rc = voro_slab_init(&w->out_slab, voro_http_out_size(cfg), 16, 0, false)) ||
        (rc = voro_slab_init(&w->idle_slab, sizeof(struct voro_http_idle_conn), 256, 0, false)))
        goto fail_pipes;
    *out = w;
    return 0;
fail_pipes:
    voro_slab_destroy(&w->http_slab);
    voro_slab_destroy(&w->http_req_slab);
    voro_slab_destroy(&w->http_small_slab);
    voro_slab_destroy(&w->out_slab);
    voro_pipe_pool_destroy(&w->pipes);
fail_slab:
    voro_slab_destroy(&w->conn_slab);
fail_loop:
    voro_loop_destroy(w->loop);
fail_w:
    free(w);
    return rc;
}

int voro_worker_start(struct voro_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc)
        return -rc;
    w->thread_started = true;
    /* Wait (bounded) for the loop to run so the caller knows it started. */
    for (int i = 0; i < 5000 && !atomic_load(&w->running) && !atomic_load(&w->exited); i++)
        usleep(1000);
    return atomic_load(&w->running) ? 0 : -EIO;
}

void voro_worker_post(struct voro_worker *w, uint32_t cmd)
{
    atomic_fetch_or(&w->commands, cmd);
    voro_loop_wakeup(w->loop);
}

void voro_worker_notify(struct voro_worker *w) { voro_loop_wakeup(w->loop); }

void voro_worker_destroy(struct voro_worker *w)
{
    if (!w)
        return;
    if (w->thread_started) {
        voro_worker_post(w, VORO_WORKER_CMD_STOP);
        pthread_join(w->thread, NULL);
    }
    accepts_reap(w);
    voro_http_proxy_free_buffers(w);
    voro_pipe_pool_destroy(&w->pipes);
    voro_slab_destroy(&w->idle_slab);
    voro_slab_destroy(&w->out_slab);
    voro_slab_destroy(&w->http_slab);
    voro_slab_destroy(&w->http_req_slab);
    voro_slab_destroy(&w->http_small_slab);
    voro_slab_destroy(&w->conn_slab);
    voro_loop_destroy(w->loop);
    free(w);
}
