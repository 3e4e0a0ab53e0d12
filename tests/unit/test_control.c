/* Unit tests for cluster/control + admin server over real loopback sockets, and the Prometheus text writers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/control.h"
#include "cluster/prom_text.h"
#include "proto/http1.h"

struct fixture {
    struct voro_config cfg;
    struct voro_control *c;
    pthread_t thread;
    uint16_t port;
    atomic_int ticks;
    atomic_int reloads;
    atomic_int shutdowns;
    atomic_int last_signal;
    char seen_method[16];
    char seen_query[64];
    char seen_body[64];
};

static void on_tick(void *ctx) { atomic_fetch_add(&((struct fixture *)ctx)->ticks, 1); }
static void on_reload(void *ctx) { atomic_fetch_add(&((struct fixture *)ctx)->reloads, 1); }
static void on_shutdown(void *ctx, int signo)
{
    struct fixture *f = ctx;
    atomic_store(&f->last_signal, signo);
    atomic_fetch_add(&f->shutdowns, 1);
}

static void hello(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct fixture *f = ctx;
    snprintf(f->seen_method, sizeof(f->seen_method), "%s", req->method);
    snprintf(f->seen_query, sizeof(f->seen_query), "%s", req->query);
    snprintf(f->seen_body, sizeof(f->seen_body), "%.*s", (int)req->body_len, req->body);
    resp->content_type = "text/plain";
    voro_strbuf_printf(&resp->body, "hello %s", req->method);
}

static void teapot(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 418;
    voro_strbuf_puts(&resp->body, "{\"custom\":true}");
}

static void *run_thread(void *arg)
{
    voro_control_run(arg);
    return NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct sockaddr_in *sin = (struct sockaddr_in *)&f->cfg.admin_bind.ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->cfg.admin_bind.len = sizeof(*sin);
    snprintf(f->cfg.admin_bind.text, sizeof(f->cfg.admin_bind.text), "127.0.0.1:0");
    struct voro_control_hooks hooks = {
        .ctx = f, .on_tick = on_tick, .on_reload = on_reload, .on_shutdown = on_shutdown,
    };
    if (voro_control_create(&f->c, &f->cfg, &hooks) != 0)
        return -1;
    f->port = voro_control_admin_port(f->c);
    if (f->port == 0)
        return -1;
    voro_control_register(f->c, "/hello", hello, f);
    voro_control_register_methods(f->c, "/echo", VORO_ADMIN_POST | VORO_ADMIN_GET, hello, f);
    voro_control_register(f->c, "/teapot", teapot, NULL);
    if (pthread_create(&f->thread, NULL, run_thread, f->c) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    voro_control_stop(f->c);
    pthread_join(f->thread, NULL);
    int rc = voro_control_destroy(f->c);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int connect_admin(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

struct response {
    int status;
    char head[4096];
    char body[4096];
    size_t body_len;
};

/* Reads one response (head + Content-Length body); leftover bytes stay in `buf`/`*have`. */
static void read_response(int fd, bool head_request, struct response *r, char *buf, size_t *have)
{
    struct voro_http1_parser p;
    voro_http1_init(&p, VORO_HTTP1_RESPONSE, NULL);
    for (int i = 0; i < 1000; i++) {
        enum voro_http1_result res = voro_http1_parse(&p, buf, *have);
        assert_int_not_equal(res, VORO_HTTP1_ERROR);
        if (res == VORO_HTTP1_DONE)
            break;
        ssize_t n = recv(fd, buf + *have, 65536 - *have, 0);
        assert_true(n > 0);
        *have += (size_t)n;
    }
    assert_int_equal(voro_http1_parse(&p, buf, *have), VORO_HTTP1_DONE);
    r->status = p.status;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)p.head_len, buf);
    size_t need = head_request ? 0 : (size_t)p.content_length;
    assert_true(p.flags & VORO_HTTP1_F_CONTENT_LENGTH);
    for (int i = 0; i < 1000 && *have < p.head_len + need; i++) {
        ssize_t n = recv(fd, buf + *have, 65536 - *have, 0);
        assert_true(n > 0);
        *have += (size_t)n;
    }
    assert_true(need < sizeof(r->body));
    memcpy(r->body, buf + p.head_len, need);
    r->body[need] = '\0';
    r->body_len = need;
    memmove(buf, buf + p.head_len + need, *have - p.head_len - need);
    *have -= p.head_len + need;
}

/* True when the server closes the connection (EOF) without sending more. */
static bool peer_closed(int fd)
{
    char b[256];
    ssize_t n = recv(fd, b, sizeof(b), 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void exchange(uint16_t port, const char *req, bool head_request, struct response *r, bool *closed)
{
    static char buf[65536];
    size_t have = 0;
    int fd = connect_admin(port);
    send_all(fd, req, strlen(req));
    read_response(fd, head_request, r, buf, &have);
    assert_int_equal(have, 0);
    if (closed)
        *closed = peer_closed(fd);
    close(fd);
}

static void test_healthz(void **state)
{
    struct fixture *f = *state;
    struct response r;
    bool closed;
    exchange(f->port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, &r, &closed);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}\n");
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    assert_true(closed);
}

static void test_registered_handler_and_404(void **state)
{
    struct fixture *f = *state;
    struct response r;
    exchange(f->port, "GET /hello?x=1&y=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, &r, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello GET");
    assert_string_equal(f->seen_query, "x=1&y=2");
    assert_non_null(strstr(r.head, "Content-Type: text/plain\r\n"));

    exchange(f->port, "GET /teapot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, &r, NULL);
    assert_int_equal(r.status, 418);

    exchange(f->port, "GET /nope?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, &r, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"not found\",\"path\":\"/nope\"}\n");
}

static void test_head_and_methods(void **state)
{
    struct fixture *f = *state;
    struct response r;
    bool closed;
    exchange(f->port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, &r, &closed);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Length: 16\r\n"));
    assert_true(closed); /* and no body bytes came before the close */

    exchange(f->port, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, &r,
             NULL);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD\r\n"));

    exchange(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello body!",
             false, &r, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello POST");
    assert_string_equal(f->seen_body, "hello body!");
    assert_string_equal(f->seen_method, "POST");

    exchange(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, &r,
             NULL);
    assert_int_equal(r.status, 411);
    exchange(f->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", false, &r, NULL);
    assert_int_equal(r.status, 413);
}

static void test_keep_alive_and_pipelining(void **state)
{
    struct fixture *f = *state;
    static char buf[65536];
    size_t have = 0;
    struct response r;
    int fd = connect_admin(f->port);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, false, &r, buf, &have);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    /* the same connection serves a second request; a body split across two sends */
    const char *b1 = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab";
    send_all(fd, b1, strlen(b1));
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    send_all(fd, "cdef", 4);
    read_response(fd, false, &r, buf, &have);
    assert_int_equal(r.status, 200);
    assert_string_equal(f->seen_body, "abcdef");
    /* two pipelined requests in one write, the last one asking to close */
    const char *two = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    read_response(fd, false, &r, buf, &have);
    assert_int_equal(r.status, 200);
    read_response(fd, false, &r, buf, &have);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_int_equal(have, 0);
    assert_true(peer_closed(fd));
    close(fd);

    /* 100 pipelined requests in one write: the server pauses reading at 32 queued answers and
     * resumes as they drain; every answer arrives, in order */
    fd = connect_admin(f->port);
    static char many[100 * 64];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "GET /hello?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    send_all(fd, many, len);
    have = 0;
    for (int i = 0; i < 100; i++) {
        read_response(fd, false, &r, buf, &have);
        assert_int_equal(r.status, 200);
    }
    assert_string_equal(f->seen_query, "n=99");
    close(fd);

    /* HTTP/1.0 closes after the answer */
    bool closed;
    exchange(f->port, "GET /healthz HTTP/1.0\r\n\r\n", false, &r, &closed);
    assert_int_equal(r.status, 200);
    assert_true(closed);
}

static void test_protocol_errors_close(void **state)
{
    struct fixture *f = *state;
    struct response r;
    bool closed;
    exchange(f->port, "this is not http\r\n\r\n", false, &r, &closed);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"error\":"));
    assert_true(closed);

    exchange(f->port, "GET / HTTP/1.1\r\n\r\n", false, &r, &closed);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"error\":\"missing host\"}\n");
    assert_true(closed);

    exchange(f->port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", false, &r, &closed);
    assert_int_equal(r.status, 505);
    assert_true(closed);

    /* a head over 16 KiB */
    static char big[20000];
    int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 18000);
    strcpy(big + n + 18000, "\r\n\r\n");
    exchange(f->port, big, false, &r, &closed);
    assert_int_equal(r.status, 431);
    assert_true(closed);
}

static void test_connection_limit(void **state)
{
    struct fixture *f = *state;
    enum { N = 256 };
    static int fds[N];
    static char buf[65536];
    struct response r;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++) {
        size_t have = 0;
        fds[i] = connect_admin(f->port);
        send_all(fds[i], req, strlen(req));
        read_response(fds[i], false, &r, buf, &have); /* proves the server holds it */
        assert_int_equal(r.status, 200);
    }
    /* the 257th is accepted by the kernel, then closed by the server without an answer */
    int extra = connect_admin(f->port);
    send(extra, req, strlen(req), MSG_NOSIGNAL);
    assert_true(peer_closed(extra));
    close(extra);
    /* the held ones still work */
    size_t have = 0;
    send_all(fds[N - 1], req, strlen(req));
    read_response(fds[N - 1], false, &r, buf, &have);
    assert_int_equal(r.status, 200);
    /* once one goes away, a new connection is served again (the server must see the close first) */
    close(fds[0]);
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; attempt++) {
        int fd = connect_admin(f->port);
        send(fd, req, strlen(req), MSG_NOSIGNAL);
        char b[512];
        ssize_t n = recv(fd, b, sizeof(b), 0);
        served = n > 12 && memcmp(b, "HTTP/1.1 200", 12) == 0;
        close(fd);
        if (!served) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(served);
    for (int i = 1; i < N; i++)
        close(fds[i]);
}

static void test_signals_and_tick(void **state)
{
    struct fixture *f = *state;
    kill(getpid(), SIGHUP);
    for (int i = 0; i < 500 && (atomic_load(&f->reloads) == 0 || atomic_load(&f->ticks) == 0); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&f->reloads), 1);
    assert_true(atomic_load(&f->ticks) >= 1);
    kill(getpid(), SIGTERM);
    for (int i = 0; i < 500 && atomic_load(&f->shutdowns) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&f->shutdowns), 1);
    assert_int_equal(atomic_load(&f->last_signal), SIGTERM);
}

static void override(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 503;
    voro_strbuf_puts(&resp->body, "{\"status\":\"draining\"}");
}

static void test_override_healthz_and_bind_error(void **state)
{
    (void)state;
    struct voro_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg.admin_bind.ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    cfg.admin_bind.len = sizeof(*sin6);
    snprintf(cfg.admin_bind.text, sizeof(cfg.admin_bind.text), "[::1]:0");
    struct voro_control *c;
    int rc = voro_control_create(&c, &cfg, NULL);
    if (rc != 0) {
        /* no IPv6 loopback here: fall back to IPv4 for the rest */
        struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.admin_bind.ss;
        memset(&cfg.admin_bind, 0, sizeof(cfg.admin_bind));
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cfg.admin_bind.len = sizeof(*sin);
        assert_int_equal(voro_control_create(&c, &cfg, NULL), 0);
    }
    uint16_t port = voro_control_admin_port(c);
    assert_int_equal(voro_control_register(c, "/healthz", override, NULL), 0);
    assert_int_equal(voro_control_register(c, "no-slash", override, NULL), -EINVAL);

    /* a second control on the same port fails with -EADDRINUSE and leaks nothing */
    struct voro_config cfg2 = cfg;
    if (cfg2.admin_bind.ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&cfg2.admin_bind.ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&cfg2.admin_bind.ss)->sin_port = htons(port);
    struct voro_control *c2 = NULL;
    assert_int_equal(voro_control_create(&c2, &cfg2, NULL), -EADDRINUSE);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, c), 0);
    int fd = socket(cfg.admin_bind.ss.ss_family, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&cfg2.admin_bind.ss, cfg2.admin_bind.len), 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    static char buf[65536];
    size_t have = 0;
    struct response r;
    read_response(fd, false, &r, buf, &have);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"draining\"}");
    close(fd);
    voro_control_stop(c);
    pthread_join(th, NULL);
    assert_int_equal(voro_control_destroy(c), 0);
}

static void test_stop_before_run(void **state)
{
    (void)state;
    struct voro_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.admin_bind.ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg.admin_bind.len = sizeof(*sin);
    struct voro_control *c;
    assert_int_equal(voro_control_create(&c, &cfg, NULL), 0);
    /* an open idle connection must not block shutdown */
    int fd = connect_admin(voro_control_admin_port(c));
    voro_control_stop(c);
    assert_int_equal(voro_control_run(c), 0);
    assert_int_equal(voro_control_destroy(c), 0);
    close(fd);
    /* never run at all */
    assert_int_equal(voro_control_create(&c, &cfg, NULL), 0);
    assert_int_equal(voro_control_destroy(c), 0);
}

static void test_prom_text(void **state)
{
    (void)state;
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    assert_int_equal(voro_prom_header(&sb, "voro_up", "gauge", "Server up\nper \\ pool"), 0);
    const char *labels[] = {"pool", "gp\"u\\1\n", "server", "a", NULL};
    assert_int_equal(voro_prom_sample(&sb, "voro_up", labels, 1), 0);
    assert_int_equal(voro_prom_sample(&sb, "voro_ratio", NULL, 0.25), 0);
    assert_int_equal(voro_prom_sample(&sb, "voro_nan", NULL, NAN), 0);
    assert_int_equal(voro_prom_sample(&sb, "voro_inf", NULL, -INFINITY), 0);
    assert_int_equal(voro_prom_sample_u64(&sb, "voro_total", NULL, 18446744073709551615ULL), 0);
    assert_string_equal(sb.data, "# HELP voro_up Server up\\nper \\\\ pool\n"
                                 "# TYPE voro_up gauge\n"
                                 "voro_up{pool=\"gp\\\"u\\\\1\\n\",server=\"a\"} 1\n"
                                 "voro_ratio 0.25\n"
                                 "voro_nan NaN\n"
                                 "voro_inf -Inf\n"
                                 "voro_total 18446744073709551615\n");
    voro_strbuf_reset(&sb);
    voro_prom_value(&sb, 0.1);
    assert_string_equal(sb.data, "0.1");
    voro_strbuf_free(&sb);
}

int main(void)
{
    /* a broken pipe from a test client must not kill the test process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_handler_and_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signals_and_tick, setup, teardown),
        cmocka_unit_test(test_override_healthz_and_bind_error),
        cmocka_unit_test(test_stop_before_run),
        cmocka_unit_test(test_prom_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
