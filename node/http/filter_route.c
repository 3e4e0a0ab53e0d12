/* The routing filter: normalises the request target in place (what routes match is what the
 * server gets), picks the [route] for a request (host, path prefix, method, header, model),
 * asks for the body when the model decides, and narrows the pool to the servers that serve
 * the requested model (404 in OpenAI's shape for an unknown model). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "node/http/http_filter.h"
#include "node/http/route.h"
#include "node/snapshot.h"
#include "proto/http1_target.h"
#include "proto/json_scan.h"

static enum voro_http_verdict bad_target(struct voro_http_exchange *x, const char *why)
{
    return voro_http_exchange_reply(x, 400, NULL, "invalid_request_target", "%s",
                                    why ? why : "invalid request target");
}

/*
 * Rewrites the request target, in place inside the head, into its normalised origin form
 * (voro_path_normalize): an absolute-form target loses its scheme and authority (the authority
 * is kept for routing in x->authority_*; a Host header must name the same origin). No buffer:
 * the normalised form is never longer than the target. What cannot be normalised safely is
 * answered 400.
 */
static enum voro_http_verdict normalize_target(struct voro_http_exchange *x)
{
    const struct voro_http1_parser *p = x->req;
    char *t = (char *)x->head + p->target.off; /* the connection's head buffer (writable) */
    size_t tlen = p->target.len;
    struct voro_target tg;
    const char *why = NULL;
    if (voro_target_parse(t, tlen, &tg, &why) != 0)
        return bad_target(x, why);
    if (tg.form == VORO_TARGET_ASTERISK) {
        if (!voro_http1_span_eq(x->head, p->method, "OPTIONS"))
            return bad_target(x, "the request target '*' is for OPTIONS only");
        return VORO_HTTP_CONTINUE;
    }
    size_t start = 0;
    if (tg.form == VORO_TARGET_ABSOLUTE) {
        /* RFC 9112 §3.2.2: the authority overrides Host. A Host naming another origin is
         * refused rather than ignored: the server behind may route on it. */
        size_t hl = 0;
        const char *host = voro_http_exchange_header(x, "host", &hl);
        bool empty_path = tg.path_off == tlen || t[tg.path_off] == '?';
        if (host) {
            if (!voro_authority_equal(t + tg.authority_off, tg.authority_len, host, hl, tg.https))
                return bad_target(x, "the Host header differs from the request target's authority");
            x->authority_off = (uint32_t)(host - x->head);
            x->authority_len = (uint32_t)hl;
        } else {
            if (empty_path)
                return bad_target(x, "an absolute-form request target without a path needs a Host header");
            x->authority_off = p->target.off + tg.authority_off;
            x->authority_len = tg.authority_len;
        }
        if (empty_path) {
            /* "http://h?q" is "/?q": one byte more than the query, taken from the scheme */
            memmove(t + 1, t + tg.path_off, tlen - tg.path_off);
            t[0] = '/';
            tlen = tlen - tg.path_off + 1;
        } else {
            start = tg.path_off;
        }
    }
    size_t out_len = 0, path_len = 0;
    if (voro_path_normalize(t + start, tlen - start, t + start, tlen - start, &out_len, &path_len, &why) != 0)
        return bad_target(x, why);
    voro_http_exchange_retarget(x, p->target.off + (uint32_t)start, (uint32_t)out_len);
    return VORO_HTTP_CONTINUE;
}

/* Can the body name a model? Empty bodies cannot; multipart bodies are not scanned (the model
 * of an upload is its X-Model header or the route's condition). */
static bool body_may_name_model(const struct voro_http_exchange *x)
{
    const struct voro_http1_parser *p = x->req;
    enum voro_http1_body kind = voro_http1_body_kind(p, false, false);
    if (kind == VORO_HTTP1_BODY_NONE || (kind == VORO_HTTP1_BODY_LENGTH && p->content_length == 0))
        return false;
    size_t len = 0;
    const char *ct = voro_http_exchange_header(x, "content-type", &len);
    return !(ct && len >= 10 && !strncasecmp(ct, "multipart/", 10));
}

/* More than one X-Model header: the server behind might read another one than Voro did. */
static bool x_model_repeated(const struct voro_http_exchange *x)
{
    const struct voro_http1_parser *p = x->req;
    int n = 0;
    for (uint32_t i = 0; i < p->n_headers; i++)
        if (voro_http1_span_ieq(x->head, p->headers[i].name, "x-model") && ++n > 1)
            return true;
    return false;
}

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
    if (x->authority_len) {
        rr->host = x->head + x->authority_off;
        rr->host_len = x->authority_len;
    } else if (host) {
        rr->host = host;
        rr->host_len = len;
    }
    rr->path = x->head + p->target.off;
    rr->path_len = p->target.len;
    rr->header = route_header;
    rr->header_ctx = x;
    rr->has_body = body_may_name_model(x);
}

/* The answer to a voro_route_select error. */
static enum voro_http_verdict select_failed(struct voro_http_exchange *x, int rc, const struct voro_route_request *rr)
{
    size_t hl = 0;
    const char *hm = voro_http_exchange_header(x, "x-model", &hl);
    int hshow = (int)(hl < 64 ? hl : 64), bshow = (int)(rr->model_len < 64 ? rr->model_len : 64);
    if (rc == -EPROTO)
        return voro_http_exchange_reply(x, 400, "model", "model_conflict",
                                        "the X-Model header (`%.*s`) and the body's model (`%.*s`) differ", hshow,
                                        hm ? hm : "", bshow, rr->model ? rr->model : "");
    if (rc == -EPERM)
        return voro_http_exchange_reply(x, 400, "model", "model_header_refused",
                                        "this route takes the model from the request body only: "
                                        "remove the X-Model header");
    return VORO_HTTP_CONTINUE;
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
    if (xm && xlen >= sizeof(x->model))
        return voro_http_exchange_reply(x, 400, "model", NULL, "model name too long");
    if (xm && xlen) { /* the same as the body's model when the body names one (route.c checked) */
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
    enum voro_http_verdict v = normalize_target(x);
    if (v != VORO_HTTP_CONTINUE)
        return v;
    if (cfg->n_routes == 0) {
        x->routed = true;
        x->route = -1;
        x->pool = cfg->listeners[x->listener].pool_index;
        return VORO_HTTP_CONTINUE;
    }
    if (x_model_repeated(x))
        return voro_http_exchange_reply(x, 400, "model", "model_conflict", "more than one X-Model header");
    struct voro_route_request rr;
    route_request_init(x, &rr);
    bool needs_model = false;
    int rc = voro_route_select(cfg, x->listener, &rr, &needs_model);
    if (rc == -EPROTO || rc == -EPERM)
        return select_failed(x, rc, &rr);
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
        /* Also with X-Model: a body this scan refuses (a model twice, escaped) may still name
         * a model the engine reads, so the header cannot vouch for it. */
        return voro_http_exchange_reply(x, 400, NULL, "invalid_json", "the request body is not a valid JSON object");
    }
    struct voro_route_request rr;
    route_request_init(x, &rr);
    rr.model = x->model;
    rr.model_len = strlen(x->model);
    bool needs_model = false;
    int route = voro_route_select(x->cfg, x->listener, &rr, &needs_model);
    if (route == -EPROTO || route == -EPERM)
        return select_failed(x, route, &rr);
    if (route < 0) {
        size_t hl = 0;
        const char *hm = voro_http_exchange_header(x, "x-model", &hl);
        if (x->model[0])
            return voro_http_exchange_reply(x, 404, "model", "model_not_found", "The model `%s` does not exist",
                                            x->model);
        if (hm && hl)
            return voro_http_exchange_reply(x, 404, "model", "model_not_found", "The model `%.*s` does not exist",
                                            (int)(hl < 100 ? hl : 100), hm);
        return voro_http_exchange_reply(x, 400, "model", "missing_model", "the request names no model");
    }
    return routed(x, route);
}

const struct voro_http_filter voro_filter_route = {
    .name = "route",
    .on_request_head = route_request_head,
    .on_request_body = route_request_body,
};
