/* The strict flat-object JSON reader used for cluster API bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/json_obj.h"

static int parse(const char *s, struct voro_json_obj *o) { return voro_json_parse_object(s, strlen(s), o); }

static void test_valid_objects(void **state)
{
    (void)state;
    struct voro_json_obj o;
    assert_int_equal(parse(" {} ", &o), 0);
    assert_int_equal(o.n, 0);
    assert_int_equal(parse("{\"id\": 12, \"name\": \"n\\u00e9\\n\", \"ok\": true, \"x\": null, "
                           "\"nested\": {\"a\": [1, 2.5e3, {\"b\": \"\"}]}, \"neg\": -1.5}",
                           &o),
                     0);
    assert_int_equal(o.n, 6);
    uint64_t v;
    assert_int_equal(voro_json_get_u64(&o, "id", &v), 0);
    assert_int_equal(v, 12);
    char buf[16];
    assert_int_equal(voro_json_get_string(&o, "name", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "n\xc3\xa9\n");
    assert_int_equal(voro_json_get_u64(&o, "neg", &v), -EINVAL);
    assert_int_equal(voro_json_get_u64(&o, "name", &v), -EINVAL);
    assert_int_equal(voro_json_get_u64(&o, "absent", &v), -ENOENT);
    assert_int_equal(voro_json_get_string(&o, "id", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(voro_json_get_string(&o, "nested", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(voro_json_get_string(&o, "name", buf, 3), -EMSGSIZE);
}

static void test_escapes(void **state)
{
    (void)state;
    struct voro_json_obj o;
    assert_int_equal(parse("{\"t\": \"a\\\"b\\\\c\\/d\\tx\\ud83d\\ude00\"}", &o), 0);
    char *s;
    size_t n;
    assert_int_equal(voro_json_get_string_alloc(&o, "t", &s, &n), 0);
    assert_string_equal(s, "a\"b\\c/d\tx\xf0\x9f\x98\x80");
    assert_int_equal(n, strlen(s));
    free(s);
    /* NUL and lone surrogates are refused: consumers want C strings */
    assert_int_equal(parse("{\"t\": \"a\\u0000b\"}", &o), 0);
    assert_int_equal(voro_json_get_string_alloc(&o, "t", &s, &n), -EINVAL);
    assert_int_equal(parse("{\"t\": \"\\udc00\"}", &o), 0);
    assert_int_equal(voro_json_get_string_alloc(&o, "t", &s, &n), -EINVAL);
}

static void test_invalid(void **state)
{
    (void)state;
    struct voro_json_obj o;
    const char *bad[] = {
        "", "{", "}", "[]", "\"x\"", "{not json", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "{\"a\":1}x",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}", "{a:1}",
        "{\"a\":1,\"a\":2}", "{\"a\":[1,]}", "{\"a\":\"unterminated}",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &o) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    uint64_t v;
    assert_int_equal(parse("{\"a\":18446744073709551616}", &o), 0);
    assert_int_equal(voro_json_get_u64(&o, "a", &v), -EINVAL);
    assert_int_equal(parse("{\"a\":18446744073709551615}", &o), 0);
    assert_int_equal(voro_json_get_u64(&o, "a", &v), 0);
    assert_true(v == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_objects),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
