/* libFuzzer target for proto/http1: request and response heads (whole and split), then a chunked body. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/http1.h"

/* Checks invariants every result must hold, so the fuzzer finds wrong answers, not just crashes. */
static void check_head(const struct voro_http1_parser *p, enum voro_http1_result r, size_t len)
{
    if (r == VORO_HTTP1_DONE) {
        if (p->head_len > len || p->n_headers > VORO_HTTP1_MAX_HEADERS)
            __builtin_trap();
        for (uint32_t i = 0; i < p->n_headers; i++) {
            const struct voro_http1_header *h = &p->headers[i];
            if ((size_t)h->name.off + h->name.len > p->head_len || (size_t)h->value.off + h->value.len > p->head_len ||
                h->name.len == 0)
                __builtin_trap();
        }
    } else if (r == VORO_HTTP1_ERROR) {
        if (p->error_status < 400 || p->error_status > 505 || !p->error_reason)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct voro_http1_parser whole, split;
    /* first byte: odd = response head, even = request head (seeds use "0" / "1") */
    const char *buf = (const char *)data;
    enum voro_http1_kind kind = (size && (data[0] & 1)) ? VORO_HTTP1_RESPONSE : VORO_HTTP1_REQUEST;
    if (size)
        buf++, size--;

    voro_http1_init(&whole, kind, NULL);
    enum voro_http1_result r1 = voro_http1_parse(&whole, buf, size);
    check_head(&whole, r1, size);

    /* fed in uneven pieces, the verdict must be the same */
    voro_http1_init(&split, kind, NULL);
    enum voro_http1_result r2 = VORO_HTTP1_NEED_MORE;
    size_t have = 0, step = 1;
    while (have < size && r2 == VORO_HTTP1_NEED_MORE) {
        have = have + step < size ? have + step : size;
        step = step * 3 % 17 + 1;
        r2 = voro_http1_parse(&split, buf, have);
    }
    if (r1 != r2 || (r1 == VORO_HTTP1_DONE && whole.head_len != split.head_len) ||
        (r1 == VORO_HTTP1_ERROR && whole.error_status != split.error_status))
        __builtin_trap();

    if (r1 == VORO_HTTP1_DONE) {
        (void)voro_http1_keep_alive(&whole);
        (void)voro_http1_body_kind(&whole, false, false);
        (void)voro_http1_find_header(&whole, buf, "host");
        /* decode whatever follows as a chunked body */
        struct voro_http1_chunked d;
        voro_http1_chunked_init(&d, 0);
        size_t off = whole.head_len;
        for (int guard = 0; guard < 1000000 && off <= size; guard++) {
            size_t used;
            struct voro_http1_span sp;
            enum voro_http1_result r = voro_http1_chunked_decode(&d, buf + off, size - off, &used, &sp);
            if (used > size - off || (r == VORO_HTTP1_DATA && (size_t)sp.off + sp.len > used))
                __builtin_trap();
            off += used;
            if (r != VORO_HTTP1_DATA)
                break;
        }
    }
    return 0;
}
