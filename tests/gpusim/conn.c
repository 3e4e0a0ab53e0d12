/* gpusim: HTTP/1.1 connections on libuv (keep-alive, in-order pipelining, bounded heads and bodies). */
#include "tests/gpusim/gpusim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_IN_INITIAL 8192
/* Head + body + chunked framing of a body that is still being decoded in place. */
#define CONN_IN_MAX (GPUSIM_MAX_HEAD + GPUSIM_MAX_BODY + 65536)
#define CONN_FREE_MAX 1024
#define CONN_LINGER_MAX (4u * 1024u * 1024u)
/* A reader that does not keep up with its stream is dropped beyond this much pending output. */
#define CONN_OUT_MAX (16u * 1024u * 1024u)

static void conn_process(struct gpusim_conn *c);

static void on_close(uv_handle_t *h)
{
    struct gpusim_conn *c = h->data;
    struct gpusim_server *srv = c->srv;
    /* The sequence leaves the queue or batch only here, never inside an engine callback, so the
     * engine's batch iteration is never modified under its feet. */
    voro_gpusim_engine_cancel(srv, &c->seq);
    srv->n_conns--;
    if (srv->n_free_conns < CONN_FREE_MAX && c->in_cap == CONN_IN_INITIAL) {
        c->next_free = srv->free_conns;
        srv->free_conns = c;
        srv->n_free_conns++;
        return;
    }
    free(c->in);
    voro_strbuf_free(&c->out);
    voro_strbuf_free(&c->inflight);
    free(c);
}

static void conn_close(struct gpusim_conn *c)
{
    if (c->close_called)
        return;
    c->close_called = true;
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void start_reading(struct gpusim_conn *c);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct gpusim_conn *c = req->data;
    if (c->close_called)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Read on (discarding) until the client closes: closing with unread input would send an RST
     * that can destroy the answer we just sent before the client reads it. */
    c->in_len = 0;
    start_reading(c);
}

/* Graceful close: FIN after the last byte, then wait for the client's. */
static void conn_linger(struct gpusim_conn *c)
{
    if (c->lingering || c->close_called)
        return;
    c->lingering = true;
    c->busy = true;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct gpusim_conn *c = req->data;
    c->writing = false;
    voro_strbuf_reset(&c->inflight);
    if (c->close_called)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    voro_gpusim_conn_flush(c);
}

void voro_gpusim_conn_flush(struct gpusim_conn *c)
{
    if (c->writing || c->close_called)
        return;
    if (c->out.failed) { /* out of memory building a response: give up on this client */
        conn_close(c);
        return;
    }
    if (c->out.len == 0) {
        if (c->closing)
            conn_linger(c);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)c->out.len) {
        voro_strbuf_reset(&c->out);
        if (c->closing)
            conn_linger(c);
        return;
    }
    if (r < 0 && r != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = r > 0 ? (size_t)r : 0;
    memmove(c->out.data, c->out.data + done, c->out.len - done);
    c->out.len -= done;
    /* Swap buffers: uv_write owns `inflight` until on_write; new output goes to `out`. */
    struct voro_strbuf tmp = c->inflight;
    c->inflight = c->out;
    c->out = tmp;
    voro_strbuf_reset(&c->out);
    b = uv_buf_init(c->inflight.data, (unsigned)c->inflight.len);
    c->wreq.data = c;
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->writing = false;
        conn_close(c);
    }
}

static void append_common_headers(struct gpusim_conn *c)
{
    struct gpusim_server *srv = c->srv;
    voro_strbuf_printf(&c->out, "X-Gpusim-Name: %s\r\n", srv->cfg.name);
    if (!c->keep_alive)
        voro_strbuf_puts(&c->out, "Connection: close\r\n");
    else if (c->http10)
        voro_strbuf_puts(&c->out, "Connection: keep-alive\r\n");
}

void voro_gpusim_conn_respond(struct gpusim_conn *c, int status, const char *content_type, const char *extra_headers,
                              const char *body, size_t body_len)
{
    voro_strbuf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                       voro_http1_status_text(status), content_type, body_len);
    append_common_headers(c);
    if (extra_headers)
        voro_strbuf_puts(&c->out, extra_headers);
    voro_strbuf_append(&c->out, "\r\n", 2);
    voro_strbuf_append(&c->out, body, body_len);
    voro_gpusim_conn_flush(c);
}

void voro_gpusim_conn_stream_begin(struct gpusim_conn *c, const char *extra_headers)
{
    /* HTTP/1.0 has no chunked coding: the end of the stream is the end of the connection. */
    c->chunked_out = !c->http10;
    if (!c->chunked_out)
        c->keep_alive = false;
    voro_strbuf_puts(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n");
    if (c->chunked_out)
        voro_strbuf_puts(&c->out, "Transfer-Encoding: chunked\r\n");
    append_common_headers(c);
    if (extra_headers)
        voro_strbuf_puts(&c->out, extra_headers);
    voro_strbuf_append(&c->out, "\r\n", 2);
    voro_gpusim_conn_flush(c);
}

void voro_gpusim_conn_stream_chunk(struct gpusim_conn *c, const char *data, size_t len)
{
    if (c->close_called || len == 0)
        return;
    if (c->out.len + c->inflight.len > CONN_OUT_MAX) {
        conn_close(c); /* the sequence leaves the batch in the close callback */
        return;
    }
    if (c->chunked_out)
        voro_strbuf_printf(&c->out, "%zx\r\n", len);
    voro_strbuf_append(&c->out, data, len);
    if (c->chunked_out)
        voro_strbuf_append(&c->out, "\r\n", 2);
    voro_gpusim_conn_flush(c);
}

void voro_gpusim_conn_stream_end(struct gpusim_conn *c)
{
    if (c->close_called)
        return;
    if (c->chunked_out)
        voro_strbuf_append(&c->out, "0\r\n\r\n", 5);
    voro_gpusim_conn_flush(c);
}

static void reset_message(struct gpusim_conn *c)
{
    voro_http1_reset(&c->parser);
    c->head_done = false;
    c->body_kind = VORO_HTTP1_BODY_NONE;
    c->body_len = 0;
    c->raw_pos = 0;
    c->sent_continue = false;
    c->chunked_out = false;
}

void voro_gpusim_conn_request_done(struct gpusim_conn *c)
{
    c->busy = false;
    if (c->close_called)
        return;
    if (!c->keep_alive) {
        c->closing = true;
        voro_gpusim_conn_flush(c);
        return;
    }
    /* Called from an engine step (asynchronous answer): go on with buffered pipelined requests.
     * A synchronous answer returns into conn_process, which goes on by itself. */
    if (!c->in_handler) {
        conn_process(c);
        start_reading(c);
    }
}

/* Protocol error: answer with an OpenAI-shaped error and close. */
static void fail_conn(struct gpusim_conn *c, int status, const char *reason)
{
    c->keep_alive = false;
    c->closing = true;
    c->busy = true; /* parse nothing more */
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    voro_gpusim_api_error(c, status, status == 413 ? "request_too_large" : "invalid_request", reason);
}

/* Returns 1 when the whole message (head + body) is in, 0 when more bytes are needed, -1 on error
 * (already answered). On 1, *msg_end is the offset of the next message. */
static int receive_message(struct gpusim_conn *c, size_t *msg_end)
{
    struct voro_http1_parser *p = &c->parser;
    if (!c->head_done) {
        enum voro_http1_result r = voro_http1_parse(p, c->in, c->in_len);
        if (r == VORO_HTTP1_NEED_MORE)
            return 0;
        if (r == VORO_HTTP1_ERROR) {
            fail_conn(c, p->error_status, p->error_reason);
            return -1;
        }
        c->head_done = true;
        c->keep_alive = voro_http1_keep_alive(p);
        c->http10 = p->version_minor == 0; /* kept after the parser is reset for the next message */
        c->body_kind = voro_http1_body_kind(p, false, false);
        c->raw_pos = p->head_len;
        if (c->body_kind == VORO_HTTP1_BODY_LENGTH && p->content_length > GPUSIM_MAX_BODY) {
            fail_conn(c, 413, "request body larger than 1 MiB");
            return -1;
        }
        if (c->body_kind == VORO_HTTP1_BODY_CHUNKED)
            voro_http1_chunked_init(&c->chunked, GPUSIM_MAX_BODY);
        if ((p->flags & VORO_HTTP1_F_EXPECT_CONTINUE) && c->body_kind != VORO_HTTP1_BODY_NONE &&
            p->version_minor >= 1) {
            voro_strbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            voro_gpusim_conn_flush(c);
        }
    }
    const size_t head_len = p->head_len;
    switch (c->body_kind) {
    case VORO_HTTP1_BODY_LENGTH:
        if (c->in_len - head_len < p->content_length)
            return 0;
        c->body_len = p->content_length;
        *msg_end = head_len + p->content_length;
        return 1;
    case VORO_HTTP1_BODY_CHUNKED:
        for (;;) {
            size_t used = 0;
            struct voro_http1_span sp;
            enum voro_http1_result r =
                voro_http1_chunked_decode(&c->chunked, c->in + c->raw_pos, c->in_len - c->raw_pos, &used, &sp);
            if (r == VORO_HTTP1_ERROR) {
                fail_conn(c, c->chunked.error_status, c->chunked.error_reason);
                return -1;
            }
            if (r == VORO_HTTP1_DATA) {
                if (c->body_len + sp.len > GPUSIM_MAX_BODY) {
                    fail_conn(c, 413, "request body larger than 1 MiB");
                    return -1;
                }
                /* Decode in place: payload moves down over its own framing. */
                memmove(c->in + head_len + c->body_len, c->in + c->raw_pos + sp.off, sp.len);
                c->body_len += sp.len;
                c->raw_pos += used;
                continue;
            }
            c->raw_pos += used;
            if (r == VORO_HTTP1_DONE) {
                *msg_end = c->raw_pos;
                return 1;
            }
            /* NEED_MORE: drop consumed framing so the buffer bound applies to the payload. */
            size_t keep_from = head_len + c->body_len;
            memmove(c->in + keep_from, c->in + c->raw_pos, c->in_len - c->raw_pos);
            c->in_len -= c->raw_pos - keep_from;
            c->raw_pos = keep_from;
            return 0;
        }
    case VORO_HTTP1_BODY_UNTIL_CLOSE: /* never for a request */
    case VORO_HTTP1_BODY_NONE:
    default:
        c->body_len = 0;
        *msg_end = head_len;
        return 1;
    }
}

static void conn_process(struct gpusim_conn *c)
{
    while (!c->busy && !c->closing && !c->close_called) {
        size_t msg_end = 0;
        int r = receive_message(c, &msg_end);
        if (r <= 0)
            return;
        c->busy = true;
        c->seq.conn = c;
        c->in_handler = true;
        voro_gpusim_api_handle(c); /* may call voro_gpusim_conn_request_done synchronously */
        c->in_handler = false;
        /* The handler copied what it needs: the message's bytes can go. */
        memmove(c->in, c->in + msg_end, c->in_len - msg_end);
        c->in_len -= msg_end;
        bool keep = c->keep_alive;
        reset_message(c);
        c->keep_alive = keep;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct gpusim_conn *c = h->data;
    if (c->in_len == c->in_cap && c->in_cap < CONN_IN_MAX) {
        size_t cap = c->in_cap * 2 > CONN_IN_MAX ? CONN_IN_MAX : c->in_cap * 2;
        char *p = realloc(c->in, cap);
        if (p) {
            c->in = p;
            c->in_cap = cap;
        }
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct gpusim_conn *c = s->data;
    if (c->lingering) {
        c->in_len = 0;
        c->lingered += nread > 0 ? (size_t)nread : 0;
        if (nread < 0 || c->lingered > CONN_LINGER_MAX)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_ENOBUFS && c->busy) { /* pipelined backlog fills the buffer: wait */
            uv_read_stop(s);
            c->reading = false;
            return;
        }
        /* EOF or reset: a request in flight is cancelled (its batch slot is freed in on_close). */
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->in_len += (size_t)nread;
    if (!c->busy)
        conn_process(c);
    if (c->close_called || !c->reading)
        return;
    if (c->in_len == c->in_cap && c->in_cap >= CONN_IN_MAX) {
        if (c->busy) {
            uv_read_stop(s);
            c->reading = false;
        } else {
            fail_conn(c, 413, "request too large");
        }
    }
}

static void start_reading(struct gpusim_conn *c)
{
    if (c->reading || c->close_called || (c->closing && !c->lingering))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    else
        conn_close(c);
}

static struct gpusim_conn *conn_get(struct gpusim_server *srv)
{
    struct gpusim_conn *c = srv->free_conns;
    if (c) {
        srv->free_conns = c->next_free;
        srv->n_free_conns--;
        char *in = c->in;
        struct voro_strbuf out = c->out, inflight = c->inflight;
        memset(c, 0, sizeof(*c));
        c->in = in;
        c->in_cap = CONN_IN_INITIAL;
        c->out = out;
        c->inflight = inflight;
        voro_strbuf_reset(&c->out);
        voro_strbuf_reset(&c->inflight);
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->in = malloc(CONN_IN_INITIAL);
    if (!c->in) {
        free(c);
        return NULL;
    }
    c->in_cap = CONN_IN_INITIAL;
    voro_strbuf_init(&c->out);
    voro_strbuf_init(&c->inflight);
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct gpusim_server *srv = server->data;
    if (status < 0)
        return;
    struct gpusim_conn *c = conn_get(srv);
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    srv->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        c->close_called = true;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* one SSE event per token must leave at once */
    struct voro_http1_limits lim = {.max_line = 8192, .max_head = GPUSIM_MAX_HEAD, .max_headers = 100};
    voro_http1_init(&c->parser, VORO_HTTP1_REQUEST, &lim);
    c->keep_alive = true;
    start_reading(c);
}

int voro_gpusim_server_listen(struct gpusim_server *srv)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    int rc;
    if (strchr(srv->cfg.host, ':'))
        rc = uv_ip6_addr(srv->cfg.host, srv->cfg.port, &addr.v6);
    else
        rc = uv_ip4_addr(srv->cfg.host, srv->cfg.port, &addr.v4);
    if (rc < 0)
        return rc;
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, &addr.sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0) {
        int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        srv->cfg.port = port;
    }
    return 0;
}

void voro_gpusim_server_free_conns(struct gpusim_server *srv)
{
    while (srv->free_conns) {
        struct gpusim_conn *c = srv->free_conns;
        srv->free_conns = c->next_free;
        free(c->in);
        voro_strbuf_free(&c->out);
        voro_strbuf_free(&c->inflight);
        free(c);
    }
    srv->n_free_conns = 0;
}

void voro_gpusim_conn_close(struct gpusim_conn *c) { conn_close(c); }
