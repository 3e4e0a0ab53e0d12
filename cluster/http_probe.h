/* A small one-shot HTTP/1.1 client on the control loop: health checks, metrics scrapes, model lists, warm-ups. */
#ifndef VORO_CLUSTER_HTTP_PROBE_H
#define VORO_CLUSTER_HTTP_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

/*
 * One request per connection ("Connection: close"): connect, send, read the response whole
 * (Content-Length, chunked or until close), parse it with proto/http1, call back once.
 * The whole exchange is bounded by `timeout_ms` and the response by `max_response` bytes
 * (head + body as received). Runs on the loop's thread only.
 */

struct voro_http_probe;

struct voro_http_result {
    int err;             /* 0 = a complete response; else a negative libuv/errno code */
    const char *reason;  /* static: "ok", "connect refused", "timeout", "connect error",
                            "response too large", "bad response", "closed early", "io error" */
    int status;          /* HTTP status when err == 0 */
    const char *body;    /* decoded body (not NUL-terminated), valid during the callback only */
    size_t body_len;
    const char *content_type; /* Content-Type value or NULL, valid during the callback only */
    size_t content_type_len;
};

typedef void (*voro_http_probe_cb)(void *ctx, const struct voro_http_result *r);

struct voro_http_request {
    const struct sockaddr *addr; /* copied */
    const char *method;          /* "GET", "POST", ... */
    const char *host;            /* Host header value */
    const char *path;            /* request target, e.g. "/health" */
    const char *content_type;    /* NULL = none */
    const char *body;            /* NULL = no body; copied */
    size_t body_len;
    uint32_t timeout_ms;         /* whole exchange; 0 = 1000 */
    size_t max_response;         /* 0 = 1 MiB */
};

/* Starts a request; `cb` runs exactly once later on the loop (never from inside this call) unless
 * the probe is cancelled first. *out (may be NULL) is a handle for voro_http_probe_cancel, valid
 * until the callback returns. Memory is owned by the probe and released after the callback.
 * Returns 0 or -ENOMEM / -EINVAL. */
int voro_http_probe_start(struct voro_http_probe **out, uv_loop_t *loop, const struct voro_http_request *req,
                          voro_http_probe_cb cb, void *ctx);
/* Stops a pending probe: its callback will not run; handles close and memory is freed by their
 * close callbacks (run the loop afterwards). */
void voro_http_probe_cancel(struct voro_http_probe *p);

/* Parses "http://HOST:PORT/path" (numeric HOST, IPv6 in brackets; port default 80, path default
 * "/") into `addr`, `host` (the "HOST:PORT" text for the Host header) and `path`.
 * Returns 0, -EINVAL or -ENAMETOOLONG. */
int voro_http_url_parse(const char *url, struct sockaddr_storage *addr, char *host, size_t host_size, char *path,
                        size_t path_size);

#endif
