/* Unit tests for node/http/route: first-match order and every condition, the two-step model
 * decision (needs_model, X-Model and its conflicts), model-to-server filtering with served
 * names, and the request-target normalisation routes match on (proto/http1_target). */
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
#include "proto/http1_target.h"

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
    m = req_of("HEAD", "h", "/health/live", &h);
    m.model = "";
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), R_HEALTH);
    /* the prefix ends at a segment boundary (path_prefix_mode = segment, the default) */
    m = req_of("HEAD", "h", "/healthz", &h);
    m.model = "";
    assert_int_equal(sel(cfg, L_WEB, &m, &needs), -ENOENT);
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
    /* X-Model decides without the body when there is none; a body naming another model is a
     * conflict (the engine would serve the body's model) */
    struct hdrs xm = {{"x-model"}, {"llama@v2"}, 0};
    r = req_of("POST", "x", "/v1/chat/completions", &xm);
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), R_LLAMA_V2);
    assert_false(needs);
    r.model = "mistral";
    r.model_len = 7;
    assert_int_equal(sel(cfg, L_WEB, &r, &needs), -EPROTO);
    r.model = "llama@v2";
    r.model_len = 8;
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

/* ---- request-target normalisation ---- */

static void check_norm(const char *in, const char *want, const char *why_part)
{
    size_t len = strlen(in), out_len = 99, path_len = 99;
    const char *why = NULL;
    char out[256], inplace[256];
    memset(out, '#', sizeof(out));
    int rc = voro_path_normalize(in, len, out, sizeof(out), &out_len, &path_len, &why);
    memcpy(inplace, in, len);
    size_t ip_len = 0, ip_path = 0;
    const char *ip_why = NULL;
    int rc2 = voro_path_normalize(inplace, len, inplace, len, &ip_len, &ip_path, &ip_why);
    if (want) {
        if (rc != 0)
            fail_msg("%s: rejected (%s), expected %s", in, why ? why : "?", want);
        if (out_len != strlen(want) || memcmp(out, want, out_len) != 0)
            fail_msg("%s: got %.*s, expected %s", in, (int)out_len, out, want);
        const char *q = strchr(want, '?');
        assert_int_equal(path_len, q ? (size_t)(q - want) : strlen(want));
        /* in place: the same answer, no buffer */
        if (rc2 != 0 || ip_len != out_len || memcmp(inplace, want, ip_len) != 0)
            fail_msg("%s: in place got %.*s", in, (int)ip_len, inplace);
        /* normalising twice changes nothing */
        size_t again = 0, again_path = 0;
        assert_int_equal(voro_path_normalize(out, out_len, out, out_len, &again, &again_path, &why), 0);
        assert_int_equal(again, out_len);
    } else {
        if (rc != -EINVAL)
            fail_msg("%s: accepted as %.*s, expected a rejection (%s)", in, (int)out_len, out, why_part);
        assert_non_null(why);
        if (!strstr(why, why_part))
            fail_msg("%s: reason '%s' lacks '%s'", in, why, why_part);
        assert_int_equal(rc2, -EINVAL);
    }
}

static void test_path_normalize(void **state)
{
    (void)state;
    /* unchanged */
    check_norm("/", "/", NULL);
    check_norm("/v1/chat/completions", "/v1/chat/completions", NULL);
    check_norm("/?", "/?", NULL);
    check_norm("/v1/...", "/v1/...", NULL);
    check_norm("/v1/..a/.b", "/v1/..a/.b", NULL);
    /* percent-decoding of unreserved characters, upper-case hex for the rest */
    check_norm("/v1/%63hat", "/v1/chat", NULL);
    check_norm("/%7Euser/%7e%2D%5f%2E%41", "/~user/~-_.A", NULL);
    check_norm("/a%20b", "/a%20b", NULL);
    check_norm("/a/%e2%82%ac", "/a/%E2%82%AC", NULL);
    check_norm("/a%3fb", "/a%3Fb", NULL); /* an encoded '?' stays data */
    /* dot segments (RFC 3986 5.2.4), also encoded */
    check_norm("/v1/./chat", "/v1/chat", NULL);
    check_norm("/v1/../admin", "/admin", NULL);
    check_norm("/v1/%2e%2E/admin", "/admin", NULL);
    check_norm("/v1/.%2e/admin", "/admin", NULL);
    check_norm("/v1/%2E/chat", "/v1/chat", NULL);
    check_norm("/v1/..", "/", NULL);
    check_norm("/v1/.", "/v1/", NULL);
    check_norm("/a/b/..", "/a/", NULL);
    check_norm("/a/b/../", "/a/", NULL);
    check_norm("/.", "/", NULL);
    check_norm("/./a", "/a", NULL);
    check_norm("/a/./b/../../c", "/c", NULL);
    /* duplicate slashes merge */
    check_norm("//v1//chat/", "/v1/chat/", NULL);
    check_norm("///", "/", NULL);
    check_norm("/a//..//b", "/b", NULL);
    /* the query is copied unchanged */
    check_norm("/v1/chat?x=/../y", "/v1/chat?x=/../y", NULL);
    check_norm("/v1/a/../b?q=%2F&r=%7e", "/v1/b?q=%2F&r=%7e", NULL);
    /* refused */
    check_norm("/a%2fb", NULL, "encoded '/'");
    check_norm("/v1%2F..%2Fadmin", NULL, "encoded '/'");
    check_norm("/a%5Cb", NULL, "encoded '/' or '\\'");
    check_norm("/a%00b", NULL, "NUL");
    check_norm("/a%0ab", NULL, "control");
    check_norm("/a%7F", NULL, "control");
    check_norm("/a%zz", NULL, "percent-encoding");
    check_norm("/a%4", NULL, "percent-encoding");
    check_norm("/a%", NULL, "percent-encoding");
    check_norm("/a%4g", NULL, "percent-encoding");
    check_norm("/..", NULL, "above the root");
    check_norm("/%2e%2e/etc", NULL, "above the root");
    check_norm("/v1/../../x", NULL, "above the root");
    check_norm("/a\\b", NULL, "backslash");
    check_norm("/a#f", NULL, "fragment");
    check_norm("/a?b#c", NULL, "fragment");
    check_norm("/a b", NULL, "control character");
    check_norm("/a\x01", NULL, "control character");
    check_norm("/a?\x7f", NULL, "control character");
    check_norm("v1/x", NULL, "start with '/'");
    check_norm("?x", NULL, "start with '/'");
    check_norm("", NULL, "start with '/'");

    size_t ol, pl;
    char small[4];
    assert_int_equal(voro_path_normalize("/abcdef", 7, small, sizeof(small), &ol, &pl, NULL), -ENOSPC);
    assert_int_equal(voro_path_normalize(NULL, 0, small, sizeof(small), &ol, &pl, NULL), -EINVAL);
}

static void test_target_forms(void **state)
{
    (void)state;
    struct voro_target t;
    const char *why = NULL;
    assert_int_equal(voro_target_parse("/x?y", 4, &t, &why), 0);
    assert_int_equal(t.form, VORO_TARGET_ORIGIN);
    assert_int_equal(t.path_off, 0);
    assert_int_equal(voro_target_parse("*", 1, &t, &why), 0);
    assert_int_equal(t.form, VORO_TARGET_ASTERISK);

    const char *a = "http://api.example.com/v1/x";
    assert_int_equal(voro_target_parse(a, strlen(a), &t, &why), 0);
    assert_int_equal(t.form, VORO_TARGET_ABSOLUTE);
    assert_false(t.https);
    assert_int_equal(t.authority_len, 15);
    assert_memory_equal(a + t.authority_off, "api.example.com", 15);
    assert_string_equal(a + t.path_off, "/v1/x");
    a = "HTTPS://h:8443?q";
    assert_int_equal(voro_target_parse(a, strlen(a), &t, &why), 0);
    assert_true(t.https);
    assert_memory_equal(a + t.authority_off, "h:8443", t.authority_len);
    assert_string_equal(a + t.path_off, "?q");
    a = "http://[::1]:80/x";
    assert_int_equal(voro_target_parse(a, strlen(a), &t, &why), 0);
    assert_memory_equal(a + t.authority_off, "[::1]:80", t.authority_len);
    a = "http://h";
    assert_int_equal(voro_target_parse(a, strlen(a), &t, &why), 0);
    assert_int_equal(t.path_off, strlen(a));

    static const struct {
        const char *target, *why;
    } bad[] = {
        {"http://user@h/x", "userinfo"},  {"http://u:p@h/x", "userinfo"},   {"ftp://h/x", "scheme"},
        {"http:///x", "authority"},       {"http://h:abc/x", "authority"},  {"http://h:123456/x", "authority"},
        {"http://[::1/x", "authority"},   {"http://h h/x", "authority"},    {"v1/x", "neither"},
        {"http:/h/x", "neither"},         {"://h/x", "neither"},            {"", "empty"},
        {"**", "neither"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        int rc = voro_target_parse(bad[i].target, strlen(bad[i].target), &t, &why);
        if (rc != -EINVAL || !why || !strstr(why, bad[i].why))
            fail_msg("%s: rc %d reason %s, expected '%s'", bad[i].target, rc, why ? why : "-", bad[i].why);
    }

    /* Host header against the authority */
    assert_true(voro_authority_equal("api.example.com", 15, "API.example.com:80", 18, false));
    assert_true(voro_authority_equal("h:443", 5, "h", 1, true));
    assert_true(voro_authority_equal("h.", 2, "h:080", 5, false));
    assert_true(voro_authority_equal("[::1]:80", 8, "[::1]", 5, false));
    assert_false(voro_authority_equal("h:443", 5, "h", 1, false));
    assert_false(voro_authority_equal("h:8080", 6, "h", 1, false));
    assert_false(voro_authority_equal("a.example.com", 13, "b.example.com", 13, false));
    assert_false(voro_authority_equal("h", 1, "h@x", 3, false));
    assert_false(voro_authority_equal("h", 1, "", 0, false));
}

#define CONF2 \
    "[listener web]\nmode = http\nbind = 127.0.0.1:8080\npool = gpu\n" \
    "[pool gpu]\nserver = s0 127.0.0.1:9000 models=llama,mistral\n" \
    "[pool other]\nserver = o0 127.0.0.1:9200\n" \
    "[route admin]\npath_prefix = /admin\npool = other\n" \
    "[route raw]\npath_prefix = /raw\npath_prefix_mode = string\npool = other\n" \
    "[route strict]\nhost = strict.example.com\nmodel = *\nmodel_from_header = no\npool = gpu\n" \
    "[route llama]\npath_prefix = /v1/\nmodel = llama\npool = gpu\n" \
    "[route v1]\npath_prefix = /v1\npool = gpu\n" \
    "[route api-host]\nhost = api.example.com\npool = other\n"

enum { R2_ADMIN, R2_RAW, R2_STRICT, R2_LLAMA, R2_V1, R2_API_HOST };

static struct voro_config *load2(void)
{
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    int rc = voro_config_parse("route2.conf", CONF2, strlen(CONF2), &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_error("%s\n", errs.items[i].message);
    voro_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

/* What the route filter does: parse the target, normalise it in place, take the authority of
 * an absolute-form target as the host, then select. -EINVAL when the target is refused. */
static int select_target(const struct voro_config *cfg, const char *host, const char *target, struct hdrs *h)
{
    char buf[256];
    size_t len = strlen(target);
    assert_true(len < sizeof(buf));
    memcpy(buf, target, len);
    struct voro_target t;
    const char *why = NULL;
    if (voro_target_parse(buf, len, &t, &why) != 0)
        return -EINVAL;
    char authority[64] = "";
    if (t.form == VORO_TARGET_ABSOLUTE) {
        snprintf(authority, sizeof(authority), "%.*s", (int)t.authority_len, buf + t.authority_off);
        host = authority;
    }
    size_t out_len, path_len;
    if (voro_path_normalize(buf + t.path_off, len - t.path_off, buf + t.path_off, len - t.path_off, &out_len,
                            &path_len, &why) != 0)
        return -EINVAL;
    struct voro_route_request r = req_of("GET", host, "/", h);
    r.path = buf + t.path_off;
    r.path_len = out_len;
    r.model = "";
    r.model_len = 0;
    return voro_route_select(cfg, 0, &r, NULL);
}

static void test_prefix_segments(void **state)
{
    (void)state;
    /* the matcher alone */
    assert_true(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v1", 3));
    assert_true(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v1/x", 5));
    assert_true(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v1?x=1", 7));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v10", 4));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v10?x", 6));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v", 2));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/V1", 3));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_SEGMENT, "/v10", 3 + 1));
    assert_true(voro_route_prefix_matches("/v1/", VORO_PREFIX_SEGMENT, "/v1/x", 5));
    assert_false(voro_route_prefix_matches("/v1/", VORO_PREFIX_SEGMENT, "/v1", 3));
    assert_false(voro_route_prefix_matches("/v1/", VORO_PREFIX_SEGMENT, "/v1?/", 5)); /* '/' in the query */
    assert_true(voro_route_prefix_matches("/", VORO_PREFIX_SEGMENT, "/anything", 9));
    assert_true(voro_route_prefix_matches("", VORO_PREFIX_SEGMENT, "*", 1));
    assert_true(voro_route_prefix_matches("/v1", VORO_PREFIX_STRING, "/v10", 4));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_STRING, "/v", 2));
    assert_false(voro_route_prefix_matches("/v1", VORO_PREFIX_STRING, "/v?1", 4));

    struct voro_config *cfg = load2();
    assert_int_equal(cfg->n_routes, 6);
    assert_int_equal(cfg->routes[R2_ADMIN].path_prefix_mode, VORO_PREFIX_SEGMENT);
    assert_int_equal(cfg->routes[R2_RAW].path_prefix_mode, VORO_PREFIX_STRING);
    assert_true(cfg->routes[R2_ADMIN].model_from_header);
    assert_false(cfg->routes[R2_STRICT].model_from_header);
    struct hdrs h = {{NULL}, {NULL}, 0};
    static const struct {
        const char *host, *target;
        int route;
    } cases[] = {
        {"x", "/admin", R2_ADMIN},
        {"x", "/admin/users", R2_ADMIN},
        {"x", "/administrator", -ENOENT},
        {"x", "/admin?x", R2_ADMIN},
        {"x", "/rawdata", R2_RAW},         /* string mode */
        {"x", "/raw", R2_RAW},
        {"x", "/v1", R2_V1},               /* "/v1/" (llama) needs the '/' */
        {"x", "/v10/chat", -ENOENT},
        {"api.example.com", "/v10/chat", R2_API_HOST},
        /* normalised before matching */
        {"x", "/v1/../admin/x", R2_ADMIN},
        {"x", "/%61dmin", R2_ADMIN},
        {"x", "//admin", R2_ADMIN},
        {"x", "/v1/%2e%2e/admin", R2_ADMIN},
        {"x", "/v1/./../admin/./", R2_ADMIN},
        {"x", "/v10/../v1", R2_V1},
        {"x", "/v1%2F..%2Fadmin", -EINVAL},
        {"x", "/v1/../../admin", -EINVAL},
        {"x", "/admin%00", -EINVAL},
        /* absolute form: its path matches, its authority is the host */
        {"x", "http://api.example.com/v10/x", R2_API_HOST},
        {"x", "http://API.example.com:80/whatever", R2_API_HOST},
        {"api.example.com", "http://other.example.com/v10/x", -ENOENT},
        {"x", "http://x/admin/../v1", R2_V1},
        {"x", "http://x/v10", -ENOENT},
        {"x", "https://x/%61dmin", R2_ADMIN},
        {"x", "http://u@x/admin", -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = select_target(cfg, cases[i].host, cases[i].target, &h);
        if (got != cases[i].route)
            fail_msg("%s %s: route %d, expected %d", cases[i].host, cases[i].target, got, cases[i].route);
    }
    voro_config_free(cfg);
}

static void test_model_conflicts(void **state)
{
    (void)state;
    struct voro_config *cfg = load2();
    bool needs = false;
    struct hdrs llama = {{"X-Model"}, {"llama"}, 0};
    struct hdrs mistral = {{"x-model"}, {"mistral"}, 0};
    struct hdrs empty = {{"X-Model"}, {""}, 0};
    struct hdrs none = {{NULL}, {NULL}, 0};

    /* header alone, no body: decides at once */
    struct voro_route_request r = req_of("POST", "x", "/v1/chat", &llama);
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_LLAMA);
    assert_false(needs);
    /* header and a body: the body is needed too, to compare */
    r.has_body = true;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EAGAIN);
    assert_true(needs);
    /* ... and they must agree */
    r.model = "mistral";
    r.model_len = 7;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EPROTO);
    assert_false(needs);
    r.model = "llama";
    r.model_len = 5;
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_LLAMA);
    r.model = "llama@v1"; /* a version is another name: the engine would get another model */
    r.model_len = 8;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EPROTO);
    /* a body without a model: the header names it */
    r.model = "";
    r.model_len = 0;
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_LLAMA);
    /* the conflict is refused whatever route would match (here one without a model) */
    r = req_of("GET", "x", "/admin", &mistral);
    r.model = "llama";
    r.model_len = 5;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EPROTO);
    /* a header naming a model the route does not take falls through, as a body's would */
    r = req_of("POST", "x", "/v1/chat", &mistral);
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_V1);
    /* an empty X-Model names nothing */
    r = req_of("POST", "x", "/v1/chat", &empty);
    r.has_body = true;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EAGAIN);
    r.model = "llama";
    r.model_len = 5;
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_LLAMA);

    /* model_from_header = no: X-Model is refused on that route, the body decides */
    r = req_of("POST", "strict.example.com", "/v1/chat", &llama);
    assert_int_equal(sel(cfg, 0, &r, &needs), -EPERM);
    r.model = "llama";
    r.model_len = 5;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EPERM);
    r = req_of("POST", "strict.example.com", "/v1/chat", &none);
    r.has_body = true;
    assert_int_equal(sel(cfg, 0, &r, &needs), -EAGAIN);
    assert_true(needs);
    r.model = "mistral";
    r.model_len = 7;
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_STRICT);
    /* routes before it still take the header */
    r = req_of("GET", "strict.example.com", "/admin", &llama);
    assert_int_equal(sel(cfg, 0, &r, &needs), R2_ADMIN);
    voro_config_free(cfg);
}

static void test_prefix_config(void **state)
{
    (void)state;
    static const char *const bad[] = {"/v1/../x", "/v1/./x", "//v1", "/%7Ev1", "/v1%2F", "/v1?x", "/a%2fb", "/a%zz"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "[listener web]\nmode = http\nbind = 127.0.0.1:8080\npool = p\n[pool p]\nserver = s 127.0.0.1:9000\n"
                 "[route r]\npath_prefix = %s\npool = p\n",
                 bad[i]);
        struct voro_config *cfg = NULL;
        struct voro_config_errors errs = {0};
        int rc = voro_config_parse("bad.conf", text, strlen(text), &cfg, &errs);
        if (rc == 0)
            fail_msg("path_prefix %s accepted", bad[i]);
        assert_true(errs.count > 0);
        assert_non_null(strstr(errs.items[0].message, "path_prefix"));
        voro_config_errors_free(&errs);
        voro_config_free(cfg);
    }
    const char *mode = "[listener web]\nmode = http\nbind = 127.0.0.1:8080\npool = p\n"
                       "[pool p]\nserver = s 127.0.0.1:9000\n"
                       "[route r]\npath_prefix = /v1\npath_prefix_mode = bytes\npool = p\n";
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    assert_int_not_equal(voro_config_parse("bad.conf", mode, strlen(mode), &cfg, &errs), 0);
    assert_non_null(strstr(errs.items[0].message, "path_prefix_mode"));
    voro_config_errors_free(&errs);
    voro_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_and_conditions),
        cmocka_unit_test(test_model_routing),
        cmocka_unit_test(test_model_servers),
        cmocka_unit_test(test_method_bits),
        cmocka_unit_test(test_path_normalize),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_prefix_segments),
        cmocka_unit_test(test_model_conflicts),
        cmocka_unit_test(test_prefix_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
