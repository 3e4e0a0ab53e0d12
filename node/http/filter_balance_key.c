/* The balancer's key filter: computes the consistent-hash key of a request from what its pool
 * hashes (client address, a header, a cookie, or the model), once the pool is known. */
#include <string.h>

#include "node/http/http_filter.h"

static uint64_t cookie_hash(const struct voro_http_exchange *x, const char *name)
{
    size_t nlen = strlen(name);
    const struct voro_http1_parser *p = x->req;
    for (uint32_t i = 0; i < p->n_headers; i++) {
        if (!voro_http1_span_ieq(x->head, p->headers[i].name, "cookie"))
            continue;
        const char *v = x->head + p->headers[i].value.off, *end = v + p->headers[i].value.len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == ';'))
                v++;
            const char *semi = memchr(v, ';', (size_t)(end - v));
            if (!semi)
                semi = end;
            const char *eq = memchr(v, '=', (size_t)(semi - v));
            if (eq && (size_t)(eq - v) == nlen && memcmp(v, name, nlen) == 0)
                return voro_hash64(eq + 1, (size_t)(semi - eq - 1), 0x636b6900u);
            v = semi;
        }
    }
    return 0;
}

static void compute_key(struct voro_http_exchange *x)
{
    const struct voro_pool_config *pc = &x->cfg->pools[x->pool];
    uint64_t key = 0;
    size_t len = 0;
    const char *v;
    switch (pc->l7.hash_key) {
    case VORO_HASH_HEADER:
        if ((v = voro_http_exchange_header(x, pc->l7.hash_key_name, &len)) != NULL)
            key = voro_hash64(v, len, 0x68647200u);
        break;
    case VORO_HASH_COOKIE:
        key = cookie_hash(x, pc->l7.hash_key_name);
        break;
    case VORO_HASH_MODEL:
        if (x->model[0])
            key = voro_hash64(x->model, strlen(x->model), 0x6d6f6400u);
        break;
    case VORO_HASH_CLIENT_IP:
        break;
    }
    /* Without the configured key the client address keeps a client on one server. */
    x->hash_key = key ? key : voro_hash64(x->client_ip, strlen(x->client_ip), 0x69700000u);
}

static enum voro_http_verdict key_request_head(struct voro_http_exchange *x)
{
    if (x->routed)
        compute_key(x);
    return VORO_HTTP_CONTINUE;
}

static enum voro_http_verdict key_request_body(struct voro_http_exchange *x)
{
    if (x->routed)
        compute_key(x); /* the model (and so the pool) may only be known now */
    return VORO_HTTP_CONTINUE;
}

const struct voro_http_filter voro_filter_balance_key = {
    .name = "balance_key",
    .on_request_head = key_request_head,
    .on_request_body = key_request_body,
};
