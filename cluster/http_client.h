/* A small HTTP/1.1 client on the control loop, for node-to-node cluster calls (write forwarding,
 * join, config reports): one request per connection, Content-Length bodies, a hard timeout. */
#ifndef VORO_CLUSTER_HTTP_CLIENT_H
#define VORO_CLUSTER_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct voro_http_call;

/* Called exactly once per call, on the loop thread. status is the HTTP status, or a negative
 * errno (-ETIMEDOUT, -ECONNREFUSED, -ECANCELED, -EPROTO, ...). body (may be NULL when status < 0)
 * is borrowed for the duration of the call. */
typedef void (*voro_http_cb)(void *arg, int status, const char *body, size_t body_len);

/* Starts `method path` to `address` ("ip:port", numeric) with `extra_headers` (complete
 * "Name: value\r\n" lines, may be NULL) and `body` (copied). On success *out (may be NULL) is
 * a handle valid until the callback ran; the callback is never called from inside this
 * function. Returns 0 or a negative errno (then no callback). */
int voro_http_request(uv_loop_t *loop, const char *address, const char *method, const char *path,
                      const char *extra_headers, const char *body, size_t body_len, uint32_t timeout_ms,
                      voro_http_cb cb, void *arg, struct voro_http_call **out);
/* Ends the call now: the callback runs (synchronously) with -ECANCELED unless it already ran.
 * Memory is released once libuv closed the handles: run the loop afterwards. */
void voro_http_cancel(struct voro_http_call *call);

#endif
