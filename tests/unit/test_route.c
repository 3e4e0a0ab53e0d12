/* Unit tests for node/http/route: first-match order and every condition, the two-step model
 * decision (needs_model, X-Model), and model-to-server filtering with served names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cluster/config.h"
#include "node/http/route.h"

#define CONF \
    "[listener web]\nmode = http\nbind = 127.0.0.1:8080\npool = gpu\n" \
    "[listener admin]\nmode = http\nbind = 127.0.0.1:8081\npool = gpu\n" \
    "[listener raw]\nmode = tcp\nbind = 127.0.0.1:8082\npool = gpu\n" \
    "[pool gpu]\n" \
    "server = s0 127.0.0.1:9000 models=llama@v1,llama@v2\n" \
    "server = s1 127.0.0.1:9001 models=llama,lora:llama-sql\n" \
    "server = s2 127.0.0.1:9002 models=mistral\n" \
    "server = s3 127.0.0.1:9003\n" \
    "[pool embed]\nserver = e0 127.0.0.1:9100 models=bge\nserver = e1 127.0.0.1:9101 models=bge@v2\n" \
    "[pool other]\nserver = o0 127.0.0.1:9200\n" \
    "[route admin-only]\nlistener = admin\npool = other\n" \
    "[route embeddings]\npath_prefix = /v1/embeddings\nmethods = POST\npool = embed\n" \
    "[route tenant]\nheader = X-Tenant: blue\npool = other\n" \
    "[route debug]\nheader = X-Debug\nhost = *.example.com\npool = other\n" \
    "[route llama-v2]\npath_prefix = /v1/\nmodel = llama@v2\npool = gpu\n" \
    "[route llama]\npath_prefix = /v1/\nmodel = llama\npool = gpu\nrewrite_model = true\n" \
    "[route exact-host]\nhost = API.example.com\npool = embed\n" \
    "[route any-model]\nmodel = *\npool = gpu\n" \
    "[route health]\nmethods = GET,HEAD\npath_prefix = /health\npool = other\n"

enum { R_ADMIN, R_EMBED, R_TENANT, R_DEBUG, R_LLAMA_V2, R_LLAMA, R_EXACT_HOST, R_ANY, R_HEALTH };
enum { L_WEB, L_ADMIN };

struct hdrs {
    const char *names[4];
    const char *values[4];
    int lookups;
};

static const char *get_header(void *ctx, const char *name, size_t *len)
{
    struct hdrs *h = ctx;
    h->lookups++;
    for (int i = 0; i < 4 && h->names[i]; i++)
        if (!strcasecmp(h->names[i], name)) {
            *len = strlen(h->values[i]);
            return h->values[i];
        }
    return NULL;
}

static struct voro_config *load(void)
{
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    int rc = voro_config_parse("route.conf", CONF, strlen(CONF), &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_error("%s\n", errs.items[i].message);
    voro_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

static struct voro_route_request req_of(const char *method, const char *host, const char *path, struct hdrs *h)
{
    struct voro_route_request r = {
        .method_bit = voro_route_method_bit(method, strlen(method)),
        .host = host,
        .host_len = host ? strlen(host) : 0,
        .path = path,
        .path_len = strlen(path),
        .header = get_header,
        .header_ctx = h,
    };
    return r;
}

static int sel(const struct voro_config *cfg, size_t lis, const struct voro_route_request *r, bool *needs)
{
    return voro_route_select(cfg, lis, r, needs);
}

static void test_first_match_and_conditions(void **state)
{
    (void)state;
    struct voro_config *cfg = load();
    assert_int_equal(cfg->n_routes, 9);
    struct hdrs h = {{NULL}, {NULL}, 0};
    bool needs = true;

    /* listener: admin-only catches everything on admin (it is first), nothing on web */
    struct voro_route_request r = req_of("POST", "x", "/v1/embeddings", &h);
    assert_int_equal(sel(cfg, L_ADMIN, &r, &needs), R_ADMIN);
    assert_false(needs);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_EMBED);
    /* methods: GET to the embeddings path skips it */
    r = req_of("GET", "x", "/v1/embeddings/x", &h);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN); /* llama-v2 needs the model */
    assert_true(needs);
    /* path prefix is byte-wise on the target, query included */
    r = req_of("POST", "x", "/v1/embeddings?x=1", &h);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_EMBED);
    r = req_of("POST", "x", "/v1/embedding", &h);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN);
    r = req_of("POST", "x", "/V1/embeddings", &h);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN); /* any-model (no path condition) */

    /* header with value: exact, case-sensitive value; name looked up case-insensitively */
    struct hdrs t = {{"x-tenant"}, {"blue"}, 0};
    r = req_of("GET", "x", "/", &t);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_TENANT);
    struct hdrs t2 = {{"X-Tenant"}, {"Blue"}, 0};
    r = req_of("GET", "x", "/health", &t2);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN); /* any-model comes before health */

    /* header presence + wildcard host (needs a label in front, port and case ignored) */
    struct hdrs d = {{"X-Debug"}, {""}, 0};
    r = req_of("GET", "a.b.Example.COM:8443", "/", &d);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_DEBUG);
    r = req_of("GET", "example.com", "/", &d);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN);
    r = req_of("GET", "badexample.com", "/", &d);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN);
    r = req_of("GET", NULL, "/", &d);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN);

    /* exact host: case-insensitive, port and one trailing dot ignored */
    struct voro_route_request m = req_of("GET", "api.EXAMPLE.com:80", "/x", &h);
    m.model = "";
    m.model_len = 0; /* scanned: no model, so model routes never match */
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), R_EXACT_HOST);
    m.host = "api.example.com.";
    m.host_len = strlen(m.host);
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), R_EXACT_HOST);
    m.host = "api.example.co";
    m.host_len = strlen(m.host);
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), -ENOENT);
    assert_false(needs);
    /* health: methods GET,HEAD only */
    m = req_of("HEAD", "h", "/healthz", &h);
    m.model = "";
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), R_HEALTH);
    m = req_of("DELETE", "h", "/health", &h);
    m.model = "";
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), -ENOENT);

    assert_int_equal(sel(cfg, 2 + 1, &m, &needs), -EINVAL);
    assert_int_equal(voro_route_select(cfg, 0, NULL, &needs), -EINVAL);
    voro_config_free(cfg);
}

static void test_model_routing(void **state)
{
    (void)state;
    struct voro_config *cfg = load();
    struct hdrs h = {{NULL}, {NULL}, 0};
    bool needs = false;
    struct voro_route_request r = req_of("POST", "x", "/v1/chat/completions", &h);
    /* step 1: no model yet */
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EAGAIN);
    assert_true(needs);
    /* step 2: with the body's model */
    static const struct {
        const char *model;
        int route;
    } cases[] = {
        {"llama@v2", R_LLAMA_V2}, {"llama@v1", R_LLAMA},   {"llama", R_LLAMA},    {"mistral", R_ANY},
        {"llama-sql", R_ANY},     {"llamas", R_ANY},       {"llama@", R_ANY},     {"llama@v2x", R_LLAMA},
        {"llama@v/2", R_ANY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r.model = cases[i].model;
        r.model_len = strlen(cases[i].model);
        int got = sel(cfg, L_WEB, &r, &needs);
        if (got != cases[i].route)
            fail_msg("model %s: route %d, expected %d", cases[i].model, got, cases[i].route);
        assert_false(needs);
    }
    /* the model is a length-delimited slice: bytes after it are not part of it */
    r.model = "llama@v2\"}";
    r.model_len = 8;
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_LLAMA_V2);
    /* the body named no model: model routes are skipped, the rest still apply */
    r.model = "";
    r.model_len = 0;
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -ENOENT);
    assert_false(needs);
    /* X-Model decides without the body, and wins over the body's model */
    struct hdrs xm = {{"x-model"}, {"llama@v2"}, 0};
    r = req_of("POST", "x", "/v1/chat/completions", &xm);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_LLAMA_V2);
    assert_false(needs);
    r.model = "mistral";
    r.model_len = 7;
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_LLAMA_V2);
    /* a route that matches without a model wins before a later model route asks for the body */
    r = req_of("POST", "x", "/v1/embeddings", &h);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_EMBED);
    assert_false(needs);
    /* needs_model may be NULL */
    r = req_of("POST", "x", "/v1/chat", &h);
    assert_int_equal(voro_route_select(cfg, L_WEB, &r, NULL), -EAGAIN);
    /* no header callback at all */
    r.header = NULL;
    r.model = "llama";
    r.model_len = 5;
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_LLAMA);
    voro_config_free(cfg);
}

static int serving(const struct voro_config *cfg, int route, const char *model, struct voro_lb_exclude *ex,
                   const char **served)
{
    memset(ex, 0, sizeof(*ex));
    return voro_route_model_servers(cfg, (size_t)route, model, strlen(model), ex, served);
}

static void test_model_servers(void **state)
{
    (void)state;
    struct voro_config *cfg = load();
    struct voro_lb_exclude ex;
    const char *served = (const char *)1;

    /* gpu: s0 llama@v1,llama@v2; s1 llama, lora:llama-sql; s2 mistral; s3 undeclared */
    assert_int_equal(serving(cfg, R_LLAMA, "llama", &ex, &served), 3);
    assert_false(voro_lb_exclude_has(&ex, 0));
    assert_false(voro_lb_exclude_has(&ex, 1));
    assert_true(voro_lb_exclude_has(&ex, 2));
    assert_false(voro_lb_exclude_has(&ex, 3));
    assert_string_equal(served, "llama");

    assert_int_equal(serving(cfg, R_LLAMA, "llama@v2", &ex, &served), 2);
    assert_false(voro_lb_exclude_has(&ex, 0));
    assert_true(voro_lb_exclude_has(&ex, 1)); /* unversioned llama is not llama@v2 */
    assert_true(voro_lb_exclude_has(&ex, 2));
    assert_false(voro_lb_exclude_has(&ex, 3));
    assert_string_equal(served, "llama"); /* sent without the version */
    assert_ptr_equal(served, cfg->pools[0].servers[0].models[1].name); /* owned by cfg */

    assert_int_equal(serving(cfg, R_LLAMA, "llama-sql", &ex, &served), 2); /* the adapter */
    assert_true(voro_lb_exclude_has(&ex, 0));
    assert_false(voro_lb_exclude_has(&ex, 1));
    assert_string_equal(served, "llama-sql");
    assert_int_equal(serving(cfg, R_LLAMA, "llama-sql@v1", &ex, &served), 1); /* adapters have no version */
    assert_null(served);

    assert_int_equal(serving(cfg, R_ANY, "gpt-4", &ex, &served), 1); /* only the undeclared server */
    assert_true(voro_lb_exclude_has(&ex, 0) && voro_lb_exclude_has(&ex, 1) && voro_lb_exclude_has(&ex, 2));
    assert_false(voro_lb_exclude_has(&ex, 3));
    assert_null(served);

    /* embed: every server declares, so an unknown model has no server */
    assert_int_equal(serving(cfg, R_EMBED, "gpt-4", &ex, &served), 0);
    assert_true(voro_lb_exclude_has(&ex, 0) && voro_lb_exclude_has(&ex, 1));
    assert_null(served);
    assert_int_equal(serving(cfg, R_EMBED, "bge@v2", &ex, &served), 1);
    assert_true(voro_lb_exclude_has(&ex, 0));
    assert_false(voro_lb_exclude_has(&ex, 1));
    assert_string_equal(served, "bge");
    assert_int_equal(serving(cfg, R_EMBED, "", &ex, &served), 0);

    /* bits already in `exclude` (servers tried before) are kept */
    struct voro_lb_exclude keep = {{0}};
    voro_lb_exclude_add(&keep, 0);
    assert_int_equal(voro_route_model_servers(cfg, R_EMBED, "bge@v2", 6, &keep, NULL), 1);
    assert_true(voro_lb_exclude_has(&keep, 0));
    assert_false(voro_lb_exclude_has(&keep, 1));
    /* NULL exclude and served_name are fine */
    assert_int_equal(voro_route_model_servers(cfg, R_LLAMA, "llama", 5, NULL, NULL), 3);
    assert_int_equal(voro_route_model_servers(cfg, 99, "llama", 5, &ex, &served), -EINVAL);
    assert_null(served);
    assert_int_equal(voro_route_model_servers(NULL, 0, "llama", 5, &ex, NULL), -EINVAL);

    assert_true(voro_route_model_known(cfg, "llama", 5));
    assert_true(voro_route_model_known(cfg, "llama@v1", 8));
    assert_true(voro_route_model_known(cfg, "bge@v2", 6));
    assert_true(voro_route_model_known(cfg, "llama-sql", 9));
    assert_false(voro_route_model_known(cfg, "llama@v3", 8));
    assert_false(voro_route_model_known(cfg, "mistral@v1", 10));
    assert_false(voro_route_model_known(cfg, "gpt-4", 5));
    assert_false(voro_route_model_known(cfg, "llamaX", 5 + 1));
    assert_true(voro_route_model_known(cfg, "llamaX", 5)); /* length-delimited */
    assert_false(voro_route_model_known(cfg, NULL, 0));
    voro_config_free(cfg);
}

static void test_method_bits(void **state)
{
    (void)state;
    assert_int_equal(voro_route_method_bit("GET", 3), VORO_METHOD_GET);
    assert_int_equal(voro_route_method_bit("HEAD", 4), VORO_METHOD_HEAD);
    assert_int_equal(voro_route_method_bit("POST", 4), VORO_METHOD_POST);
    assert_int_equal(voro_route_method_bit("PUT", 3), VORO_METHOD_PUT);
    assert_int_equal(voro_route_method_bit("DELETE", 6), VORO_METHOD_DELETE);
    assert_int_equal(voro_route_method_bit("PATCH", 5), VORO_METHOD_PATCH);
    assert_int_equal(voro_route_method_bit("OPTIONS", 7), VORO_METHOD_OPTIONS);
    assert_int_equal(voro_route_method_bit("get", 3), VORO_METHOD_OTHER);
    assert_int_equal(voro_route_method_bit("PROPFIND", 8), VORO_METHOD_OTHER);
    assert_int_equal(voro_route_method_bit("GETX", 3), VORO_METHOD_GET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_and_conditions),
        cmocka_unit_test(test_model_routing),
        cmocka_unit_test(test_model_servers),
        cmocka_unit_test(test_method_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
