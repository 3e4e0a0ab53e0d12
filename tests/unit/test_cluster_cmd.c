/* Unit tests for proto/cluster_cmd and proto/mp_read: round trips, every decode error class, fuzzing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cluster_cmd.h"
#include "proto/mp_read.h"

#define HASH_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Builds one example of each command type with every field set to a non-default value. */
static void sample(struct voro_cmd *c, enum voro_cmd_type t)
{
    voro_cmd_init(c, t);
    switch (t) {
    case VORO_CMD_NOOP:
    case VORO_CMD__COUNT:
        break;
    case VORO_CMD_CONFIG_PUSH:
        c->u.config_push.text = "[listener a]\nport = 8080\n";
        c->u.config_push.text_len = strlen(c->u.config_push.text);
        strcpy(c->u.config_push.hash, HASH_A);
        strcpy(c->u.config_push.author, "alice");
        c->u.config_push.time_ms = 1700000000123ull;
        c->u.config_push.expected_version = 7;
        break;
    case VORO_CMD_CONFIG_ROLLBACK:
        c->u.config_rollback.to_version = 3;
        strcpy(c->u.config_rollback.author, "bob");
        c->u.config_rollback.time_ms = 99;
        break;
    case VORO_CMD_NODE_CONFIG_ACTIVE:
        c->u.node_config_active.node_id = 2;
        c->u.node_config_active.version = 5;
        c->u.node_config_active.ok = true;
        strcpy(c->u.node_config_active.reason, "loaded");
        break;
    case VORO_CMD_MEMBER_UPSERT:
        c->u.member_upsert.id = 3;
        strcpy(c->u.member_upsert.name, "n3");
        strcpy(c->u.member_upsert.raft_address, "127.0.0.1:9003");
        strcpy(c->u.member_upsert.admin_address, "127.0.0.1:8003");
        strcpy(c->u.member_upsert.data_address, "127.0.0.1:7003");
        c->u.member_upsert.vip_priority = 150;
        break;
    case VORO_CMD_MEMBER_REMOVE:
        c->u.member_remove.id = 0xffffffffffffull;
        break;
    case VORO_CMD_BACKEND_ADD:
        strcpy(c->u.backend_add.pool, "gpu");
        strcpy(c->u.backend_add.address, "127.0.0.1:9100");
        c->u.backend_add.weight = 65535;
        break;
    case VORO_CMD_BACKEND_REMOVE:
    case VORO_CMD_BACKEND_DRAIN:
        strcpy(c->u.backend_ref.pool, "gpu");
        strcpy(c->u.backend_ref.address, "[::1]:9100");
        break;
    case VORO_CMD_BACKEND_HEALTH:
        strcpy(c->u.backend_health.pool, "gpu");
        strcpy(c->u.backend_health.address, "127.0.0.1:9100");
        c->u.backend_health.state = VORO_HEALTH_DRAINING;
        strcpy(c->u.backend_health.reason, "engine restarting");
        c->u.backend_health.time_ms = 12345;
        break;
    case VORO_CMD_QUOTA_GRANT:
        strcpy(c->u.quota_grant.limit_name, "tokens_per_min:key1");
        c->u.quota_grant.node_id = 1;
        c->u.quota_grant.share = 300000;
        c->u.quota_grant.expires_ms = 1700000005000ull;
        break;
    }
}

/* Equality of two commands, the borrowed text compared by content. */
static void assert_cmd_equal(const struct voro_cmd *a, const struct voro_cmd *b)
{
    struct voro_cmd x = *a, y = *b;
    assert_int_equal(x.type, y.type);
    if (x.type == VORO_CMD_CONFIG_PUSH) {
        assert_int_equal(x.u.config_push.text_len, y.u.config_push.text_len);
        if (x.u.config_push.text_len)
            assert_memory_equal(x.u.config_push.text, y.u.config_push.text, x.u.config_push.text_len);
        x.u.config_push.text = y.u.config_push.text = NULL;
    }
    assert_memory_equal(&x, &y, sizeof x);
}

static void test_round_trip_every_type(void **state)
{
    (void)state;
    for (int t = 0; t < VORO_CMD__COUNT; t++) {
        struct voro_cmd in, out;
        void *buf;
        size_t len;
        sample(&in, (enum voro_cmd_type)t);
        assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
        assert_int_equal(voro_cmd_decode(buf, len, &out), 0);
        assert_cmd_equal(&in, &out);
        /* The names on the wire are the documented ones. */
        assert_non_null(memmem(buf, len, voro_cmd_type_name(in.type), strlen(voro_cmd_type_name(in.type))));
        free(buf);
    }
}

static void test_round_trip_limits(void **state)
{
    (void)state;
    struct voro_cmd in, out;
    void *buf;
    size_t len;
    /* The largest text and strings accepted survive. */
    char *text = malloc(VORO_CMD_TEXT_MAX);
    assert_non_null(text);
    memset(text, 'x', VORO_CMD_TEXT_MAX);
    sample(&in, VORO_CMD_CONFIG_PUSH);
    in.u.config_push.text = text;
    in.u.config_push.text_len = VORO_CMD_TEXT_MAX;
    memset(in.u.config_push.author, 'a', VORO_CMD_STR_MAX);
    in.u.config_push.expected_version = UINT64_MAX;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
    assert_int_equal(voro_cmd_decode(buf, len, &out), 0);
    assert_cmd_equal(&in, &out);
    free(buf);
    /* One byte more is refused by the encoder too, so nothing undecodable is ever proposed. */
    in.u.config_push.text_len = VORO_CMD_TEXT_MAX + 1;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_ETOOBIG);
    assert_null(buf);
    free(text);
    /* Empty text is a valid (empty) config. */
    sample(&in, VORO_CMD_CONFIG_PUSH);
    in.u.config_push.text = NULL;
    in.u.config_push.text_len = 0;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
    assert_int_equal(voro_cmd_decode(buf, len, &out), 0);
    assert_int_equal(out.u.config_push.text_len, 0);
    free(buf);
}

/* ---- hand-built messages for the error classes ---- */

struct mb {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mb_init(struct mb *m, uint32_t n_pairs)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m->pk, n_pairs);
}

static void mb_str(struct mb *m, const char *s)
{
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}

static void kv_str(struct mb *m, const char *k, const char *v)
{
    mb_str(m, k);
    mb_str(m, v);
}

static void kv_uint(struct mb *m, const char *k, uint64_t v)
{
    mb_str(m, k);
    msgpack_pack_uint64(&m->pk, v);
}

static int mb_decode(struct mb *m, struct voro_cmd *out)
{
    int rc = voro_cmd_decode(m->sb.data, m->sb.size, out);
    msgpack_sbuffer_destroy(&m->sb);
    return rc;
}

/* backend_add with fields chosen by the caller: `skip` omits a field, `weight_str` sends the
 * weight as a string, `extra` adds an unknown key. */
static int backend_add(const char *type, uint64_t v, const char *skip, bool weight_str, bool extra)
{
    struct mb m;
    struct voro_cmd out;
    const char *fields[] = {"type", "v", "pool", "address", "weight"};
    uint32_t n = 5 + (extra ? 1 : 0) - (skip ? 1 : 0);
    mb_init(&m, n);
    for (int i = 0; i < 5; i++) {
        if (skip && strcmp(skip, fields[i]) == 0)
            continue;
        switch (i) {
        case 0: kv_str(&m, "type", type); break;
        case 1: kv_uint(&m, "v", v); break;
        case 2: kv_str(&m, "pool", "gpu"); break;
        case 3: kv_str(&m, "address", "127.0.0.1:1"); break;
        case 4:
            if (weight_str)
                kv_str(&m, "weight", "10");
            else
                kv_uint(&m, "weight", 10);
            break;
        }
    }
    if (extra)
        kv_uint(&m, "colour", 1);
    return mb_decode(&m, &out);
}

static void test_hand_built_ok(void **state)
{
    (void)state;
    assert_int_equal(backend_add("backend_add", 1, NULL, false, false), 0);
}

static void test_truncated(void **state)
{
    (void)state;
    for (int t = 0; t < VORO_CMD__COUNT; t++) {
        struct voro_cmd in, out;
        void *buf;
        size_t len;
        sample(&in, (enum voro_cmd_type)t);
        assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(voro_cmd_decode(buf, cut, &out), VORO_CMD_ETRUNCATED);
        free(buf);
    }
    /* A header announcing 4 billion pairs in five bytes is truncated, not an allocation. */
    const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    struct voro_cmd out;
    assert_int_equal(voro_cmd_decode(huge, sizeof huge, &out), VORO_CMD_ETRUNCATED);
}

static void test_malformed(void **state)
{
    (void)state;
    struct voro_cmd in, out;
    void *buf;
    size_t len;
    const uint8_t never_used[] = {0xc1};
    const uint8_t array[] = {0x91, 0x01};
    assert_int_equal(voro_cmd_decode(never_used, 1, &out), VORO_CMD_EMALFORMED);
    assert_int_equal(voro_cmd_decode(array, sizeof array, &out), VORO_CMD_EMALFORMED);
    /* Trailing bytes after the map. */
    sample(&in, VORO_CMD_NOOP);
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0x00;
    assert_int_equal(voro_cmd_decode(longer, len + 1, &out), VORO_CMD_EMALFORMED);
    free(longer);
    free(buf);
    /* A duplicated key. */
    struct mb m;
    mb_init(&m, 4);
    kv_str(&m, "type", "member_remove");
    kv_uint(&m, "v", 1);
    kv_uint(&m, "id", 1);
    kv_uint(&m, "id", 2);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EMALFORMED);
    /* A key that is not a string. */
    mb_init(&m, 3);
    kv_str(&m, "type", "noop");
    kv_uint(&m, "v", 1);
    msgpack_pack_uint64(&m.pk, 1);
    msgpack_pack_uint64(&m.pk, 1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EMALFORMED);
}

static void test_wrong_field_type(void **state)
{
    (void)state;
    struct mb m;
    struct voro_cmd out;
    assert_int_equal(backend_add("backend_add", 1, NULL, true, false), VORO_CMD_EFIELDTYPE);
    assert_int_equal(backend_add("backend_add", 1, NULL, false, true), VORO_CMD_EFIELDTYPE);
    /* "type" as a number, "v" as a string. */
    mb_init(&m, 2);
    kv_uint(&m, "type", 1);
    kv_uint(&m, "v", 1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EFIELDTYPE);
    mb_init(&m, 2);
    kv_str(&m, "type", "noop");
    kv_str(&m, "v", "1");
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EFIELDTYPE);
    /* A negative number where an unsigned one belongs. */
    mb_init(&m, 3);
    kv_str(&m, "type", "member_remove");
    kv_uint(&m, "v", 1);
    mb_str(&m, "id");
    msgpack_pack_int64(&m.pk, -1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EFIELDTYPE);
    /* Binary where a string belongs. */
    mb_init(&m, 3);
    kv_str(&m, "type", "member_remove");
    kv_uint(&m, "v", 1);
    mb_str(&m, "id");
    msgpack_pack_bin(&m.pk, 1);
    msgpack_pack_bin_body(&m.pk, "1", 1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EFIELDTYPE);
}

static void test_unknown_type_and_version(void **state)
{
    (void)state;
    assert_int_equal(backend_add("bogus", 1, NULL, false, false), VORO_CMD_EUNKNOWNTYPE);
    assert_int_equal(backend_add("", 1, NULL, false, false), VORO_CMD_EUNKNOWNTYPE);
    assert_int_equal(backend_add("backend_add", 2, NULL, false, false), VORO_CMD_EVERSION);
    assert_int_equal(backend_add("backend_add", 0, NULL, false, false), VORO_CMD_EVERSION);
    /* The type is judged before the version, so an unknown type at v2 is still unknown. */
    assert_int_equal(backend_add("bogus", 2, NULL, false, false), VORO_CMD_EUNKNOWNTYPE);
}

static void test_missing_field(void **state)
{
    (void)state;
    assert_int_equal(backend_add("backend_add", 1, "weight", false, false), VORO_CMD_EMISSING);
    assert_int_equal(backend_add("backend_add", 1, "pool", false, false), VORO_CMD_EMISSING);
    assert_int_equal(backend_add("backend_add", 1, "type", false, false), VORO_CMD_EMISSING);
    assert_int_equal(backend_add("backend_add", 1, "v", false, false), VORO_CMD_EMISSING);
}

static void test_oversize(void **state)
{
    (void)state;
    struct voro_cmd in, out;
    void *buf;
    size_t len;
    char big[VORO_CMD_STR_MAX + 2];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(voro_cmd_set_str(in.u.backend_add.pool, big), VORO_CMD_ETOOBIG);
    struct mb m;
    mb_init(&m, 5);
    kv_str(&m, "type", "backend_add");
    kv_uint(&m, "v", 1);
    kv_str(&m, "pool", big);
    kv_str(&m, "address", "a");
    kv_uint(&m, "weight", 1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_ETOOBIG);
    /* Whole-input bound, checked before parsing. */
    size_t huge = VORO_CMD_ENCODED_MAX + 1;
    uint8_t *junk = calloc(1, huge);
    assert_int_equal(voro_cmd_decode(junk, huge, &out), VORO_CMD_ETOOBIG);
    free(junk);
    /* Text over 1 MiB on the wire (hand-packed, since the encoder refuses it). */
    size_t tlen = VORO_CMD_TEXT_MAX + 1;
    char *text = malloc(tlen);
    memset(text, 't', tlen);
    mb_init(&m, 7);
    kv_str(&m, "type", "config_push");
    kv_uint(&m, "v", 1);
    mb_str(&m, "text");
    msgpack_pack_str(&m.pk, tlen);
    msgpack_pack_str_body(&m.pk, text, tlen);
    kv_str(&m, "hash", HASH_A);
    kv_str(&m, "author", "a");
    kv_uint(&m, "time_ms", 1);
    kv_uint(&m, "expected_version", 0);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_ETOOBIG);
    free(text);
    /* Encoder refuses an over-long string field. */
    sample(&in, VORO_CMD_MEMBER_UPSERT);
    memset(in.u.member_upsert.name, 'n', sizeof in.u.member_upsert.name); /* no NUL within max */
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_ETOOBIG);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct voro_cmd in;
    void *buf;
    size_t len;
    /* Each spoiled sample is refused by the encoder and, hand-packed, by the decoder. */
    sample(&in, VORO_CMD_BACKEND_ADD);
    in.u.backend_add.pool[0] = '\0';
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_EVALUE);
    sample(&in, VORO_CMD_BACKEND_ADD);
    in.u.backend_add.weight = 0;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_EVALUE);
    sample(&in, VORO_CMD_MEMBER_UPSERT);
    in.u.member_upsert.vip_priority = 256;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_EVALUE);
    sample(&in, VORO_CMD_CONFIG_PUSH);
    in.u.config_push.hash[3] = 'G';
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_EVALUE);
    sample(&in, VORO_CMD_BACKEND_HEALTH);
    in.u.backend_health.state = (enum voro_health_state)7;
    assert_int_equal(voro_cmd_encode(&in, &buf, &len), VORO_CMD_EVALUE);

    struct mb m;
    struct voro_cmd out;
    mb_init(&m, 7);
    kv_str(&m, "type", "backend_health");
    kv_uint(&m, "v", 1);
    kv_str(&m, "pool", "gpu");
    kv_str(&m, "address", "a");
    kv_str(&m, "state", "sideways");
    kv_str(&m, "reason", "");
    kv_uint(&m, "time_ms", 1);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EVALUE);
    mb_init(&m, 3);
    kv_str(&m, "type", "member_remove");
    kv_uint(&m, "v", 1);
    kv_uint(&m, "id", 0);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EVALUE);
    /* An embedded NUL would silently shorten a C string: refused. */
    mb_init(&m, 4);
    kv_str(&m, "type", "backend_drain");
    kv_uint(&m, "v", 1);
    kv_str(&m, "pool", "gpu");
    mb_str(&m, "address");
    msgpack_pack_str(&m.pk, 3);
    msgpack_pack_str_body(&m.pk, "a\0b", 3);
    assert_int_equal(mb_decode(&m, &out), VORO_CMD_EVALUE);
}

static bool is_decode_code(int rc)
{
    return rc == 0 || rc == VORO_CMD_ETRUNCATED || rc == VORO_CMD_EMALFORMED ||
           rc == VORO_CMD_EFIELDTYPE || rc == VORO_CMD_EUNKNOWNTYPE || rc == VORO_CMD_EVERSION ||
           rc == VORO_CMD_EMISSING || rc == VORO_CMD_ETOOBIG || rc == VORO_CMD_EVALUE;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Whatever decodes re-encodes to something that decodes to the same command. */
static void check_reencode(const struct voro_cmd *c)
{
    void *buf;
    size_t len;
    struct voro_cmd again;
    assert_int_equal(voro_cmd_encode(c, &buf, &len), 0);
    assert_int_equal(voro_cmd_decode(buf, len, &again), 0);
    assert_cmd_equal(c, &again);
    free(buf);
}

static void test_fuzz_random_and_mutated(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t bytes[96];
    struct voro_cmd out;
    int decoded = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = xorshift(&seed) % sizeof bytes;
        for (size_t j = 0; j < len; j++)
            bytes[j] = (uint8_t)xorshift(&seed);
        int rc = voro_cmd_decode(bytes, len, &out);
        assert_true(is_decode_code(rc));
    }
    /* Mutations of valid commands reach deeper than random bytes. */
    for (int t = 0; t < VORO_CMD__COUNT; t++) {
        struct voro_cmd in;
        void *buf;
        size_t len;
        sample(&in, (enum voro_cmd_type)t);
        assert_int_equal(voro_cmd_encode(&in, &buf, &len), 0);
        uint8_t *mut = malloc(len);
        for (int i = 0; i < 3000; i++) {
            memcpy(mut, buf, len);
            int flips = 1 + (int)(xorshift(&seed) % 3);
            for (int k = 0; k < flips; k++)
                mut[xorshift(&seed) % len] = (uint8_t)xorshift(&seed);
            int rc = voro_cmd_decode(mut, len, &out);
            assert_true(is_decode_code(rc));
            if (rc == 0) {
                decoded++;
                check_reencode(&out);
            } else {
                /* A refused command leaves nothing behind. */
                assert_int_equal(out.type, VORO_CMD_NOOP);
            }
        }
        free(mut);
        free(buf);
    }
    assert_true(decoded > 0); /* the mutation loop did exercise the success path */
}

static void test_mp_reader(void **state)
{
    (void)state;
    struct voro_mp_reader r;
    uint64_t v;
    uint32_t n;
    const char *s;
    const uint8_t u64[] = {0xcf, 1, 2, 3, 4, 5, 6, 7, 8};
    voro_mp_reader_init(&r, u64, sizeof u64);
    assert_int_equal(voro_mp_read_uint(&r, &v), 0);
    assert_int_equal(v, 0x0102030405060708ull);
    assert_int_equal(voro_mp_remaining(&r), 0);
    voro_mp_reader_init(&r, u64, 5);
    assert_int_equal(voro_mp_read_uint(&r, &v), -ENODATA);
    assert_int_equal(voro_mp_remaining(&r), 5); /* untouched on error */
    const uint8_t str16[] = {0xda, 0x00, 0x02, 'h', 'i'};
    voro_mp_reader_init(&r, str16, sizeof str16);
    assert_int_equal(voro_mp_read_map(&r, &n), -EPROTO);
    assert_int_equal(voro_mp_read_str(&r, &s, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(s, "hi", 2);
    /* Nesting deeper than the bound is refused rather than recursed into. */
    uint8_t deep[64];
    memset(deep, 0x91, sizeof deep);
    deep[63] = 0x00;
    voro_mp_reader_init(&r, deep, sizeof deep);
    assert_int_equal(voro_mp_skip(&r), -EBADMSG);
    /* ext and float values are skipped exactly. */
    const uint8_t mixed[] = {0x93, 0xd4, 0x01, 0x02, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xc7, 0x01, 0x05, 0xaa};
    voro_mp_reader_init(&r, mixed, sizeof mixed);
    assert_int_equal(voro_mp_skip(&r), 0);
    assert_int_equal(voro_mp_remaining(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_limits),
        cmocka_unit_test(test_hand_built_ok),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_wrong_field_type),
        cmocka_unit_test(test_unknown_type_and_version),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_fuzz_random_and_mutated),
        cmocka_unit_test(test_mp_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
