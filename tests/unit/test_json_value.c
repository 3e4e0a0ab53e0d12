/* Unit tests for the bounded JSON reader used by vorocluster (cluster/json_value.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/json_value.h"

static struct voro_json *parse_ok(const char *s)
{
    struct voro_json *v = NULL;
    size_t off = 99;
    int rc = voro_json_parse(s, strlen(s), &v, &off);
    if (rc != 0)
        fail_msg("'%s' did not parse: %d at %zu", s, rc, off);
    assert_non_null(v);
    return v;
}

static int parse_rc(const char *s, size_t *off)
{
    struct voro_json *v = (struct voro_json *)1;
    int rc = voro_json_parse(s, strlen(s), &v, off);
    if (rc == 0)
        voro_json_free(v);
    else
        assert_null(v);
    return rc;
}

static void test_status_shape(void **state)
{
    (void)state;
    const char *s = "{\"node\":{\"id\":1,\"name\":\"n1\"},\"term\":7,\"state\":\"leader\","
                    "\"leader\":{\"id\":1,\"name\":\"n1\",\"admin_address\":\"127.0.0.1:9101\"},"
                    "\"members\":[{\"id\":1,\"reachable\":true},{\"id\":2,\"reachable\":false}],"
                    "\"vip\":null,\"ratio\":-1.5e2}";
    struct voro_json *v = parse_ok(s);
    assert_int_equal(v->type, VORO_JSON_OBJECT);
    int64_t x = 0;
    assert_int_equal(voro_json_int(voro_json_get(v, "term"), &x), 0);
    assert_int_equal(x, 7);
    assert_string_equal(voro_json_string(voro_json_get(v, "state")), "leader");
    assert_string_equal(voro_json_string(voro_json_get(voro_json_get(v, "leader"), "admin_address")), "127.0.0.1:9101");
    const struct voro_json *m = voro_json_get(v, "members");
    assert_int_equal(voro_json_count(m), 2);
    assert_true(voro_json_true(voro_json_get(voro_json_item(m, 0), "reachable")));
    assert_false(voro_json_true(voro_json_get(voro_json_item(m, 1), "reachable")));
    assert_null(voro_json_item(m, 2));
    assert_true(voro_json_is_null(voro_json_get(v, "vip")));
    assert_true(voro_json_is_null(voro_json_get(v, "absent")));
    assert_false(voro_json_is_null(voro_json_get(v, "term")));
    const struct voro_json *r = voro_json_get(v, "ratio");
    assert_int_equal(r->type, VORO_JSON_NUMBER);
    assert_false(r->is_integer);
    assert_true(r->number == -150.0);
    assert_int_equal(voro_json_int(r, &x), -EINVAL);
    /* accessors refuse the wrong types */
    assert_null(voro_json_string(voro_json_get(v, "term")));
    assert_int_equal(voro_json_int(voro_json_get(v, "state"), &x), -EINVAL);
    assert_null(voro_json_get(m, "id"));
    assert_int_equal(voro_json_count(voro_json_get(v, "term")), 0);
    voro_json_free(v);
}

static void test_scalars_and_whitespace(void **state)
{
    (void)state;
    struct voro_json *v = parse_ok(" \t\r\n[true,false,null,0,-0,12345678901234,1e3,\"\"] \n");
    assert_int_equal(voro_json_count(v), 8);
    assert_int_equal(voro_json_item(v, 0)->type, VORO_JSON_BOOL);
    assert_true(voro_json_item(v, 0)->boolean);
    assert_false(voro_json_item(v, 1)->boolean);
    assert_int_equal(voro_json_item(v, 2)->type, VORO_JSON_NULL);
    int64_t x;
    assert_int_equal(voro_json_int(voro_json_item(v, 5), &x), 0);
    assert_true(x == 12345678901234LL);
    assert_false(voro_json_item(v, 6)->is_integer);
    assert_true(voro_json_item(v, 6)->number == 1000.0);
    assert_string_equal(voro_json_string(voro_json_item(v, 7)), "");
    voro_json_free(v);

    v = parse_ok("42");
    assert_int_equal(voro_json_int(v, &x), 0);
    assert_int_equal(x, 42);
    voro_json_free(v);
    /* beyond int64: still a number, but not an integer the caller could misread */
    v = parse_ok("99999999999999999999");
    assert_false(v->is_integer);
    assert_true(v->number > 9e19);
    voro_json_free(v);
    v = parse_ok("{}");
    assert_int_equal(voro_json_count(v), 0);
    voro_json_free(v);
}

static void test_string_escapes(void **state)
{
    (void)state;
    struct voro_json *v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00x\"");
    const char *want = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x";
    assert_string_equal(voro_json_string(v), want);
    assert_int_equal(v->str_len, strlen(want));
    voro_json_free(v);
    /* raw UTF-8 passes through; a config text with newlines round-trips */
    v = parse_ok("{\"text\":\"[pool gpu]\\nserver = g1 127.0.0.1:9001\\n\",\"k\\u0041\":\"\xc3\xa9\"}");
    assert_string_equal(voro_json_string(voro_json_get(v, "text")), "[pool gpu]\nserver = g1 127.0.0.1:9001\n");
    assert_string_equal(voro_json_string(voro_json_get(v, "kA")), "\xc3\xa9");
    voro_json_free(v);
}

static void test_duplicate_keys_first_wins(void **state)
{
    (void)state;
    struct voro_json *v = parse_ok("{\"a\":1,\"a\":2}");
    int64_t x;
    assert_int_equal(voro_json_count(v), 2);
    assert_int_equal(voro_json_int(voro_json_get(v, "a"), &x), 0);
    assert_int_equal(x, 1);
    voro_json_free(v);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",          " ",          "{",           "}",          "[1,]",        "[,1]",       "{\"a\":1,}",
        "{\"a\" 1}", "{a:1}",      "{\"a\":}",    "[1 2]",      "tru",         "nul",        "falsey",
        "01",        "-",          "1.",          ".5",         "1e",          "+1",         "0x10",
        "\"abc",     "\"a\\x\"",   "\"\\u12\"",   "\"\\u12g4\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"",
        "\"\\u0000\"", "\"a\tb\"", "\"a\nb\"",    "[1]x",       "{} {}",       "'a'",        "[\"a\\",
        "NaN",       "Infinity",   "[1,2",        "\"\\",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t off = 0;
        int rc = parse_rc(bad[i], &off);
        if (rc != -EINVAL)
            fail_msg("'%s' gave %d, want -EINVAL", bad[i], rc);
        assert_true(off <= strlen(bad[i]));
    }
    size_t off = 0;
    assert_int_equal(parse_rc("{\"a\":[1,2,x]}", &off), -EINVAL);
    assert_int_equal(off, 10); /* points at the x */
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* the length bounds the read: "[1]" followed by garbage that must not be looked at */
    char buf[8] = {'[', '1', ']', 'x', 'x', 'x', 'x', 'x'};
    struct voro_json *v = NULL;
    assert_int_equal(voro_json_parse(buf, 3, &v, NULL), 0);
    assert_int_equal(voro_json_count(v), 1);
    voro_json_free(v);
    char num[2] = {'1', '2'};
    assert_int_equal(voro_json_parse(num, 2, &v, NULL), 0);
    int64_t x;
    assert_int_equal(voro_json_int(v, &x), 0);
    assert_int_equal(x, 12);
    voro_json_free(v);
    char str[4] = {'"', 'a', 'b', '"'};
    assert_int_equal(voro_json_parse(str, 3, &v, NULL), -EINVAL); /* the closing quote is outside */
    assert_null(v);
}

static void test_depth_bound(void **state)
{
    (void)state;
    char buf[2 * (VORO_JSON_MAX_DEPTH + 2) + 1];
    /* exactly the maximum depth parses */
    size_t n = 0;
    for (int i = 0; i < VORO_JSON_MAX_DEPTH; i++)
        buf[n++] = '[';
    for (int i = 0; i < VORO_JSON_MAX_DEPTH; i++)
        buf[n++] = ']';
    struct voro_json *v = NULL;
    assert_int_equal(voro_json_parse(buf, n, &v, NULL), 0);
    voro_json_free(v);
    /* one more level is refused, not recursed into */
    n = 0;
    for (int i = 0; i < VORO_JSON_MAX_DEPTH + 1; i++)
        buf[n++] = '[';
    for (int i = 0; i < VORO_JSON_MAX_DEPTH + 1; i++)
        buf[n++] = ']';
    assert_int_equal(voro_json_parse(buf, n, &v, NULL), -E2BIG);
    assert_null(v);
    /* a deep unterminated input (what an attacker would send) stops at the bound too */
    char *deep = malloc(100000);
    assert_non_null(deep);
    memset(deep, '[', 100000);
    assert_int_equal(voro_json_parse(deep, 100000, &v, NULL), -E2BIG);
    memset(deep, '{', 100000);
    for (size_t i = 0; i + 5 < 100000; i += 5)
        memcpy(deep + i, "{\"a\":", 5);
    assert_int_equal(voro_json_parse(deep, 100000, &v, NULL), -E2BIG);
    free(deep);
}

static void test_large_array(void **state)
{
    (void)state;
    /* many items exercise the growth of the item arrays */
    size_t n = 5000, len = 0;
    char *buf = malloc(n * 8 + 2);
    assert_non_null(buf);
    buf[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(buf + len, "%s%zu", i ? "," : "", i);
    buf[len++] = ']';
    struct voro_json *v = NULL;
    assert_int_equal(voro_json_parse(buf, len, &v, NULL), 0);
    assert_int_equal(voro_json_count(v), n);
    int64_t x;
    assert_int_equal(voro_json_int(voro_json_item(v, n - 1), &x), 0);
    assert_int_equal(x, (int64_t)(n - 1));
    voro_json_free(v);
    free(buf);
}

static void test_null_safety(void **state)
{
    (void)state;
    int64_t x;
    assert_null(voro_json_get(NULL, "a"));
    assert_null(voro_json_item(NULL, 0));
    assert_int_equal(voro_json_count(NULL), 0);
    assert_null(voro_json_string(NULL));
    assert_int_equal(voro_json_int(NULL, &x), -EINVAL);
    assert_false(voro_json_true(NULL));
    voro_json_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_shape),
        cmocka_unit_test(test_scalars_and_whitespace),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_duplicate_keys_first_wins),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_large_array),
        cmocka_unit_test(test_null_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
