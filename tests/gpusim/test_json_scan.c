/* Unit tests for gpusim's bounded JSON scanner (validation, member lookup, iteration, strings). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/gpusim/json_scan.h"

static int root(const char *s, struct gpusim_json *out) { return voro_gpusim_json_root(s, strlen(s), out); }

static void test_validate(void **state)
{
    (void)state;
    struct gpusim_json v;
    static const char *good[] = {"{}",
                                 " [ ] ",
                                 "0",
                                 "-1.5e+3",
                                 "\"a\\u00e9\\n\"",
                                 "true",
                                 "null",
                                 "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}",
                                 "[\"\\ud83d\\ude00\"]"};
    static const char *bad[] = {"",           "{",           "{\"a\"}",       "{\"a\":}", "[1,]", "01",
                                "1.",         "-",           "\"\\x\"",       "\"a",      "tru",  "{} x",
                                "{\"a\":1,}", "[\"\\u12\"]", "\"tab\there\"", "{a:1}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(root(good[i], &v), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(root(bad[i], &v), -EINVAL);
}

static void test_depth_bound(void **state)
{
    (void)state;
    char buf[2 * (GPUSIM_JSON_MAX_DEPTH + 2) + 1];
    struct gpusim_json v;
    size_t d = GPUSIM_JSON_MAX_DEPTH;
    memset(buf, '[', d);
    memset(buf + d, ']', d);
    buf[2 * d] = '\0';
    assert_int_equal(root(buf, &v), 0);
    d = GPUSIM_JSON_MAX_DEPTH + 1;
    memset(buf, '[', d);
    memset(buf + d, ']', d);
    buf[2 * d] = '\0';
    assert_int_equal(root(buf, &v), -EINVAL);
}

static void test_members(void **state)
{
    (void)state;
    struct gpusim_json r, v;
    const char *doc = "{\"model\":\"m1\",\"nested\":{\"model\":\"inner\"},\"stream\":true,\"max_tokens\":12,"
                      "\"stream_options\":{\"include_usage\":false},\"t\":0.5}";
    assert_int_equal(root(doc, &r), 0);
    char s[32];
    assert_int_equal(voro_gpusim_json_member(r, "model", &v), 0);
    assert_int_equal(voro_gpusim_json_string(v, s, sizeof(s)), 0);
    assert_string_equal(s, "m1");
    bool b = false;
    assert_int_equal(voro_gpusim_json_member(r, "stream", &v), 0);
    assert_int_equal(voro_gpusim_json_bool(v, &b), 0);
    assert_true(b);
    int64_t n = 0;
    assert_int_equal(voro_gpusim_json_member(r, "max_tokens", &v), 0);
    assert_int_equal(voro_gpusim_json_int(v, &n), 0);
    assert_int_equal(n, 12);
    assert_int_equal(voro_gpusim_json_member(r, "t", &v), 0);
    assert_int_equal(voro_gpusim_json_int(v, &n), -EINVAL); /* not integral */
    assert_int_equal(voro_gpusim_json_member(r, "stream_options", &v), 0);
    struct gpusim_json u;
    assert_int_equal(voro_gpusim_json_member(v, "include_usage", &u), 0);
    assert_int_equal(voro_gpusim_json_bool(u, &b), 0);
    assert_false(b);
    assert_int_equal(voro_gpusim_json_member(r, "missing", &v), -ENOENT);
    assert_int_equal(voro_gpusim_json_member(u, "x", &v), -EINVAL); /* not an object */
    /* a key that only appears nested is not a top-level member */
    assert_int_equal(root("{\"a\":{\"n\":1}}", &r), 0);
    assert_int_equal(voro_gpusim_json_member(r, "n", &v), -ENOENT);
}

static void test_iterate_and_strings(void **state)
{
    (void)state;
    struct gpusim_json r, e;
    struct gpusim_json_iter it;
    assert_int_equal(root("[\"ab\", \"\\u00e9t\\u00e9\", [1,2], \"\\ud83d\\ude00\"]", &r), 0);
    assert_int_equal(voro_gpusim_json_iter_begin(r, &it), 0);
    size_t chars[4], k = 0;
    while (voro_gpusim_json_iter_next(&it, &e) && k < 4)
        chars[k++] = voro_gpusim_json_string_chars(e);
    assert_int_equal(k, 4);
    assert_int_equal(chars[0], 2);
    assert_int_equal(chars[1], 3);
    assert_int_equal(chars[2], 0); /* not a string */
    assert_int_equal(chars[3], 2); /* a surrogate pair counts as two escapes */
    assert_int_equal(root("\"h\\u00e9\\ud83d\\ude00\\\"\"", &r), 0);
    char s[16];
    assert_int_equal(voro_gpusim_json_string(r, s, sizeof(s)), 0);
    assert_string_equal(s, "h\xc3\xa9\xf0\x9f\x98\x80\"");
    assert_int_equal(voro_gpusim_json_string(r, s, 4), -ENOSPC);
    assert_int_equal(root("\"caf\xc3\xa9\"", &r), 0);
    assert_int_equal(voro_gpusim_json_string_chars(r), 4); /* UTF-8 code points, not bytes */
    /* object members by key/value */
    struct gpusim_json key, val;
    assert_int_equal(root("{\"a\": 1, \"b\" : [true]}", &r), 0);
    assert_int_equal(voro_gpusim_json_iter_begin(r, &it), 0);
    assert_true(voro_gpusim_json_iter_member(&it, &key, &val));
    assert_int_equal(voro_gpusim_json_string(key, s, sizeof(s)), 0);
    assert_string_equal(s, "a");
    assert_true(voro_gpusim_json_iter_member(&it, &key, &val));
    assert_int_equal(voro_gpusim_json_type(val), '[');
    assert_false(voro_gpusim_json_iter_member(&it, &key, &val));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_iterate_and_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
