/* The HTTP request pipeline's filter hooks. Every request on an http listener runs the filter
 * chain at five points: request head, request body (only when a filter asked for the whole
 * body), response head, response body (each chunk as it streams) and log (once, at the end).
 * Routing and the balancer's hash key are filters today; ACLs, authentication, rewrites and
 * plugins are meant to be more of them. Hooks run on the worker thread, must not block, and
 * must not allocate per request. */
#ifndef VORO_NODE_HTTP_FILTER_H
#define VORO_NODE_HTTP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"
#include "node/balance/balance.h"
#include "proto/http1.h"

struct voro_snapshot;

enum voro_http_verdict {
    VORO_HTTP_CONTINUE = 0, /* go on with the next filter */
    VORO_HTTP_NEED_BODY,    /* request head only: buffer the whole body (up to x->body_limit, else
                             * 413), then run every filter's on_request_body */
    VORO_HTTP_REPLY,        /* stop: answer x->reply_status with x->reply_message (JSON) */
};

/* One request/response as the filters see it. Lives in the client connection; filters read
 * the request fields and write the decision fields. */
struct voro_http_exchange {
    /* Set by the proxy (read-only for filters). */
    const struct voro_config *cfg;
    const struct voro_snapshot *snap;    /* the snapshot `cfg` belongs to (published server state) */
    size_t listener;
    const char *head;                    /* the request head; the spans of `req` point into it
                                          * (only voro_http_exchange_retarget changes it) */
    const struct voro_http1_parser *req; /* valid in the request hooks */
    const char *client_ip;
    char method[16];                     /* copies for the log hooks (the head buffer moves on) */
    char path[200];
    const uint8_t *body;                 /* on_request_body only: the whole body, decoded */
    size_t body_len;

    /* Decisions of the request hooks: the proxy balances over `pool` minus `exclude`. */
    bool routed;                         /* pool (and route) decided */
    int route;                           /* index into cfg->routes, -1 = the listener's pool */
    size_t pool;
    struct voro_lb_exclude exclude;      /* servers that must not get this request */
    uint64_t hash_key;                   /* consistent_hash key */
    uint32_t body_limit;                 /* with VORO_HTTP_NEED_BODY */
    char model[VORO_NAME_MAX + 32];      /* the requested model ("" = none) */
    const char *served_model;            /* rewrite the body's model to this (owned by cfg), or NULL */
    uint32_t authority_off;              /* absolute-form target: its authority (the host routing
                                          * uses), a span of `head`; authority_len 0 = none */
    uint32_t authority_len;

    /* VORO_HTTP_REPLY: what to answer (OpenAI's error shape). */
    int reply_status;
    const char *reply_param;             /* static strings or NULL */
    const char *reply_code;
    char reply_message[200];

    /* Response and accounting (response and log hooks). */
    int status;                          /* the server's status, or Voro's own reply's */
    int server;                          /* -1 before a server was chosen */
    bool local_reply;                    /* Voro answered itself */
    bool logged;
    uint64_t start_us, first_byte_us, end_us;
    uint64_t bytes_in, bytes_out;        /* body and head bytes from / to the client */
};

struct voro_http_filter {
    const char *name;
    enum voro_http_verdict (*on_request_head)(struct voro_http_exchange *x);
    enum voro_http_verdict (*on_request_body)(struct voro_http_exchange *x);
    void (*on_response_head)(struct voro_http_exchange *x, const char *head, const struct voro_http1_parser *resp);
    void (*on_response_body)(struct voro_http_exchange *x, const uint8_t *data, size_t len);
    void (*on_log)(const struct voro_http_exchange *x);
};

/* The chain, in order (static, owned by the module). */
const struct voro_http_filter *const *voro_http_filters(size_t *count);

/* Helpers for filters. */
/* First request header named `name` (case-insensitive): its value and length, or NULL. */
const char *voro_http_exchange_header(const struct voro_http_exchange *x, const char *name, size_t *len);
/* Replaces the request-target by head[off .. off+len), bytes the filter already wrote in
 * place inside the old target (the normalised path is never longer than the target it comes
 * from). The request line sent upstream and every later filter see the new target. The head
 * buffer is the connection's and writable; only the route filter calls this, in its head hook. */
void voro_http_exchange_retarget(struct voro_http_exchange *x, uint32_t off, uint32_t len);
/* Sets a reply and returns VORO_HTTP_REPLY. `message` is copied (printf-style). */
enum voro_http_verdict voro_http_exchange_reply(struct voro_http_exchange *x, int status, const char *param,
                                                const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The built-in filters. */
extern const struct voro_http_filter voro_filter_route;
extern const struct voro_http_filter voro_filter_balance_key;
extern const struct voro_http_filter voro_filter_access_log;

#endif
