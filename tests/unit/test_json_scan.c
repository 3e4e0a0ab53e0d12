/* Unit tests for proto/json_scan: the OpenAI request fixtures in tests/fixtures (and every cut of them),
 * nesting, escapes, duplicates, invalid JSON, the depth bound, and the model rewriter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json_scan.h"

static int find(const char *text, struct voro_slice *sl)
{
    return voro_json_find_model(text, strlen(text), sl);
}

/* Asserts that `text` has top-level model `want`. */
static void expect_model(const char *text, const char *want)
{
    struct voro_slice sl = {0};
    int rc = find(text, &sl);
    if (rc != 0)
        fail_msg("rc %d for %s", rc, text);
    assert_int_equal(sl.len, strlen(want));
    assert_memory_equal(text + sl.off, want, sl.len);
    assert_int_equal(text[sl.off - 1], '"');
    assert_int_equal(text[sl.off + sl.len], '"');
}

static void expect_rc(const char *text, int want)
{
    struct voro_slice sl = {0};
    int rc = find(text, &sl);
    if (rc != want)
        fail_msg("rc %d, expected %d for: %s", rc, want, text);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        const char *model; /* NULL = none */
    } expect[] = {
        {"openai-chat-", "gpt-5-nano"},
        {"openai-completions-", "babbage-002"},
        {"openai-embeddings-", "text-embedding-3-small"},
        {"openai-error-", NULL},
    };
    DIR *d = opendir(VORO_FIXTURES_DIR);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t nl = strlen(e->d_name);
        if (strncmp(e->d_name, "openai-", 7) || nl < 13 || strcmp(e->d_name + nl - 13, "-request.json"))
            continue;
        const char *model = NULL;
        bool known = false;
        for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
            if (!strncmp(e->d_name, expect[i].prefix, strlen(expect[i].prefix))) {
                model = expect[i].model;
                known = true;
            }
        if (!known)
            fail_msg("fixture %s: add its model to the table", e->d_name);
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", VORO_FIXTURES_DIR, e->d_name);
        size_t len;
        char *body = read_file(path, &len);
        struct voro_slice sl;
        int rc = voro_json_find_model(body, len, &sl);
        if (model) {
            if (rc != 0)
                fail_msg("%s: rc %d", e->d_name, rc);
            assert_int_equal(sl.len, strlen(model));
            assert_memory_equal(body + sl.off, model, sl.len);
        } else {
            assert_int_equal(rc, -ENOENT);
        }
        /* every cut before the closing brace is "need more", never a wrong answer */
        size_t close = len;
        while (close && body[close - 1] != '}')
            close--;
        assert_true(close > 0);
        for (size_t n = 0; n < close; n++) {
            rc = voro_json_find_model(body, n, &sl);
            if (rc != -E2BIG)
                fail_msg("%s cut at %zu: rc %d", e->d_name, n, rc);
        }
        assert_int_equal(voro_json_find_model(body, close, &sl), model ? 0 : -ENOENT);

        if (model) { /* rewrite and scan again */
            char out[1 << 14];
            size_t out_len;
            assert_true(len < sizeof(out) - 64);
            assert_int_equal(voro_json_rewrite_model(body, len, &sl, "other-model", out, sizeof(out), &out_len), 0);
            assert_int_equal(out_len, len - strlen(model) + strlen("other-model"));
            assert_memory_equal(out, body, sl.off);
            assert_memory_equal(out + sl.off + 11, body + sl.off + sl.len, len - sl.off - sl.len);
            struct voro_slice sl2;
            assert_int_equal(voro_json_find_model(out, out_len, &sl2), 0);
            assert_int_equal(sl2.off, sl.off);
            assert_memory_equal(out + sl2.off, "other-model", sl2.len);
        }
        free(body);
        files++;
    }
    closedir(d);
    assert_true(files >= 12);
}

static void test_tricky(void **state)
{
    (void)state;
    expect_model("{\"model\":\"m\"}", "m");
    expect_model(" \r\n\t{ \"model\" : \"llama-3@v2\" } \n", "llama-3@v2");
    expect_model("{\"model\":\"\"}", "");
    /* model after messages, nested "model" keys and "model" as a value do not count */
    expect_model("{\"messages\":[{\"role\":\"user\",\"model\":\"evil\",\"content\":\"model\"}],\"model\":\"good\"}",
                 "good");
    expect_model("{\"meta\":{\"model\":\"evil\",\"x\":{\"model\":\"evil2\"}},\"model\":\"good\"}", "good");
    expect_model("{\"messages\":[{\"content\":\"\\\"model\\\": \\\"x\\\"}\"}],\"model\":\"m\"}", "m");
    expect_rc("{\"a\":\"model\",\"b\":{\"model\":\"x\"},\"c\":[\"model\",{\"model\":1}]}", -ENOENT);
    expect_rc("{}", -ENOENT);
    expect_rc("{\"models\":\"x\",\"Model\":\"y\",\"mode\":\"z\"}", -ENOENT);
    /* escapes elsewhere */
    expect_model("{\"x\":\"\\ud83d\\ude00 \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9\",\"model\":\"m\"}", "m");
    expect_model("{\"x\":\"caf\xc3\xa9\",\"model\":\"m\"}", "m");
    /* keys are compared decoded: an escaped "model" is the model, so it counts for duplicates */
    expect_model("{\"mod\\u0065l\":\"a\"}", "a");
    expect_model("{\"\\u006d\\u006F\\u0064\\u0065\\u006c\":\"a\"}", "a");
    expect_rc("{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", -EINVAL);
    expect_rc("{\"model\":\"a\",\"model\":\"b\"}", -EINVAL);
    expect_rc("{\"model\\u0000\":\"a\"}", -ENOENT);
    /* the model must be an unescaped string */
    expect_rc("{\"model\":5}", -EINVAL);
    expect_rc("{\"model\":null}", -EINVAL);
    expect_rc("{\"model\":[\"a\"]}", -EINVAL);
    expect_rc("{\"model\":\"a\\\"b\"}", -EINVAL);
    expect_rc("{\"model\":\"\\u0061\"}", -EINVAL);
    /* every value form */
    expect_model("{\"a\":[],\"b\":{},\"c\":[[],{}],\"d\":-0.5e+10,\"e\":true,\"f\":false,\"g\":null,\"h\":0,"
                 "\"i\":1E5,\"j\":-12.25e-3,\"k\":[1,\"2\",[3],{\"4\":5}],\"model\":\"m\",\"z\":1}",
                 "m");
    /* a problem after the model is still reported */
    expect_rc("{\"model\":\"m\",\"x\":01}", -EINVAL);
    expect_rc("{\"model\":\"m\",\"x\":1", -E2BIG);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[{\"model\":\"x\"}]", "\"model\"", "1", "null", "x", "{\"model\":\"x\"} x", "{\"model\":\"x\"}}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":1.e5}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":1e}",
        "{\"a\":tx}", "{\"a\":True}", "{\"a\":nul}", "{'a':1}", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{\"a\":[1,]}",
        "{\"a\":[,1]}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nx\"}",
        "{\"a\":1 \"b\":2}", "{\"a\":[1 2]}", "{\"a\":]}", "{\"a\":[}]}", "{\"a\":{]}", "{a:1}", "{\"a\"::1}",
        "{\"a\":1}{}", "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_rc(bad[i], -EINVAL);
    static const char *const cut[] = {
        "", "  \n", "{", "{\"", "{\"mo", "{\"model\"", "{\"model\":", "{\"model\":\"x", "{\"model\":\"x\"",
        "{\"model\":\"x\",", "{\"a\":tru", "{\"a\":1", "{\"a\":-", "{\"a\":1.", "{\"a\":1e", "{\"a\":1e+",
        "{\"a\":\"\\", "{\"a\":\"\\u00", "{\"a\":[", "{\"a\":[1,", "{\"a\":{\"b\":", "{\"a\":fals",
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
        expect_rc(cut[i], -E2BIG);
    struct voro_slice sl;
    assert_int_equal(voro_json_find_model(NULL, 0, &sl), -EINVAL);
    assert_int_equal(voro_json_find_model("{}", 2, NULL), -EINVAL);
    /* a NUL byte is not JSON whitespace */
    assert_int_equal(voro_json_find_model("{\"model\":\"m\"}\0", 14, &sl), -EINVAL);
}

static void test_depth(void **state)
{
    (void)state;
    char buf[512];
    /* the object is depth 1: 63 arrays inside reach the bound exactly */
    for (int arrays = 62; arrays <= 64; arrays++) {
        size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"x\":");
        for (int i = 0; i < arrays; i++)
            buf[n++] = '[';
        for (int i = 0; i < arrays; i++)
            buf[n++] = ']';
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"model\":\"m\"}");
        struct voro_slice sl;
        assert_int_equal(voro_json_find_model(buf, n, &sl), arrays <= 63 ? 0 : -EINVAL);
    }
    /* deep nesting far beyond the bound stops early instead of overflowing anything */
    char *deep = malloc(100001);
    assert_non_null(deep);
    deep[0] = '{';
    deep[1] = '"';
    deep[2] = 'a';
    deep[3] = '"';
    deep[4] = ':';
    memset(deep + 5, '[', 100000 - 5);
    struct voro_slice sl;
    assert_int_equal(voro_json_find_model(deep, 100000, &sl), -EINVAL);
    free(deep);
}

static void test_rewrite(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"llama@v2\",\"x\":1}";
    struct voro_slice sl;
    assert_int_equal(find(body, &sl), 0);
    char out[128];
    size_t n = 0;
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "llama", out, sizeof(out), &n), 0);
    assert_int_equal(n, strlen("{\"model\":\"llama\",\"x\":1}"));
    assert_memory_equal(out, "{\"model\":\"llama\",\"x\":1}", n);

    /* escaping: quote, backslash, control characters; UTF-8 passes through */
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "a\"b\\c\n\x01\xc3\xa9", out, sizeof(out), &n),
                     0);
    const char *want = "{\"model\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\",\"x\":1}";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    /* the output is valid JSON: the scanner sees the escaped value (and refuses it as a model) */
    assert_int_equal(voro_json_find_model(out, n, &sl), -EINVAL);

    /* empty value, longer value */
    assert_int_equal(find(body, &sl), 0);
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "", out, sizeof(out), &n), 0);
    assert_memory_equal(out, "{\"model\":\"\",\"x\":1}", n);

    /* too small: -ENOSPC with the size needed, exact size works */
    size_t need = 0;
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "abcdefghijklmnop", out, 10, &need), -ENOSPC);
    assert_int_equal(need, strlen(body) - 8 + 16);
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "abcdefghijklmnop", out, need, &n), 0);
    assert_int_equal(n, need);
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, "x", NULL, 0, &need), -ENOSPC);

    /* spans that are not a string value between quotes */
    struct voro_slice badsl[] = {{0, 1}, {1, 5}, {9, 100}, {100, 0}, {10, 7}};
    for (size_t i = 0; i < sizeof(badsl) / sizeof(badsl[0]); i++)
        assert_int_equal(voro_json_rewrite_model(body, strlen(body), &badsl[i], "x", out, sizeof(out), &n), -EINVAL);
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), &sl, NULL, out, sizeof(out), &n), -EINVAL);
    assert_int_equal(voro_json_rewrite_model(body, strlen(body), NULL, "x", out, sizeof(out), &n), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures), cmocka_unit_test(test_tricky), cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_depth),    cmocka_unit_test(test_rewrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
