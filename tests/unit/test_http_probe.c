/* Unit tests for cluster/http_probe: real loopback exchanges with an in-test server (framings, bounds, errors), URL parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "cluster/http_probe.h"
#include "common/clock.h"
#include "mini_http_server.h"

struct outcome {
    bool done;
    int err;
    char reason[64];
    int status;
    char body[8192];
    size_t body_len;
    char ctype[64];
};

static void on_result(void *ctx, const struct voro_http_result *r)
{
    struct outcome *o = ctx;
    o->done = true;
    o->err = r->err;
    snprintf(o->reason, sizeof(o->reason), "%s", r->reason);
    o->status = r->status;
    o->body_len = r->body_len < sizeof(o->body) ? r->body_len : sizeof(o->body) - 1;
    if (r->body_len)
        memcpy(o->body, r->body, o->body_len);
    o->body[o->body_len] = '\0';
    if (r->content_type)
        snprintf(o->ctype, sizeof(o->ctype), "%.*s", (int)r->content_type_len, r->content_type);
}

static void exchange(uint16_t port, const char *method, const char *body, uint32_t timeout_ms, size_t max,
                     struct outcome *o)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)port);
    struct voro_http_request req = {.addr = (struct sockaddr *)&sa,
                                    .method = method,
                                    .host = host,
                                    .path = "/x",
                                    .content_type = body ? "application/json" : NULL,
                                    .body = body,
                                    .body_len = body ? strlen(body) : 0,
                                    .timeout_ms = timeout_ms,
                                    .max_response = max};
    memset(o, 0, sizeof(*o));
    assert_int_equal(voro_http_probe_start(NULL, &loop, &req, on_result, o), 0);
    assert_false(o->done); /* never from inside start */
    uint64_t deadline = voro_now_ms() + 10000;
    while (!o->done && voro_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(o->done);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_content_length(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
    struct outcome o;
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_int_equal(o.err, 0);
    assert_string_equal(o.reason, "ok");
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "hello");
    assert_string_equal(o.ctype, "text/plain");
    pthread_mutex_lock(&m.lock);
    assert_non_null(strstr(m.last_request, "GET /x HTTP/1.1\r\n"));
    assert_non_null(strstr(m.last_request, "Connection: close\r\n"));
    pthread_mutex_unlock(&m.lock);
    /* HEAD: the Content-Length describes a body that never comes */
    mini_set(&m, MINI_RESPOND, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
    exchange(m.port, "HEAD", NULL, 2000, 0, &o);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.body_len, 0);
    mini_stop(&m);
}

static void test_chunked_interim_and_post(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "4\r\nbusy\r\n7\r\n, later\r\n0\r\n\r\n");
    struct outcome o;
    exchange(m.port, "POST", "{\"a\":1}", 2000, 0, &o);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 503);
    assert_string_equal(o.body, "busy, later");
    pthread_mutex_lock(&m.lock);
    assert_non_null(strstr(m.last_request, "Content-Length: 7\r\n"));
    assert_non_null(strstr(m.last_request, "\r\n\r\n{\"a\":1}"));
    pthread_mutex_unlock(&m.lock);
    mini_stop(&m);
}

static void test_until_close_and_errors(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, "HTTP/1.1 200 OK\r\n\r\nall of it");
    struct outcome o;
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_int_equal(o.err, 0);
    assert_string_equal(o.body, "all of it");

    /* truncated Content-Length body */
    mini_set(&m, MINI_RESPOND, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort");
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_int_equal(o.err, -EPROTO);
    assert_string_equal(o.reason, "closed early");

    /* garbage */
    mini_set(&m, MINI_RESPOND, "SSH-2.0-OpenSSH\r\n\r\n");
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_string_equal(o.reason, "bad response");

    /* bound on the response size */
    static char big[8000];
    int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 7000\r\n\r\n");
    memset(big + n, 'x', 7000);
    big[n + 7000] = '\0';
    mini_set(&m, MINI_RESPOND, big);
    exchange(m.port, "GET", NULL, 2000, 1024, &o);
    assert_int_equal(o.err, -EMSGSIZE);
    assert_string_equal(o.reason, "response too large");
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.body_len, 7000);

    /* no answer: timeout */
    mini_set(&m, MINI_HANG, NULL);
    exchange(m.port, "GET", NULL, 100, 0, &o);
    assert_int_equal(o.err, UV_ETIMEDOUT);
    assert_string_equal(o.reason, "timeout");
    mini_stop(&m);

    /* nobody listening */
    exchange(m.port, "GET", NULL, 2000, 0, &o);
    assert_string_equal(o.reason, "connect refused");
}

static void test_cancel(void **state)
{
    (void)state;
    struct mini_server m;
    mini_start(&m, NULL);
    mini_set(&m, MINI_HANG, NULL);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(m.port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct voro_http_request req = {.addr = (struct sockaddr *)&sa, .method = "GET", .host = "h", .path = "/", .timeout_ms = 50};
    struct outcome o = {0};
    struct voro_http_probe *p;
    assert_int_equal(voro_http_probe_start(&p, &loop, &req, on_result, &o), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    voro_http_probe_cancel(p);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_false(o.done);
    assert_int_equal(uv_loop_close(&loop), 0);
    mini_stop(&m);
}

static void test_url_parse(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char host[80], path[64];
    assert_int_equal(voro_http_url_parse("http://127.0.0.1:9001/metrics", &ss, host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(host, "127.0.0.1:9001");
    assert_string_equal(path, "/metrics");
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9001);
    assert_int_equal(voro_http_url_parse("http://[::1]:8000", &ss, host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(path, "/");
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(voro_http_url_parse("http://127.0.0.1/m?x=1", &ss, host, sizeof(host), path, sizeof(path)), 0);
    assert_string_equal(host, "127.0.0.1:80");
    assert_string_equal(path, "/m?x=1");
    assert_int_equal(voro_http_url_parse("https://127.0.0.1:1/", &ss, host, sizeof(host), path, sizeof(path)), -EINVAL);
    assert_int_equal(voro_http_url_parse("http://example.com/", &ss, host, sizeof(host), path, sizeof(path)), -EINVAL);
    assert_int_equal(voro_http_url_parse("http://127.0.0.1:1/a-long-path", &ss, host, sizeof(host), path, 4), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_interim_and_post),
        cmocka_unit_test(test_until_close_and_errors),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_url_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
