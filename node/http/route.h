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
    const char *host;             /* the absolute-form target's authority, else the Host header
                                   * value; port included or not; NULL = none */
    size_t host_len;
    const char *path;             /* the normalised request target in origin form ("/v1/chat?x=1",
                                   * voro_path_normalize); prefixes match the part before '?' */
    size_t path_len;
    /* First header named `name` (case-insensitive), its value and length; NULL when absent.
     * Called with "X-Model" and with the routes' header names. */
    const char *(*header)(void *ctx, const char *name, size_t *len);
    void *header_ctx;
    /* The body's model: NULL until the body was scanned; after the scan, model_len 0 (any
     * non-NULL pointer) means the body names no model. */
    const char *model;
    size_t model_len;
    /* The request has a body that may name a model (not empty, not multipart): with an X-Model
     * header, a model route then needs the body too, to check that both name the same model. */
    bool has_body;
};

/*
 * Picks the route for a request on listener index `listener` (into cfg->listeners).
 * Returns the route index (into cfg->routes), or
 *   -ENOENT  no route matches (the proxy answers 404);
 *   -EAGAIN  with *needs_model = true: the first route whose other conditions hold has a model
 *            condition and the model is not known yet. The caller buffers the body (up to that
 *            route's body_limit), scans it (voro_json_find_model) and calls again with
 *            req->model set. A non-empty "X-Model" header names the model too: without a body
 *            (has_body false) it decides alone; with one, the body is needed as well.
 *   -EPROTO  the X-Model header and the body's model (req->model, non-empty) differ (400).
 *   -EPERM   X-Model is present and the first route whose other conditions hold has
 *            model_from_header = false (400: that route takes the model from the body only).
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

/* Does the normalised path (req->path up to '?') start with `prefix` under `mode`
 * (VORO_PREFIX_SEGMENT: the prefix ends at a segment boundary; VORO_PREFIX_STRING: any byte
 * prefix)? An empty prefix matches everything. */
bool voro_route_prefix_matches(const char *prefix, int mode, const char *path, size_t path_len);

#endif
