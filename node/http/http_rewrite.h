/* Builds the heads Voro forwards: the request head for a server (hop-by-hop headers removed,
 * X-Forwarded-For/-Proto, Via, X-Request-Id added) and the response head for a client
 * (hop-by-hop removed, Via added, Connection set to what Voro decided). Pure functions over
 * proto/http1's parsed spans; the caller owns both buffers. */
#ifndef VORO_NODE_HTTP_REWRITE_H
#define VORO_NODE_HTTP_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"

struct voro_http_request_rewrite {
    const char *client_ip;     /* appended to X-Forwarded-For */
    const char *proto;         /* X-Forwarded-Proto value ("http") */
    const char *via;           /* Via: 1.1 <via> appended; NULL = none */
    const char *request_id;    /* X-Request-Id added when the request has none; NULL = never */
    bool upgrade;              /* keep Upgrade and send "Connection: upgrade" (WebSocket) */
    bool http10;               /* send "HTTP/1.0" upstream (the client spoke 1.0) */
    bool strip_expect;         /* Voro answered "100 Continue" itself */
    int64_t content_length;    /* >= 0: replace Content-Length/Transfer-Encoding with this (rewritten body) */
};

struct voro_http_response_rewrite {
    const char *via;
    bool keep_alive;           /* the client connection stays open after this response */
    bool client_http10;        /* say "Connection: keep-alive" explicitly to a 1.0 client, and send it no
                                * Transfer-Encoding (RFC 9112 6.1: the body goes de-chunked) */
    bool upgrade;              /* a 101 for a WebSocket: keep Upgrade / Connection: upgrade */
    bool interim;              /* a 1xx other than 101: no Connection header of Voro's own */
};

/* Writes the rewritten request head into out[0..cap). Returns 0 and *out_len, or -ENOSPC. */
int voro_http_rewrite_request(const char *in, const struct voro_http1_parser *p,
                              const struct voro_http_request_rewrite *rw, char *out, size_t cap, size_t *out_len);
int voro_http_rewrite_response(const char *in, const struct voro_http1_parser *p,
                               const struct voro_http_response_rewrite *rw, char *out, size_t cap, size_t *out_len);

/* True when the head's Transfer-Encoding fields (if any) name no coding but chunked: what
 * Voro can undo for an HTTP/1.0 client. */
bool voro_http_te_only_chunked(const char *in, const struct voro_http1_parser *p);

/* True for hop-by-hop header names (RFC 9110 7.6.1) and names listed in the Connection header. */
bool voro_http_is_hop_by_hop(const char *in, const struct voro_http1_parser *p, struct voro_http1_span name);

#endif
