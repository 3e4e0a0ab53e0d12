/* The admin HTTP endpoint types: requests parsed by proto/http1, handlers that fill a
 * response. Handlers run on the control thread and may allocate. */
#ifndef VORO_CLUSTER_ADMIN_H
#define VORO_CLUSTER_ADMIN_H

#include <stddef.h>

#include "common/strbuf.h"

struct voro_admin_request {
    const char *method; /* NUL-terminated copies, valid during the handler call */
    const char *path;   /* without the query */
    const char *query;  /* after '?', "" if none */
    const char *body;
    size_t body_len;
    const char *authorization; /* Authorization header value, NULL if absent; valid during the call */
    const void *priv;          /* the server's, for voro_admin_header */
};

struct voro_admin_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    struct voro_strbuf body;  /* owned by the server */
    struct voro_admin_deferred *deferred; /* set by voro_admin_defer: no answer now */
    void *priv;                           /* the server's */
};

/* A request whose answer comes later (after a Raft commit, a forwarded call...). */
struct voro_admin_deferred;

/* Methods an endpoint accepts (voro_control_register_methods). HEAD is always implied by GET
 * and answered from the GET handler with the body left out. Other methods get 405 + Allow. */
#define VORO_ADMIN_GET (1u << 0)
#define VORO_ADMIN_HEAD (1u << 1)
#define VORO_ADMIN_POST (1u << 2)
#define VORO_ADMIN_PUT (1u << 3)
#define VORO_ADMIN_DELETE (1u << 4)
#define VORO_ADMIN_PATCH (1u << 5)

typedef void (*voro_admin_handler)(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp);

/* Value of the first header `name` (case-insensitive) copied NUL-terminated into buf (truncated
 * to buflen - 1), or NULL when absent. Only during the handler call. */
const char *voro_admin_header(const struct voro_admin_request *req, const char *name, char *buf, size_t buflen);

/* Called by a handler that answers later: returns a handle the caller owns until it passes it
 * to voro_admin_complete (exactly once, on the control thread), or NULL when out of memory (the
 * handler then answers now). The connection reads no further request until then. If the client
 * goes away meanwhile, the handle stays valid and completing it only frees it. Completing it
 * before the handler returned is allowed (the answer then goes out as an immediate one). */
struct voro_admin_deferred *voro_admin_defer(struct voro_admin_response *resp);
/* Sends the deferred answer (JSON; `body` is taken over and left empty) and frees `d`. */
void voro_admin_complete(struct voro_admin_deferred *d, int status, struct voro_strbuf *body);

#endif
