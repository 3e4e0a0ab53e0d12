/* One-shot HTTP/1.1 client: connect, send, read a bounded response, decode its body, call back once. */
#include "cluster/http_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "proto/http1.h"

#define DEFAULT_MAX_RESPONSE (1u << 20)
#define READ_CHUNK 16384

struct voro_http_probe {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    voro_http_probe_cb cb;
    void *ctx;
    char *req_buf; /* request head + body */
    size_t req_len;
    char *buf; /* response bytes; the decoded body is compacted in place after the head */
    size_t len, cap, max;
    struct voro_http1_parser parser;
    bool head_done;
    bool is_head; /* HEAD request: the answer has no body whatever its headers say */
    enum voro_http1_body body_kind;
    struct voro_http1_chunked chunked;
    size_t raw_pos;  /* chunked: next undecoded raw byte */
    size_t body_end; /* chunked: end of the decoded body written so far */
    int open_handles;
    int sync_err; /* uv_tcp_connect failed at once: reported from the next loop turn */
    bool done;
};

static void probe_free_cb(uv_handle_t *h)
{
    struct voro_http_probe *p = h->data;
    if (--p->open_handles > 0)
        return;
    free(p->req_buf);
    free(p->buf);
    free(p);
}

static void probe_close(struct voro_http_probe *p)
{
    p->done = true;
    uv_timer_stop(&p->timer);
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, probe_free_cb);
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, probe_free_cb);
}

static void finish(struct voro_http_probe *p, int err, const char *reason)
{
    if (p->done)
        return;
    struct voro_http_result r = {.err = err, .reason = reason};
    if (err == 0) {
        r.status = p->parser.status;
        r.body = p->buf + p->parser.head_len;
        if (p->body_kind == VORO_HTTP1_BODY_CHUNKED)
            r.body_len = p->body_end - p->parser.head_len;
        else if (p->body_kind == VORO_HTTP1_BODY_LENGTH)
            r.body_len = (size_t)p->parser.content_length;
        else if (p->body_kind == VORO_HTTP1_BODY_UNTIL_CLOSE)
            r.body_len = p->len - p->parser.head_len;
        const struct voro_http1_header *ct = voro_http1_find_header(&p->parser, p->buf, "content-type");
        if (ct) {
            r.content_type = p->buf + ct->value.off;
            r.content_type_len = ct->value.len;
        }
    }
    p->done = true;
    p->cb(p->ctx, &r);
    probe_close(p);
}

static const char *connect_reason(int status)
{
    switch (status) {
    case UV_ECONNREFUSED: return "connect refused";
    case UV_ETIMEDOUT: return "timeout";
    default: return "connect error";
    }
}

/* Looks at what arrived; finishes when the response is complete. `eof` = the peer closed. */
static void examine(struct voro_http_probe *p, bool eof)
{
    if (!p->head_done) {
        enum voro_http1_result r = voro_http1_parse(&p->parser, p->buf, p->len);
        if (r == VORO_HTTP1_ERROR) {
            finish(p, -EPROTO, "bad response");
            return;
        }
        if (r == VORO_HTTP1_NEED_MORE) {
            if (eof)
                finish(p, -EPROTO, "closed early");
            return;
        }
        if (p->parser.status < 200) { /* 1xx interim: drop it and parse the next head */
            memmove(p->buf, p->buf + p->parser.head_len, p->len - p->parser.head_len);
            p->len -= p->parser.head_len;
            voro_http1_reset(&p->parser);
            examine(p, eof);
            return;
        }
        p->head_done = true;
        p->body_kind = voro_http1_body_kind(&p->parser, p->is_head, false);
        p->raw_pos = p->body_end = p->parser.head_len;
        voro_http1_chunked_init(&p->chunked, 0);
    }
    switch (p->body_kind) {
    case VORO_HTTP1_BODY_NONE:
        finish(p, 0, "ok");
        return;
    case VORO_HTTP1_BODY_LENGTH:
        if (p->len - p->parser.head_len >= p->parser.content_length)
            finish(p, 0, "ok");
        else if (eof)
            finish(p, -EPROTO, "closed early");
        return;
    case VORO_HTTP1_BODY_UNTIL_CLOSE:
        if (eof)
            finish(p, 0, "ok");
        return;
    case VORO_HTTP1_BODY_CHUNKED:
        while (p->raw_pos < p->len) {
            size_t used = 0;
            struct voro_http1_span sp = {0, 0};
            enum voro_http1_result r =
                voro_http1_chunked_decode(&p->chunked, p->buf + p->raw_pos, p->len - p->raw_pos, &used, &sp);
            if (r == VORO_HTTP1_ERROR) {
                finish(p, -EPROTO, "bad response");
                return;
            }
            if (r == VORO_HTTP1_DATA) {
                /* decoded bytes never outrun the raw ones, so compacting in place is safe */
                memmove(p->buf + p->body_end, p->buf + p->raw_pos + sp.off, sp.len);
                p->body_end += sp.len;
            }
            p->raw_pos += used;
            if (r == VORO_HTTP1_DONE) {
                finish(p, 0, "ok");
                return;
            }
            if (r == VORO_HTTP1_NEED_MORE)
                break;
        }
        if (eof)
            finish(p, -EPROTO, "closed early");
        return;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct voro_http_probe *p = h->data;
    b->base = NULL;
    b->len = 0;
    if (p->len >= p->max)
        return; /* on_read sees UV_ENOBUFS */
    if (p->cap - p->len < READ_CHUNK / 4 && p->cap < p->max) {
        size_t ncap = p->cap ? p->cap * 2 : READ_CHUNK;
        if (ncap > p->max)
            ncap = p->max;
        char *nb = realloc(p->buf, ncap);
        if (!nb)
            return;
        p->buf = nb;
        p->cap = ncap;
    }
    b->base = p->buf + p->len;
    b->len = p->cap - p->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct voro_http_probe *p = s->data;
    if (p->done)
        return;
    if (n == UV_ENOBUFS) {
        finish(p, -EMSGSIZE, p->len >= p->max ? "response too large" : "io error");
        return;
    }
    if (n == UV_EOF) {
        examine(p, true);
        return;
    }
    if (n < 0) {
        finish(p, (int)n, "io error");
        return;
    }
    p->len += (size_t)n;
    examine(p, false);
    if (!p->done && p->len >= p->max)
        finish(p, -EMSGSIZE, "response too large");
}

static void on_write(uv_write_t *w, int status)
{
    struct voro_http_probe *p = w->data;
    if (p->done)
        return;
    if (status)
        finish(p, status, "io error");
}

static void on_connect(uv_connect_t *c, int status)
{
    struct voro_http_probe *p = c->data;
    if (p->done)
        return;
    if (status) {
        finish(p, status, connect_reason(status));
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    uv_buf_t b = uv_buf_init(p->req_buf, (unsigned)p->req_len);
    if (!rc)
        rc = uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &b, 1, on_write);
    if (rc)
        finish(p, rc, "io error");
}

static void on_timeout(uv_timer_t *t)
{
    struct voro_http_probe *p = t->data;
    if (p->sync_err)
        finish(p, p->sync_err, connect_reason(p->sync_err));
    else
        finish(p, UV_ETIMEDOUT, "timeout");
}

static int build_request(struct voro_http_probe *p, const struct voro_http_request *req)
{
    char ct[160] = "";
    if (req->content_type)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", req->content_type);
    char cl[48] = "";
    if (req->body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0)
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", req->body_len);
    int head = snprintf(NULL, 0, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: voro-probe\r\nAccept: */*\r\n%s%sConnection: close\r\n\r\n",
                        req->method, req->path, req->host, ct, cl);
    if (head < 0)
        return -EINVAL;
    p->req_len = (size_t)head + (req->body ? req->body_len : 0);
    p->req_buf = malloc(p->req_len + 1);
    if (!p->req_buf)
        return -ENOMEM;
    snprintf(p->req_buf, (size_t)head + 1,
             "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: voro-probe\r\nAccept: */*\r\n%s%sConnection: close\r\n\r\n",
             req->method, req->path, req->host, ct, cl);
    if (req->body && req->body_len)
        memcpy(p->req_buf + head, req->body, req->body_len);
    return 0;
}

int voro_http_probe_start(struct voro_http_probe **out, uv_loop_t *loop, const struct voro_http_request *req,
                          voro_http_probe_cb cb, void *ctx)
{
    if (!req || !req->addr || !req->method || !req->host || !req->path || !cb)
        return -EINVAL;
    struct voro_http_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->cb = cb;
    p->ctx = ctx;
    p->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    p->is_head = strcmp(req->method, "HEAD") == 0;
    int rc = build_request(p, req);
    if (rc)
        goto fail_mem;
    voro_http1_init(&p->parser, VORO_HTTP1_RESPONSE, NULL);
    if ((rc = uv_timer_init(loop, &p->timer)) != 0)
        goto fail_mem;
    p->timer.data = p;
    p->open_handles = 1;
    if ((rc = uv_tcp_init(loop, &p->tcp)) != 0) {
        p->done = true;
        uv_close((uv_handle_t *)&p->timer, probe_free_cb);
        return rc;
    }
    p->tcp.data = p;
    p->open_handles = 2;
    p->connect_req.data = p;
    p->write_req.data = p;
    uv_timer_start(&p->timer, on_timeout, req->timeout_ms ? req->timeout_ms : 1000, 0);
    rc = uv_tcp_connect(&p->connect_req, &p->tcp, req->addr, on_connect);
    if (rc) {
        /* report through the loop like every other outcome: a zero timer carries it */
        uv_timer_stop(&p->timer);
        p->sync_err = rc;
        uv_timer_start(&p->timer, on_timeout, 0, 0);
    }
    if (out)
        *out = p;
    return 0;

fail_mem:
    free(p->req_buf);
    free(p);
    return rc;
}

void voro_http_probe_cancel(struct voro_http_probe *p)
{
    if (!p || p->done)
        return;
    probe_close(p);
}

int voro_http_url_parse(const char *url, struct sockaddr_storage *addr, char *host, size_t host_size, char *path,
                        size_t path_size)
{
    const char *prefix = "http://";
    if (!url || strncmp(url, prefix, strlen(prefix)) != 0)
        return -EINVAL;
    const char *h = url + strlen(prefix);
    const char *slash = strchr(h, '/');
    size_t hlen = slash ? (size_t)(slash - h) : strlen(h);
    if (hlen == 0 || hlen + 4 >= VORO_ADDR_TEXT_MAX)
        return -EINVAL;
    char hostport[VORO_ADDR_TEXT_MAX];
    memcpy(hostport, h, hlen);
    hostport[hlen] = '\0';
    /* a port is present when the text after the last ':' follows the host part (not inside [v6]) */
    const char *colon = strrchr(hostport, ':');
    const char *bracket = strrchr(hostport, ']');
    if (!colon || (bracket && colon < bracket))
        snprintf(hostport + hlen, sizeof(hostport) - hlen, ":80");
    struct voro_sockaddr sa;
    if (voro_sockaddr_parse(hostport, &sa) != 0 || hostport[0] == '*')
        return -EINVAL;
    const char *pth = slash ? slash : "/";
    if ((size_t)snprintf(host, host_size, "%s", hostport) >= host_size ||
        (size_t)snprintf(path, path_size, "%s", pth) >= path_size)
        return -ENAMETOOLONG;
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, &sa.ss, sa.len <= sizeof(*addr) ? sa.len : sizeof(*addr));
    return 0;
}
