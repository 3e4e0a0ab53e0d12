/* HTTP body framing as bytes stream through (length, chunked, until close). */
#include "node/http/http_body.h"

#include <string.h>

void voro_http_body_init(struct voro_http_body *b, enum voro_http1_body kind, uint64_t content_length)
{
    memset(b, 0, sizeof(*b));
    b->kind = kind;
    if (kind == VORO_HTTP1_BODY_LENGTH) {
        b->remaining = content_length;
        b->done = content_length == 0;
    } else if (kind == VORO_HTTP1_BODY_CHUNKED) {
        voro_http1_chunked_init(&b->dec, 0);
    } else if (kind == VORO_HTTP1_BODY_NONE) {
        b->done = true;
    }
}

long voro_http_body_consume(struct voro_http_body *b, const uint8_t *data, size_t len)
{
    if (b->done || len == 0)
        return 0;
    switch (b->kind) {
    case VORO_HTTP1_BODY_NONE:
        b->done = true;
        return 0;
    case VORO_HTTP1_BODY_LENGTH: {
        size_t take = len < b->remaining ? len : (size_t)b->remaining;
        b->remaining -= take;
        b->seen += take;
        b->done = b->remaining == 0;
        return (long)take;
    }
    case VORO_HTTP1_BODY_UNTIL_CLOSE:
        b->seen += len;
        return (long)len;
    case VORO_HTTP1_BODY_CHUNKED: {
        size_t pos = 0;
        while (pos < len) {
            size_t used = 0;
            struct voro_http1_span span;
            enum voro_http1_result r =
                voro_http1_chunked_decode(&b->dec, (const char *)data + pos, len - pos, &used, &span);
            pos += used;
            if (r == VORO_HTTP1_ERROR) {
                b->error_status = b->dec.error_status ? b->dec.error_status : 400;
                b->error_reason = b->dec.error_reason ? b->dec.error_reason : "bad chunked framing";
                return -1;
            }
            if (r == VORO_HTTP1_DONE) {
                b->done = true;
                break;
            }
            if (r == VORO_HTTP1_NEED_MORE)
                break;
            /* DATA: keep going through the rest of the bytes at hand. */
        }
        b->seen += pos;
        return (long)pos;
    }
    }
    return -1;
}

long voro_http_body_forward(struct voro_http_body *b, uint8_t *data, size_t len, size_t *out_len)
{
    *out_len = 0;
    if (!b->dechunk || b->kind != VORO_HTTP1_BODY_CHUNKED) {
        long take = voro_http_body_consume(b, data, len);
        if (take > 0)
            *out_len = (size_t)take;
        return take;
    }
    if (b->done || len == 0)
        return 0;
    size_t pos = 0, out = 0;
    while (pos < len) { /* each turn consumes at least one byte, or ends the loop */
        size_t used = 0;
        struct voro_http1_span span = {0, 0};
        enum voro_http1_result r =
            voro_http1_chunked_decode(&b->dec, (const char *)data + pos, len - pos, &used, &span);
        if (r == VORO_HTTP1_ERROR) {
            b->error_status = b->dec.error_status ? b->dec.error_status : 400;
            b->error_reason = b->dec.error_reason ? b->dec.error_reason : "bad chunked framing";
            return -1;
        }
        if (r == VORO_HTTP1_DATA && span.len) {
            /* The payload never starts before `out` (out <= pos): moving it down is safe. */
            memmove(data + out, data + pos + span.off, span.len);
            out += span.len;
        }
        pos += used;
        if (r == VORO_HTTP1_DONE) {
            b->done = true;
            break;
        }
        if (r == VORO_HTTP1_NEED_MORE || used == 0)
            break;
    }
    b->seen += pos;
    *out_len = out;
    return (long)pos;
}
