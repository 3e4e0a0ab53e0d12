/* libFuzzer target for proto/http1: request and response heads (whole and split), the request
 * target's form and normalisation (proto/http1_target), then a chunked body. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/http1.h"
#include "proto/http1_target.h"

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

/* The request target, normalised the way the route filter does it (in place): the output never
 * grows, is a clean origin-form path, and normalising it again changes nothing. */
static void check_target(const char *buf, const struct voro_http1_parser *p)
{
    static char t[1 << 16], again[1 << 16];
    if (p->target.len > sizeof(t))
        return;
    size_t len = p->target.len;
    memcpy(t, buf + p->target.off, len);
    struct voro_target tg;
    const char *why = NULL;
    if (voro_target_parse(t, len, &tg, &why) != 0) {
        if (!why)
            __builtin_trap();
        return;
    }
    if (tg.path_off > len || (tg.form == VORO_TARGET_ABSOLUTE && (tg.authority_len == 0 ||
                                                                 tg.authority_off + tg.authority_len > tg.path_off)))
        __builtin_trap();
    bool abs_path = tg.form == VORO_TARGET_ABSOLUTE && tg.path_off < len && t[tg.path_off] == '/';
    if (tg.form != VORO_TARGET_ORIGIN && !abs_path)
        return;
    char *in = t + tg.path_off;
    size_t n = len - tg.path_off, out_len = 0, path_len = 0;
    if (voro_path_normalize(in, n, in, n, &out_len, &path_len, &why) != 0) {
        if (!why)
            __builtin_trap();
        return;
    }
    if (out_len > n || path_len > out_len || path_len == 0 || in[0] != '/')
        __builtin_trap();
    for (size_t i = 0; i + 1 < path_len; i++)
        if (in[i] == '/' && (in[i + 1] == '/' ||
                             (in[i + 1] == '.' && (i + 2 == path_len || in[i + 2] == '/' ||
                                                   (in[i + 2] == '.' && (i + 3 == path_len || in[i + 3] == '/'))))))
            __builtin_trap(); /* "//", "/./" or "/../" left */
    size_t l2 = 0, p2 = 0;
    if (voro_path_normalize(in, out_len, again, sizeof(again), &l2, &p2, &why) != 0 || l2 != out_len ||
        p2 != path_len || memcmp(again, in, l2) != 0)
        __builtin_trap();
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
        if (kind == VORO_HTTP1_REQUEST)
            check_target(buf, &whole);
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
