/* First-match route selection and model-to-server filtering for the HTTP gateway. */
#include "node/http/route.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "cluster/model_ref.h"

static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || !strncasecmp(a, b, alen));
}

/* The host without ":port" and without one trailing dot; "[v6]:port" keeps its brackets. */
static void host_only(const char *h, size_t len, size_t *out_len)
{
    if (len && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        *out_len = close ? (size_t)(close - h) + 1 : len;
        return;
    }
    const char *colon = memchr(h, ':', len);
    if (colon)
        len = (size_t)(colon - h);
    if (len && h[len - 1] == '.')
        len--;
    *out_len = len;
}

static bool host_matches(const struct voro_route_config *r, const struct voro_route_request *req)
{
    if (!r->host[0])
        return true;
    if (!req->host)
        return false;
    size_t len;
    host_only(req->host, req->host_len, &len);
    size_t plen = strlen(r->host);
    if (r->host[0] == '*' && r->host[1] == '.') {
        /* "*.example.com": at least one label in front of ".example.com" */
        size_t slen = plen - 1;
        return len > slen && !strncasecmp(req->host + len - slen, r->host + 1, slen);
    }
    return ieq(req->host, len, r->host, plen);
}

static bool header_matches(const struct voro_route_config *r, const struct voro_route_request *req)
{
    if (!r->header_name[0])
        return true;
    if (!req->header)
        return false;
    size_t vlen = 0;
    const char *v = req->header(req->header_ctx, r->header_name, &vlen);
    if (!v)
        return false;
    if (!r->header_value[0])
        return true;
    size_t want = strlen(r->header_value);
    return vlen == want && !memcmp(v, r->header_value, want);
}

/* Route condition `cond` ("*", "name" or "name@v") against a known model. */
static bool model_matches(const char *cond, const char *model, size_t len)
{
    if (!len)
        return false;
    if (!strcmp(cond, "*"))
        return true;
    const char *at = memchr(model, '@', len);
    size_t nl = at ? (size_t)(at - model) : len;
    if (!voro_model_name_valid(model, nl) || (at && !voro_model_version_valid(at + 1, len - nl - 1)))
        return false;
    size_t cl = strlen(cond);
    if (strchr(cond, '@'))
        return cl == len && !memcmp(cond, model, len);
    return cl == nl && !memcmp(cond, model, nl); /* "name": any version of it */
}

static bool others_match(const struct voro_config *cfg, const struct voro_route_config *r, size_t listener,
                         const struct voro_route_request *req)
{
    if (r->listener[0] && strcmp(r->listener, cfg->listeners[listener].name))
        return false;
    if (r->methods && !(r->methods & req->method_bit))
        return false;
    if (r->path_prefix[0] && (!req->path || !voro_route_prefix_matches(r->path_prefix, r->path_prefix_mode,
                                                                         req->path, req->path_len)))
        return false;
    return host_matches(r, req) && header_matches(r, req);
}

bool voro_route_prefix_matches(const char *prefix, int mode, const char *path, size_t path_len)
{
    size_t plen = strlen(prefix);
    if (!plen)
        return true;
    const char *q = memchr(path, '?', path_len);
    if (q)
        path_len = (size_t)(q - path); /* the query is not part of the path */
    if (path_len < plen || memcmp(path, prefix, plen) != 0)
        return false;
    if (mode == VORO_PREFIX_STRING)
        return true;
    /* segment: the prefix is the whole path, ends with '/', or is followed by a '/' */
    return path_len == plen || prefix[plen - 1] == '/' || path[plen] == '/';
}

/* The X-Model header's value (non-empty), or NULL. */
static const char *header_model(const struct voro_route_request *req, size_t *len)
{
    if (!req->header)
        return NULL;
    size_t hl = 0;
    const char *h = req->header(req->header_ctx, "X-Model", &hl);
    if (!h || !hl)
        return NULL;
    *len = hl;
    return h;
}

int voro_route_select(const struct voro_config *cfg, size_t listener, const struct voro_route_request *req,
                      bool *needs_model)
{
    if (needs_model)
        *needs_model = false;
    if (!cfg || !req || listener >= cfg->n_listeners)
        return -EINVAL;
    size_t hm_len = 0;
    const char *hm = NULL;
    bool header_looked = false;
    if (req->model && req->model_len) {
        /* The body names a model: a header naming another one is a conflict, whatever the
         * route (the engine reads the body, the route would have checked the header). */
        hm = header_model(req, &hm_len);
        header_looked = true;
        if (hm && (hm_len != req->model_len || memcmp(hm, req->model, hm_len) != 0))
            return -EPROTO;
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct voro_route_config *r = &cfg->routes[i];
        if (!others_match(cfg, r, listener, req))
            continue;
        if (!header_looked) {
            hm = header_model(req, &hm_len);
            header_looked = true;
        }
        if (hm && !r->model_from_header)
            return -EPERM;
        if (!r->model[0])
            return (int)i;
        const char *model = req->model;
        size_t model_len = req->model_len;
        if (hm && (model || !req->has_body)) {
            model = hm; /* equal to the body's model when the body names one (checked above) */
            model_len = hm_len;
        }
        if (!model) {
            if (needs_model)
                *needs_model = true;
            return -EAGAIN;
        }
        if (model_matches(r->model, model, model_len))
            return (int)i;
    }
    return -ENOENT;
}

int voro_route_model_servers(const struct voro_config *cfg, size_t route, const char *model, size_t model_len,
                             struct voro_lb_exclude *exclude, const char **served_name)
{
    if (served_name)
        *served_name = NULL;
    if (!cfg || route >= cfg->n_routes || (!model && model_len))
        return -EINVAL;
    size_t pi = cfg->routes[route].pool_index;
    if (pi >= cfg->n_pools)
        return -EINVAL;
    const struct voro_pool_config *pool = &cfg->pools[pi];
    int serving = 0;
    for (size_t s = 0; s < pool->n_servers; s++) {
        const struct voro_server_config *srv = &pool->servers[s];
        bool serves = srv->n_models == 0;
        for (size_t m = 0; m < srv->n_models && !serves; m++) {
            if (voro_model_ref_match(&srv->models[m], model, model_len)) {
                serves = true;
                if (served_name && !*served_name)
                    *served_name = srv->models[m].name;
            }
        }
        if (serves)
            serving++;
        else if (exclude)
            voro_lb_exclude_add(exclude, (int)s);
    }
    return serving;
}

bool voro_route_model_known(const struct voro_config *cfg, const char *model, size_t model_len)
{
    if (!cfg || !model)
        return false;
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++)
            for (size_t m = 0; m < cfg->pools[p].servers[s].n_models; m++)
                if (voro_model_ref_match(&cfg->pools[p].servers[s].models[m], model, model_len))
                    return true;
    return false;
}

uint32_t voro_route_method_bit(const char *method, size_t len)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && !memcmp(names[i], method, len))
            return 1u << i;
    return VORO_METHOD_OTHER;
}
