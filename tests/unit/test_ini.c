/* Unit tests for proto/ini: events, line numbers, comments, trimming and every rejected line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ini.h"

/* Runs the iterator over `text`; returns the first error (0 if none) and fills `it`. */
static int first_error(struct voro_ini *it, const char *text, size_t len)
{
    struct voro_ini_event ev;
    voro_ini_init(it, text, len);
    for (int i = 0; i < 1000; i++) {
        int rc = voro_ini_next(it, &ev);
        if (rc <= 0)
            return rc;
    }
    return -EMLINK;
}

static void test_events_and_lines(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "; other comment\n"
                       "[server]\n"
                       "  port   =   8080   \n"
                       "\n"
                       "[pool gpu]\r\n"
                       "server = a 127.0.0.1:1 weight=2   # inline\r\n"
                       "empty =\n"
                       "hash = a#b\n"
                       "semi = x ; gone\n"
                       "\t[ listener   api ]  # trailing comment\n"
                       "last=1";
    struct voro_ini it;
    struct voro_ini_event ev;
    voro_ini_init(&it, text, strlen(text));

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.type, VORO_INI_SECTION);
    assert_int_equal(ev.line, 3);
    assert_string_equal(ev.section, "server");
    assert_string_equal(ev.name, "");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.type, VORO_INI_KEY);
    assert_int_equal(ev.line, 4);
    assert_string_equal(ev.key, "port");
    assert_string_equal(ev.value, "8080");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 6);
    assert_string_equal(ev.section, "pool");
    assert_string_equal(ev.name, "gpu");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 7);
    assert_string_equal(ev.key, "server");
    assert_string_equal(ev.value, "a 127.0.0.1:1 weight=2");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_string_equal(ev.key, "empty");
    assert_string_equal(ev.value, "");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_string_equal(ev.key, "hash");
    assert_string_equal(ev.value, "a#b"); /* '#' not after whitespace is data */

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_string_equal(ev.value, "x");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 11);
    assert_string_equal(ev.section, "listener");
    assert_string_equal(ev.name, "api");

    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 12);
    assert_string_equal(ev.key, "last");
    assert_string_equal(ev.value, "1");

    assert_int_equal(voro_ini_next(&it, &ev), 0);
    assert_int_equal(voro_ini_next(&it, &ev), 0);
}

static void test_length_is_respected(void **state)
{
    (void)state;
    /* Not NUL-terminated: only the first `len` bytes count. */
    const char text[] = "a = 1\nb = 2XXXX";
    struct voro_ini it;
    struct voro_ini_event ev;
    voro_ini_init(&it, text, 11);
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_string_equal(ev.value, "2");
    assert_int_equal(voro_ini_next(&it, &ev), 0);

    voro_ini_init(&it, NULL, 5);
    assert_int_equal(voro_ini_next(&it, &ev), 0);
}

static void expect_bad(const char *text, int line, const char *reason_part)
{
    struct voro_ini it;
    assert_int_equal(first_error(&it, text, strlen(text)), -EINVAL);
    assert_int_equal(it.error_line, line);
    if (!strstr(it.error, reason_part))
        fail_msg("error '%s' lacks '%s'", it.error, reason_part);
}

static void test_rejections(void **state)
{
    (void)state;
    expect_bad("[server]\n[pool gpu\n", 2, "missing ']'");
    expect_bad("[server]\nport 8080\n", 2, "expected 'key = value'");
    expect_bad("[server]\n = 8080\n", 2, "empty key");
    expect_bad("[server]\nmax conn = 1\n", 2, "invalid character in key");
    expect_bad("[server]\nport = 80\x01\n", 2, "control character 0x01");
    expect_bad("[server]\nport = 80\x7f\n", 2, "control character 0x7f");
    expect_bad("[pool g/p]\n", 1, "invalid character in section name");
    expect_bad("[po$ol]\n", 1, "invalid character in section");
    expect_bad("[pool a b]\n", 1, "at most one name");
    expect_bad("[pool a] x\n", 1, "unexpected text");
    expect_bad("[]\n", 1, "empty section");

    char nul[] = "a = 1\nb = 2\0x\n";
    struct voro_ini it;
    assert_int_equal(first_error(&it, nul, sizeof(nul) - 1), -EINVAL);
    assert_int_equal(it.error_line, 2);
    assert_non_null(strstr(it.error, "control character 0x00"));
}

static void test_line_limit(void **state)
{
    (void)state;
    size_t n = VORO_INI_LINE_MAX + 10;
    char *text = malloc(2 * n + 16);
    assert_non_null(text);
    /* exactly 4096 bytes: accepted */
    memset(text, 'v', VORO_INI_LINE_MAX);
    memcpy(text, "k = ", 4);
    text[VORO_INI_LINE_MAX] = '\n';
    struct voro_ini it;
    struct voro_ini_event ev;
    voro_ini_init(&it, text, VORO_INI_LINE_MAX + 1);
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(strlen(ev.value), VORO_INI_LINE_MAX - 4);
    /* 4097 bytes: rejected, and the next line is still read */
    memset(text, 'v', VORO_INI_LINE_MAX + 1);
    memcpy(text, "k = ", 4);
    strcpy(text + VORO_INI_LINE_MAX + 1, "\nnext = 1\n");
    voro_ini_init(&it, text, strlen(text));
    assert_int_equal(voro_ini_next(&it, &ev), -EINVAL);
    assert_int_equal(it.error_line, 1);
    assert_non_null(strstr(it.error, "longer than 4096"));
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 2);
    assert_string_equal(ev.key, "next");
    free(text);
}

static void test_continues_after_error(void **state)
{
    (void)state;
    const char *text = "[a\nkey\n[b]\nx = 1\n";
    struct voro_ini it;
    struct voro_ini_event ev;
    voro_ini_init(&it, text, strlen(text));
    assert_int_equal(voro_ini_next(&it, &ev), -EINVAL);
    assert_int_equal(ev.type, VORO_INI_SECTION); /* tells the caller a section was meant */
    assert_int_equal(it.error_line, 1);
    assert_int_equal(voro_ini_next(&it, &ev), -EINVAL);
    assert_int_equal(it.error_line, 2);
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_string_equal(ev.section, "b");
    assert_int_equal(voro_ini_next(&it, &ev), 1);
    assert_int_equal(ev.line, 4);
    assert_int_equal(voro_ini_next(&it, &ev), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_and_lines),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_continues_after_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
