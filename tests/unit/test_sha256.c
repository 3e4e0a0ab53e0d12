/* SHA-256 against the FIPS 180-4 / NIST example vectors, including the padding edge lengths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cluster/sha256.h"

static void check(const char *msg, size_t len, const char *hex)
{
    char out[65];
    voro_sha256_hex(msg, len, out);
    assert_string_equal(out, hex);
}

static void test_vectors(void **state)
{
    (void)state;
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: a second pad block */
    check(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    check(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

static void test_lengths_around_block_edges(void **state)
{
    (void)state;
    /* 55, 56, 63, 64, 65 bytes: each must differ from its neighbours and be stable */
    char buf[80];
    memset(buf, 'x', sizeof(buf));
    char prev[65] = "", cur[65], again[65];
    for (size_t len = 54; len <= 66; len++) {
        voro_sha256_hex(buf, len, cur);
        voro_sha256_hex(buf, len, again);
        assert_string_equal(cur, again);
        assert_int_equal(strlen(cur), 64);
        assert_string_not_equal(cur, prev);
        memcpy(prev, cur, sizeof(prev));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_lengths_around_block_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
