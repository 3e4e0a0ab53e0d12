/* The filter chain of http listeners and the helpers filters share. */
#include "node/http/http_filter.h"

#include <stdarg.h>
#include <stdio.h>

static const struct voro_http_filter *const g_filters[] = {
    &voro_filter_route,       /* which pool (and servers) by host, path, method, header, model */
    &voro_filter_balance_key, /* the consistent-hash key of the pool */
    &voro_filter_access_log,  /* one line per request when [http] access_log is on */
};

const struct voro_http_filter *const *voro_http_filters(size_t *count)
{
    *count = sizeof(g_filters) / sizeof(g_filters[0]);
    return g_filters;
}

const char *voro_http_exchange_header(const struct voro_http_exchange *x, const char *name, size_t *len)
{
    const struct voro_http1_header *h = voro_http1_find_header(x->req, x->head, name);
    if (!h)
        return NULL;
    *len = h->value.len;
    return x->head + h->value.off;
}

void voro_http_exchange_retarget(struct voro_http_exchange *x, uint32_t off, uint32_t len)
{
    /* x->req points at the connection's own parser: the one place a filter edits the head */
    struct voro_http1_parser *p = (struct voro_http1_parser *)x->req;
    if (off < p->target.off || (uint64_t)off + len > (uint64_t)p->target.off + p->target.len)
        return; /* only ever shrinks inside the old target */
    p->target.off = off;
    p->target.len = len;
}

enum voro_http_verdict voro_http_exchange_reply(struct voro_http_exchange *x, int status, const char *param,
                                                const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->reply_message, sizeof(x->reply_message), fmt, ap);
    va_end(ap);
    x->reply_status = status;
    x->reply_param = param;
    x->reply_code = code;
    return VORO_HTTP_REPLY;
}
