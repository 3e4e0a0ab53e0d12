/* The HTTP/1.1 reverse proxy of `mode = http` listeners. One client connection carries one
 * request at a time (pipelined requests wait in the socket and in the head buffer and are
 * answered in order); each request is parsed with proto/http1, routed, balanced, sent to a
 * pooled or new server connection with a rewritten head, and its body and the response's
 * are streamed chunk by chunk as they arrive (no buffering beyond one loop buffer per
 * direction, so server-sent events reach the client at once). Errors Voro detects itself are
 * answered with a JSON reason (400/404/408/413/414/431/501/502/503/504/505). A failed
 * connect, or an idempotent request that got no response byte, is retried once on another
 * server; a request whose body already went out is never replayed. After a 101 the connection
 * becomes a two-way tunnel handled by the L4 proxy (WebSocket). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/conn_limit.h"
#include "node/http/http_body.h"
#include "node/http/http_error.h"
#include "node/http/http_rewrite.h"
#include "node/http/http_filter.h"
#include "proto/json_scan.h"
#include "node/http/http_upstream.h"
#include "node/worker.h"

#define HTTP_OUT_EXTRA 4096 /* room for the headers Voro adds to a head */
#define DRAIN_IDLE_MS 1000  /* a draining worker's grace for idle keep-alive connections */

enum http_state {
    HS_READ_HEAD = 0, /* waiting for (the rest of) a request head */
    HS_READ_BODY,     /* buffering a body to find its model before routing */
    HS_CONNECTING,    /* request parsed, connecting to a server */
    HS_EXCHANGE,      /* request head sent or being sent; body and response streaming */
    HS_ERROR_REPLY,   /* sending Voro's own response, then close or next request */
    HS_CLOSING,
};

/* Ops of a connection (bits of `pending`). */
enum {
    P_CLIENT_RECV = 1u << 0,
    P_CLIENT_SEND = 1u << 1,
    P_SERVER_RECV = 1u << 2,
    P_SERVER_SEND = 1u << 3,
    P_CONNECT = 1u << 4,
};

/* What one request needs while it is in progress (from its first byte to its last response
 * byte): taken from a per-worker slab when a request starts and given back when the
 * connection goes idle, so an idle keep-alive connection holds only `struct voro_http_conn`. */
struct voro_http_req {
    uint8_t attempts;
    bool lb_counted, server_reused, connect_timed_out;
    struct voro_server_counters *sc;

    /* The request in flight. */
    bool req_head, req_http10, req_keep_alive, req_idempotent, req_upgrade;
    bool req_body_sent_any, req_done;
    bool body_deadline_set;  /* the body's deadline is running (set once per body) */
    bool body_rate_deadline; /* ... and grows with body_min_rate (a streamed body) */
    uint64_t body_streamed;  /* body bytes of a streamed body received so far */
    struct voro_http_body req_body;
    int pool, server;
    struct voro_lb_exclude tried;   /* the filters' exclusions plus the servers already tried */
    uint64_t attempt_start_us; /* when the current server attempt began (latency feedback) */
    int resp_status;
    char *out;           /* rewritten request head (kept for a retry until a response byte) */
    uint32_t out_len;
    char *rout;          /* rewritten response head, or Voro's own response */
    uint32_t body_pre;   /* request body bytes already in `in` after the head, at in_off */
    /* A body buffered to find its model (model routes only). */
    struct voro_http_bodybuf *body;
    uint32_t body_len, body_limit;
    uint32_t body_send_off;
    uint32_t pipelined_after_body; /* bytes of the next request at the end of `in` */
    uint32_t next_off;   /* where the next request starts in `in` once this one was read whole */
    struct voro_http1_chunked body_dec;

    /* The response. */
    struct voro_buf *resp;  /* server bytes being parsed as a head, or the buffer being forwarded */
    uint32_t resp_len;
    bool resp_head_done, resp_any, resp_done, resp_keep_alive, resp_sending_head, interim_sent;
    uint8_t interim_count; /* 1xx heads in this attempt's response (bounded: MAX_INTERIM) */
    bool fresh_retry;      /* the next connect_next re-tries the same server on a new connection */
    bool stale_retried;    /* a pooled connection already turned out dead for this request */
    struct voro_http_body resp_body;
    struct voro_buf *fwd;   /* a server buffer in flight to the client */
    uint32_t fwd_off;

    /* Not zeroed when a request starts: initialised where they are first used. */
    struct voro_http_exchange x;    /* the request as the filters see it (set up per request head) */
    struct voro_http1_parser parser; /* the request head, then the response head */
    struct voro_op s_recv, s_send, connect_op;
};

/* One client connection. Kept small: this is all an idle keep-alive connection costs. */
struct voro_http_conn {
    struct voro_worker *w;
    struct voro_worker_view *view;
    struct voro_http_conn *next, *prev;
    struct voro_http_req *rq; /* the request in progress, or NULL while idle (owned) */
    int cfd, sfd;
    int listener;
    uint8_t state;
    uint8_t pending;
    bool admitted, keep_client;
    bool server_abandoned; /* server ops are being cancelled; the socket closes when they are back */
    bool server_fd_counted; /* sfd holds a slot of the node's descriptor budget */
    struct voro_conn_admission adm;
    struct voro_listener_counters *lc;
    char client_ip[INET6_ADDRSTRLEN];

    /* Client input: the head buffer holds the request head being parsed and any bytes after it
     * (body start, pipelined requests) in [in_off, in_len). Held only while it has bytes not yet
     * forwarded. */
    struct voro_buf *in;
    uint32_t in_off, in_len;

    struct voro_op c_recv, c_send;
    struct voro_timer timer;
    uint32_t timeout_ms;    /* what the timer enforces in the current state (0 = none) */
    uint64_t timer_start_ms;
    bool timeout_on_idle;   /* measured from the last activity instead of timer_start_ms */
    int timeout_status;     /* 408 or 504 when it passes; 0 = close silently (idle keep-alive) */
    uint64_t last_active_ms;
};

size_t voro_http_conn_size(void) { return sizeof(struct voro_http_conn); }
size_t voro_http_req_size(void) { return sizeof(struct voro_http_req); }

/* Body buffers for model routing: grown geometrically up to the route's body_limit; buffers of
 * the initial size are kept on a per-worker free list, so steady traffic does not allocate per
 * request. What buffers in use hold is counted node-wide against [http]
 * max_buffered_body_memory (one atomic add per buffer or growth step, never per byte). */
struct voro_http_bodybuf {
    struct voro_http_bodybuf *next;
    uint32_t cap;
    uint8_t data[];
};
#define BODYBUF_INITIAL (64u * 1024u)
#define BODYBUF_KEEP 32

/* Reserves `bytes` of the node's body memory; false when the cap would be passed. */
static bool body_memory_take(struct voro_worker *w, uint64_t bytes)
{
    uint64_t cap = w->view->snap->cfg->http.max_buffered_body_memory;
    uint64_t used = atomic_fetch_add_explicit(&w->dp->body_memory, bytes, memory_order_relaxed) + bytes;
    if (cap && used > cap) {
        atomic_fetch_sub_explicit(&w->dp->body_memory, bytes, memory_order_relaxed);
        return false;
    }
    return true;
}

static void body_memory_return(struct voro_worker *w, const struct voro_http_bodybuf *b)
{
    atomic_fetch_sub_explicit(&w->dp->body_memory, b->cap, memory_order_relaxed);
}

/* A buffer of the initial size, counted in the node's body memory; NULL when the cap is reached
 * or memory is out. */
static struct voro_http_bodybuf *bodybuf_get(struct voro_worker *w)
{
    if (!body_memory_take(w, BODYBUF_INITIAL))
        return NULL;
    struct voro_http_bodybuf *b = w->http_body_free;
    if (b) {
        w->http_body_free = b->next;
        w->http_body_free_count--;
        return b;
    }
    b = malloc(sizeof(*b) + BODYBUF_INITIAL);
    if (b)
        b->cap = BODYBUF_INITIAL;
    else
        atomic_fetch_sub_explicit(&w->dp->body_memory, BODYBUF_INITIAL, memory_order_relaxed);
    return b;
}

/* Gives a buffer from bodybuf_get back (its memory leaves the node's count). */
static void bodybuf_put(struct voro_worker *w, struct voro_http_bodybuf *b)
{
    body_memory_return(w, b);
    if (w->http_body_free_count >= BODYBUF_KEEP || b->cap > BODYBUF_INITIAL) {
        free(b);
        return;
    }
    b->next = w->http_body_free;
    w->http_body_free = b;
    w->http_body_free_count++;
}

/* Makes room for `need` bytes; returns the (possibly moved) buffer, or NULL when the node's
 * body memory cap is reached (*capped set) or memory is out; `b` is then still valid and owned
 * by the caller. */
static struct voro_http_bodybuf *bodybuf_reserve(struct voro_worker *w, struct voro_http_bodybuf *b, uint32_t need,
                                                 bool *capped)
{
    *capped = false;
    if (need <= b->cap)
        return b;
    uint32_t cap = b->cap;
    while (cap < need)
        cap *= 2;
    if (!body_memory_take(w, cap - b->cap)) {
        *capped = true;
        return NULL;
    }
    struct voro_http_bodybuf *n = realloc(b, sizeof(*n) + cap);
    if (!n) {
        atomic_fetch_sub_explicit(&w->dp->body_memory, cap - b->cap, memory_order_relaxed);
        return NULL;
    }
    n->cap = cap;
    return n;
}

void voro_http_proxy_free_buffers(struct voro_worker *w)
{
    while (w->http_body_free) {
        struct voro_http_bodybuf *b = w->http_body_free;
        w->http_body_free = b->next;
        free(b);
    }
    w->http_body_free_count = 0;
}

size_t voro_http_out_size(const struct voro_config *cfg) { return (size_t)cfg->buf_size + HTTP_OUT_EXTRA; }

/* Gives back what the request in progress holds besides its server side. */
static void req_release_buffers(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    struct voro_http_req *rq = c->rq;
    if (rq->resp)
        voro_loop_buf_release(w->loop, rq->resp);
    if (rq->fwd)
        voro_loop_buf_release(w->loop, rq->fwd);
    if (rq->out)
        voro_slab_free(&w->out_slab, rq->out);
    if (rq->rout)
        voro_slab_free(&w->out_slab, rq->rout);
    if (rq->body)
        bodybuf_put(w, rq->body);
    rq->resp = rq->fwd = NULL;
    rq->out = rq->rout = NULL;
    rq->body = NULL;
}

/* A fresh request state (taken from the worker's slab when the connection has none). Returns
 * NULL when out of memory. */
static struct voro_http_req *req_start(struct voro_http_conn *c)
{
    if (c->rq)
        req_release_buffers(c);
    else if (!(c->rq = voro_slab_alloc_uninit(&c->w->http_req_slab)))
        return NULL;
    memset(c->rq, 0, offsetof(struct voro_http_req, x));
    c->rq->x.logged = true; /* nothing to log until a request head was read */
    return c->rq;
}

/* The connection goes idle: its request state goes back to the slab. */
static void req_end(struct voro_http_conn *c)
{
    if (!c->rq)
        return;
    req_release_buffers(c);
    voro_slab_free(&c->w->http_req_slab, c->rq);
    c->rq = NULL;
}

/* A partial request head waiting for more bytes is kept in a small per-connection chunk instead
 * of a loop receive buffer when it fits, so clients that trickle their heads (slowloris) hold
 * node memory of about 1 KB each and no receive buffer: the loop's buffers stay free for the
 * traffic that moves (responses above all). Any new byte moves the head back into the receive
 * buffer it arrived in (in_append), so a complete head is always in a loop buffer. */
struct voro_http_small_head {
    struct voro_buf b; /* b.id == SMALL_HEAD_ID marks it; b.data points at `data` */
    uint8_t data[VORO_HTTP_SMALL_HEAD];
};
#define SMALL_HEAD_ID UINT32_MAX

size_t voro_http_small_head_size(void) { return sizeof(struct voro_http_small_head); }

static void in_buf_release(struct voro_worker *w, struct voro_buf *b)
{
    if (b->id == SMALL_HEAD_ID)
        voro_slab_free(&w->http_small_slab, b);
    else
        voro_loop_buf_release(w->loop, b);
}

/* Moves what `in` holds into a small chunk when it fits (the connection waits for more). */
static void in_compact(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    if (!c->in || c->in->id == SMALL_HEAD_ID || c->in_len - c->in_off > VORO_HTTP_SMALL_HEAD)
        return;
    struct voro_http_small_head *sh = voro_slab_alloc_uninit(&w->http_small_slab);
    if (!sh)
        return; /* keep the receive buffer */
    uint32_t n = c->in_len - c->in_off;
    memcpy(sh->data, c->in->data + c->in_off, n);
    sh->b = (struct voro_buf){.data = sh->data, .len = n, .cap = VORO_HTTP_SMALL_HEAD, .id = SMALL_HEAD_ID};
    voro_loop_buf_release(w->loop, c->in);
    c->in = &sh->b;
    c->in_off = 0;
    c->in_len = n;
}

/* Lets go of the client head buffer once every byte in it was forwarded (a connection holds a
 * receive buffer only while it has bytes not yet dealt with). Only called when no send from it
 * is pending. */
static void in_release_if_done(struct voro_http_conn *c)
{
    if (c->in && c->in_off >= c->in_len) {
        in_buf_release(c->w, c->in);
        c->in = NULL;
        c->in_off = c->in_len = 0;
    }
}

static void conn_abort(struct voro_http_conn *c);
static void log_request(struct voro_http_conn *c);
static void request_begin(struct voro_http_conn *c);
static void client_read_head(struct voro_http_conn *c);
static void connect_next(struct voro_http_conn *c);
static void client_watch(struct voro_http_conn *c);
static void client_watch_result(struct voro_http_conn *c, struct voro_buf *buf, int res);
static void body_memory_refused(struct voro_http_conn *c, bool capped);

/* ---- lifetime ---------------------------------------------------------------------------- */

#define SERVER_OPS (P_SERVER_RECV | P_SERVER_SEND | P_CONNECT)

/* Lets go of the server connection: back to the pool when `reusable`, else closed. With ops
 * still pending on it, they are cancelled first and the socket closes when they are back. */
static void release_server(struct voro_http_conn *c, bool reusable)
{
    struct voro_worker *w = c->w;
    if (c->pending & SERVER_OPS) {
        if (!c->server_abandoned) {
            c->server_abandoned = true;
            if (c->pending & P_SERVER_RECV)
                voro_loop_cancel(w->loop, &c->rq->s_recv);
            if (c->pending & P_SERVER_SEND)
                voro_loop_cancel(w->loop, &c->rq->s_send);
            if (c->pending & P_CONNECT)
                voro_loop_cancel(w->loop, &c->rq->connect_op);
        }
        return;
    }
    c->server_abandoned = false;
    if (c->rq && c->rq->lb_counted) {
        /* Latency feedback for ewma: the whole exchange; a failure counts as a bad sample. */
        uint64_t latency = voro_now_us() - c->rq->attempt_start_us;
        voro_lb_request_end(&c->view->lbs[c->rq->pool], c->rq->server, latency, c->rq->resp_head_done && c->rq->resp_status < 500);
        voro_counter_sub(&c->rq->sc->active, 1);
        c->rq->lb_counted = false;
    }
    if (c->sfd >= 0) {
        if (reusable)
            voro_http_upstream_put(w, c->view, (size_t)c->rq->pool, (size_t)c->rq->server, c->sfd);
        else
            voro_http_upstream_close(w, c->sfd);
        c->sfd = -1;
    }
}

static void conn_maybe_free(struct voro_http_conn *c)
{
    if (c->state != HS_CLOSING || c->pending)
        return;
    struct voro_worker *w = c->w;
    voro_timer_del(&w->wheel, &c->timer);
    if (c->in)
        in_buf_release(w, c->in);
    c->pending = 0;
    release_server(c, false);
    req_end(c);
    if (c->cfd >= 0)
        voro_loop_close(w->loop, c->cfd);
    if (c->admitted)
        voro_conn_limits_release(&w->dp->limits, &c->adm);
    voro_worker_view_release(w, c->view);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->http_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    voro_counter_sub(&w->stats.active, 1);
    voro_slab_free(&w->http_slab, c);
}

/* A server-side callback after release_server() abandoned the server: finish the release. */
static bool server_op_abandoned(struct voro_http_conn *c, struct voro_op *op)
{
    if (!c->server_abandoned || c->state == HS_CLOSING)
        return false;
    if (op->buf) {
        voro_loop_buf_release(c->w->loop, op->buf);
        op->buf = NULL;
    }
    if (!(c->pending & SERVER_OPS))
        release_server(c, false);
    return true;
}

/* In a callback: when the connection is closing, drops `buf` (may be NULL), lets the connection
 * go once nothing is pending, and returns true. */
static bool conn_closing(struct voro_http_conn *c, struct voro_buf *buf)
{
    if (c->state != HS_CLOSING)
        return false;
    if (buf)
        voro_loop_buf_release(c->w->loop, buf);
    conn_maybe_free(c);
    return true;
}

static void conn_abort(struct voro_http_conn *c)
{
    if (c->state != HS_CLOSING) {
        log_request(c); /* a request cut short is logged with what it got */
        c->state = HS_CLOSING;
        struct voro_loop *loop = c->w->loop;
        if (c->pending & P_CLIENT_RECV)
            voro_loop_cancel(loop, &c->c_recv);
        if (c->pending & P_CLIENT_SEND)
            voro_loop_cancel(loop, &c->c_send);
        if (c->pending & P_SERVER_RECV)
            voro_loop_cancel(loop, &c->rq->s_recv);
        if (c->pending & P_SERVER_SEND)
            voro_loop_cancel(loop, &c->rq->s_send);
        if (c->pending & P_CONNECT)
            voro_loop_cancel(loop, &c->rq->connect_op);
    }
    conn_maybe_free(c);
}

static void set_deadline(struct voro_http_conn *c, uint32_t ms, int status, bool on_idle)
{
    c->timeout_status = status;
    c->timeout_ms = ms;
    c->timeout_on_idle = on_idle;
    c->timer_start_ms = c->last_active_ms = c->w->now_ms;
    if (ms)
        voro_timer_add(&c->w->wheel, &c->timer, ms); /* re-arms: the new deadline may be sooner */
    else
        voro_timer_del(&c->w->wheel, &c->timer);
}

/* The idle keep-alive deadline: the configured one, at most DRAIN_IDLE_MS while draining. */
static uint32_t drain_idle_ms(const struct voro_worker *w, uint32_t keepalive_ms)
{
    if (w->draining && (keepalive_ms == 0 || keepalive_ms > DRAIN_IDLE_MS))
        return DRAIN_IDLE_MS;
    return keepalive_ms;
}

/* ---- the filters' view ----------------------------------------------------------------------- */

static void copy_span(char *out, size_t cap, const char *buf, struct voro_http1_span sp)
{
    size_t n = sp.len < cap - 1 ? sp.len : cap - 1;
    memcpy(out, buf + sp.off, n);
    out[n] = '\0';
}

/* Runs the log hooks once per request. */
static void log_request(struct voro_http_conn *c)
{
    if (!c->rq)
        return;
    struct voro_http_exchange *x = &c->rq->x;
    if (x->logged)
        return;
    x->logged = true;
    x->end_us = voro_now_us();
    size_t n;
    const struct voro_http_filter *const *f = voro_http_filters(&n);
    for (size_t i = 0; i < n; i++)
        if (f[i]->on_log)
            f[i]->on_log(x);
}

static void reply_error(struct voro_http_conn *c, int status, const char *message, const char *param, const char *code);

/* A filter answered the request itself. */
static void reply_filter(struct voro_http_conn *c)
{
    struct voro_http_exchange *x = &c->rq->x;
    reply_error(c, x->reply_status ? x->reply_status : 500, x->reply_message, x->reply_param, x->reply_code);
}

/* ---- Voro's own responses ------------------------------------------------------------------ */

static void on_error_sent(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    c->pending &= (uint8_t)~P_CLIENT_SEND;
    (void)res;
    if (conn_closing(c, NULL))
        return;
    if (res >= 0 && c->keep_client && c->rq->req_done) {
        request_begin(c);
        return;
    }
    /* Close cleanly: FIN after the reply, so the client reads it instead of a reset. */
    shutdown(c->cfd, SHUT_WR);
    conn_abort(c);
}

/* Answers the current request with Voro's own error and then closes (or, for errors after
 * which the connection is still in sync, goes on with the next request). */
static void reply_error(struct voro_http_conn *c, int status, const char *message, const char *param, const char *code)
{
    struct voro_worker *w = c->w;
    if (!c->rq || c->rq->resp_any || (c->pending & P_CLIENT_SEND)) {
        /* Part of a response already went out: all we can do is cut the connection. */
        conn_abort(c);
        return;
    }
    if (!c->rq->rout && !(c->rq->rout = voro_slab_alloc_uninit(&w->out_slab))) {
        conn_abort(c);
        return;
    }
    /* Keep the connection only when the request was read completely and nothing is pending
     * on the server side. */
    bool keep = c->keep_client && c->rq->req_done && status < 500 && status != 408 && status != 400;
    c->keep_client = keep;
    if (keep)
        c->in_off = c->rq->next_off; /* skip what is left of this request in the head buffer */
    release_server(c, false);
    size_t n = voro_http_error_format(c->rq->rout, voro_http_out_size(c->view->snap->cfg), status, message, NULL, param,
                                      code, keep);
    if (n == 0) {
        conn_abort(c);
        return;
    }
    c->state = HS_ERROR_REPLY;
    c->rq->x.status = status;
    c->rq->x.local_reply = true;
    c->rq->x.bytes_out += n;
    log_request(c);
    voro_counter_add(&c->lc->errors, 1);
    voro_counter_add(&w->stats.http_local_errors, 1);
    c->c_send = (struct voro_op){.cb = on_error_sent, .data = c};
    if (voro_loop_send(w->loop, &c->c_send, c->cfd, c->rq->rout, n) == 0)
        c->pending |= P_CLIENT_SEND;
    else
        conn_abort(c);
}

/* ---- response: server -> client -------------------------------------------------------- */

static void server_recv(struct voro_http_conn *c);
static void response_parse(struct voro_http_conn *c);
static void client_send_fwd(struct voro_http_conn *c, struct voro_buf *buf, uint32_t off, uint32_t len);
static void exchange_maybe_done(struct voro_http_conn *c);

static void on_client_fwd_sent(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CLIENT_SEND;
    if (c->rq->fwd) {
        voro_loop_buf_release(w->loop, c->rq->fwd);
        c->rq->fwd = NULL;
    }
    if (conn_closing(c, NULL))
        return;
    if (res < 0) {
        voro_counter_add(&w->stats.errors, 1);
        conn_abort(c); /* the client went away: stop the server too */
        return;
    }
    if (c->rq->interim_sent) {
        c->rq->interim_sent = false;
        if (c->rq->resp_len)
            response_parse(c);
        else
            server_recv(c);
        return;
    }
    if (c->rq->resp_sending_head) {
        c->rq->resp_sending_head = false;
        /* The final head is out: a long response (a stream) need not keep its slab buffer. */
        voro_slab_free(&w->out_slab, c->rq->rout);
        c->rq->rout = NULL;
        /* Body bytes that came with the head. */
        if (c->rq->resp && c->rq->resp_len > c->rq->fwd_off) {
            struct voro_buf *b = c->rq->resp;
            uint32_t off = c->rq->fwd_off, len = c->rq->resp_len - c->rq->fwd_off;
            c->rq->resp = NULL;
            size_t fwd = 0;
            long take = voro_http_body_forward(&c->rq->resp_body, b->data + off, len, &fwd);
            if (take < 0) {
                voro_loop_buf_release(w->loop, b);
                conn_abort(c);
                return;
            }
            if ((uint32_t)take < len)
                c->rq->resp_keep_alive = false; /* bytes beyond the body: the server is out of sync */
            if (fwd > 0) {
                client_send_fwd(c, b, off, (uint32_t)fwd);
                return;
            }
            voro_loop_buf_release(w->loop, b);
        } else if (c->rq->resp) {
            voro_loop_buf_release(w->loop, c->rq->resp);
            c->rq->resp = NULL;
        }
    }
    if (c->rq->resp_body.done) {
        c->rq->resp_done = true;
        exchange_maybe_done(c);
        return;
    }
    server_recv(c);
}

static void client_send_fwd(struct voro_http_conn *c, struct voro_buf *buf, uint32_t off, uint32_t len)
{
    size_t n;
    const struct voro_http_filter *const *f = voro_http_filters(&n);
    for (size_t i = 0; i < n; i++)
        if (f[i]->on_response_body)
            f[i]->on_response_body(&c->rq->x, buf->data + off, len);
    c->rq->x.bytes_out += len;
    c->rq->fwd = buf;
    c->rq->fwd_off = off;
    voro_counter_add(&c->w->stats.bytes_to_clients, len);
    voro_counter_add(&c->lc->bytes_out, len);
    c->c_send = (struct voro_op){.cb = on_client_fwd_sent, .data = c};
    if (voro_loop_send(c->w->loop, &c->c_send, c->cfd, buf->data + off, len) == 0)
        c->pending |= P_CLIENT_SEND;
    else
        conn_abort(c);
}

#define MAX_INTERIM 16 /* 1xx heads accepted before a final response */

/* The server's response cannot be passed on: 502 with `reason` while no byte of a final
 * response reached the client (interim heads may have), and the server connection closes. */
static void reply_bad_gateway(struct voro_http_conn *c, const char *reason)
{
    if (!c->rq->resp_head_done)
        c->rq->resp_any = false; /* only server bytes so far: Voro can still answer */
    reply_error(c, 502, reason, NULL, NULL);
}

/* An interim (1xx, not 101) head is in c->rq->resp: forwarded with its headers (103 Early Hints'
 * Link, a 100 Continue's) to an HTTP/1.1 client, dropped for an HTTP/1.0 one (RFC 9110
 * 15.2); then what follows it is parsed as the next head. */
static void response_interim(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_config *cfg = c->view->snap->cfg;
    const struct voro_http1_parser *p = &c->rq->parser;
    uint32_t head_len = p->head_len;
    if (++c->rq->interim_count > MAX_INTERIM) {
        reply_bad_gateway(c, "too many interim (1xx) responses from the server");
        return;
    }
    size_t m = 0;
    if (!c->rq->req_http10) {
        struct voro_http_response_rewrite rw = {
            .via = cfg->http.via[0] ? cfg->http.via : NULL,
            .keep_alive = true,
            .interim = true,
        };
        if (voro_http_rewrite_response((const char *)c->rq->resp->data, p, &rw, c->rq->rout, voro_http_out_size(cfg), &m) != 0) {
            reply_bad_gateway(c, "interim response head from the server too large");
            return;
        }
    }
    struct voro_buf *b = c->rq->resp;
    memmove(b->data, b->data + head_len, c->rq->resp_len - head_len);
    c->rq->resp_len -= head_len;
    voro_http1_reset(&c->rq->parser);
    if (c->rq->req_http10) {
        if (c->rq->resp_len)
            response_parse(c); /* bounded: MAX_INTERIM */
        else
            server_recv(c);
        return;
    }
    c->rq->x.bytes_out += m;
    voro_counter_add(&w->stats.bytes_to_clients, m);
    voro_counter_add(&c->lc->bytes_out, m);
    c->rq->interim_sent = true;
    c->c_send = (struct voro_op){.cb = on_client_fwd_sent, .data = c};
    if (voro_loop_send(w->loop, &c->c_send, c->cfd, c->rq->rout, m) == 0)
        c->pending |= P_CLIENT_SEND;
    else
        conn_abort(c);
}

/* A complete response head is in c->rq->resp[0..resp_len). */
static void response_head_done(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    if (!c->rq->rout && !(c->rq->rout = voro_slab_alloc_uninit(&w->out_slab))) {
        conn_abort(c);
        return;
    }
    const struct voro_http1_parser *p = &c->rq->parser;
    const struct voro_config *cfg = c->view->snap->cfg;
    uint32_t head_len = p->head_len;

    if (p->status >= 100 && p->status < 200 && p->status != 101) {
        response_interim(c);
        return;
    }
    if (p->status == 101 && !c->rq->req_upgrade) {
        /* A protocol switch nobody asked for: the server connection speaks something else now. */
        reply_bad_gateway(c, "the server sent 101 Switching Protocols to a request without an upgrade");
        return;
    }
    if (c->rq->req_http10 && (p->flags & VORO_HTTP1_F_TRANSFER_ENCODING) &&
        !voro_http_te_only_chunked((const char *)c->rq->resp->data, p)) {
        reply_bad_gateway(c, "the server used a transfer coding an HTTP/1.0 client cannot decode");
        return;
    }

    c->rq->resp_head_done = true;
    c->rq->resp_status = p->status;
    if (c->rq->out && !(c->pending & P_SERVER_SEND)) {
        /* No retry after a response: the rewritten request head is not needed any more. */
        voro_slab_free(&w->out_slab, c->rq->out);
        c->rq->out = NULL;
    }
    c->rq->x.status = p->status;
    c->rq->x.server = c->rq->server;
    c->rq->x.first_byte_us = voro_now_us();
    {
        size_t n;
        const struct voro_http_filter *const *f = voro_http_filters(&n);
        for (size_t i = 0; i < n; i++)
            if (f[i]->on_response_head)
                f[i]->on_response_head(&c->rq->x, (const char *)c->rq->resp->data, p);
    }
    /* Passive health: 5xx answers count as failures; the first good answer after a failure
     * resets the streak (the bridge turns these counters into outlier reports). */
    if (p->status >= 500) {
        voro_counter_add(&c->rq->sc->http_5xx, 1);
        atomic_store_explicit(&c->rq->sc->last_failed, 1, memory_order_relaxed);
    } else if (atomic_load_explicit(&c->rq->sc->last_failed, memory_order_relaxed)) {
        atomic_store_explicit(&c->rq->sc->last_failed, 0, memory_order_relaxed);
        voro_counter_add(&c->rq->sc->recoveries, 1);
    }
    if (p->status >= 100 && p->status < 600)
        voro_counter_add(&w->stats.http_responses[p->status / 100 - 1], 1);
    if (c->rq->lb_counted)
        voro_lb_observe_ttft(&c->view->lbs[c->rq->pool], c->rq->server, voro_now_us() - c->rq->attempt_start_us);
    bool upgrade = p->status == 101 && c->rq->req_upgrade;
    enum voro_http1_body kind = voro_http1_body_kind(p, c->rq->req_head, false);
    voro_http_body_init(&c->rq->resp_body, kind, p->content_length);
    /* A chunked body reaches an HTTP/1.0 client de-chunked, delimited by the connection's close. */
    c->rq->resp_body.dechunk = c->rq->req_http10 && kind == VORO_HTTP1_BODY_CHUNKED;
    c->rq->resp_keep_alive = voro_http1_keep_alive(p) && kind != VORO_HTTP1_BODY_UNTIL_CLOSE && !upgrade;
    bool keep = c->keep_client && c->rq->resp_keep_alive && !upgrade && !w->draining && !c->rq->resp_body.dechunk;
    c->keep_client = keep;
    if (c->rq->req_http10)
        c->rq->resp_keep_alive = false; /* its request went up with "Connection: close": not reusable */
    struct voro_http_response_rewrite rw = {
        .via = cfg->http.via[0] ? cfg->http.via : NULL,
        .keep_alive = keep,
        .client_http10 = c->rq->req_http10,
        .upgrade = upgrade,
    };
    size_t out_len = 0;
    if (voro_http_rewrite_response((const char *)c->rq->resp->data, p, &rw, c->rq->rout, voro_http_out_size(cfg), &out_len) != 0) {
        reply_error(c, 502, "response head from the server too large", NULL, NULL);
        return;
    }
    if (upgrade) {
        /* WebSocket: the 101 head and any frames after it go first, then the L4 tunnel takes
         * both sockets. The rewritten head replaces the original in the same buffer. */
        struct voro_buf *down = c->rq->resp;
        uint32_t extra = c->rq->resp_len - head_len;
        if (out_len + extra > down->cap) {
            reply_error(c, 502, "upgrade response too large", NULL, NULL);
            return;
        }
        memmove(down->data + out_len, down->data + head_len, extra);
        memcpy(down->data, c->rq->rout, out_len);
        down->len = (uint32_t)out_len + extra;
        struct voro_buf *up = NULL;
        if (c->in && c->in_len > c->in_off && c->in->id != SMALL_HEAD_ID) { /* never small: see in_compact */
            up = c->in;
            memmove(up->data, up->data + c->in_off, c->in_len - c->in_off);
            up->len = c->in_len - c->in_off;
            c->in = NULL;
        }
        c->rq->resp = NULL;
        /* The request is over for the balancer; the tunnel counts as a connection from here. */
        struct voro_lb *lb = &c->view->lbs[c->rq->pool];
        voro_lb_request_end(lb, c->rq->server, voro_now_us() - c->rq->attempt_start_us, true);
        voro_lb_conn_begin(lb, c->rq->server);
        /* The server socket's descriptor slot goes with the tunnel's admission (2 slots, as any
         * L4 connection holds). */
        if (c->admitted)
            c->adm.fds++;
        else
            voro_conn_limits_fd_give(&w->dp->limits, 1);
        int rc = voro_tcp_proxy_adopt(w, c->listener, c->cfd, c->sfd, c->view, c->rq->pool, c->rq->server, down, up, &c->adm,
                                      c->admitted);
        if (rc != 0) {
            if (c->admitted)
                c->adm.fds--;
            else
                voro_conn_limits_fd_take(&w->dp->limits, 1);
            voro_lb_conn_end(lb, c->rq->server);
            voro_counter_sub(&c->rq->sc->active, 1);
            c->rq->lb_counted = false;
            voro_loop_buf_release(w->loop, down);
            if (up)
                voro_loop_buf_release(w->loop, up);
            conn_abort(c);
            return;
        }
        /* The tunnel owns the sockets, the admission and the server's balancer count now. */
        c->cfd = c->sfd = -1;
        c->admitted = false;
        c->rq->lb_counted = false;
        conn_abort(c);
        return;
    }
    c->rq->fwd_off = head_len;
    c->rq->resp_sending_head = true;
    c->rq->fwd = NULL;
    /* Body bytes that came with the head (a small response is often all there) go out in the
     * same send when they fit behind the rewritten head: one system call instead of two. */
    uint32_t extra = c->rq->resp_len - head_len;
    size_t cap = voro_http_out_size(c->view->snap->cfg);
    if (extra && out_len + extra <= cap) {
        size_t fwd = 0;
        long take = voro_http_body_forward(&c->rq->resp_body, c->rq->resp->data + head_len, extra, &fwd);
        if (take < 0) {
            conn_abort(c);
            return;
        }
        if ((uint32_t)take < extra)
            c->rq->resp_keep_alive = false; /* bytes beyond the body: the server connection is out of sync */
        size_t n;
        const struct voro_http_filter *const *f = voro_http_filters(&n);
        for (size_t i = 0; i < n; i++)
            if (f[i]->on_response_body && fwd > 0)
                f[i]->on_response_body(&c->rq->x, c->rq->resp->data + head_len, fwd);
        memcpy(c->rq->rout + out_len, c->rq->resp->data + head_len, fwd);
        out_len += fwd;
        c->rq->x.bytes_out += (uint64_t)fwd;
        c->rq->fwd_off = c->rq->resp_len; /* nothing left to forward from this buffer */
    }
    voro_counter_add(&w->stats.bytes_to_clients, out_len);
    voro_counter_add(&c->lc->bytes_out, out_len);
    c->c_send = (struct voro_op){.cb = on_client_fwd_sent, .data = c};
    if (voro_loop_send(w->loop, &c->c_send, c->cfd, c->rq->rout, out_len) == 0)
        c->pending |= P_CLIENT_SEND;
    else
        conn_abort(c);
}

static bool request_retryable(const struct voro_http_conn *c)
{
    const struct voro_pool_config *pc = &c->view->snap->cfg->pools[c->rq->pool];
    return !c->rq->resp_any && c->rq->req_idempotent && !c->rq->req_body_sent_any && c->rq->attempts <= pc->retries &&
           c->state != HS_CLOSING;
}

static void on_server_recv(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_SERVER_RECV;
    if (server_op_abandoned(c, op))
        return;
    struct voro_buf *buf = op->buf;
    if (conn_closing(c, buf))
        return;
    if (res <= 0) {
        if (buf)
            voro_loop_buf_release(w->loop, buf);
        if (!c->rq->resp_any && !c->rq->resp_head_done) {
            /* Nothing came back. On a pooled connection that is the server closing an idle
             * connection as we reused it (a race, not a failure): try the same server again on
             * a fresh connection, once. */
            if (c->rq->server_reused && !c->rq->stale_retried && (!c->rq->req_body_sent_any || c->rq->body) &&
                !(c->pending & P_SERVER_SEND)) {
                c->rq->stale_retried = true;
                c->rq->fresh_retry = true;
                c->rq->body_send_off = 0; /* a buffered body goes out again whole */
                c->rq->attempts--;
                release_server(c, false);
                connect_next(c);
                return;
            }
            voro_counter_add(&c->rq->sc->connect_failures, 1);
            if (request_retryable(c) && !(c->pending & P_SERVER_SEND)) {
                voro_counter_add(&w->stats.connect_retries, 1);
                release_server(c, false);
                voro_lb_exclude_add(&c->rq->tried, c->rq->server);
                connect_next(c);
                return;
            }
            reply_error(c, 502, res == 0 ? "the server closed the connection without a response"
                                         : "the server connection failed before a response", NULL, NULL);
            return;
        }
        if (res == 0 && c->rq->resp_body.kind == VORO_HTTP1_BODY_UNTIL_CLOSE) {
            c->rq->resp_body.done = true;
            c->rq->resp_done = true;
            c->rq->resp_keep_alive = false;
            c->keep_client = false;
            exchange_maybe_done(c);
            return;
        }
        /* Cut in the middle of a response: the client must see it cut too. */
        voro_counter_add(&w->stats.errors, 1);
        conn_abort(c);
        return;
    }
    c->rq->resp_any = true;
    c->last_active_ms = w->now_ms;
    voro_counter_add(&c->rq->sc->bytes_in, (uint64_t)res);
    if (c->rq->resp_head_done) {
        size_t fwd = 0;
        long take = voro_http_body_forward(&c->rq->resp_body, buf->data, (size_t)res, &fwd);
        if (take < 0) {
            voro_loop_buf_release(w->loop, buf);
            conn_abort(c);
            return;
        }
        /* Bytes beyond the body (a server speaking out of turn) are dropped with the connection. */
        if ((size_t)take < (size_t)res)
            c->rq->resp_keep_alive = false;
        if (fwd == 0) {
            voro_loop_buf_release(w->loop, buf);
            if (c->rq->resp_body.done) {
                c->rq->resp_done = true;
                exchange_maybe_done(c);
            } else {
                server_recv(c);
            }
            return;
        }
        client_send_fwd(c, buf, 0, (uint32_t)fwd);
        return;
    }
    /* Accumulating the response head. */
    if (!c->rq->resp) {
        c->rq->resp = buf;
        c->rq->resp_len = (uint32_t)res;
        buf->len = (uint32_t)res;
    } else {
        if (c->rq->resp_len + (uint32_t)res > c->rq->resp->cap) {
            voro_loop_buf_release(w->loop, buf);
            reply_error(c, 502, "response head from the server too large", NULL, NULL);
            return;
        }
        memcpy(c->rq->resp->data + c->rq->resp_len, buf->data, (size_t)res);
        c->rq->resp_len += (uint32_t)res;
        voro_loop_buf_release(w->loop, buf);
    }
    response_parse(c);
}

/* Parses the response head buffered in c->rq->resp. */
static void response_parse(struct voro_http_conn *c)
{
    enum voro_http1_result r = voro_http1_parse(&c->rq->parser, (const char *)c->rq->resp->data, c->rq->resp_len);
    if (r == VORO_HTTP1_NEED_MORE) {
        if (c->rq->resp_len >= c->rq->resp->cap) {
            reply_error(c, 502, "response head from the server too large", NULL, NULL);
            return;
        }
        server_recv(c);
        return;
    }
    if (r == VORO_HTTP1_ERROR) {
        reply_error(c, 502, "malformed response head from the server", NULL, NULL);
        return;
    }
    response_head_done(c);
}

static void server_recv(struct voro_http_conn *c)
{
    c->rq->s_recv = (struct voro_op){.cb = on_server_recv, .data = c};
    if (voro_loop_recv(c->w->loop, &c->rq->s_recv, c->sfd) == 0)
        c->pending |= P_SERVER_RECV;
    else
        conn_abort(c);
}

/* ---- request body: client -> server ------------------------------------------------------- */

static void client_recv_body(struct voro_http_conn *c);

static void on_server_body_sent(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_SERVER_SEND;
    if (server_op_abandoned(c, op))
        return;
    if (c->state != HS_CLOSING)
        in_release_if_done(c); /* body bytes sent from the head buffer were its last */
    /* The body chunk was sent from c->in (the head buffer) or from a separate buffer kept in
     * op->buf by client_recv_body. */
    if (op->buf) {
        voro_loop_buf_release(w->loop, op->buf);
        op->buf = NULL;
    }
    if (conn_closing(c, NULL))
        return;
    if (res < 0) {
        if (!c->rq->resp_any)
            reply_error(c, 502, "sending the request to the server failed", NULL, NULL);
        else
            conn_abort(c);
        return;
    }
    if (c->rq->req_body.done || c->rq->body) {
        c->rq->req_done = true;
        exchange_maybe_done(c);
        return;
    }
    client_recv_body(c);
}

static void send_body_chunk(struct voro_http_conn *c, const uint8_t *data, uint32_t len, struct voro_buf *owner)
{
    c->rq->req_body_sent_any = true;
    voro_counter_add(&c->rq->sc->bytes_out, len);
    c->rq->s_send = (struct voro_op){.cb = on_server_body_sent, .data = c};
    int rc = voro_loop_send(c->w->loop, &c->rq->s_send, c->sfd, data, len);
    c->rq->s_send.buf = owner; /* released when the send completes */
    if (rc == 0)
        c->pending |= P_SERVER_SEND;
    else {
        if (owner)
            voro_loop_buf_release(c->w->loop, owner);
        conn_abort(c);
    }
}

/* The start of a callback that reads a request body: returns the buffer with `res` new bytes,
 * or NULL when the connection is closing or the client stopped before the end of its body
 * (then it has been dealt with). */
static struct voro_buf *client_body_bytes(struct voro_http_conn *c, struct voro_op *op, int res)
{
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CLIENT_RECV;
    struct voro_buf *buf = op->buf;
    if (c->state == HS_CLOSING || res <= 0) {
        if (buf)
            voro_loop_buf_release(w->loop, buf);
        if (c->state == HS_CLOSING)
            conn_maybe_free(c);
        else
            conn_abort(c);
        return NULL;
    }
    c->last_active_ms = w->now_ms;
    c->rq->x.bytes_in += (uint64_t)res;
    voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
    voro_counter_add(&c->lc->bytes_in, (uint64_t)res);
    return buf;
}

static void on_client_body_recv(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    struct voro_buf *buf = client_body_bytes(c, op, res);
    if (!buf)
        return;
    long take = voro_http_body_consume(&c->rq->req_body, buf->data, (size_t)res);
    if (take < 0) {
        voro_loop_buf_release(w->loop, buf);
        reply_error(c, c->rq->req_body.error_status, c->rq->req_body.error_reason, NULL, NULL);
        return;
    }
    c->rq->body_streamed += (uint64_t)take;
    if ((size_t)take < (size_t)res) {
        /* The next pipelined request started in this buffer: the buffer becomes the head buffer
         * (the body part goes out from it first; `in` holds nothing else now: its bytes were
         * all forwarded before this read was armed). */
        if (c->in)
            in_buf_release(w, c->in);
        c->in = buf;
        c->in_off = (uint32_t)take;
        c->in_len = (uint32_t)res;
        if (take == 0) {
            c->rq->req_done = c->rq->req_body.done;
            exchange_maybe_done(c);
            return;
        }
        send_body_chunk(c, buf->data, (uint32_t)take, NULL);
        return;
    }
    if (take == 0) {
        voro_loop_buf_release(w->loop, buf);
        c->rq->req_done = c->rq->req_body.done;
        exchange_maybe_done(c);
        return;
    }
    send_body_chunk(c, buf->data, (uint32_t)take, buf);
}

static void client_recv_body(struct voro_http_conn *c)
{
    c->c_recv = (struct voro_op){.cb = on_client_body_recv, .data = c, .buf_class = VORO_BUF_REQUEST};
    if (voro_loop_recv(c->w->loop, &c->c_recv, c->cfd) == 0) {
        c->pending |= P_CLIENT_RECV;
        if (!c->rq->body_deadline_set) {
            /* One deadline for the whole body, extended by body_min_rate as bytes arrive (see
             * on_timer): a client trickling a byte now and then cannot hold the server forever. */
            c->rq->body_deadline_set = true;
            c->rq->body_rate_deadline = true;
            set_deadline(c, c->view->snap->cfg->http.body_timeout_ms, 408, false);
        }
    } else {
        conn_abort(c);
    }
}

/* ---- the exchange ------------------------------------------------------------------------ */

static void exchange_maybe_done(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    if (c->rq->req_done && !c->rq->resp_done && c->state == HS_EXCHANGE) {
        if (c->rq->body_rate_deadline && !c->rq->resp_head_done) {
            /* The body is all upstream: from here the server has response_timeout to answer. */
            c->rq->body_rate_deadline = false;
            set_deadline(c, c->view->snap->cfg->http.response_timeout_ms, 504, true);
        }
        client_watch(c);
    }
    if (c->rq->resp_done && !c->rq->req_done && !(c->pending & P_CLIENT_SEND)) {
        /* The server answered before the client finished its body: that connection cannot
         * carry another request in sync. */
        shutdown(c->cfd, SHUT_WR);
        conn_abort(c);
        return;
    }
    if (!c->rq->req_done || !c->rq->resp_done || (c->pending & (P_CLIENT_SEND | P_SERVER_SEND)))
        return;
    log_request(c);
    release_server(c, c->rq->resp_keep_alive && c->rq->req_body.done);
    if (c->rq->resp) {
        voro_loop_buf_release(w->loop, c->rq->resp);
        c->rq->resp = NULL;
    }
    if (!c->keep_client) {
        shutdown(c->cfd, SHUT_WR);
        conn_abort(c);
        return;
    }
    request_begin(c);
}

static void on_head_sent(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    c->pending &= (uint8_t)~P_SERVER_SEND;
    if (server_op_abandoned(c, op))
        return;
    if (conn_closing(c, NULL))
        return;
    if (res < 0) {
        if (c->rq->server_reused && !c->rq->stale_retried && (!c->rq->req_body_sent_any || c->rq->body) &&
            !(c->pending & P_SERVER_RECV)) {
            c->rq->stale_retried = true; /* the pooled connection was dead: same server, new connection */
            c->rq->fresh_retry = true;
            c->rq->body_send_off = 0;
            c->rq->attempts--;
            release_server(c, false);
            connect_next(c);
            return;
        }
        voro_counter_add(&c->rq->sc->connect_failures, 1);
        if (request_retryable(c) && !(c->pending & P_SERVER_RECV)) {
            release_server(c, false);
            voro_lb_exclude_add(&c->rq->tried, c->rq->server);
            connect_next(c);
            return;
        }
        /* A pending response read will report the failure (or the response). */
        if (!(c->pending & P_SERVER_RECV))
            reply_error(c, 502, "sending the request to the server failed", NULL, NULL);
        return;
    }
    /* A body buffered for model routing goes next, whole. */
    if (c->rq->body) {
        if (c->rq->body_send_off < c->rq->body_len) {
            uint32_t n = c->rq->body_len - c->rq->body_send_off;
            const uint8_t *data = c->rq->body->data + c->rq->body_send_off;
            c->rq->body_send_off = c->rq->body_len;
            send_body_chunk(c, data, n, NULL);
            return;
        }
        c->rq->req_done = true;
        exchange_maybe_done(c);
        return;
    }
    /* Body bytes that arrived with the head go next, straight from the head buffer. */
    if (c->rq->body_pre) {
        uint32_t n = c->rq->body_pre;
        c->rq->body_pre = 0;
        const uint8_t *data = c->in->data + c->in_off;
        c->in_off += n;
        send_body_chunk(c, data, n, NULL);
        return;
    }
    if (c->rq->req_body.done) {
        c->rq->req_done = true;
        exchange_maybe_done(c);
        return;
    }
    /* On a retry the read of the body may still be pending from the first attempt: re-arming
     * it would reset an op the loop holds (and the connection would never finish). Its
     * deadline is already running (set once per body). */
    if (!(c->pending & P_CLIENT_RECV))
        client_recv_body(c);
}

/* Connected (new or pooled): send the head, and listen for the response at once. */
static void exchange_start(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    c->state = HS_EXCHANGE;
    set_deadline(c, c->view->snap->cfg->http.response_timeout_ms, 504, true);
    c->rq->s_send = (struct voro_op){.cb = on_head_sent, .data = c};
    voro_counter_add(&c->rq->sc->bytes_out, c->rq->out_len);
    if (voro_loop_send(w->loop, &c->rq->s_send, c->sfd, c->rq->out, c->rq->out_len) != 0) {
        conn_abort(c);
        return;
    }
    c->pending |= P_SERVER_SEND;
    server_recv(c);
}

static void on_connect(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CONNECT;
    if (server_op_abandoned(c, op))
        return;
    if (conn_closing(c, NULL))
        return;
    if (res == 0 && !c->rq->connect_timed_out) {
        int one = 1;
        setsockopt(c->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        exchange_start(c);
        return;
    }
    voro_counter_add(&w->stats.connect_failures, 1);
    voro_counter_add(&c->rq->sc->connect_failures, 1);
    atomic_store_explicit(&c->rq->sc->last_failed, 1, memory_order_relaxed);
    bool timed_out = c->rq->connect_timed_out;
    release_server(c, false);
    voro_lb_exclude_add(&c->rq->tried, c->rq->server);
    const struct voro_pool_config *pc = &c->view->snap->cfg->pools[c->rq->pool];
    if (c->rq->attempts <= pc->retries) {
        voro_counter_add(&w->stats.connect_retries, 1);
        connect_next(c);
        return;
    }
    voro_counter_add(&w->stats.no_server, 1);
    if (timed_out)
        reply_error(c, 504, "connecting to the server timed out", NULL, NULL);
    else
        reply_error(c, 502, "could not connect to any server", NULL, NULL);
}

static void connect_next(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_pool_config *pc = &c->view->snap->cfg->pools[c->rq->pool];
    struct voro_lb *lb = &c->view->lbs[c->rq->pool];
    c->rq->connect_timed_out = false;
    voro_lb_set_now(lb, w->now_ms);
    int idx = c->rq->fresh_retry ? c->rq->server : voro_lb_pick(lb, c->rq->x.hash_key, &c->rq->tried);
    if (idx < 0) {
        voro_counter_add(&w->stats.no_server, 1);
        reply_error(c, 503, "no healthy server for this request", NULL, NULL);
        return;
    }
    c->rq->server = idx;
    c->rq->attempts++;
    c->rq->sc = voro_worker_server_counters(w, c->view, (size_t)c->rq->pool, (size_t)idx);
    voro_lb_request_begin(lb, idx);
    c->rq->attempt_start_us = voro_now_us();
    c->rq->lb_counted = true;
    voro_counter_add(&c->rq->sc->connections, 1);
    voro_counter_add(&c->rq->sc->active, 1);
    c->rq->resp_any = false;
    c->rq->resp_head_done = false;
    c->rq->interim_count = 0;
    c->rq->req_body_sent_any = false;
    voro_http1_init(&c->rq->parser, VORO_HTTP1_RESPONSE, NULL);
    /* A request whose body streams from the client cannot be replayed: check a pooled
     * connection first. Bodiless and buffered requests are retried instead if it was dead. */
    bool must_check = c->rq->req_body.kind != VORO_HTTP1_BODY_NONE && !c->rq->body;
    int fd = c->rq->fresh_retry ? -1 : voro_http_upstream_take(w, c->view, (size_t)c->rq->pool, (size_t)idx, must_check);
    c->rq->fresh_retry = false;
    if (fd >= 0) {
        c->sfd = fd;
        c->rq->server_reused = true;
        voro_counter_add(&w->stats.http_upstream_reused, 1);
        exchange_start(c);
        return;
    }
    c->rq->server_reused = false;
    const struct voro_sockaddr *addr = &pc->servers[idx].addr;
    if (voro_http_upstream_reserve_fd(w, c->view) != 0) {
        voro_counter_add(&w->stats.rejected_fds, 1);
        reply_error(c, 503, "out of file descriptors for server connections", NULL, NULL);
        return;
    }
    fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        voro_conn_limits_fd_give(&w->dp->limits, 1);
        if (errno == EMFILE || errno == ENFILE)
            voro_worker_pause_accepts(w);
        reply_error(c, 503, "out of file descriptors", NULL, NULL);
        return;
    }
    c->sfd = fd;
    c->state = HS_CONNECTING;
    c->rq->connect_op = (struct voro_op){.cb = on_connect, .data = c};
    if (voro_loop_connect(w->loop, &c->rq->connect_op, fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        conn_abort(c);
        return;
    }
    c->pending |= P_CONNECT;
    set_deadline(c, pc->connect_timeout_ms ? pc->connect_timeout_ms : 3000, 504, false);
}

/* ---- request head: client -> Voro ----------------------------------------------------------- */

static bool method_idempotent(const char *buf, struct voro_http1_span m)
{
    static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (voro_http1_span_eq(buf, m, safe[i]))
            return true;
    return false;
}

static void make_request_id(struct voro_http_conn *c, char out[33])
{
    /* Unique per process: a per-worker counter mixed with the worker id, the pid and the time. */
    static _Thread_local uint64_t counter, seed;
    static const char hex[] = "0123456789abcdef";
    if (!seed) /* once per thread: getpid() is a system call */
        seed = ((uint64_t)c->w->id << 32 | (uint64_t)getpid()) ^ voro_now_us();
    uint64_t a = voro_hash64(&counter, sizeof(counter), seed);
    uint64_t b = a ^ (c->w->now_ms * 0x9E3779B97F4A7C15ull) ^ ++counter;
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

/* ---- forwarding --------------------------------------------------------------------------- */

/* Rewrites the model in the buffered body to `served`. Returns 0 or -1 after answering. */
static int rewrite_body_model(struct voro_http_conn *c, const char *served)
{
    struct voro_worker *w = c->w;
    struct voro_slice span;
    if (voro_json_find_model((const char *)c->rq->body->data, c->rq->body_len, &span) != 0)
        return 0;
    struct voro_http_bodybuf *nb = bodybuf_get(w);
    size_t need = 0;
    int rc = nb ? voro_json_rewrite_model((const char *)c->rq->body->data, c->rq->body_len, &span, served, (char *)nb->data,
                                          nb->cap, &need)
                : -ENOMEM;
    bool capped = nb == NULL;
    if (rc == -ENOSPC) {
        struct voro_http_bodybuf *grown = bodybuf_reserve(w, nb, (uint32_t)need, &capped);
        if (grown) {
            nb = grown;
            rc = voro_json_rewrite_model((const char *)c->rq->body->data, c->rq->body_len, &span, served, (char *)nb->data,
                                         nb->cap, &need);
        }
    }
    if (rc != 0) {
        if (nb)
            bodybuf_put(w, nb);
        if (capped)
            voro_counter_add(&w->stats.http_body_memory_refused, 1);
        reply_error(c, 503, capped ? "the node's memory for buffered request bodies is in use; retry later"
                                   : "could not rewrite the request's model", NULL, NULL);
        return -1;
    }
    bodybuf_put(w, c->rq->body);
    c->rq->body = nb;
    c->rq->body_len = (uint32_t)need;
    return 0;
}

/* Rewrites the head (and the buffered body's model) and goes to the server. */
static void request_forward(struct voro_http_conn *c)
{
    const char *served_model = c->rq->x.served_model;
    struct voro_worker *w = c->w;
    const struct voro_config *cfg = c->view->snap->cfg;
    const struct voro_http1_parser *p = &c->rq->parser;
    const char *head = (const char *)c->in->data + c->in_off;

    if (c->rq->body && served_model && c->rq->x.model[0] && strcmp(served_model, c->rq->x.model) != 0 &&
        rewrite_body_model(c, served_model) != 0)
        return;
    if (!c->rq->body) {
        /* Body bytes already received with the head stream on after it. */
        uint32_t after = c->in_len - c->in_off - p->head_len;
        long pre = voro_http_body_consume(&c->rq->req_body, c->in->data + c->in_off + p->head_len, after);
        if (pre < 0) {
            c->rq->req_done = false;
            reply_error(c, c->rq->req_body.error_status, c->rq->req_body.error_reason, NULL, NULL);
            return;
        }
        c->rq->body_pre = (uint32_t)pre;
    }
    if (!c->rq->out && !(c->rq->out = voro_slab_alloc_uninit(&w->out_slab))) {
        conn_abort(c);
        return;
    }
    char request_id[33];
    if (cfg->http.add_request_id)
        make_request_id(c, request_id);
    struct voro_http_request_rewrite rw = {
        .client_ip = c->client_ip,
        .proto = "http",
        .via = cfg->http.via[0] ? cfg->http.via : NULL,
        .request_id = cfg->http.add_request_id ? request_id : NULL,
        .upgrade = c->rq->req_upgrade,
        .http10 = c->rq->req_http10,
        .strip_expect = c->rq->body != NULL,
        .content_length = c->rq->body ? (int64_t)c->rq->body_len : -1,
    };
    size_t out_len = 0;
    if (voro_http_rewrite_request(head, p, &rw, c->rq->out, voro_http_out_size(cfg), &out_len) != 0) {
        c->rq->req_done = false;
        reply_error(c, 431, "request head too large after adding forwarding headers", NULL, NULL);
        return;
    }
    c->rq->out_len = (uint32_t)out_len;
    c->rq->pool = (int)c->rq->x.pool;
    c->rq->tried = c->rq->x.exclude;
    if (c->rq->body)
        c->in_off = c->in_len - c->rq->pipelined_after_body; /* what follows the body is the next request */
    else
        c->in_off += p->head_len;
    c->rq->attempts = 0;
    c->rq->req_done = false;
    c->rq->resp_done = false;
    if (!c->rq->body_pre)
        in_release_if_done(c); /* the head is in `out` now: nothing of `in` is needed */
    connect_next(c);
}

/* ---- buffering a body for the filters ------------------------------------------------- */

static void body_collect_more(struct voro_http_conn *c);

/* The whole body is in c->rq->body: run the filters' body hooks, then forward. */
static void body_collected(struct voro_http_conn *c)
{
    c->rq->req_done = true; /* every byte of this request is read: an error reply keeps the connection */
    c->rq->next_off = c->in_len - c->rq->pipelined_after_body;
    c->rq->x.body = c->rq->body->data;
    c->rq->x.body_len = c->rq->body_len;
    size_t n;
    const struct voro_http_filter *const *f = voro_http_filters(&n);
    for (size_t i = 0; i < n; i++) {
        if (!f[i]->on_request_body)
            continue;
        if (f[i]->on_request_body(&c->rq->x) == VORO_HTTP_REPLY) {
            reply_filter(c);
            return;
        }
    }
    c->rq->x.body = NULL;
    if (!c->rq->x.routed) {
        reply_error(c, 500, "no filter routed the request", NULL, NULL);
        return;
    }
    c->rq->req_done = false;
    request_forward(c);
}

/* Answers 503: no memory to buffer the body (the node-wide cap when `capped`). */
static void body_memory_refused(struct voro_http_conn *c, bool capped)
{
    if (capped)
        voro_counter_add(&c->w->stats.http_body_memory_refused, 1);
    reply_error(c, 503,
                capped ? "the node's memory for buffered request bodies is in use; retry later"
                       : "out of memory buffering the request body",
                NULL, NULL);
}

/* Appends body bytes (decoded when chunked). Returns 1 when the body ended, 0 for more, -1
 * after answering an error; *used = how many of the bytes belonged to the body. */
static int body_collect(struct voro_http_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    size_t pos = 0;
    while (pos < len && !c->rq->req_body.done) {
        const uint8_t *piece = data + pos;
        size_t piece_len = 0, step = 0;
        if (c->rq->req_body.kind == VORO_HTTP1_BODY_LENGTH) {
            piece_len = len - pos < c->rq->req_body.remaining ? len - pos : (size_t)c->rq->req_body.remaining;
            step = piece_len;
            c->rq->req_body.remaining -= piece_len;
            c->rq->req_body.done = c->rq->req_body.remaining == 0;
        } else {
            struct voro_http1_span span = {0, 0};
            enum voro_http1_result r =
                voro_http1_chunked_decode(&c->rq->body_dec, (const char *)data + pos, len - pos, &step, &span);
            if (r == VORO_HTTP1_ERROR) {
                c->keep_client = false;
                reply_error(c, c->rq->body_dec.error_status ? c->rq->body_dec.error_status : 400,
                            c->rq->body_dec.error_reason ? c->rq->body_dec.error_reason : "bad chunked body", NULL, NULL);
                return -1;
            }
            if (r == VORO_HTTP1_DONE)
                c->rq->req_body.done = true;
            if (r == VORO_HTTP1_DATA) {
                piece = data + pos + span.off;
                piece_len = span.len;
            }
        }
        pos += step;
        if (piece_len) {
            if (c->rq->body_len + piece_len > c->rq->body_limit) {
                c->keep_client = false;
                reply_error(c, 413, "request body too large to find its model", NULL, NULL);
                return -1;
            }
            bool capped;
            struct voro_http_bodybuf *b =
                bodybuf_reserve(c->w, c->rq->body, c->rq->body_len + (uint32_t)piece_len, &capped);
            if (!b) {
                c->keep_client = false;
                body_memory_refused(c, capped);
                return -1;
            }
            c->rq->body = b;
            memcpy(b->data + c->rq->body_len, piece, piece_len);
            c->rq->body_len += (uint32_t)piece_len;
        }
        if (step == 0)
            break;
    }
    *used = pos;
    return c->rq->req_body.done ? 1 : 0;
}

static void on_client_collect_recv(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    struct voro_buf *buf = client_body_bytes(c, op, res);
    if (!buf)
        return;
    size_t used = 0;
    int r = body_collect(c, buf->data, (size_t)res, &used);
    if (r < 0) {
        voro_loop_buf_release(w->loop, buf);
        return;
    }
    if (r == 1 && used < (size_t)res) {
        /* A pipelined request follows: keep its bytes at the end of `in`, after the head. */
        uint32_t extra = (uint32_t)((size_t)res - used);
        if (c->in_len + extra > c->in->cap) {
            voro_loop_buf_release(w->loop, buf);
            conn_abort(c);
            return;
        }
        memcpy(c->in->data + c->in_len, buf->data + used, extra);
        c->in_len += extra;
        c->rq->pipelined_after_body += extra;
    }
    voro_loop_buf_release(w->loop, buf);
    if (r == 1)
        body_collected(c);
    else
        body_collect_more(c);
}

static void body_collect_more(struct voro_http_conn *c)
{
    c->c_recv = (struct voro_op){.cb = on_client_collect_recv, .data = c, .buf_class = VORO_BUF_REQUEST};
    if (voro_loop_recv(c->w->loop, &c->c_recv, c->cfd) == 0) {
        c->pending |= P_CLIENT_RECV;
        if (!c->rq->body_deadline_set) {
            /* A buffered body holds node memory: one fixed deadline for all of it. */
            c->rq->body_deadline_set = true;
            set_deadline(c, c->view->snap->cfg->http.body_timeout_ms, 408, false);
        }
    } else {
        conn_abort(c);
    }
}

static void on_continue_sent(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    c->pending &= (uint8_t)~P_CLIENT_SEND;
    if (conn_closing(c, NULL))
        return;
    if (res < 0) {
        conn_abort(c);
        return;
    }
    body_collect_more(c);
}

/* A filter needs the whole body (the routing filter, for the model): buffer it, bounded by
 * x.body_limit, answering "100 Continue" ourselves when the client waits for it. */
static void body_collect_begin(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_http1_parser *p = &c->rq->parser;
    c->state = HS_READ_BODY;
    c->rq->body_limit = c->rq->x.body_limit;
    if (c->rq->req_body.kind == VORO_HTTP1_BODY_LENGTH && p->content_length > c->rq->body_limit) {
        c->keep_client = false;
        reply_error(c, 413, "request body too large to find its model", NULL, NULL);
        return;
    }
    if (!(c->rq->body = bodybuf_get(w))) {
        c->keep_client = false;
        body_memory_refused(c, true);
        return;
    }
    c->rq->body_len = 0;
    c->rq->body_send_off = 0;
    voro_http1_chunked_init(&c->rq->body_dec, 0);
    /* Body bytes that came with the head; what follows the body is the next request. */
    uint32_t start = c->in_off + p->head_len;
    size_t used = 0;
    int r = c->rq->req_body.done ? 1 : body_collect(c, c->in->data + start, c->in_len - start, &used);
    if (r < 0)
        return;
    c->rq->pipelined_after_body = (c->in_len - start) - (uint32_t)used;
    if (r == 1) {
        body_collected(c);
        return;
    }
    if ((p->flags & VORO_HTTP1_F_EXPECT_CONTINUE) && !c->rq->req_http10) { /* 1.0: ignored (RFC 9110 10.1.1) */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->c_send = (struct voro_op){.cb = on_continue_sent, .data = c};
        if (voro_loop_send(w->loop, &c->c_send, c->cfd, cont, sizeof(cont) - 1) == 0)
            c->pending |= P_CLIENT_SEND;
        else
            conn_abort(c);
        return;
    }
    body_collect_more(c);
}

/* A complete request head is in c->in[in_off .. in_off + parser.head_len). */
static void request_head_done(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_config *cfg = c->view->snap->cfg;
    const struct voro_listener_config *lc = &cfg->listeners[c->listener];
    const struct voro_http1_parser *p = &c->rq->parser;
    const char *head = (const char *)c->in->data + c->in_off;

    voro_counter_add(&w->stats.http_requests, 1);
    c->rq->next_off = c->in_off + p->head_len;
    struct voro_http_exchange *xs = &c->rq->x;
    memset(xs, 0, offsetof(struct voro_http_exchange, status));
    xs->cfg = cfg;
    xs->snap = c->view->snap;
    xs->listener = (size_t)c->listener;
    xs->head = head;
    xs->req = p;
    xs->client_ip = c->client_ip;
    xs->route = -1;
    copy_span(xs->method, sizeof(xs->method), head, p->method);
    copy_span(xs->path, sizeof(xs->path), head, p->target);
    c->rq->x.start_us = voro_now_us();
    c->rq->x.status = 0;
    c->rq->x.server = -1;
    c->rq->x.local_reply = false;
    c->rq->x.logged = false;
    c->rq->x.first_byte_us = c->rq->x.end_us = 0;
    c->rq->x.bytes_in = p->head_len;
    c->rq->x.bytes_out = 0;
    c->rq->req_head = voro_http1_span_eq(head, p->method, "HEAD");
    c->rq->req_http10 = p->version_minor == 0;
    c->rq->req_keep_alive = voro_http1_keep_alive(p);
    c->keep_client = c->rq->req_keep_alive && !w->draining;
    c->rq->req_idempotent = method_idempotent(head, p->method);
    /* HTTP/1.0 has no upgrade: its Upgrade field is ignored (RFC 9110 7.8). */
    c->rq->req_upgrade = !c->rq->req_http10 && (p->flags & VORO_HTTP1_F_CONN_UPGRADE) &&
                     voro_http1_find_header(p, head, "upgrade") != NULL;
    if (voro_http1_span_eq(head, p->method, "CONNECT")) {
        c->rq->req_done = false;
        reply_error(c, 405, "CONNECT is not supported", NULL, NULL);
        return;
    }
    enum voro_http1_body kind = voro_http1_body_kind(p, false, false);
    voro_http_body_init(&c->rq->req_body, kind, p->content_length);
    if (cfg->http.max_body && kind == VORO_HTTP1_BODY_LENGTH && p->content_length > cfg->http.max_body) {
        c->rq->req_done = false;
        reply_error(c, 413, "request body too large", NULL, NULL);
        return;
    }
    /* The filter chain decides where the request goes (or answers it). */
    struct voro_http_exchange *x = &c->rq->x;
    bool need_body = false;
    size_t n;
    const struct voro_http_filter *const *f = voro_http_filters(&n);
    for (size_t i = 0; i < n; i++) {
        if (!f[i]->on_request_head)
            continue;
        enum voro_http_verdict v = f[i]->on_request_head(x);
        if (v == VORO_HTTP_REPLY) {
            c->rq->req_done = c->rq->req_body.done;
            reply_filter(c);
            return;
        }
        need_body |= v == VORO_HTTP_NEED_BODY;
    }
    (void)lc;
    if (need_body) {
        body_collect_begin(c);
        return;
    }
    if (!x->routed) {
        reply_error(c, 500, "no filter routed the request", NULL, NULL);
        return;
    }
    request_forward(c);
}

/* Keeps `res` bytes from `buf` (taken over) after what `in` holds. Returns false when they do not
 * fit in one buffer (then `buf` is released). */
static bool in_append(struct voro_http_conn *c, struct voro_buf *buf, int res)
{
    struct voro_worker *w = c->w;
    if (!c->in) {
        c->in = buf;
        c->in_off = 0;
        c->in_len = (uint32_t)res;
        return true;
    }
    if (c->in->id == SMALL_HEAD_ID) {
        /* Back into a receive buffer: the kept bytes go in front of the new ones. */
        uint32_t kept = c->in_len - c->in_off;
        if (kept + (uint32_t)res > buf->cap) {
            voro_loop_buf_release(w->loop, buf);
            return false;
        }
        memmove(buf->data + kept, buf->data, (size_t)res);
        memcpy(buf->data, c->in->data + c->in_off, kept);
        in_buf_release(w, c->in);
        if (c->rq)
            c->rq->next_off = c->rq->next_off >= c->in_off ? c->rq->next_off - c->in_off : 0;
        c->in = buf;
        c->in_off = 0;
        c->in_len = kept + (uint32_t)res;
        return true;
    }
    if (c->in_off) {
        memmove(c->in->data, c->in->data + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        if (c->rq)
            c->rq->next_off = c->rq->next_off >= c->in_off ? c->rq->next_off - c->in_off : 0;
        c->in_off = 0;
    }
    if (c->in_len + (uint32_t)res > c->in->cap) {
        voro_loop_buf_release(w->loop, buf);
        return false;
    }
    memcpy(c->in->data + c->in_len, buf->data, (size_t)res);
    c->in_len += (uint32_t)res;
    voro_loop_buf_release(w->loop, buf);
    return true;
}

/* The client read armed by client_watch completed while the request is upstream (or Voro's own
 * reply is going out). */
static void client_watch_result(struct voro_http_conn *c, struct voro_buf *buf, int res)
{
    struct voro_worker *w = c->w;
    if (res <= 0) {
        if (buf)
            voro_loop_buf_release(w->loop, buf);
        /* The client left: abort the request upstream (the server sees its connection close). */
        voro_counter_add(&w->stats.http_client_aborts, 1);
        if (c->rq && !c->rq->x.status)
            c->rq->x.status = 499; /* nginx's "client closed request", for the log */
        conn_abort(c);
        return;
    }
    c->last_active_ms = w->now_ms;
    voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
    voro_counter_add(&c->lc->bytes_in, (uint64_t)res);
    /* The next pipelined request: the client is alive; keep the bytes and stop watching. */
    if (!in_append(c, buf, res)) {
        c->keep_client = false; /* more pipelined bytes than a buffer: answer this one, then close */
        return;
    }
}

static void on_client_head_recv(struct voro_op *op, int res)
{
    struct voro_http_conn *c = op->data;
    struct voro_worker *w = c->w;
    c->pending &= (uint8_t)~P_CLIENT_RECV;
    struct voro_buf *buf = op->buf;
    if (conn_closing(c, buf))
        return;
    if (c->state != HS_READ_HEAD) {
        client_watch_result(c, buf, res);
        return;
    }
    if (res <= 0) {
        if (buf)
            voro_loop_buf_release(w->loop, buf);
        if (res == 0 && c->in && c->in_len - c->in_off > 0) {
            c->rq->req_done = false;
            c->keep_client = false;
            reply_error(c, 400, "connection closed in the middle of a request head", NULL, NULL);
            return;
        }
        conn_abort(c); /* an idle keep-alive connection closed: nothing to say */
        return;
    }
    c->last_active_ms = w->now_ms;
    voro_counter_add(&w->stats.bytes_from_clients, (uint64_t)res);
    voro_counter_add(&c->lc->bytes_in, (uint64_t)res);
    if (!in_append(c, buf, res)) {
        c->keep_client = false;
        if (!c->rq && !req_start(c)) {
            conn_abort(c);
            return;
        }
        reply_error(c, 431, "request head too large", NULL, NULL);
        return;
    }
    if (c->timeout_status != 408)
        set_deadline(c, c->view->snap->cfg->http.header_timeout_ms, 408, false); /* from the first byte on */
    client_read_head(c);
}

/* Parses what is buffered; asks for more, answers an error, or starts the request. */
static void client_read_head(struct voro_http_conn *c)
{
    uint32_t avail = c->in ? c->in_len - c->in_off : 0;
    if (avail) {
        if (!c->rq) {
            /* The first byte of a request: from here on it needs its request state. */
            const struct voro_config *cfg = c->view->snap->cfg;
            if (!req_start(c)) {
                conn_abort(c);
                return;
            }
            struct voro_http1_limits limits = {
                .max_line = cfg->http.max_request_line,
                .max_head = cfg->http.max_header_bytes,
                .max_headers = cfg->http.max_headers,
            };
            voro_http1_init(&c->rq->parser, VORO_HTTP1_REQUEST, &limits);
        }
        enum voro_http1_result r = voro_http1_parse(&c->rq->parser, (const char *)c->in->data + c->in_off, avail);
        if (r == VORO_HTTP1_DONE) {
            request_head_done(c);
            return;
        }
        if (r == VORO_HTTP1_ERROR) {
            c->keep_client = false;
            c->rq->req_done = false;
            reply_error(c, c->rq->parser.error_status, c->rq->parser.error_reason, NULL, NULL);
            return;
        }
        if (c->in_off == 0 && c->in_len >= c->in->cap && c->in->id != SMALL_HEAD_ID) {
            c->keep_client = false;
            reply_error(c, 431, "request head too large", NULL, NULL);
            return;
        }
    }
    if (c->pending & P_CLIENT_RECV)
        return; /* the read armed while the last request was upstream is still waiting */
    in_compact(c);
    c->c_recv = (struct voro_op){.cb = on_client_head_recv, .data = c, .buf_class = VORO_BUF_REQUEST};
    if (voro_loop_recv(c->w->loop, &c->c_recv, c->cfd) == 0)
        c->pending |= P_CLIENT_RECV;
    else
        conn_abort(c);
}

/* Once the whole request is upstream, a read stays armed on the client: a client that leaves
 * (EOF or reset) while its request is upstream, waiting for the head or streaming, aborts the
 * server side at once, so the server stops generating for nobody. Bytes of a pipelined next
 * request are kept for later. Costs no buffer until the client sends something. */
static void client_watch(struct voro_http_conn *c)
{
    if ((c->pending & P_CLIENT_RECV) || c->state == HS_CLOSING || c->rq->req_upgrade)
        return; /* an upgrade's client bytes belong to the tunnel that may follow */
    if (c->in && c->in_len >= c->in->cap)
        return; /* already holding a full buffer of the next requests: the client is alive */
    c->c_recv = (struct voro_op){.cb = on_client_head_recv, .data = c, .buf_class = VORO_BUF_REQUEST};
    if (voro_loop_recv(c->w->loop, &c->c_recv, c->cfd) == 0)
        c->pending |= P_CLIENT_RECV;
}

/* Ready for the next request on this client connection (the first, or after a response). */
static void request_begin(struct voro_http_conn *c)
{
    struct voro_worker *w = c->w;
    const struct voro_config *cfg = c->view->snap->cfg;
    c->state = HS_READ_HEAD;
    if (c->pending & SERVER_OPS) {
        /* The last server is still being let go: this connection cannot start another request
         * in sync with it. */
        shutdown(c->cfd, SHUT_WR);
        conn_abort(c);
        return;
    }
    /* The request state goes back to the slab; the next one is taken with its first byte. */
    req_end(c);
    if (c->in && c->in_off >= c->in_len) {
        in_buf_release(w, c->in);
        c->in = NULL;
        c->in_off = c->in_len = 0;
    } else if (c->in && c->in_off) {
        memmove(c->in->data, c->in->data + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    /* Idle keep-alive until the first byte, then the head timeout (slowloris). A draining
     * worker still serves the request a keep-alive client may already have sent (answered with
     * Connection: close) and closes the idle connection after a short grace: closing at once
     * would reset a request that crossed the close. */
    if (c->in)
        set_deadline(c, cfg->http.header_timeout_ms, 408, false);
    else
        set_deadline(c, drain_idle_ms(w, cfg->http.keepalive_timeout_ms), 0, false);
    client_read_head(c);
}

static void on_timer(struct voro_timer *t)
{
    struct voro_http_conn *c = t->data;
    struct voro_worker *w = c->w;
    if (c->state == HS_CLOSING || c->state == HS_ERROR_REPLY || c->timeout_ms == 0)
        return;
    uint64_t due = (c->timeout_on_idle ? c->last_active_ms : c->timer_start_ms) + c->timeout_ms;
    uint32_t min_rate = c->view->snap->cfg->http.body_min_rate;
    if (c->rq && c->rq->body_rate_deadline && min_rate)
        due += c->rq->body_streamed * 1000 / min_rate; /* 1 s more per min_rate bytes received */
    if (w->now_ms < due) {
        voro_timer_add(&w->wheel, t, due - w->now_ms);
        return;
    }
    if (c->state == HS_CONNECTING) {
        c->rq->connect_timed_out = true;
        voro_counter_add(&w->stats.connect_timeouts, 1);
        voro_loop_cancel(w->loop, &c->rq->connect_op);
        return;
    }
    voro_counter_add(&w->stats.idle_timeouts, 1);
    if (c->timeout_status == 0) {
        conn_abort(c); /* an idle keep-alive connection: close without a word */
        return;
    }
    c->keep_client = false;
    if (c->timeout_status == 408)
        voro_counter_add(&w->stats.http_slow_clients, 1);
    if (c->timeout_status == 408 && !c->rq && !req_start(c)) {
        conn_abort(c);
        return;
    }
    if (c->timeout_status == 408)
        reply_error(c, 408, "request timed out", NULL, NULL);
    else
        reply_error(c, 504, "the server did not answer in time", NULL, NULL);
}

void voro_http_proxy_accepted(struct voro_worker *w, int listener, int fd)
{
    struct voro_worker_view *view = w->view;
    struct voro_listener_counters *lcount = voro_snapshot_listener_counters(view->snap, w->slot, (size_t)listener);
    struct voro_admission_ticket t;
    if (!voro_worker_admit(w, listener, fd, true, 1, &t)) /* the client address goes into X-Forwarded-For */
        return;
    struct voro_conn_admission adm = t.adm;
    struct sockaddr_storage peer = t.peer;
    struct voro_http_conn *c = voro_slab_alloc(&w->http_slab);
    if (!c) {
        if (t.admitted)
            voro_conn_limits_release(&w->dp->limits, &adm);
        voro_loop_close(w->loop, fd);
        return;
    }
    c->w = w;
    c->view = voro_worker_view_acquire(w);
    c->cfd = fd;
    c->sfd = -1;
    c->listener = listener;
    c->adm = adm;
    c->admitted = t.admitted;
    c->lc = lcount;
    voro_counter_add(&lcount->accepted, 1);
    if (peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, c->client_ip, sizeof(c->client_ip));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, c->client_ip, sizeof(c->client_ip));
    voro_timer_init(&c->timer, on_timer, c);
    c->next = w->http_conns;
    if (w->http_conns)
        w->http_conns->prev = c;
    w->http_conns = c;
    voro_counter_add(&w->stats.active, 1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    request_begin(c);
}

void voro_http_proxy_abort_all(struct voro_worker *w)
{
    struct voro_http_conn *c = w->http_conns;
    while (c) {
        struct voro_http_conn *next = c->next;
        voro_counter_add(&w->stats.drained_aborts, 1);
        conn_abort(c);
        c = next;
    }
}

void voro_http_proxy_on_tick(struct voro_worker *w)
{
    if (w->view)
        voro_http_upstream_expire(w, w->view);
}

void voro_http_proxy_drain(struct voro_worker *w)
{
    struct voro_http_conn *c = w->http_conns;
    while (c) {
        struct voro_http_conn *next = c->next;
        /* Idle keep-alive connections get a short grace (see request_begin); busy ones close
         * after their response (Connection: close). */
        if (c->state == HS_READ_HEAD && (!c->in || c->in_off >= c->in_len))
            set_deadline(c, drain_idle_ms(w, c->view->snap->cfg->http.keepalive_timeout_ms), 0, false);
        c = next;
    }
}
