/* The UDP proxy: a session per client address with its own connected upstream socket (so
 * replies map back without a lookup), balanced per session, replies sent from the address
 * the client wrote to (IP_PKTINFO / IPV6_PKTINFO), lazy idle expiry on the timer wheel, and
 * a bounded session table. Datagram sends are direct non-blocking sendmsg calls: a UDP send
 * never waits, and queueing it as an op would cost a copy per datagram. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/udp_handover.h"
#include "node/worker.h"

#define UDP_MAX_DATAGRAM 65536
#define UDP_DEFAULT_MAX_SESSIONS 16384
#define UDP_BUCKETS 4096 /* power of two */

struct udp_session {
    struct udp_session *hnext;
    struct voro_udp_listener *ul;
    struct voro_worker_view *view;
    int fd;
    int pool, server;
    bool recv_armed, closing, has_local;
    struct sockaddr_storage client;
    socklen_t client_len;
    union {
        struct in_pktinfo v4;
        struct in6_pktinfo v6;
    } local;
    struct voro_op recv_op;
    struct voro_timer timer;
    uint64_t last_active_ms;
    uint32_t idle_ms;
    uint64_t key;
    struct voro_server_counters *sc;
};

struct voro_udp_listener {
    struct voro_udp_listener *next;
    struct voro_worker *w;
    int fd;
    int listener;
    bool armed, closing;
    bool waiting_handover;              /* not reading until the previous owner's sessions arrive */
    struct voro_udp_handover *exporting; /* sessions collected for a successor, owned */
    struct voro_op op;
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage peer;
    uint8_t control[256];
    struct voro_slab sessions_slab;
    size_t n_sessions, max_sessions;
    struct udp_session *buckets[UDP_BUCKETS];
    uint8_t data[UDP_MAX_DATAGRAM];
};

static void listener_arm(struct voro_udp_listener *ul);

static uint64_t client_key(const struct sockaddr_storage *ss, socklen_t len)
{
    return voro_hash64(ss, len, 0x7564707365737331ull);
}

static void session_unlink(struct udp_session *s)
{
    struct voro_udp_listener *ul = s->ul;
    struct udp_session **pp = &ul->buckets[s->key & (UDP_BUCKETS - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
}

static void listener_maybe_free(struct voro_udp_listener *ul);

static int export_session(struct voro_udp_listener *ul, const struct udp_session *s)
{
    struct voro_udp_session_record rec = {
        .client = s->client,
        .client_len = s->client_len,
        .has_local = s->has_local,
        .upstream_fd = s->fd,
        .key = s->key,
    };
    memcpy(&rec.local, &s->local, sizeof(rec.local));
    const struct voro_pool_config *pc = &s->view->snap->cfg->pools[s->pool];
    snprintf(rec.server_addr, sizeof(rec.server_addr), "%s", pc->servers[s->server].addr.text);
    return voro_udp_handover_add(ul->exporting, &rec);
}

static void session_maybe_free(struct udp_session *s)
{
    if (!s->closing || s->recv_armed)
        return;
    struct voro_udp_listener *ul = s->ul;
    struct voro_worker *w = ul->w;
    voro_timer_del(&w->wheel, &s->timer);
    if (ul->exporting && export_session(ul, s) == 0)
        voro_loop_forget(w->loop, s->fd); /* the successor owns the socket now */
    else
        voro_loop_close(w->loop, s->fd);
    voro_lb_conn_end(&s->view->lbs[s->pool], s->server);
    voro_counter_sub(&s->sc->active, 1);
    voro_worker_view_release(w, s->view);
    voro_counter_sub(&w->stats.udp_sessions, 1);
    ul->n_sessions--;
    voro_slab_free(&ul->sessions_slab, s);
    listener_maybe_free(ul);
}

static void session_close(struct udp_session *s)
{
    if (s->closing)
        return;
    s->closing = true;
    session_unlink(s);
    if (s->recv_armed)
        voro_loop_cancel(s->ul->w->loop, &s->recv_op);
    session_maybe_free(s);
}

static void session_send_to_client(struct udp_session *s, const void *data, size_t len)
{
    struct voro_udp_listener *ul = s->ul;
    struct voro_worker *w = ul->w;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_name = &s->client, .msg_namelen = s->client_len, .msg_iov = &iov, .msg_iovlen = 1};
    if (s->has_local) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        struct cmsghdr *cm = (struct cmsghdr *)control.buf;
        if (s->client.ss_family == AF_INET6) {
            msg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
            cm->cmsg_level = IPPROTO_IPV6;
            cm->cmsg_type = IPV6_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
            struct in6_pktinfo pi = {.ipi6_addr = s->local.v6.ipi6_addr};
            memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        } else {
            msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            struct in_pktinfo pi = {.ipi_spec_dst = s->local.v4.ipi_addr};
            memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        }
    }
    if (sendmsg(ul->fd, &msg, MSG_DONTWAIT) < 0) {
        voro_counter_add(&w->stats.udp_drops, 1);
        return;
    }
    voro_counter_add(&w->stats.udp_datagrams_out, 1);
    voro_counter_add(&w->stats.bytes_to_clients, len);
    voro_counter_add(&voro_snapshot_listener_counters(s->view->snap, w->slot, (size_t)ul->listener)->bytes_out, len);
}

static void on_session_recv(struct voro_op *op, int res)
{
    struct udp_session *s = op->data;
    struct voro_worker *w = s->ul->w;
    s->recv_armed = false;
    if (s->closing) {
        if (op->buf) {
            if (res > 0) /* a reply that raced the close still reaches its client */
                session_send_to_client(s, op->buf->data, (size_t)res);
            voro_loop_buf_release(w->loop, op->buf);
        }
        session_maybe_free(s);
        return;
    }
    if (res >= 0 && op->buf) {
        s->last_active_ms = w->now_ms;
        voro_counter_add(&s->sc->bytes_in, (uint64_t)res);
        session_send_to_client(s, op->buf->data, (size_t)res);
        voro_loop_buf_release(w->loop, op->buf);
    } else if (res < 0) {
        /* ICMP port unreachable and friends: count, keep the session (the server may come back). */
        voro_counter_add(&s->sc->connect_failures, 1);
        voro_counter_add(&w->stats.errors, 1);
    }
    if (voro_loop_recv(w->loop, &s->recv_op, s->fd) == 0)
        s->recv_armed = true;
    else
        session_close(s);
}

static void on_session_timer(struct voro_timer *t)
{
    struct udp_session *s = t->data;
    struct voro_worker *w = s->ul->w;
    uint64_t idle_for = w->now_ms - s->last_active_ms;
    if (idle_for >= s->idle_ms) {
        session_close(s);
        return;
    }
    voro_timer_add(&w->wheel, t, s->idle_ms - idle_for);
}

static void read_local_address(struct voro_udp_listener *ul, struct udp_session *s)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&ul->msg); cm; cm = CMSG_NXTHDR(&ul->msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            memcpy(&s->local.v4, CMSG_DATA(cm), sizeof(s->local.v4));
            s->has_local = true;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            memcpy(&s->local.v6, CMSG_DATA(cm), sizeof(s->local.v6));
            s->has_local = true;
        }
    }
}

/* Registers a session on upstream socket `fd` (owned from here on) to pools[pool].servers[idx]. */
static struct udp_session *session_start(struct voro_udp_listener *ul, int fd, size_t pool, int idx, uint64_t key,
                                         const struct sockaddr_storage *client, socklen_t client_len)
{
    struct voro_worker *w = ul->w;
    struct voro_worker_view *view = w->view;
    const struct voro_listener_config *lc = &view->snap->cfg->listeners[ul->listener];
    struct udp_session *s = voro_slab_alloc(&ul->sessions_slab);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->ul = ul;
    s->view = voro_worker_view_acquire(w);
    s->fd = fd;
    s->pool = (int)pool;
    s->server = idx;
    s->key = key;
    memcpy(&s->client, client, client_len);
    s->client_len = client_len;
    s->idle_ms = lc->idle_timeout_ms ? lc->idle_timeout_ms : 30000;
    s->last_active_ms = w->now_ms;
    s->sc = voro_worker_server_counters(w, view, pool, (size_t)idx);
    voro_lb_conn_begin(&view->lbs[pool], idx);
    voro_counter_add(&s->sc->connections, 1);
    voro_counter_add(&s->sc->active, 1);
    s->recv_op = (struct voro_op){.cb = on_session_recv, .data = s, .dgram = true};
    voro_timer_init(&s->timer, on_session_timer, s);
    voro_timer_add(&w->wheel, &s->timer, s->idle_ms);
    s->hnext = ul->buckets[key & (UDP_BUCKETS - 1)];
    ul->buckets[key & (UDP_BUCKETS - 1)] = s;
    ul->n_sessions++;
    voro_counter_add(&w->stats.udp_sessions, 1);
    voro_counter_add(&w->stats.udp_sessions_total, 1);
    if (voro_loop_recv(w->loop, &s->recv_op, fd) == 0) {
        s->recv_armed = true;
        return s;
    }
    session_close(s);
    return NULL;
}

static struct udp_session *session_open(struct voro_udp_listener *ul, uint64_t key)
{
    struct voro_worker *w = ul->w;
    struct voro_worker_view *view = w->view;
    const struct voro_config *cfg = view->snap->cfg;
    size_t pool = cfg->listeners[ul->listener].pool_index;
    if (ul->n_sessions >= ul->max_sessions)
        return NULL;
    int idx = voro_lb_pick(&view->lbs[pool], key, NULL);
    if (idx < 0) {
        voro_counter_add(&w->stats.no_server, 1);
        return NULL;
    }
    const struct voro_sockaddr *addr = &cfg->pools[pool].servers[idx].addr;
    int fd = socket(addr->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        close(fd);
        return NULL;
    }
    struct udp_session *s = session_start(ul, fd, pool, idx, key, &ul->peer, ul->msg.msg_namelen);
    if (s)
        read_local_address(ul, s);
    return s;
}

/* Adopts the sessions a replaced worker handed over for this socket. */
static void import_sessions(struct voro_udp_listener *ul, struct voro_udp_handover *e)
{
    struct voro_worker *w = ul->w;
    const struct voro_config *cfg = w->view->snap->cfg;
    size_t pool = cfg->listeners[ul->listener].pool_index;
    const struct voro_pool_config *pc = &cfg->pools[pool];
    size_t adopted = 0;
    for (size_t i = 0; i < e->n_records; i++) {
        struct voro_udp_session_record *rec = &e->records[i];
        int idx = -1;
        for (size_t sidx = 0; sidx < pc->n_servers && idx < 0; sidx++)
            if (strcmp(pc->servers[sidx].addr.text, rec->server_addr) == 0)
                idx = (int)sidx;
        if (idx < 0 || ul->n_sessions >= ul->max_sessions)
            continue; /* its server left the pool: voro_udp_handover_free closes the socket */
        int fd = rec->upstream_fd;
        rec->upstream_fd = -1;
        struct udp_session *s = session_start(ul, fd, pool, idx, rec->key, &rec->client, rec->client_len);
        if (!s)
            continue;
        s->has_local = rec->has_local;
        memcpy(&s->local, &rec->local, sizeof(s->local));
        adopted++;
    }
    if (e->n_records)
        VORO_INFO("udp", "worker %u: adopted %zu of %zu UDP sessions on fd %d", w->slot, adopted, e->n_records, ul->fd);
    voro_udp_handover_free(e);
}

static struct udp_session *session_find(struct voro_udp_listener *ul, uint64_t key)
{
    for (struct udp_session *s = ul->buckets[key & (UDP_BUCKETS - 1)]; s; s = s->hnext)
        if (s->key == key && s->client_len == ul->msg.msg_namelen && memcmp(&s->client, &ul->peer, s->client_len) == 0)
            return s;
    return NULL;
}

static void on_listener_recv(struct voro_op *op, int res)
{
    struct voro_udp_listener *ul = op->data;
    struct voro_worker *w = ul->w;
    ul->armed = false;
    if (ul->closing) {
        listener_maybe_free(ul);
        return;
    }
    if (res >= 0 && w->view) {
        voro_counter_add(&w->stats.udp_datagrams_in, 1);
        voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
        struct voro_listener_counters *lcount = voro_snapshot_listener_counters(w->view->snap, w->slot, (size_t)ul->listener);
        voro_counter_add(&lcount->bytes_in, (uint64_t)res);
        uint64_t key = client_key(&ul->peer, ul->msg.msg_namelen);
        struct udp_session *s = session_find(ul, key);
        if (!s && (s = session_open(ul, key)) != NULL)
            voro_counter_add(&lcount->accepted, 1);
        if (s) {
            s->last_active_ms = w->now_ms;
            if (send(s->fd, ul->data, (size_t)res, MSG_DONTWAIT) < 0)
                voro_counter_add(&w->stats.udp_drops, 1);
            else
                voro_counter_add(&s->sc->bytes_out, (uint64_t)res);
        } else {
            voro_counter_add(&w->stats.udp_drops, 1);
        }
    } else if (res < 0 && res != -EAGAIN && res != -EINTR) {
        voro_counter_add(&w->stats.errors, 1);
    }
    listener_arm(ul);
}

static void listener_arm(struct voro_udp_listener *ul)
{
    ul->iov.iov_base = ul->data;
    ul->iov.iov_len = sizeof(ul->data);
    ul->msg = (struct msghdr){
        .msg_name = &ul->peer,
        .msg_namelen = sizeof(ul->peer),
        .msg_iov = &ul->iov,
        .msg_iovlen = 1,
        .msg_control = ul->control,
        .msg_controllen = sizeof(ul->control),
    };
    int rc = voro_loop_recvmsg(ul->w->loop, &ul->op, ul->fd, &ul->msg);
    if (rc == 0)
        ul->armed = true;
    else
        VORO_ERROR("udp", "worker %u: cannot read UDP listener fd %d: %s", ul->w->slot, ul->fd, strerror(-rc));
}

static void listener_maybe_free(struct voro_udp_listener *ul)
{
    if (!ul->closing || ul->armed || ul->n_sessions)
        return;
    struct voro_worker *w = ul->w;
    struct voro_udp_listener **pp = &w->udp;
    while (*pp && *pp != ul)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ul->next;
    voro_loop_forget(w->loop, ul->fd);
    if (ul->exporting) {
        size_t n = ul->exporting->n_records;
        if (voro_udp_handover_publish(&w->dp->udp_handovers, ul->exporting) == 0)
            VORO_INFO("udp", "worker %u: handed %zu UDP session%s on fd %d to its successor", w->slot, n,
                      n == 1 ? "" : "s", ul->fd);
        voro_udp_handover_free(ul->exporting); /* closes the sockets if nobody took them */
    }
    voro_slab_destroy(&ul->sessions_slab);
    free(ul);
}

static void listener_close(struct voro_udp_listener *ul, bool hand_over)
{
    if (ul->closing)
        return;
    /* A listener still waiting for its predecessor never read the socket: nothing to hand on. */
    if (hand_over && !ul->waiting_handover && voro_udp_handover_expected(&ul->w->dp->udp_handovers, ul->fd))
        ul->exporting = voro_udp_handover_new(ul->fd);
    /* Close the sessions first: with `closing` still false none of them can free `ul`. */
    for (size_t b = 0; b < UDP_BUCKETS; b++) {
        while (ul->buckets[b])
            session_close(ul->buckets[b]); /* unlinks itself */
    }
    ul->closing = true;
    if (ul->armed)
        voro_loop_cancel(ul->w->loop, &ul->op);
    listener_maybe_free(ul);
}

/* Starts reading the socket unless a previous owner is still handing its sessions over. */
static void listener_claim(struct voro_udp_listener *ul)
{
    struct voro_udp_handover *e = NULL;
    switch (voro_udp_handover_claim(&ul->w->dp->udp_handovers, ul->fd, ul->w->now_ms, &e)) {
    case VORO_UDP_CLAIM_WAIT:
        ul->waiting_handover = true;
        return;
    case VORO_UDP_CLAIM_READY:
        import_sessions(ul, e);
        break;
    case VORO_UDP_CLAIM_NONE:
        break;
    }
    ul->waiting_handover = false;
    listener_arm(ul);
}

int voro_udp_proxy_attach(struct voro_worker *w, int listener, int fd)
{
    for (struct voro_udp_listener *ul = w->udp; ul; ul = ul->next) {
        if (ul->fd == fd && !ul->closing) {
            ul->listener = listener;
            return 0;
        }
    }
    struct voro_udp_listener *ul = calloc(1, sizeof(*ul));
    if (!ul)
        return -ENOMEM;
    const struct voro_config *cfg = w->view->snap->cfg;
    ul->w = w;
    ul->fd = fd;
    ul->listener = listener;
    ul->max_sessions = cfg->max_connections ? cfg->max_connections : UDP_DEFAULT_MAX_SESSIONS;
    int rc = voro_slab_init(&ul->sessions_slab, sizeof(struct udp_session), 256, ul->max_sessions, false);
    if (rc) {
        free(ul);
        return rc;
    }
    ul->op = (struct voro_op){.cb = on_listener_recv, .data = ul};
    ul->next = w->udp;
    w->udp = ul;
    listener_claim(ul);
    return 0;
}

void voro_udp_proxy_poll_handovers(struct voro_worker *w)
{
    for (struct voro_udp_listener *ul = w->udp; ul; ul = ul->next)
        if (ul->waiting_handover && !ul->closing)
            listener_claim(ul);
}

void voro_udp_proxy_detach_missing(struct voro_worker *w)
{
    struct voro_snapshot *snap = w->view->snap;
    const struct voro_config *cfg = snap->cfg;
    struct voro_udp_listener *ul = w->udp;
    while (ul) {
        struct voro_udp_listener *next = ul->next;
        bool keep = false;
        for (size_t l = 0; l < cfg->n_listeners && !keep; l++)
            keep = cfg->listeners[l].mode == VORO_MODE_UDP && voro_worker_serves_fd(w, snap, &snap->listen[l], ul->fd);
        if (!keep)
            listener_close(ul, true); /* hands its sessions over if the node expects it */
        ul = next;
    }
}

void voro_udp_proxy_close_all(struct voro_worker *w)
{
    struct voro_udp_listener *ul = w->udp;
    while (ul) {
        struct voro_udp_listener *next = ul->next;
        listener_close(ul, true);
        ul = next;
    }
}

bool voro_udp_proxy_idle(const struct voro_worker *w) { return w->udp == NULL; }

bool voro_udp_proxy_settled(const struct voro_worker *w)
{
    for (const struct voro_udp_listener *ul = w->udp; ul; ul = ul->next)
        if (ul->closing)
            return false;
    return true;
}
