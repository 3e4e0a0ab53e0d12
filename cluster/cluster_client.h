/* Blocking HTTP/1.1 client for the cluster API: one request per TCP connection, with timeouts (for vorocluster). */
#ifndef VORO_CLUSTER_CLUSTER_CLIENT_H
#define VORO_CLUSTER_CLUSTER_CLIENT_H

/*
 * The CLI is not an event loop: it sends one request, waits for the answer and exits, so the
 * client uses a blocking socket with poll()-bounded connect and reads. Each request opens a new
 * connection and sends "Connection: close". The answer's head is parsed with proto/http1.h's
 * response parser; bodies framed by Content-Length, chunked coding or connection close are read
 * up to VORO_CLUSTER_MAX_BODY bytes.
 */

#include <stdbool.h>
#include <stddef.h>

#define VORO_CLUSTER_MAX_BODY (16u << 20)

struct voro_cluster_request {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *path;    /* origin-form target, e.g. "/cluster/status" */
    const char *body;    /* JSON text, or NULL for none; borrowed */
    size_t body_len;
    const char *token;   /* sent as "Authorization: Bearer <token>" when non-NULL and non-empty */
    bool no_forward;     /* sends "X-Voro-No-Forward: 1" */
    int connect_timeout_ms;
    int timeout_ms;      /* bound on the whole exchange after connecting */
};

struct voro_cluster_response {
    int status;     /* HTTP status */
    char *body;     /* malloc'd, NUL-terminated, owned by the response (free with voro_cluster_response_free) */
    size_t body_len;
    bool connected; /* set once the TCP connection was established, even when the call then fails */
    char error[160]; /* on failure: a one-line reason without the token */
};

/*
 * Sends `req` to `address` ("IP:PORT", "[IPv6]:PORT" or "HOST:PORT") and reads the answer.
 * Returns 0 when an HTTP answer (any status) was read; otherwise a negative errno with
 * resp->error set: -EINVAL (bad address), -ECONNREFUSED / -ETIMEDOUT / other connect errors
 * (resp->connected false), -EPROTO (malformed answer), -EMSGSIZE (answer too large), -ETIMEDOUT
 * or an I/O error after connecting (resp->connected true), -ENOMEM.
 */
int voro_cluster_http(const char *address, const struct voro_cluster_request *req, struct voro_cluster_response *resp);
/* Frees resp->body and resets the response. */
void voro_cluster_response_free(struct voro_cluster_response *resp);

#endif
