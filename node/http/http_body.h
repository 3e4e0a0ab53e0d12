/* Finds where an HTTP/1.1 message body ends while it streams through: Content-Length
 * counting, chunked framing (validated with proto/http1's decoder, forwarded as is, or
 * stripped in place for an HTTP/1.0 recipient) or until-close. No allocation: it says how
 * many of the bytes at hand belong to the body, and de-chunking only moves bytes within them. */
#ifndef VORO_NODE_HTTP_BODY_H
#define VORO_NODE_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"

struct voro_http_body {
    enum voro_http1_body kind;
    uint64_t remaining;          /* LENGTH: bytes still to come */
    uint64_t seen;               /* body bytes passed through so far (framing included) */
    struct voro_http1_chunked dec;
    bool done;
    bool dechunk;                /* forward: strip the chunk framing and trailers (HTTP/1.0 recipient) */
    int error_status;            /* after an error: 400 (bad chunk framing) */
    const char *error_reason;
};

void voro_http_body_init(struct voro_http_body *b, enum voro_http1_body kind, uint64_t content_length);

/* Looks at `len` bytes that follow what was consumed so far. Returns the number of them that
 * belong to the body (to forward as they are), sets b->done when the body ended inside them
 * (the rest belongs to the next message), or returns -1 on bad chunked framing (see
 * error_status). UNTIL_CLOSE bodies take everything and end only at EOF. */
long voro_http_body_consume(struct voro_http_body *b, const uint8_t *data, size_t len);

/* voro_http_body_consume for bytes about to be forwarded. Returns how many of data[0..len)
 * belong to the body (or -1 as above) and sets *out_len to how many bytes to forward from
 * data[0]: the same count, or with b->dechunk on a chunked body only the payload, moved to
 * the front of `data` in place (chunk sizes, extensions, CRLFs and trailers are dropped; bytes
 * after the returned count are left untouched). *out_len may be 0 while the body goes on. */
long voro_http_body_forward(struct voro_http_body *b, uint8_t *data, size_t len, size_t *out_len);

#endif
