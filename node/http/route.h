/* Route selection for HTTP listeners: which [route NAME] a request matches (file order, first
 * wins) and which servers of the route's pool serve the requested model. Pure functions over
 * the config: no I/O, no allocation, safe from any worker thread. */
#ifndef VORO_NODE_HTTP_ROUTE_H
#define VORO_NODE_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"
#include "node/balance/balance.h"

/* One request as routing sees it. Every pointer is borrowed for the call; strings are not
 * NUL-terminated (lengths given). */
struct voro_route_request {
    uint32_t method_bit;          /* one VORO_METHOD_* bit (VORO_METHOD_OTHER for the rest) */
    const char *host;             /* Host header value, port included or not; NULL = none */
    size_t host_len;
    const char *path;             /* request target in origin form ("/v1/chat?x=1") */
    size_t path_len;
    /* First header named `name` (case-insensitive), its value and length; NULL when absent.
     * Called with "X-Model" and with the routes' header names. */
    const char *(*header)(void *ctx, const char *name, size_t *len);
    void *header_ctx;
    /* The body's model: NULL until the body was scanned; after the scan, model_len 0 (any
     * non-NULL pointer) means the body names no model. */
    const char *model;
    size_t model_len;
};

/*
 * Picks the route for a request on listener index `listener` (into cfg->listeners).
 * Returns the route index (into cfg->routes), or
 *   -ENOENT  no route matches (the proxy answers 404);
 *   -EAGAIN  with *needs_model = true: the first route whose other conditions hold has a model
 *            condition and the model is not known yet. The caller buffers the body (up to that
 *            route's body_limit), scans it (voro_json_find_model) and calls again with
 *            req->model set. An "X-Model" header is the model (it wins over req->model), so
 *            it never needs the body; if the proxy has both and they differ, that is its call.
 *   -EINVAL  bad arguments (listener out of range).
 * *needs_model is false for every other answer. Model conditions: "*" = any non-empty model,
 * "name" = name or name@any-version, "name@v" = exactly that.
 */
int voro_route_select(const struct voro_config *cfg, size_t listener, const struct voro_route_request *req,
                      bool *needs_model);

/*
 * Which servers of route `route`'s pool serve `model` ("name" or "name@version", model_len
 * bytes). A server with a models= list serves what it declares (cluster/model_ref.h rule); a
 * server without one may serve anything (what it really serves is learned at run time).
 * Adds the servers that do NOT serve it to `exclude` (never clears bits; may be NULL) and
 * returns how many do (0: the proxy answers 404 unknown model), or -EINVAL for bad arguments.
 * *served_name (may be NULL) is the name to send when the body is rewritten: the declared name
 * without version (a request for "llama@v2" served by a server declaring "llama@v2" is sent
 * as "llama"), owned by cfg; NULL when no declaring server matched (forward the model as is).
 */
int voro_route_model_servers(const struct voro_config *cfg, size_t route, const char *model, size_t model_len,
                             struct voro_lb_exclude *exclude, const char **served_name);

/* True when some server of some pool declares `model` (same matching rule). */
bool voro_route_model_known(const struct voro_config *cfg, const char *model, size_t model_len);

/* The VORO_METHOD_* bit of a request method token ("GET" ...; case-sensitive). */
uint32_t voro_route_method_bit(const char *method, size_t len);

#endif
