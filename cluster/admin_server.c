/* Admin HTTP server: libuv TCP listener, per-connection request state machine, exact-path routing. */
#include "cluster/admin_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "proto/http1.h"

#define LINGER_MS 1000
/* A client that pipelines without reading its answers is paused at this many queued answers,
 * and resumed when half of them are written, so its memory stays bounded. */
#define MAX_PENDING_WRITES 32

struct route {
    char *path;
    unsigned methods;
    voro_admin_handler handler;
    void *ctx;
};

enum conn_phase {
    PH_HEAD = 0, /* reading a request head */
    PH_BODY,     /* reading a Content-Length body into `body` */
    PH_DRAIN,    /* final answer queued: discard input until EOF or the linger timer */
};

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct voro_admin_server *srv;
    struct admin_conn *prev, *next;
    enum conn_phase phase;
    int open_handles;
    bool closing;
    bool close_after; /* answer the current request, then drain and close */
    bool shutdown_started;
    bool shutdown_complete;
    bool eof;
    bool paused; /* reading stopped for backpressure */
    bool was_http10;
    unsigned pending_writes;
    struct voro_admin_deferred *deferred; /* the request being answered later, if any */
    struct voro_http1_parser parser;
    char *body;
    size_t body_len, body_need;
    size_t len; /* bytes in head[] */
    char head[VORO_ADMIN_MAX_HEAD + 1]; /* +1: the parser must see the byte past the limit */
};

struct voro_admin_deferred {
    struct admin_conn *conn; /* NULL once the connection closed */
    bool head_only, close;
    /* Completed while the handler that deferred is still running: dispatch answers from `resp`. */
    struct voro_admin_response *in_handler;
    bool completed;
};

struct admin_write {
    uv_write_t req;
    struct admin_conn *conn;
    struct voro_strbuf head, body;
};

struct voro_admin_server {
    uv_loop_t *loop;
    uv_tcp_t listen;
    bool listen_open;
    bool closing;
    size_t n_conns;
    struct admin_conn *conns;
    struct route *routes;
    size_t n_routes;
    uint16_t port;
};

static void conn_close(struct admin_conn *c);
static void process(struct admin_conn *c);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void maybe_free_server(struct voro_admin_server *s)
{
    if (!s->closing || s->listen_open || s->n_conns)
        return;
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
}

static void healthz(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)ctx;
    (void)req;
    voro_strbuf_puts(&resp->body, "{\"status\":\"ok\"}\n");
}

int voro_admin_server_register(struct voro_admin_server *s, const char *path, unsigned methods,
                               voro_admin_handler handler, void *ctx)
{
    if (!path || path[0] != '/' || !handler || !methods)
        return -EINVAL;
    if (methods & VORO_ADMIN_GET)
        methods |= VORO_ADMIN_HEAD;
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) == 0) {
            s->routes[i].methods = methods;
            s->routes[i].handler = handler;
            s->routes[i].ctx = ctx;
            return 0;
        }
    }
    struct route *r = realloc(s->routes, (s->n_routes + 1) * sizeof(*r));
    if (!r)
        return -ENOMEM;
    s->routes = r;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    s->routes[s->n_routes++] = (struct route){.path = copy, .methods = methods, .handler = handler, .ctx = ctx};
    return 0;
}

uint16_t voro_admin_server_port(const struct voro_admin_server *s) { return s->port; }

/* ---- responses ---- */

static void write_done(uv_write_t *req, int status)
{
    struct admin_write *w = req->data;
    struct admin_conn *c = w->conn;
    voro_strbuf_free(&w->head);
    voro_strbuf_free(&w->body);
    free(w);
    c->pending_writes--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->paused && c->pending_writes <= MAX_PENDING_WRITES / 2 && !c->shutdown_started) {
        c->paused = false;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        process(c); /* requests already buffered */
    }
}

static void on_linger(uv_timer_t *t) { conn_close(t->data); }

static void shutdown_done(uv_shutdown_t *req, int status)
{
    struct admin_conn *c = req->data;
    if (c->closing)
        return;
    c->shutdown_complete = true;
    if (status < 0 || c->eof) {
        conn_close(c);
        return;
    }
    /* our FIN is out; keep reading (discarding) so the peer sees the answer rather than a reset */
    uv_timer_start(&c->timer, on_linger, LINGER_MS, 0);
}

/* Stops serving requests on `c`: everything queued is written, then FIN, drain, close. */
static void conn_finish(struct admin_conn *c)
{
    if (c->closing || c->shutdown_started)
        return;
    c->phase = PH_DRAIN;
    c->shutdown_started = true;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_done) != 0)
        conn_close(c);
}

static void send_response(struct admin_conn *c, int status, const char *content_type, struct voro_strbuf *body,
                          bool head_only, bool close, const char *extra_headers)
{
    struct admin_write *w = calloc(1, sizeof(*w));
    if (!w) {
        voro_strbuf_free(body);
        conn_close(c);
        return;
    }
    w->conn = c;
    w->req.data = w;
    w->body = *body;
    voro_strbuf_init(body);
    voro_strbuf_printf(&w->head,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                       "Connection: %s\r\n%s\r\n",
                       status, voro_http1_status_text(status), content_type, w->body.len,
                       close ? "close" : "keep-alive", extra_headers ? extra_headers : "");
    if (w->head.failed || w->body.failed) {
        voro_strbuf_free(&w->head);
        voro_strbuf_free(&w->body);
        free(w);
        conn_close(c);
        return;
    }
    uv_buf_t bufs[2] = {uv_buf_init(w->head.data, (unsigned)w->head.len),
                        uv_buf_init(w->body.data, (unsigned)w->body.len)};
    unsigned nbufs = (head_only || w->body.len == 0) ? 1 : 2;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, write_done) != 0) {
        voro_strbuf_free(&w->head);
        voro_strbuf_free(&w->body);
        free(w);
        conn_close(c);
        return;
    }
    c->pending_writes++;
    if (close)
        conn_finish(c);
}

static void send_error(struct admin_conn *c, int status, const char *reason)
{
    struct voro_strbuf body;
    voro_strbuf_init(&body);
    voro_strbuf_puts(&body, "{\"error\":");
    voro_strbuf_json_string(&body, reason);
    voro_strbuf_puts(&body, "}\n");
    send_response(c, status, "application/json", &body, false, true, NULL);
}

/* ---- request dispatch ---- */

static unsigned method_bit(const char *m)
{
    static const struct { const char *name; unsigned bit; } tab[] = {
        {"GET", VORO_ADMIN_GET},   {"HEAD", VORO_ADMIN_HEAD},     {"POST", VORO_ADMIN_POST},
        {"PUT", VORO_ADMIN_PUT},   {"DELETE", VORO_ADMIN_DELETE}, {"PATCH", VORO_ADMIN_PATCH},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(m, tab[i].name) == 0)
            return tab[i].bit;
    return 0;
}

static void append_allow(struct voro_strbuf *sb, unsigned methods)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    voro_strbuf_puts(sb, "Allow: ");
    bool first = true;
    for (unsigned i = 0; i < 6; i++) {
        if (methods & (1u << i)) {
            voro_strbuf_printf(sb, "%s%s", first ? "" : ", ", names[i]);
            first = false;
        }
    }
    voro_strbuf_puts(sb, "\r\n");
}

/* Answers the request whose head is head[0 .. parser.head_len) and whose body is in `body`. */
static void dispatch(struct admin_conn *c)
{
    struct voro_admin_server *s = c->srv;
    const struct voro_http1_parser *p = &c->parser;
    bool close = !voro_http1_keep_alive(p) || p->version_minor == 0;
    char method[16];
    if (p->method.len >= sizeof(method)) {
        send_error(c, 501, "method not implemented");
        return;
    }
    memcpy(method, c->head + p->method.off, p->method.len);
    method[p->method.len] = '\0';
    char *target = strndup(c->head + p->target.off, p->target.len);
    if (!target) {
        send_error(c, 500, "out of memory");
        return;
    }
    if (target[0] != '/') {
        free(target);
        send_error(c, 400, "only origin-form request targets are accepted");
        return;
    }
    char *q = strchr(target, '?');
    const char *query = "";
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    const struct route *r = NULL;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, target) == 0)
            r = &s->routes[i];
    bool head_only = strcmp(method, "HEAD") == 0;
    struct voro_strbuf body;
    voro_strbuf_init(&body);
    if (!r) {
        voro_strbuf_puts(&body, "{\"error\":\"not found\",\"path\":");
        voro_strbuf_json_string(&body, target);
        voro_strbuf_puts(&body, "}\n");
        send_response(c, 404, "application/json", &body, head_only, close, NULL);
    } else if (!(method_bit(method) & r->methods)) {
        struct voro_strbuf allow;
        voro_strbuf_init(&allow);
        append_allow(&allow, r->methods);
        voro_strbuf_puts(&body, "{\"error\":\"method not allowed\",\"method\":");
        voro_strbuf_json_string(&body, method);
        voro_strbuf_puts(&body, "}\n");
        send_response(c, 405, "application/json", &body, head_only, close, allow.data);
        voro_strbuf_free(&allow);
    } else {
        char auth[1024];
        struct voro_admin_request req = {
            .method = method, .path = target, .query = query,
            .body = c->body ? c->body : "", .body_len = c->body_len, .priv = c,
        };
        req.authorization = voro_admin_header(&req, "Authorization", auth, sizeof(auth));
        struct voro_admin_response resp = {.status = 200, .content_type = NULL, .priv = c};
        voro_strbuf_init(&resp.body);
        r->handler(r->ctx, &req, &resp);
        if (resp.deferred && resp.deferred->completed) {
            free(resp.deferred);
            resp.deferred = NULL;
        } else if (resp.deferred) {
            resp.deferred->in_handler = NULL;
            resp.deferred->conn = c;
            resp.deferred->head_only = head_only;
            resp.deferred->close = close;
            c->deferred = resp.deferred;
            voro_strbuf_free(&resp.body);
            voro_strbuf_free(&body);
            free(target);
            return;
        }
        int status = (resp.status >= 100 && resp.status <= 999) ? resp.status : 500;
        send_response(c, status, resp.content_type ? resp.content_type : "application/json", &resp.body, head_only,
                      close, NULL);
        voro_strbuf_free(&resp.body);
    }
    voro_strbuf_free(&body);
    free(target);
}

/* The current request (head + body) is answered: drop its bytes and get ready for the next. */
static void next_request(struct admin_conn *c, size_t consumed)
{
    memmove(c->head, c->head + consumed, c->len - consumed);
    c->len -= consumed;
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_need = 0;
    voro_http1_reset(&c->parser);
    if (c->closing || c->shutdown_started)
        return; /* stays in PH_DRAIN */
    c->phase = PH_HEAD;
    if (c->deferred)
        uv_timer_stop(&c->timer); /* the owner of the deferred answer bounds its time */
    else
        uv_timer_start(&c->timer, on_linger, VORO_ADMIN_TIMEOUT_MS, 0);
}

static void process(struct admin_conn *c)
{
    /* bounded: each round consumes a whole request or returns */
    while (c->phase == PH_HEAD && !c->closing && !c->shutdown_started && !c->deferred) {
        if (c->pending_writes >= MAX_PENDING_WRITES) {
            c->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
            return;
        }
        enum voro_http1_result r = voro_http1_parse(&c->parser, c->head, c->len);
        if (r == VORO_HTTP1_NEED_MORE)
            return;
        if (r == VORO_HTTP1_ERROR) {
            send_error(c, c->parser.error_status, c->parser.error_reason);
            return;
        }
        const struct voro_http1_parser *p = &c->parser;
        size_t head_len = p->head_len;
        if (p->flags & VORO_HTTP1_F_TRANSFER_ENCODING) {
            send_error(c, 411, "chunked request bodies are not supported; send Content-Length");
            return;
        }
        if ((p->flags & VORO_HTTP1_F_CONTENT_LENGTH) && p->content_length > VORO_ADMIN_MAX_BODY) {
            send_error(c, 413, "request body too large");
            return;
        }
        size_t need = (p->flags & VORO_HTTP1_F_CONTENT_LENGTH) ? (size_t)p->content_length : 0;
        if (need == 0) {
            dispatch(c);
            next_request(c, head_len);
            continue;
        }
        c->body = malloc(need + 1);
        if (!c->body) {
            send_error(c, 500, "out of memory");
            return;
        }
        c->body_need = need;
        size_t avail = c->len - head_len;
        size_t take = avail < need ? avail : need;
        memcpy(c->body, c->head + head_len, take);
        c->body_len = take;
        c->body[take] = '\0';
        if (take == need) {
            dispatch(c);
            next_request(c, head_len + take);
            continue;
        }
        /* the head stays in head[] for dispatch; the rest of the body is read into body[] */
        c->len = head_len;
        c->phase = PH_BODY;
        if (p->flags & VORO_HTTP1_F_EXPECT_CONTINUE) {
            static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort: the client sends anyway after a while */
        }
    }
}

/* ---- connection I/O ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct admin_conn *c = handle->data;
    if (c->phase == PH_BODY)
        *buf = uv_buf_init(c->body + c->body_len, (unsigned)(c->body_need - c->body_len));
    else if (c->phase == PH_DRAIN)
        *buf = uv_buf_init(c->head, sizeof(c->head)); /* discarded */
    else
        *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct admin_conn *c = stream->data;
    if (c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->shutdown_complete) {
            conn_close(c);
            return;
        }
        /* half-close from the client: let queued answers go out (shutdown waits for them), then close */
        c->eof = true;
        uv_read_stop(stream);
        if (c->deferred) {
            c->close_after = true; /* the deferred answer goes out first */
            return;
        }
        conn_finish(c);
        return;
    }
    if (nread == 0)
        return;
    switch (c->phase) {
    case PH_DRAIN:
        return;
    case PH_BODY:
        c->body_len += (size_t)nread;
        if (c->body_len == c->body_need) {
            c->body[c->body_len] = '\0';
            dispatch(c);
            next_request(c, c->len);
            process(c);
        }
        return;
    case PH_HEAD:
        c->len += (size_t)nread;
        process(c);
        return;
    }
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct admin_conn *c = handle->data;
    if (--c->open_handles > 0)
        return;
    struct voro_admin_server *s = c->srv;
    free(c->body);
    free(c);
    s->n_conns--;
    maybe_free_server(s);
}

static void conn_close(struct admin_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->deferred) {
        c->deferred->conn = NULL;
        c->deferred = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void rejected_closed(uv_handle_t *handle) { free(handle); }

static void on_connection(uv_stream_t *server, int status)
{
    struct voro_admin_server *s = server->data;
    if (status < 0 || s->closing)
        return;
    if (s->n_conns >= VORO_ADMIN_MAX_CONNS) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t || uv_tcp_init(s->loop, t) != 0) {
            free(t);
            return;
        }
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, rejected_closed);
        VORO_WARN("admin", "connection limit reached limit=%d", VORO_ADMIN_MAX_CONNS);
        return;
    }
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 1;
    s->n_conns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_timer_init(s->loop, &c->timer) != 0) {
        /* only the tcp handle needs closing */
        c->closing = true;
        s->conns = c->next;
        if (c->next)
            c->next->prev = NULL;
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
        return;
    }
    c->open_handles = 2;
    struct voro_http1_limits lim = {.max_line = 8192, .max_head = VORO_ADMIN_MAX_HEAD, .max_headers = 0};
    voro_http1_init(&c->parser, VORO_HTTP1_REQUEST, &lim);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_linger, VORO_ADMIN_TIMEOUT_MS, 0);
}

static void listen_closed(uv_handle_t *handle)
{
    struct voro_admin_server *s = handle->data;
    s->listen_open = false;
    maybe_free_server(s);
}

int voro_admin_server_create(struct voro_admin_server **out, uv_loop_t *loop, const struct voro_sockaddr *bind)
{
    struct voro_admin_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    int rc = voro_admin_server_register(s, "/healthz", VORO_ADMIN_GET, healthz, NULL);
    if (rc)
        goto fail_routes;
    rc = uv_tcp_init(loop, &s->listen);
    if (rc)
        goto fail_routes;
    s->listen.data = s;
    s->listen_open = true;
    rc = uv_tcp_bind(&s->listen, (const struct sockaddr *)&bind->ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listen, 128, on_connection);
    if (rc) {
        VORO_ERROR("admin", "cannot listen on %s: %s", bind->text, uv_strerror(rc));
        goto fail_listen;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&s->listen, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out = s;
    return 0;

fail_listen:
    /* the handle must go through its close callback, which frees s */
    s->closing = true;
    uv_close((uv_handle_t *)&s->listen, listen_closed);
    return rc;
fail_routes:
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
    return rc;
}

void voro_admin_server_close(struct voro_admin_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listen, listen_closed);
}

/* ---- headers and deferred answers ---- */

const char *voro_admin_header(const struct voro_admin_request *req, const char *name, char *buf, size_t buflen)
{
    const struct admin_conn *c = req->priv;
    if (!c || !buflen)
        return NULL;
    const struct voro_http1_header *h = voro_http1_find_header(&c->parser, c->head, name);
    if (!h)
        return NULL;
    size_t n = h->value.len < buflen - 1 ? h->value.len : buflen - 1;
    memcpy(buf, c->head + h->value.off, n);
    buf[n] = '\0';
    return buf;
}

struct voro_admin_deferred *voro_admin_defer(struct voro_admin_response *resp)
{
    if (resp->deferred)
        return resp->deferred;
    struct voro_admin_deferred *d = calloc(1, sizeof(*d));
    if (d)
        d->in_handler = resp;
    resp->deferred = d;
    return d;
}

void voro_admin_complete(struct voro_admin_deferred *d, int status, struct voro_strbuf *body)
{
    if (!d) {
        voro_strbuf_free(body);
        return;
    }
    if (d->in_handler) {
        if (d->completed) {
            voro_strbuf_free(body);
            return;
        }
        struct voro_admin_response *resp = d->in_handler;
        resp->status = status;
        voro_strbuf_free(&resp->body);
        resp->body = *body;
        voro_strbuf_init(body);
        d->completed = true;
        return; /* dispatch sends it and frees d */
    }
    struct admin_conn *c = d->conn;
    if (c && !c->closing) {
        c->deferred = NULL;
        if (status < 100 || status > 999)
            status = 500;
        send_response(c, status, "application/json", body, d->head_only, d->close || c->close_after, NULL);
        if (!c->closing && !c->shutdown_started) {
            uv_timer_start(&c->timer, on_linger, VORO_ADMIN_TIMEOUT_MS, 0);
            process(c); /* requests pipelined behind the deferred one */
        }
    }
    voro_strbuf_free(body);
    free(d);
}
