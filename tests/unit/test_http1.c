/* Unit tests for proto/http1: request/response heads (whole and byte-at-a-time), every error class, chunked decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/http1.h"

static enum voro_http1_result parse_all(struct voro_http1_parser *p, enum voro_http1_kind kind, const char *s)
{
    voro_http1_init(p, kind, NULL);
    return voro_http1_parse(p, s, strlen(s));
}

/* Feeds one more byte per call, as a slow client would. */
static enum voro_http1_result parse_bytewise(struct voro_http1_parser *p, enum voro_http1_kind kind, const char *s)
{
    voro_http1_init(p, kind, NULL);
    size_t n = strlen(s);
    enum voro_http1_result r = VORO_HTTP1_NEED_MORE;
    for (size_t i = 1; i <= n; i++) {
        r = voro_http1_parse(p, s, i);
        if (r != VORO_HTTP1_NEED_MORE)
            return r;
    }
    return r;
}

static void expect_error(const char *s, int status)
{
    struct voro_http1_parser p;
    enum voro_http1_result r = parse_all(&p, VORO_HTTP1_REQUEST, s);
    if (r != VORO_HTTP1_ERROR || p.error_status != status)
        fprintf(stderr, "input %s: r=%d status=%d reason=%s\n", s, r, p.error_status,
                p.error_reason ? p.error_reason : "-");
    assert_int_equal(r, VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, status);
    assert_non_null(p.error_reason);
    /* the same verdict byte by byte */
    r = parse_bytewise(&p, VORO_HTTP1_REQUEST, s);
    assert_int_equal(r, VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, status);
}

static void test_simple_get(void **state)
{
    (void)state;
    const char *req = "GET /v1/models?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8 \t\r\nAccept:*/*\r\n\r\nBODY";
    for (int mode = 0; mode < 2; mode++) {
        struct voro_http1_parser p;
        enum voro_http1_result r =
            mode ? parse_bytewise(&p, VORO_HTTP1_REQUEST, req) : parse_all(&p, VORO_HTTP1_REQUEST, req);
        assert_int_equal(r, VORO_HTTP1_DONE);
        assert_int_equal(p.head_len, strlen(req) - 4);
        assert_true(voro_http1_span_eq(req, p.method, "GET"));
        assert_true(voro_http1_span_eq(req, p.target, "/v1/models?x=1"));
        assert_int_equal(p.version_minor, 1);
        assert_int_equal(p.n_headers, 3);
        assert_true(voro_http1_span_eq(req, p.headers[0].name, "Host"));
        assert_true(voro_http1_span_eq(req, p.headers[0].value, "example.com"));
        assert_true(voro_http1_span_eq(req, p.headers[1].value, "curl/8"));
        assert_true(voro_http1_span_eq(req, p.headers[2].value, "*/*"));
        const struct voro_http1_header *h = voro_http1_find_header(&p, req, "user-AGENT");
        assert_non_null(h);
        assert_ptr_equal(h, &p.headers[1]);
        assert_null(voro_http1_find_header(&p, req, "cookie"));
        assert_true(voro_http1_keep_alive(&p));
        assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_NONE);
    }
}

static void test_valid_variants(void **state)
{
    (void)state;
    struct voro_http1_parser p;
    /* HTTP/1.0 without Host, leading empty line, empty header value */
    const char *a = "\r\nPOST /x HTTP/1.0\r\nX-Empty:\r\nX-Sp:   \r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(parse_bytewise(&p, VORO_HTTP1_REQUEST, a), VORO_HTTP1_DONE);
    assert_int_equal(p.version_minor, 0);
    assert_true(voro_http1_span_eq(a, p.method, "POST"));
    assert_int_equal(p.headers[0].value.len, 0);
    assert_int_equal(p.headers[1].value.len, 0);
    assert_int_equal(p.content_length, 5);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_LENGTH);
    assert_false(voro_http1_keep_alive(&p));

    const char *b = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, b), VORO_HTTP1_DONE);
    assert_true(voro_http1_keep_alive(&p));

    const char *c = "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, c), VORO_HTTP1_DONE);
    assert_false(voro_http1_keep_alive(&p));

    const char *d = "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, d), VORO_HTTP1_DONE);
    assert_true(p.flags & VORO_HTTP1_F_CHUNKED);
    assert_true(p.flags & VORO_HTTP1_F_EXPECT_CONTINUE);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_CHUNKED);

    /* obs-text in a value is allowed; name tchars */
    const char *e = "GET * HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+-.^_`|~: caf\xc3\xa9 ok\r\n\r\n";
    assert_int_equal(parse_bytewise(&p, VORO_HTTP1_REQUEST, e), VORO_HTTP1_DONE);
    assert_true(voro_http1_span_eq(e, p.headers[1].value, "caf\xc3\xa9 ok"));

    /* reset and parse a pipelined second request from a later offset (caller shifts buffer) */
    const char *f = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, f), VORO_HTTP1_DONE);
    const char *second = f + p.head_len;
    voro_http1_reset(&p);
    assert_int_equal(voro_http1_parse(&p, second, strlen(second)), VORO_HTTP1_DONE);
    assert_true(voro_http1_span_eq(second, p.target, "/b"));

    /* exactly 100 headers pass */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 1; i < VORO_HTTP1_MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%d: v\r\n", i);
    snprintf(big + n, sizeof(big) - n, "\r\n");
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, big), VORO_HTTP1_DONE);
    assert_int_equal(p.n_headers, VORO_HTTP1_MAX_HEADERS);
}

static void test_need_more(void **state)
{
    (void)state;
    struct voro_http1_parser p;
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    voro_http1_init(&p, VORO_HTTP1_REQUEST, NULL);
    assert_int_equal(voro_http1_parse(&p, nul, sizeof(nul) - 1), VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, 400);
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r";
    assert_int_equal(parse_all(&p, VORO_HTTP1_REQUEST, s), VORO_HTTP1_NEED_MORE);
    assert_int_equal(p.pos, strlen(s));
    assert_int_equal(voro_http1_parse(&p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", strlen(s) + 1), VORO_HTTP1_DONE);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);            /* bare LF */
    expect_error("GET / HTTP/1.1\rHost: h\r\n\r\n", 400);            /* bare CR */
    expect_error("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400);    /* bare CR in value */
    expect_error("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);          /* whitespace before colon */
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400); /* obs-fold */
    expect_error("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\n\r\n", 400);                      /* missing Host */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501);
    expect_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    expect_error("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
    expect_error("GET / HTTP/0.9\r\n\r\n", 505);
    expect_error("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /\r\n\r\n", 400);
    expect_error("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400); /* too many empty lines */
}

static void test_limits(void **state)
{
    (void)state;
    static char buf[40000];
    /* request line over 8192 -> 414 */
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', 9000);
    n += 9000;
    snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_error(buf, 414);
    /* a head over 16 KiB -> 431 */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(buf + n, 'b', 17000);
    n += 17000;
    snprintf(buf + n, sizeof(buf) - n, "\r\n\r\n");
    expect_error(buf, 431);
    /* 101 headers -> 431 */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < VORO_HTTP1_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    expect_error(buf, 431);
    /* custom limits */
    struct voro_http1_parser p;
    struct voro_http1_limits lim = {.max_line = 16, .max_head = 64, .max_headers = 2};
    voro_http1_init(&p, VORO_HTTP1_REQUEST, &lim);
    const char *s = "GET /0123456789abcdef HTTP/1.1\r\n";
    assert_int_equal(voro_http1_parse(&p, s, strlen(s)), VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, 414);
    voro_http1_init(&p, VORO_HTTP1_REQUEST, &lim);
    s = "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nC: d\r\n\r\n";
    assert_int_equal(voro_http1_parse(&p, s, strlen(s)), VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, 431);
    /* an error is sticky */
    assert_int_equal(voro_http1_parse(&p, s, strlen(s)), VORO_HTTP1_ERROR);
}

static void test_responses(void **state)
{
    (void)state;
    struct voro_http1_parser p;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world!";
    assert_int_equal(parse_bytewise(&p, VORO_HTTP1_RESPONSE, a), VORO_HTTP1_DONE);
    assert_int_equal(p.status, 200);
    assert_true(voro_http1_span_eq(a, p.reason, "OK"));
    assert_int_equal(p.content_length, 12);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_LENGTH);
    assert_int_equal(voro_http1_body_kind(&p, true, false), VORO_HTTP1_BODY_NONE);

    const char *b = "HTTP/1.1 404 Not  Found here\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, b), VORO_HTTP1_DONE);
    assert_int_equal(p.status, 404);
    assert_true(voro_http1_span_eq(b, p.reason, "Not  Found here"));
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_CHUNKED);

    const char *c = "HTTP/1.0 204\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, c), VORO_HTTP1_DONE);
    assert_int_equal(p.status, 204);
    assert_int_equal(p.reason.len, 0);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_NONE);

    const char *d = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, d), VORO_HTTP1_DONE);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_UNTIL_CLOSE);

    const char *e = "HTTP/1.1 200 OK\r\n\r\n"; /* no Host needed on responses */
    assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, e), VORO_HTTP1_DONE);
    assert_int_equal(voro_http1_body_kind(&p, false, false), VORO_HTTP1_BODY_UNTIL_CLOSE);

    const char *bad[] = {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n",
                         "HTTP/1.1 200 O\x01K\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, bad[i]), VORO_HTTP1_ERROR);
        assert_int_equal(p.error_status, 400);
    }
    assert_int_equal(parse_all(&p, VORO_HTTP1_RESPONSE, "HTTP/3.0 200 OK\r\n\r\n"), VORO_HTTP1_ERROR);
    assert_int_equal(p.error_status, 505);
    assert_string_equal(voro_http1_status_text(404), "Not Found");
}

/* Decodes `in` fed in pieces of `step` bytes; returns the decoder result and the payload. */
static enum voro_http1_result dechunk(const char *in, size_t len, size_t step, char *out, size_t *out_len,
                                      size_t *consumed, struct voro_http1_chunked *d)
{
    voro_http1_chunked_init(d, 0);
    size_t off = 0;
    *out_len = 0;
    for (int guard = 0; guard < 100000; guard++) {
        size_t used, avail = off + step < len ? off + step : len;
        struct voro_http1_span sp;
        enum voro_http1_result r = voro_http1_chunked_decode(d, in + off, avail - off, &used, &sp);
        if (r == VORO_HTTP1_DATA) {
            memcpy(out + *out_len, in + off + sp.off, sp.len);
            *out_len += sp.len;
        }
        off += used;
        *consumed = off;
        if (r == VORO_HTTP1_DONE || r == VORO_HTTP1_ERROR)
            return r;
        if (r == VORO_HTTP1_NEED_MORE && avail == len)
            return r;
    }
    fail();
    return VORO_HTTP1_ERROR;
}

static void test_chunked(void **state)
{
    (void)state;
    const char *body = "5\r\nhello\r\n6;name=val;q=\"a \\\"b\"\r\n world\r\n0\r\nX-Trailer: t\r\nY: 1\r\n\r\nNEXT";
    for (size_t step = 1; step <= 8; step += 7) {
        char out[64];
        size_t out_len, consumed;
        struct voro_http1_chunked d;
        assert_int_equal(dechunk(body, strlen(body), step, out, &out_len, &consumed, &d), VORO_HTTP1_DONE);
        assert_int_equal(out_len, 11);
        assert_memory_equal(out, "hello world", 11);
        assert_int_equal(consumed, strlen(body) - 4);
    }
    const char *hex = "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    char out[64];
    size_t out_len, consumed;
    struct voro_http1_chunked d;
    assert_int_equal(dechunk(hex, strlen(hex), 100, out, &out_len, &consumed, &d), VORO_HTTP1_DONE);
    assert_int_equal(out_len, 26);
    const char *partial = "5\r\nhel";
    assert_int_equal(dechunk(partial, strlen(partial), 100, out, &out_len, &consumed, &d), VORO_HTTP1_NEED_MORE);
    assert_int_equal(out_len, 3);

    const struct { const char *in; int status; } bad[] = {
        {"x\r\n", 400},
        {"\r\n", 400},
        {"-1\r\n", 400},
        {"5 x\r\n", 400},
        {"5\nhello\r\n", 400},
        {"5\r\nhelloXY0\r\n\r\n", 400},
        {"5\r\nhello\r0\r\n\r\n", 400},
        {"fffffffffffffffff\r\n", 400},
        {"1000000000001\r\n", 400},
        {"5;a\x01\r\n", 400},
        {"0\r\nBad Trailer: x\r\n\r\n", 400},
        {"0\r\nX: a\x01\r\n\r\n", 400},
        {"0\r\n\rX", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum voro_http1_result r = dechunk(bad[i].in, strlen(bad[i].in), 1, out, &out_len, &consumed, &d);
        if (r != VORO_HTTP1_ERROR)
            fprintf(stderr, "chunked case %zu not rejected\n", i);
        assert_int_equal(r, VORO_HTTP1_ERROR);
        assert_int_equal(d.error_status, bad[i].status);
    }
    /* per-decoder max chunk */
    voro_http1_chunked_init(&d, 16);
    size_t used;
    struct voro_http1_span sp;
    assert_int_equal(voro_http1_chunked_decode(&d, "11\r\n", 4, &used, &sp), VORO_HTTP1_ERROR);
    /* trailers bounded */
    static char tr[12000];
    size_t n = (size_t)snprintf(tr, sizeof(tr), "0\r\n");
    while (n < 10000)
        n += (size_t)snprintf(tr + n, sizeof(tr) - n, "X-Trailer: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    snprintf(tr + n, sizeof(tr) - n, "\r\n");
    assert_int_equal(dechunk(tr, strlen(tr), 4096, out, &out_len, &consumed, &d), VORO_HTTP1_ERROR);
    assert_int_equal(d.error_status, 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),  cmocka_unit_test(test_valid_variants), cmocka_unit_test(test_need_more),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_limits),         cmocka_unit_test(test_responses),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
