/* Unit tests for node/http/http_body's forwarding (in-place de-chunking for HTTP/1.0 clients) and the response-head rewrite for interim heads and HTTP/1.0 clients. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "node/http/http_body.h"
#include "node/http/http_rewrite.h"

static const char CHUNKED[] = "5;name=\"q;x\"\r\nhello\r\n"
                              "1\r\n \r\n"
                              "a\r\n0123456789\r\n"
                              "0\r\nX-Sum: abc\r\nX-Other: 1\r\n\r\n";
static const char PAYLOAD[] = "hello 0123456789";
static const char NEXT[] = "HTTP/1.1 200 OK\r\n"; /* bytes after the body (the next message) */

/* Forwards `in` to the de-chunker in pieces of `step` bytes, each piece in a scratch buffer as a
 * receive would deliver it, appending what it forwards. Returns the bytes consumed in total. */
static size_t forward_in_steps(struct voro_http_body *b, const char *in, size_t n, size_t step, char *out,
                               size_t *out_len)
{
    uint8_t piece[256];
    size_t pos = 0;
    *out_len = 0;
    while (pos < n && !b->done) {
        size_t len = n - pos < step ? n - pos : step;
        memcpy(piece, in + pos, len);
        size_t fwd = 0;
        long take = voro_http_body_forward(b, piece, len, &fwd);
        assert_true(take >= 0);
        assert_true(fwd <= (size_t)take);
        /* Bytes after the body are left where they were. */
        assert_memory_equal(piece + take, in + pos + (size_t)take, len - (size_t)take);
        memcpy(out + *out_len, piece, fwd);
        *out_len += fwd;
        pos += (size_t)take;
        if ((size_t)take < len)
            break;
    }
    return pos;
}

static void test_dechunk_every_split(void **state)
{
    (void)state;
    char in[256];
    int n = snprintf(in, sizeof(in), "%s%s", CHUNKED, NEXT);
    for (size_t step = 1; step <= (size_t)n; step++) {
        struct voro_http_body b;
        voro_http_body_init(&b, VORO_HTTP1_BODY_CHUNKED, 0);
        b.dechunk = true;
        char out[256];
        size_t out_len = 0;
        size_t used = forward_in_steps(&b, in, (size_t)n, step, out, &out_len);
        if (out_len != strlen(PAYLOAD) || memcmp(out, PAYLOAD, out_len) != 0)
            fprintf(stderr, "step %zu: got %.*s\n", step, (int)out_len, out);
        assert_true(b.done);
        assert_int_equal(used, strlen(CHUNKED)); /* stops at the end of the trailers */
        assert_int_equal(out_len, strlen(PAYLOAD));
        assert_memory_equal(out, PAYLOAD, out_len);
        assert_int_equal(b.seen, strlen(CHUNKED));
        /* Done: nothing more is taken. */
        uint8_t more[] = "x";
        size_t fwd = 7;
        assert_int_equal(voro_http_body_forward(&b, more, 1, &fwd), 0);
        assert_int_equal(fwd, 0);
    }
}

static void test_dechunk_framing_only_piece(void **state)
{
    (void)state;
    /* A receive holding only framing forwards nothing but goes on. */
    struct voro_http_body b;
    voro_http_body_init(&b, VORO_HTTP1_BODY_CHUNKED, 0);
    b.dechunk = true;
    uint8_t size_line[] = "10;ext\r\n";
    size_t fwd = 99;
    assert_int_equal(voro_http_body_forward(&b, size_line, 8, &fwd), 8);
    assert_int_equal(fwd, 0);
    assert_false(b.done);
    uint8_t data[] = "0123456789abcdef\r\n0\r\n\r\n";
    assert_int_equal(voro_http_body_forward(&b, data, sizeof(data) - 1, &fwd), (long)(sizeof(data) - 1));
    assert_int_equal(fwd, 16);
    assert_memory_equal(data, "0123456789abcdef", 16);
    assert_true(b.done);
}

static void test_dechunk_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"zz\r\nhello\r\n", "5\r\nhelloXX", "5\nhello\r\n", "0\r\nbad trailer\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct voro_http_body b;
        voro_http_body_init(&b, VORO_HTTP1_BODY_CHUNKED, 0);
        b.dechunk = true;
        uint8_t buf[64];
        size_t n = strlen(bad[i]), fwd = 0;
        memcpy(buf, bad[i], n);
        long r = voro_http_body_forward(&b, buf, n, &fwd);
        if (r != -1)
            fprintf(stderr, "case %zu not rejected\n", i);
        assert_int_equal(r, -1);
        assert_int_equal(b.error_status, 400);
        assert_non_null(b.error_reason);
    }
}

static void test_forward_without_dechunk(void **state)
{
    (void)state;
    /* Chunked for an HTTP/1.1 client: forwarded as it is. */
    struct voro_http_body b;
    voro_http_body_init(&b, VORO_HTTP1_BODY_CHUNKED, 0);
    uint8_t buf[256];
    size_t n = strlen(CHUNKED), fwd = 0;
    memcpy(buf, CHUNKED, n);
    memcpy(buf + n, NEXT, strlen(NEXT));
    assert_int_equal(voro_http_body_forward(&b, buf, n + strlen(NEXT), &fwd), (long)n);
    assert_int_equal(fwd, n);
    assert_memory_equal(buf, CHUNKED, n);
    assert_true(b.done);
    /* Content-Length bodies ignore the flag. */
    voro_http_body_init(&b, VORO_HTTP1_BODY_LENGTH, 4);
    b.dechunk = true;
    uint8_t body[] = "abcdef";
    assert_int_equal(voro_http_body_forward(&b, body, 6, &fwd), 4);
    assert_int_equal(fwd, 4);
    assert_true(b.done);
}

static int parse_response(struct voro_http1_parser *p, const char *s)
{
    voro_http1_init(p, VORO_HTTP1_RESPONSE, NULL);
    return voro_http1_parse(p, s, strlen(s)) == VORO_HTTP1_DONE ? 0 : -1;
}

static void test_rewrite_interim_and_http10(void **state)
{
    (void)state;
    struct voro_http1_parser p;
    char out[1024];
    size_t len = 0;
    const char *hints = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n"
                        "Connection: X-Hop\r\nX-Hop: 1\r\n\r\n";
    assert_int_equal(parse_response(&p, hints), 0);
    struct voro_http_response_rewrite rw = {.via = "voro", .keep_alive = true, .interim = true};
    assert_int_equal(voro_http_rewrite_response(hints, &p, &rw, out, sizeof(out), &len), 0);
    const char want[] = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n"
                        "Via: 1.1 voro\r\n\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);

    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-A: 1\r\n\r\n";
    assert_int_equal(parse_response(&p, chunked), 0);
    assert_true(voro_http_te_only_chunked(chunked, &p));
    struct voro_http_response_rewrite rw10 = {.via = NULL, .keep_alive = false, .client_http10 = true};
    assert_int_equal(voro_http_rewrite_response(chunked, &p, &rw10, out, sizeof(out), &len), 0);
    const char want10[] = "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\n";
    assert_int_equal(len, strlen(want10));
    assert_memory_equal(out, want10, len);
    /* For an HTTP/1.1 client the framing stays. */
    struct voro_http_response_rewrite rw11 = {.via = NULL, .keep_alive = true};
    assert_int_equal(voro_http_rewrite_response(chunked, &p, &rw11, out, sizeof(out), &len), 0);
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));

    const char *gz = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_response(&p, gz), 0);
    assert_false(voro_http_te_only_chunked(gz, &p));
    const char *plain = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(parse_response(&p, plain), 0);
    assert_true(voro_http_te_only_chunked(plain, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dechunk_every_split), cmocka_unit_test(test_dechunk_framing_only_piece),
        cmocka_unit_test(test_dechunk_errors),      cmocka_unit_test(test_forward_without_dechunk),
        cmocka_unit_test(test_rewrite_interim_and_http10),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
