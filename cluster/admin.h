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
};

struct voro_admin_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    struct voro_strbuf body;  /* owned by the server */
};

/* Methods an endpoint accepts (voro_control_register_methods). HEAD is always implied by GET
 * and answered from the GET handler with the body left out. Other methods get 405 + Allow. */
#define VORO_ADMIN_GET (1u << 0)
#define VORO_ADMIN_HEAD (1u << 1)
#define VORO_ADMIN_POST (1u << 2)
#define VORO_ADMIN_PUT (1u << 3)
#define VORO_ADMIN_DELETE (1u << 4)
#define VORO_ADMIN_PATCH (1u << 5)

typedef void (*voro_admin_handler)(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp);

#endif
