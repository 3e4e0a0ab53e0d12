/* Admin server deferred answers and request headers, driven by the cluster HTTP client over
 * loopback: later completion, completion inside the handler, a client gone before completion,
 * header lookup, and client timeouts / refused connections. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "cluster/admin_server.h"
#include "cluster/http_client.h"

struct fixture {
    uv_loop_t loop;
    struct voro_admin_server *srv;
    uint16_t port;
    char addr[32];
    struct voro_admin_deferred *held;
    uv_timer_t later;
    int handler_calls;
};

struct result {
    bool done;
    int status;
    char body[256];
};

static void on_result(void *arg, int status, const char *body, size_t len)
{
    struct result *r = arg;
    r->done = true;
    r->status = status;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)(body ? len : 0), body ? body : "");
}

static void complete_later(uv_timer_t *t)
{
    struct fixture *f = t->data;
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_puts(&sb, "{\"late\":true}");
    voro_admin_complete(f->held, 202, &sb);
    f->held = NULL;
}

static void h_later(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct fixture *f = ctx;
    f->handler_calls++;
    f->held = voro_admin_defer(resp);
    assert_non_null(f->held);
    uv_timer_start(&f->later, complete_later, 20, 0);
}

static void h_now(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct fixture *f = ctx;
    f->handler_calls++;
    struct voro_admin_deferred *d = voro_admin_defer(resp);
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_puts(&sb, "{\"now\":true}");
    voro_admin_complete(d, 201, &sb);
}

static void h_hold(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)req;
    struct fixture *f = ctx;
    f->handler_calls++;
    f->held = voro_admin_defer(resp);
}

static void h_headers(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    (void)ctx;
    char buf[64];
    const char *x = voro_admin_header(req, "x-test", buf, sizeof(buf));
    voro_strbuf_printf(&resp->body, "%s|%s|%s", req->authorization ? req->authorization : "(none)", x ? x : "(none)",
                       voro_admin_header(req, "X-Absent", buf, sizeof(buf)) ? "present" : "absent");
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    struct voro_sockaddr bind = {0};
    struct sockaddr_in *sa = (struct sockaddr_in *)&bind.ss;
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind.len = sizeof(*sa);
    snprintf(bind.text, sizeof(bind.text), "127.0.0.1:0");
    assert_int_equal(voro_admin_server_create(&f.srv, &f.loop, &bind), 0);
    f.port = voro_admin_server_port(f.srv);
    assert_true(f.port > 0);
    snprintf(f.addr, sizeof(f.addr), "127.0.0.1:%u", f.port);
    assert_int_equal(voro_admin_server_register(f.srv, "/later", VORO_ADMIN_POST, h_later, &f), 0);
    assert_int_equal(voro_admin_server_register(f.srv, "/now", VORO_ADMIN_GET, h_now, &f), 0);
    assert_int_equal(voro_admin_server_register(f.srv, "/hold", VORO_ADMIN_GET, h_hold, &f), 0);
    assert_int_equal(voro_admin_server_register(f.srv, "/headers", VORO_ADMIN_GET, h_headers, &f), 0);
    uv_timer_init(&f.loop, &f.later);
    f.later.data = &f;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    uv_close((uv_handle_t *)&f->later, NULL);
    voro_admin_server_close(f->srv);
    for (int i = 0; i < 1000 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
        ;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    return 0;
}

/* Runs the loop until *done (bounded by iterations; each waits at most for the next event). */
static void run_until(struct fixture *f, const bool *done)
{
    for (int i = 0; i < 2000 && !*done; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(*done);
}

static void test_completed_later(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_int_equal(voro_http_request(&f->loop, f->addr, "POST", "/later", NULL, "{}", 2, 5000, on_result, &r, NULL), 0);
    assert_false(r.done); /* never called from inside voro_http_request */
    run_until(f, &r.done);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"late\":true}");
}

static void test_completed_inside_handler(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/now", NULL, NULL, 0, 5000, on_result, &r, NULL), 0);
    run_until(f, &r.done);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"now\":true}");
}

static void test_client_gone_before_completion(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct voro_http_call *call = NULL;
    int calls = f->handler_calls;
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/hold", NULL, NULL, 0, 5000, on_result, &r, &call), 0);
    for (int i = 0; i < 2000 && f->handler_calls == calls; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_non_null(f->held);
    voro_http_cancel(call);
    assert_true(r.done);
    assert_int_equal(r.status, -ECANCELED);
    /* let the server see the close, then answer: it must only free the handle */
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_puts(&sb, "{}");
    voro_admin_complete(f->held, 200, &sb);
    f->held = NULL;
    /* the server still serves */
    struct result r2 = {0};
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/now", NULL, NULL, 0, 5000, on_result, &r2, NULL), 0);
    run_until(f, &r2.done);
    assert_int_equal(r2.status, 201);
}

static void test_headers(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/headers",
                                       "Authorization: Bearer abc\r\nX-Test:  v1 \r\n", NULL, 0, 5000, on_result, &r,
                                       NULL),
                     0);
    run_until(f, &r.done);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Bearer abc|v1|absent");
    struct result r2 = {0};
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/headers", NULL, NULL, 0, 5000, on_result, &r2, NULL), 0);
    run_until(f, &r2.done);
    assert_string_equal(r2.body, "(none)|(none)|absent");
}

static void test_client_errors(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    /* the held request never answers: the client's timeout ends it */
    assert_int_equal(voro_http_request(&f->loop, f->addr, "GET", "/hold", NULL, NULL, 0, 50, on_result, &r, NULL), 0);
    run_until(f, &r.done);
    assert_int_equal(r.status, -ETIMEDOUT);
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_admin_complete(f->held, 200, &sb);
    f->held = NULL;
    assert_int_equal(voro_http_request(&f->loop, "not-an-address", "GET", "/", NULL, NULL, 0, 50, on_result, &r, NULL),
                     -EINVAL);
    /* nothing listens on port 1 of loopback */
    struct result r3 = {0};
    assert_int_equal(voro_http_request(&f->loop, "127.0.0.1:1", "GET", "/", NULL, NULL, 0, 2000, on_result, &r3, NULL), 0);
    run_until(f, &r3.done);
    assert_int_equal(r3.status, -ECONNREFUSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completed_later),
        cmocka_unit_test(test_completed_inside_handler),
        cmocka_unit_test(test_client_gone_before_completion),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_client_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
