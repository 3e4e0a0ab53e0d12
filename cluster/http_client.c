/* Minimal libuv HTTP/1.1 client for node-to-node cluster calls. */
#include "cluster/http_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "common/strbuf.h"
#include "proto/http1.h"

#define MAX_RESPONSE (4u << 20)

struct voro_http_call {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    int open_handles;
    bool done;
    bool closing;
    bool head_done;
    size_t head_len, body_need; /* body_need SIZE_MAX = until EOF */
    voro_http_cb cb;
    void *arg;
    struct voro_strbuf req;
    char *rbuf; /* response bytes, NUL-terminated */
    size_t rlen, rcap;
    struct voro_http1_parser parser;
};

static void handle_closed(uv_handle_t *h)
{
    struct voro_http_call *c = h->data;
    if (--c->open_handles > 0)
        return;
    voro_strbuf_free(&c->req);
    free(c->rbuf);
    free(c);
}

static void finish(struct voro_http_call *c, int status, const char *body, size_t len)
{
    if (!c->done) {
        c->done = true;
        c->cb(c->arg, status, body, len);
    }
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void on_timeout(uv_timer_t *t) { finish(t->data, -ETIMEDOUT, NULL, 0); }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct voro_http_call *c = h->data;
    if (c->rcap - c->rlen < 16384 + 1) {
        char *p = realloc(c->rbuf, c->rlen + 16384 + 1);
        if (!p) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->rbuf = p;
        c->rcap = c->rlen + 16384 + 1;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, 16384);
}

static void try_complete(struct voro_http_call *c, bool eof)
{
    if (!c->head_done) {
        enum voro_http1_result r = voro_http1_parse(&c->parser, c->rbuf, c->rlen);
        if (r == VORO_HTTP1_ERROR) {
            finish(c, -EPROTO, NULL, 0);
            return;
        }
        if (r == VORO_HTTP1_NEED_MORE) {
            if (eof)
                finish(c, -EPROTO, NULL, 0);
            return;
        }
        c->head_done = true;
        c->head_len = c->parser.head_len;
        if (c->parser.flags & VORO_HTTP1_F_CHUNKED) {
            finish(c, -EPROTO, NULL, 0);
            return;
        }
        c->body_need = (c->parser.flags & VORO_HTTP1_F_CONTENT_LENGTH) ? (size_t)c->parser.content_length : SIZE_MAX;
    }
    size_t have = c->rlen - c->head_len;
    if (c->body_need != SIZE_MAX && have >= c->body_need) {
        c->rbuf[c->head_len + c->body_need] = '\0';
        finish(c, c->parser.status, c->rbuf + c->head_len, c->body_need);
    } else if (eof) {
        if (c->body_need == SIZE_MAX)
            finish(c, c->parser.status, c->rbuf + c->head_len, have);
        else
            finish(c, -EPROTO, NULL, 0);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct voro_http_call *c = s->data;
    if (c->done)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            try_complete(c, true);
        else
            finish(c, (int)nread, NULL, 0);
        return;
    }
    c->rlen += (size_t)nread;
    c->rbuf[c->rlen] = '\0';
    if (c->rlen > MAX_RESPONSE) {
        finish(c, -EMSGSIZE, NULL, 0);
        return;
    }
    try_complete(c, false);
}

static void on_write(uv_write_t *w, int status)
{
    struct voro_http_call *c = w->data;
    if (status < 0 && !c->done)
        finish(c, status, NULL, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct voro_http_call *c = req->data;
    if (c->done)
        return;
    if (status < 0) {
        finish(c, status, NULL, 0);
        return;
    }
    uv_buf_t b = uv_buf_init(c->req.data, (unsigned)c->req.len);
    c->write.data = c;
    int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc)
        finish(c, rc, NULL, 0);
}

int voro_http_request(uv_loop_t *loop, const char *address, const char *method, const char *path,
                      const char *extra_headers, const char *body, size_t body_len, uint32_t timeout_ms,
                      voro_http_cb cb, void *arg, struct voro_http_call **out)
{
    struct voro_sockaddr sa;
    if (voro_sockaddr_parse(address, &sa) != 0)
        return -EINVAL;
    struct voro_http_call *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    voro_strbuf_init(&c->req);
    voro_strbuf_printf(&c->req,
                       "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n%s\r\n",
                       method, path, address, body_len, extra_headers ? extra_headers : "");
    if (body_len)
        voro_strbuf_append(&c->req, body, body_len);
    if (c->req.failed) {
        voro_strbuf_free(&c->req);
        free(c);
        return -ENOMEM;
    }
    struct voro_http1_limits lim = {0};
    voro_http1_init(&c->parser, VORO_HTTP1_RESPONSE, &lim);
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc) {
        voro_strbuf_free(&c->req);
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    rc = uv_timer_init(loop, &c->timer);
    if (rc) {
        c->closing = true;
        c->done = true;
        uv_close((uv_handle_t *)&c->tcp, handle_closed);
        return rc;
    }
    c->timer.data = c;
    c->open_handles = 2;
    c->connect.data = c;
    rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&sa.ss, on_connect);
    if (rc == 0)
        rc = uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
    if (rc) {
        c->done = true; /* no callback for a failed start */
        finish(c, rc, NULL, 0);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}

void voro_http_cancel(struct voro_http_call *call)
{
    if (call)
        finish(call, -ECANCELED, NULL, 0);
}
