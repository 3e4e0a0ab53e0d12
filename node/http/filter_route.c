/* The routing filter: picks the [route] for a request (host, path prefix, method, header,
 * model), asks for the body when the model decides, and narrows the pool to the servers that
 * serve the requested model (404 in OpenAI's shape for an unknown model). */
#include <errno.h>
#include <string.h>

#include "node/http/http_filter.h"
#include "node/http/route.h"
#include "node/snapshot.h"
#include "proto/json_scan.h"

static const char *route_header(void *ctx, const char *name, size_t *len)
{
    return voro_http_exchange_header(ctx, name, len);
}

static void route_request_init(struct voro_http_exchange *x, struct voro_route_request *rr)
{
    const struct voro_http1_parser *p = x->req;
    memset(rr, 0, sizeof(*rr));
    rr->method_bit = voro_route_method_bit(x->head + p->method.off, p->method.len);
    size_t len = 0;
    const char *host = voro_http_exchange_header(x, "host", &len);
    if (host) {
        rr->host = host;
        rr->host_len = len;
    }
    rr->path = x->head + p->target.off;
    rr->path_len = p->target.len;
    rr->header = route_header;
    rr->header_ctx = x;
}

/* The route is known: narrow its pool to the servers of the model. */
static enum voro_http_verdict routed(struct voro_http_exchange *x, int route)
{
    const struct voro_config *cfg = x->cfg;
    x->routed = true;
    x->route = route;
    const struct voro_route_config *rc = &cfg->routes[route];
    x->pool = rc->pool_index;
    size_t xlen = 0;
    const char *xm = voro_http_exchange_header(x, "x-model", &xlen);
    if (xm && xlen && xlen < sizeof(x->model)) { /* X-Model wins over the body's model */
        memcpy(x->model, xm, xlen);
        x->model[xlen] = '\0';
    }
    if (rc->model[0] && x->model[0]) {
        int n = voro_route_model_servers(cfg, (size_t)route, x->model, strlen(x->model), &x->exclude, &x->served_model);
        /* Servers that declare no models may serve anything, unless what they were seen
         * serving (/v1/models) says otherwise. */
        const struct voro_pool_config *pc = &cfg->pools[x->pool];
        for (size_t s = 0; n > 0 && s < pc->n_servers; s++) {
            if (pc->servers[s].n_models || voro_lb_exclude_has(&x->exclude, (int)s))
                continue;
            if (voro_snapshot_learned_lacks(&x->snap->servers[x->pool][s], x->model)) {
                voro_lb_exclude_add(&x->exclude, (int)s);
                n--;
            }
        }
        if (n <= 0)
            return voro_http_exchange_reply(x, 404, "model", "model_not_found", "The model `%s` does not exist",
                                            x->model);
        if (!rc->rewrite_model)
            x->served_model = NULL;
    }
    return VORO_HTTP_CONTINUE;
}

static uint32_t model_body_limit(const struct voro_config *cfg)
{
    uint32_t limit = 0;
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (cfg->routes[i].model[0] && cfg->routes[i].body_limit > limit)
            limit = cfg->routes[i].body_limit;
    return limit;
}

static enum voro_http_verdict route_request_head(struct voro_http_exchange *x)
{
    const struct voro_config *cfg = x->cfg;
    if (cfg->n_routes == 0) {
        x->routed = true;
        x->route = -1;
        x->pool = cfg->listeners[x->listener].pool_index;
        return VORO_HTTP_CONTINUE;
    }
    struct voro_route_request rr;
    route_request_init(x, &rr);
    bool needs_model = false;
    int rc = voro_route_select(cfg, x->listener, &rr, &needs_model);
    if (rc == -EAGAIN && needs_model) {
        x->body_limit = model_body_limit(cfg);
        return VORO_HTTP_NEED_BODY;
    }
    if (rc < 0)
        return voro_http_exchange_reply(x, 404, NULL, "no_route", "no route matches this request");
    return routed(x, rc);
}

static enum voro_http_verdict route_request_body(struct voro_http_exchange *x)
{
    if (x->routed)
        return VORO_HTTP_CONTINUE;
    struct voro_slice span;
    int rc = voro_json_find_model((const char *)x->body, x->body_len, &span);
    if (rc == 0) {
        if (span.len >= sizeof(x->model))
            return voro_http_exchange_reply(x, 400, "model", NULL, "model name too long");
        memcpy(x->model, x->body + span.off, span.len);
        x->model[span.len] = '\0';
    } else if (rc != -ENOENT) {
        return voro_http_exchange_reply(x, 400, NULL, "invalid_json", "the request body is not a valid JSON object");
    }
    struct voro_route_request rr;
    route_request_init(x, &rr);
    rr.model = x->model;
    rr.model_len = strlen(x->model);
    bool needs_model = false;
    int route = voro_route_select(x->cfg, x->listener, &rr, &needs_model);
    if (route < 0) {
        if (x->model[0])
            return voro_http_exchange_reply(x, 404, "model", "model_not_found", "The model `%s` does not exist",
                                            x->model);
        return voro_http_exchange_reply(x, 400, "model", "missing_model", "the request names no model");
    }
    return routed(x, route);
}

const struct voro_http_filter voro_filter_route = {
    .name = "route",
    .on_request_head = route_request_head,
    .on_request_body = route_request_body,
};
