/* Request and response head rewriting for the HTTP proxy. */
#include "node/http/http_rewrite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct out {
    char *buf;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void put_span(struct out *o, const char *in, struct voro_http1_span sp) { put(o, in + sp.off, sp.len); }

static bool name_is(const char *in, struct voro_http1_span name, const char *s)
{
    return voro_http1_span_ieq(in, name, s);
}

/* Does the comma-separated Connection header list `token`? */
static bool connection_lists(const char *in, const struct voro_http1_parser *p, struct voro_http1_span token)
{
    for (uint32_t i = 0; i < p->n_headers; i++) {
        if (!name_is(in, p->headers[i].name, "connection"))
            continue;
        const char *v = in + p->headers[i].value.off;
        uint32_t n = p->headers[i].value.len, pos = 0;
        while (pos < n) {
            while (pos < n && (v[pos] == ',' || v[pos] == ' ' || v[pos] == '\t'))
                pos++;
            uint32_t start = pos;
            while (pos < n && v[pos] != ',' && v[pos] != ' ' && v[pos] != '\t')
                pos++;
            if (pos > start && pos - start == token.len && strncasecmp(v + start, in + token.off, token.len) == 0)
                return true;
        }
    }
    return false;
}

bool voro_http_is_hop_by_hop(const char *in, const struct voro_http1_parser *p, struct voro_http1_span name)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (name_is(in, name, hop[i]))
            return true;
    /* Names the sender listed in Connection are hop-by-hop too, except the framing headers
     * (dropping those would change how the body is delimited). */
    if (name_is(in, name, "content-length") || name_is(in, name, "transfer-encoding") || name_is(in, name, "host"))
        return false;
    return connection_lists(in, p, name);
}

int voro_http_rewrite_request(const char *in, const struct voro_http1_parser *p,
                              const struct voro_http_request_rewrite *rw, char *outbuf, size_t cap, size_t *out_len)
{
    struct out o = {.buf = outbuf, .cap = cap};
    put_span(&o, in, p->method);
    puts_(&o, " ");
    put_span(&o, in, p->target);
    puts_(&o, rw->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    bool have_xff = false, have_via = false, have_id = false;
    for (uint32_t i = 0; i < p->n_headers; i++) {
        const struct voro_http1_header *h = &p->headers[i];
        if (voro_http_is_hop_by_hop(in, p, h->name)) {
            if (!(rw->upgrade && name_is(in, h->name, "upgrade")))
                continue;
        }
        if (rw->strip_expect && name_is(in, h->name, "expect"))
            continue;
        if (rw->content_length >= 0 && (name_is(in, h->name, "content-length") || name_is(in, h->name, "transfer-encoding")))
            continue;
        if (name_is(in, h->name, "x-forwarded-proto"))
            continue; /* replaced with what this listener really is */
        put_span(&o, in, h->name);
        puts_(&o, ": ");
        put_span(&o, in, h->value);
        if (name_is(in, h->name, "x-forwarded-for") && !have_xff) {
            have_xff = true;
            puts_(&o, ", ");
            puts_(&o, rw->client_ip);
        } else if (name_is(in, h->name, "via") && rw->via && !have_via) {
            have_via = true;
            puts_(&o, ", 1.1 ");
            puts_(&o, rw->via);
        } else if (name_is(in, h->name, "x-request-id")) {
            have_id = true;
        }
        puts_(&o, "\r\n");
    }
    if (!have_xff) {
        puts_(&o, "X-Forwarded-For: ");
        puts_(&o, rw->client_ip);
        puts_(&o, "\r\n");
    }
    puts_(&o, "X-Forwarded-Proto: ");
    puts_(&o, rw->proto ? rw->proto : "http");
    puts_(&o, "\r\n");
    if (rw->via && !have_via) {
        puts_(&o, "Via: 1.1 ");
        puts_(&o, rw->via);
        puts_(&o, "\r\n");
    }
    if (rw->request_id && !have_id) {
        puts_(&o, "X-Request-Id: ");
        puts_(&o, rw->request_id);
        puts_(&o, "\r\n");
    }
    if (rw->content_length >= 0) {
        char num[24]; /* an int64 in decimal: at most 20 characters and the NUL */
        int n = snprintf(num, sizeof(num), "%lld", (long long)rw->content_length);
        puts_(&o, "Content-Length: ");
        put(&o, num, (size_t)n);
        puts_(&o, "\r\n");
    }
    if (rw->upgrade)
        puts_(&o, "Connection: upgrade\r\n");
    else if (rw->http10)
        puts_(&o, "Connection: close\r\n");
    puts_(&o, "\r\n");
    if (o.overflow)
        return -ENOSPC;
    *out_len = o.len;
    return 0;
}

int voro_http_rewrite_response(const char *in, const struct voro_http1_parser *p,
                               const struct voro_http_response_rewrite *rw, char *outbuf, size_t cap, size_t *out_len)
{
    struct out o = {.buf = outbuf, .cap = cap};
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d ", p->status);
    put(&o, line, (size_t)n);
    if (p->reason.len)
        put_span(&o, in, p->reason);
    else
        puts_(&o, voro_http1_status_text(p->status));
    puts_(&o, "\r\n");
    bool have_via = false;
    for (uint32_t i = 0; i < p->n_headers; i++) {
        const struct voro_http1_header *h = &p->headers[i];
        if (voro_http_is_hop_by_hop(in, p, h->name) && !(rw->upgrade && name_is(in, h->name, "upgrade")))
            continue;
        if (rw->client_http10 && name_is(in, h->name, "transfer-encoding"))
            continue;
        put_span(&o, in, h->name);
        puts_(&o, ": ");
        put_span(&o, in, h->value);
        if (name_is(in, h->name, "via") && rw->via && !have_via) {
            have_via = true;
            puts_(&o, ", 1.1 ");
            puts_(&o, rw->via);
        }
        puts_(&o, "\r\n");
    }
    if (rw->via && !have_via) {
        puts_(&o, "Via: 1.1 ");
        puts_(&o, rw->via);
        puts_(&o, "\r\n");
    }
    if (rw->interim) {
        /* an interim head says nothing about the connection */
    } else if (rw->upgrade)
        puts_(&o, "Connection: upgrade\r\n");
    else if (!rw->keep_alive)
        puts_(&o, "Connection: close\r\n");
    else if (rw->client_http10)
        puts_(&o, "Connection: keep-alive\r\n");
    puts_(&o, "\r\n");
    if (o.overflow)
        return -ENOSPC;
    *out_len = o.len;
    return 0;
}

bool voro_http_te_only_chunked(const char *in, const struct voro_http1_parser *p)
{
    for (uint32_t i = 0; i < p->n_headers; i++) {
        if (!name_is(in, p->headers[i].name, "transfer-encoding"))
            continue;
        const char *v = in + p->headers[i].value.off;
        uint32_t n = p->headers[i].value.len, pos = 0;
        while (pos < n) {
            while (pos < n && (v[pos] == ',' || v[pos] == ' ' || v[pos] == '\t'))
                pos++;
            uint32_t start = pos;
            while (pos < n && v[pos] != ',' && v[pos] != ' ' && v[pos] != '\t')
                pos++;
            if (pos > start && !(pos - start == 7 && strncasecmp(v + start, "chunked", 7) == 0))
                return false;
        }
    }
    return true;
}
