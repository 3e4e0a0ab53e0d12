/* Unit tests for raft/fsm and raft/state: apply rules, snapshots, determinism, a raft_fixture cluster. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cluster_cmd.h"
#include "raft/fsm.h"
#include "raft/state.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define STEP_MS 10000 /* fixture time budget per wait: simulated, not wall-clock */

/* ---- command builders ---- */

static struct voro_cmd push(const char *text, uint64_t expected)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_CONFIG_PUSH);
    c.u.config_push.text = text;
    c.u.config_push.text_len = strlen(text);
    strcpy(c.u.config_push.hash, text[0] == 'b' ? HASH_B : HASH_A);
    strcpy(c.u.config_push.author, "tester");
    c.u.config_push.time_ms = 1000;
    c.u.config_push.expected_version = expected;
    return c;
}

static struct voro_cmd rollback(uint64_t to)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_CONFIG_ROLLBACK);
    c.u.config_rollback.to_version = to;
    strcpy(c.u.config_rollback.author, "ops");
    c.u.config_rollback.time_ms = 2000;
    return c;
}

static struct voro_cmd member(uint64_t id, const char *raft_address)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_MEMBER_UPSERT);
    c.u.member_upsert.id = id;
    snprintf(c.u.member_upsert.name, sizeof c.u.member_upsert.name, "node%llu", (unsigned long long)id);
    strcpy(c.u.member_upsert.raft_address, raft_address);
    strcpy(c.u.member_upsert.admin_address, "127.0.0.1:8000");
    strcpy(c.u.member_upsert.data_address, "127.0.0.1:7000");
    c.u.member_upsert.vip_priority = (uint32_t)(100 + id);
    return c;
}

static struct voro_cmd member_remove(uint64_t id)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_MEMBER_REMOVE);
    c.u.member_remove.id = id;
    return c;
}

static struct voro_cmd backend(enum voro_cmd_type t, const char *pool, const char *address)
{
    struct voro_cmd c;
    voro_cmd_init(&c, t);
    /* backend_add's pool/address sit where backend_ref's do, but set each explicitly. */
    if (t == VORO_CMD_BACKEND_ADD) {
        strcpy(c.u.backend_add.pool, pool);
        strcpy(c.u.backend_add.address, address);
        c.u.backend_add.weight = 10;
    } else if (t == VORO_CMD_BACKEND_HEALTH) {
        strcpy(c.u.backend_health.pool, pool);
        strcpy(c.u.backend_health.address, address);
    } else {
        strcpy(c.u.backend_ref.pool, pool);
        strcpy(c.u.backend_ref.address, address);
    }
    return c;
}

static struct voro_cmd health(const char *pool, const char *address, enum voro_health_state st, uint64_t t)
{
    struct voro_cmd c = backend(VORO_CMD_BACKEND_HEALTH, pool, address);
    c.u.backend_health.state = st;
    strcpy(c.u.backend_health.reason, st == VORO_HEALTH_UP ? "ok" : "probe failed");
    c.u.backend_health.time_ms = t;
    return c;
}

static struct voro_cmd grant(const char *limit, uint64_t node, uint64_t share)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_QUOTA_GRANT);
    strcpy(c.u.quota_grant.limit_name, limit);
    c.u.quota_grant.node_id = node;
    c.u.quota_grant.share = share;
    c.u.quota_grant.expires_ms = 5000;
    return c;
}

static struct voro_cmd active(uint64_t node, uint64_t version, bool ok)
{
    struct voro_cmd c;
    voro_cmd_init(&c, VORO_CMD_NODE_CONFIG_ACTIVE);
    c.u.node_config_active.node_id = node;
    c.u.node_config_active.version = version;
    c.u.node_config_active.ok = ok;
    strcpy(c.u.node_config_active.reason, ok ? "" : "parse error line 3");
    return c;
}

/* Applies without raft; returns the result code. */
static int apply_local(struct voro_cluster_state *s, struct voro_cmd c, struct voro_fsm_result *res)
{
    struct voro_fsm_result tmp;
    void *buf;
    size_t len;
    assert_int_equal(voro_cmd_encode(&c, &buf, &len), 0);
    if (res == NULL)
        res = &tmp;
    assert_int_equal(voro_fsm_apply_to(s, buf, len, res), 0);
    free(buf);
    return res->code;
}

/* A v1 map with an arbitrary type name and version, for the refusal paths. */
static void raw_command(const char *type, uint64_t v, void **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "type", 4);
    msgpack_pack_str(&pk, strlen(type));
    msgpack_pack_str_body(&pk, type, strlen(type));
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "v", 1);
    msgpack_pack_uint64(&pk, v);
    *out = sb.data;
    *len = sb.size;
}

/* A state with something in every table. */
static void populate(struct voro_cluster_state *s)
{
    assert_int_equal(apply_local(s, push("a=1\n", 0), NULL), 0);
    assert_int_equal(apply_local(s, push("b=2\n", 1), NULL), 0);
    assert_int_equal(apply_local(s, rollback(1), NULL), 0);
    assert_int_equal(apply_local(s, member(2, "127.0.0.1:9002"), NULL), 0);
    assert_int_equal(apply_local(s, member(1, "127.0.0.1:9001"), NULL), 0);
    assert_int_equal(apply_local(s, active(1, 3, true), NULL), 0);
    assert_int_equal(apply_local(s, active(2, 2, false), NULL), 0);
    assert_int_equal(apply_local(s, backend(VORO_CMD_BACKEND_ADD, "gpu", "127.0.0.1:9200"), NULL), 0);
    assert_int_equal(apply_local(s, backend(VORO_CMD_BACKEND_ADD, "gpu", "127.0.0.1:9100"), NULL), 0);
    assert_int_equal(apply_local(s, backend(VORO_CMD_BACKEND_ADD, "cpu", "[::1]:9300"), NULL), 0);
    assert_int_equal(apply_local(s, backend(VORO_CMD_BACKEND_DRAIN, "gpu", "127.0.0.1:9200"), NULL), 0);
    assert_int_equal(apply_local(s, health("gpu", "127.0.0.1:9100", VORO_HEALTH_DOWN, 10), NULL), 0);
    assert_int_equal(apply_local(s, health("static", "127.0.0.1:80", VORO_HEALTH_UP, 11), NULL), 0);
    assert_int_equal(apply_local(s, grant("rps:route1", 1, 60), NULL), 0);
    assert_int_equal(apply_local(s, grant("rps:route1", 2, 40), NULL), 0);
}

/* ---- apply rules, without raft ---- */

static void test_apply_rules(void **state)
{
    (void)state;
    struct voro_cluster_state s;
    struct voro_fsm_result res;
    voro_cluster_state_init(&s);
    populate(&s);
    assert_int_equal(s.current.version, 3);
    assert_int_equal(s.current.source_version, 1);
    assert_string_equal(s.current.text, "a=1\n"); /* the rollback restored version 1's text */
    assert_int_equal(s.n_history, 2);
    /* Tables are sorted by key whatever the arrival order. */
    assert_int_equal(s.members[0].id, 1);
    assert_string_equal(s.backends[0].pool, "cpu");
    assert_string_equal(s.backends[1].address, "127.0.0.1:9100");
    assert_true(s.backends[2].draining);

    assert_int_equal(apply_local(&s, push("x", 2), &res), -ESTALE);
    assert_int_equal(res.version, 3);
    assert_int_equal(apply_local(&s, rollback(3), &res), -EALREADY);
    assert_int_equal(apply_local(&s, rollback(9), &res), -ENOENT);
    assert_int_equal(apply_local(&s, active(1, 4, true), &res), -ENOENT);
    assert_int_equal(apply_local(&s, member(3, "127.0.0.1:9001"), &res), -EEXIST);
    assert_int_equal(apply_local(&s, member_remove(9), &res), -ENOENT);
    assert_int_equal(apply_local(&s, backend(VORO_CMD_BACKEND_REMOVE, "gpu", "nope"), &res), -ENOENT);
    assert_int_equal(apply_local(&s, backend(VORO_CMD_BACKEND_DRAIN, "cpu", "nope"), &res), -ENOENT);
    assert_int_equal(apply_local(&s, health("gpu", "127.0.0.1:9100", VORO_HEALTH_UP, 9), &res), -ESTALE);
    assert_int_equal(apply_local(&s, grant("rps:route1", 7, 1), &res), -ENOENT);
    assert_non_null(strstr(res.message, "7"));

    /* Re-adding a drained backend updates it and clears draining. */
    assert_int_equal(apply_local(&s, backend(VORO_CMD_BACKEND_ADD, "gpu", "127.0.0.1:9200"), NULL), 0);
    assert_false(voro_state_backend(&s, "gpu", "127.0.0.1:9200")->draining);
    /* Removing a backend drops its verdict; removing a member drops its record and leases. */
    assert_int_equal(apply_local(&s, backend(VORO_CMD_BACKEND_REMOVE, "gpu", "127.0.0.1:9100"), NULL), 0);
    assert_null(voro_state_health(&s, "gpu", "127.0.0.1:9100"));
    assert_non_null(voro_state_health(&s, "static", "127.0.0.1:80"));
    assert_int_equal(apply_local(&s, member_remove(2), NULL), 0);
    assert_null(voro_state_member(&s, 2));
    assert_null(voro_state_active(&s, 2));
    assert_null(voro_state_lease(&s, "rps:route1", 2));
    assert_non_null(voro_state_lease(&s, "rps:route1", 1));
    /* A zero share revokes. */
    assert_int_equal(apply_local(&s, grant("rps:route1", 1, 0), NULL), 0);
    assert_int_equal(s.n_leases, 0);
    voro_cluster_state_free(&s);
}

static void test_history_bound_and_rollback(void **state)
{
    (void)state;
    struct voro_cluster_state s;
    struct voro_fsm_result res;
    char text[32];
    voro_cluster_state_init(&s);
    for (int i = 1; i <= 40; i++) {
        snprintf(text, sizeof text, "v=%d\n", i);
        assert_int_equal(apply_local(&s, push(text, (uint64_t)i - 1), &res), 0);
        assert_int_equal(res.version, (uint64_t)i);
    }
    assert_int_equal(s.n_history, VORO_STATE_HISTORY_MAX);
    assert_int_equal(s.history[0].version, 40 - VORO_STATE_HISTORY_MAX);
    assert_int_equal(apply_local(&s, rollback(7), NULL), -ENOENT);
    /* Rolling back to the oldest kept version while the history is full: the target itself is
     * the entry that gets evicted (ASan checks the text was copied first). */
    assert_int_equal(apply_local(&s, rollback(8), &res), 0);
    assert_int_equal(res.version, 41);
    assert_string_equal(s.current.text, "v=8\n");
    assert_int_equal(s.current.source_version, 8);
    assert_null(voro_state_config(&s, 8));
    voro_cluster_state_free(&s);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A pseudo-random command over small key spaces, so that commands collide and refuse often. */
static struct voro_cmd random_cmd(uint64_t *seed, char *text, size_t text_size)
{
    static const char *const pools[] = {"p0", "p1", "p2"};
    static const char *const addrs[] = {"127.0.0.1:1", "127.0.0.1:2", "[::1]:3", "127.0.0.1:4"};
    static const char *const raft_addrs[] = {"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"};
    uint64_t r = xorshift(seed);
    uint64_t id = 1 + (r >> 8) % 4;
    const char *pool = pools[(r >> 12) % 3];
    const char *addr = addrs[(r >> 16) % 4];
    switch ((enum voro_cmd_type)(r % VORO_CMD__COUNT)) {
    case VORO_CMD_CONFIG_PUSH:
        snprintf(text, text_size, "k=%llu\n", (unsigned long long)(r >> 20));
        return push(text, (r >> 24) % 2 ? 0 : (r >> 28) % 6);
    case VORO_CMD_CONFIG_ROLLBACK:
        return rollback(1 + (r >> 20) % 6);
    case VORO_CMD_NODE_CONFIG_ACTIVE:
        return active(id, (r >> 20) % 5, (r >> 24) & 1);
    case VORO_CMD_MEMBER_UPSERT:
        return member(id, raft_addrs[(r >> 20) % 3]);
    case VORO_CMD_MEMBER_REMOVE:
        return member_remove(id);
    case VORO_CMD_BACKEND_ADD:
    case VORO_CMD_BACKEND_REMOVE:
    case VORO_CMD_BACKEND_DRAIN:
        return backend((enum voro_cmd_type)(r % VORO_CMD__COUNT), pool, addr);
    case VORO_CMD_BACKEND_HEALTH:
        return health(pool, addr, (enum voro_health_state)((r >> 20) % 3), (r >> 24) % 50);
    case VORO_CMD_QUOTA_GRANT:
        return grant(pool, id, (r >> 20) % 4);
    default: {
        struct voro_cmd c;
        voro_cmd_init(&c, VORO_CMD_NOOP);
        return c;
    }
    }
}

static void test_validate_predicts_apply_and_determinism(void **state)
{
    (void)state;
    struct voro_cluster_state a, b;
    uint64_t seed = 42;
    int refused = 0, applied = 0;
    char text[64];
    voro_cluster_state_init(&a);
    voro_cluster_state_init(&b);
    for (int i = 0; i < 600; i++) {
        struct voro_cmd c = random_cmd(&seed, text, sizeof text);
        struct voro_fsm_result v, ra, rb;
        void *buf;
        size_t len;
        assert_int_equal(voro_cmd_encode(&c, &buf, &len), 0);
        int predicted = voro_fsm_validate(&a, buf, len, &v);
        assert_int_equal(voro_fsm_apply_to(&a, buf, len, &ra), 0);
        assert_int_equal(voro_fsm_apply_to(&b, buf, len, &rb), 0);
        free(buf);
        assert_int_equal(predicted, ra.code);
        assert_int_equal(ra.code, rb.code);
        assert_int_equal(ra.version, rb.version);
        assert_string_equal(ra.message, rb.message);
        if (ra.code == 0)
            applied++;
        else
            refused++;
        assert_true(voro_cluster_state_equal(&a, &b));
    }
    /* The sequence exercised both outcomes. */
    assert_true(applied > 100);
    assert_true(refused > 50);

    /* Same state, same snapshot bytes: the encoding is canonical. */
    struct raft_buffer sa, sb;
    assert_int_equal(voro_fsm_encode_state(&a, &sa), 0);
    assert_int_equal(voro_fsm_encode_state(&b, &sb), 0);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.base, sb.base, sa.len);
    raft_free(sa.base);
    raft_free(sb.base);
    voro_cluster_state_free(&a);
    voro_cluster_state_free(&b);
}

static void test_refused_commands_are_noops(void **state)
{
    (void)state;
    struct voro_cluster_state s, before;
    struct voro_fsm_result res;
    void *buf;
    size_t len;
    voro_cluster_state_init(&s);
    populate(&s);
    assert_int_equal(voro_cluster_state_copy(&before, &s), 0);

    raw_command("bogus", 1, &buf, &len);
    assert_int_equal(voro_fsm_apply_to(&s, buf, len, &res), 0);
    assert_int_equal(res.code, VORO_CMD_EUNKNOWNTYPE);
    free(buf);
    raw_command("noop", 2, &buf, &len);
    assert_int_equal(voro_fsm_apply_to(&s, buf, len, &res), 0);
    assert_int_equal(res.code, VORO_CMD_EVERSION);
    free(buf);
    const uint8_t garbage[] = {0xc1, 0x00};
    assert_int_equal(voro_fsm_apply_to(&s, garbage, sizeof garbage, &res), 0);
    assert_int_equal(res.code, VORO_CMD_EMALFORMED);
    assert_int_equal(voro_fsm_apply_to(&s, garbage, 0, &res), 0);
    assert_int_equal(res.code, VORO_CMD_ETRUNCATED);
    assert_int_equal(apply_local(&s, push("x", 99), &res), -ESTALE);
    assert_true(voro_cluster_state_equal(&s, &before));

    voro_cluster_state_free(&before);
    voro_cluster_state_free(&s);
}

/* ---- snapshot and restore, without raft ---- */

struct observed {
    int applies;
    int restores;
    int undecoded;
};

static void observer(void *arg, const struct voro_cmd *cmd, const struct voro_fsm_result *res)
{
    struct observed *o = arg;
    if (res == NULL)
        o->restores++;
    else if (cmd == NULL)
        o->undecoded++;
    else
        o->applies++;
}

static void test_snapshot_restore_round_trip(void **state)
{
    (void)state;
    struct voro_cluster_state src, dst, copy;
    struct raft_fsm fsm_src, fsm_dst;
    struct raft_buffer *bufs;
    unsigned n_bufs;
    struct observed obs = {0};

    voro_cluster_state_init(&src);
    voro_cluster_state_init(&dst);
    populate(&src);
    assert_int_equal(voro_fsm_init(&fsm_src, &src), 0);
    assert_int_equal(voro_fsm_init(&fsm_dst, &dst), 0);
    voro_fsm_set_observer(&fsm_dst, observer, &obs);

    assert_int_equal(fsm_src.snapshot(&fsm_src, &bufs, &n_bufs), 0);
    assert_int_equal(n_bufs, 1);
    /* restore takes the buffer on success: hand it a copy and keep the original. */
    struct raft_buffer b = {.base = raft_malloc(bufs[0].len), .len = bufs[0].len};
    memcpy(b.base, bufs[0].base, b.len);
    assert_int_equal(fsm_dst.restore(&fsm_dst, &b), 0);
    assert_true(voro_cluster_state_equal(&src, &dst));
    assert_int_equal(obs.restores, 1);

    /* The empty state round-trips too. */
    struct voro_cluster_state empty, empty2;
    voro_cluster_state_init(&empty);
    struct raft_buffer eb;
    assert_int_equal(voro_fsm_encode_state(&empty, &eb), 0);
    assert_int_equal(voro_cluster_state_decode(eb.base, eb.len, &empty2), 0);
    assert_true(voro_cluster_state_equal(&empty, &empty2));
    raft_free(eb.base);

    /* A corrupt snapshot is refused and leaves the state alone: every truncation, and a loop
     * of byte mutations (those that still decode must give a state that round-trips). */
    assert_int_equal(voro_cluster_state_copy(&copy, &dst), 0);
    for (size_t cut = 0; cut < bufs[0].len; cut += 7) {
        struct raft_buffer t = {.base = bufs[0].base, .len = cut};
        assert_int_equal(fsm_dst.restore(&fsm_dst, &t), RAFT_MALFORMED);
    }
    assert_true(voro_cluster_state_equal(&copy, &dst));
    uint64_t seed = 7;
    int accepted = 0;
    for (int i = 0; i < 2000; i++) {
        struct raft_buffer m = {.base = raft_malloc(bufs[0].len), .len = bufs[0].len};
        memcpy(m.base, bufs[0].base, m.len);
        ((uint8_t *)m.base)[xorshift(&seed) % m.len] = (uint8_t)xorshift(&seed);
        struct voro_cluster_state probe;
        if (voro_cluster_state_decode(m.base, m.len, &probe) == 0) {
            accepted++;
            struct raft_buffer re;
            struct voro_cluster_state again;
            assert_int_equal(voro_fsm_encode_state(&probe, &re), 0);
            assert_int_equal(voro_cluster_state_decode(re.base, re.len, &again), 0);
            assert_true(voro_cluster_state_equal(&probe, &again));
            raft_free(re.base);
            voro_cluster_state_free(&again);
            voro_cluster_state_free(&probe);
        } else {
            assert_int_not_equal(fsm_dst.restore(&fsm_dst, &m), 0);
            assert_true(voro_cluster_state_equal(&copy, &dst));
        }
        raft_free(m.base);
    }
    assert_true(accepted < 2000);

    voro_cluster_state_free(&copy);
    raft_free(bufs[0].base);
    raft_free(bufs);
    voro_fsm_close(&fsm_src);
    voro_fsm_close(&fsm_dst);
    voro_cluster_state_free(&src);
    voro_cluster_state_free(&dst);
}

/* Encodes `s` and returns what decoding it gives. */
static int reencode(const struct voro_cluster_state *s)
{
    struct raft_buffer b;
    struct voro_cluster_state out;
    assert_int_equal(voro_fsm_encode_state(s, &b), 0);
    int rc = voro_cluster_state_decode(b.base, b.len, &out);
    raft_free(b.base);
    if (rc == 0)
        voro_cluster_state_free(&out);
    return rc;
}

static void test_snapshot_refuses_impossible_states(void **state)
{
    (void)state;
    struct voro_cluster_state s;
    voro_cluster_state_init(&s);
    populate(&s);
    assert_int_equal(reencode(&s), 0);
    /* Well-formed msgpack, but no FSM could have built these: each is refused. */
    struct voro_member m = s.members[0];
    s.members[0] = s.members[1];
    s.members[1] = m;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* keys out of order */
    s.members[1] = s.members[0];
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* duplicate key */
    s.members[1] = m;
    s.members[0].id = 1;
    s.members[1].id = 2;
    assert_int_equal(reencode(&s), 0);
    s.leases[0].share = 0;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE);
    s.leases[0].share = 1;
    s.current.hash[0] = 'X';
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE);
    s.current.hash[0] = 'a';
    s.history[1].version = s.current.version;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE);
    s.history[1].version = 2;
    s.last_version = 2;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* current beyond last_version */
    s.last_version = 4;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* a newer version than current was assigned */
    s.last_version = 3;
    s.history[1].version = 1;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* history not ascending */
    s.history[1].version = 2;
    s.n_history = 1;
    assert_int_equal(reencode(&s), VORO_CMD_EVALUE); /* version 1 missing from the history */
    s.n_history = 2;
    assert_int_equal(reencode(&s), 0);
    voro_cluster_state_free(&s);
}

static void test_copy_equal_free(void **state)
{
    (void)state;
    struct voro_cluster_state a, b;
    voro_cluster_state_init(&a);
    populate(&a);
    assert_int_equal(voro_cluster_state_copy(&b, &a), 0);
    assert_true(voro_cluster_state_equal(&a, &b));
    assert_ptr_not_equal(a.current.text, b.current.text);
    /* Every kind of difference is seen. */
    b.current.text[0] = 'Z';
    assert_false(voro_cluster_state_equal(&a, &b));
    b.current.text[0] = a.current.text[0];
    b.members[0].vip_priority++;
    assert_false(voro_cluster_state_equal(&a, &b));
    b.members[0].vip_priority--;
    b.health[0].state = VORO_HEALTH_UP;
    assert_false(voro_cluster_state_equal(&a, &b));
    b.health[0].state = a.health[0].state;
    b.leases[1].share = 1;
    assert_false(voro_cluster_state_equal(&a, &b));
    b.leases[1].share = a.leases[1].share;
    assert_true(voro_cluster_state_equal(&a, &b));
    voro_cluster_state_free(&b);
    assert_int_equal(b.n_members, 0);
    voro_cluster_state_free(&b); /* freeing twice is harmless */
    voro_cluster_state_free(&a);
}

/* ---- through a raft_fixture cluster ---- */

#define N_MAX 4

struct cluster {
    struct raft_fixture f;
    unsigned n;
    struct voro_cluster_state states[N_MAX];
    struct raft_fsm fsms[N_MAX];
    struct observed obs[N_MAX];
};

static void cluster_add_server(struct cluster *c)
{
    unsigned i = c->n++;
    voro_cluster_state_init(&c->states[i]);
    assert_int_equal(voro_fsm_init(&c->fsms[i], &c->states[i]), 0);
    voro_fsm_set_observer(&c->fsms[i], observer, &c->obs[i]);
    assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i]), 0);
}

static void cluster_start(struct cluster *c, unsigned n)
{
    struct raft_configuration conf;
    memset(c, 0, sizeof *c);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < n; i++)
        cluster_add_server(c);
    assert_int_equal(raft_fixture_configuration(&c->f, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, 0);
    assert_int_equal(raft_fixture_leader_index(&c->f), 0);
}

static void cluster_stop(struct cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++) {
        voro_fsm_close(&c->fsms[i]);
        voro_cluster_state_free(&c->states[i]);
    }
}

struct applied {
    bool done;
    int status;
    struct voro_fsm_result res;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct applied *a = req->data;
    a->done = true;
    a->status = status;
    if (status == 0)
        a->res = *(const struct voro_fsm_result *)result; /* FSM-owned: copy it now */
}

/* Proposes an encoded buffer (raft_malloc'd) via the leader and steps until every server
 * applied it; returns the leader's result. */
static struct voro_fsm_result cluster_apply_buf(struct cluster *c, struct raft_buffer buf)
{
    struct raft *leader = raft_fixture_get(&c->f, raft_fixture_leader_index(&c->f));
    struct raft_apply req;
    struct applied a = {0};
    req.data = &a;
    assert_int_equal(raft_apply(leader, &req, &buf, 1, apply_cb), 0);
    raft_index index = raft_last_index(leader);
    assert_true(raft_fixture_step_until_applied(&c->f, c->n, index, STEP_MS));
    assert_true(a.done);
    assert_int_equal(a.status, 0);
    return a.res;
}

static struct voro_fsm_result cluster_apply(struct cluster *c, struct voro_cmd cmd)
{
    struct raft_buffer buf;
    assert_int_equal(voro_fsm_encode_command(&cmd, &buf), 0);
    return cluster_apply_buf(c, buf);
}

static void assert_all_equal(struct cluster *c)
{
    for (unsigned i = 1; i < c->n; i++)
        assert_true(voro_cluster_state_equal(&c->states[0], &c->states[i]));
}

static void test_cluster_config_pushes_in_order(void **state)
{
    (void)state;
    struct cluster *c = calloc(1, sizeof *c);
    char text[32];
    cluster_start(c, 3);
    for (uint64_t v = 1; v <= 6; v++) {
        snprintf(text, sizeof text, "gen=%llu\n", (unsigned long long)v);
        /* Alternate "any version" and an exact precondition. */
        struct voro_fsm_result r = cluster_apply(c, push(text, v % 2 ? 0 : v - 1));
        assert_int_equal(r.code, 0);
        assert_int_equal(r.version, v);
    }
    for (unsigned i = 0; i < 3; i++) {
        const struct voro_cluster_state *s = &c->states[i];
        assert_int_equal(s->current.version, 6);
        assert_string_equal(s->current.text, "gen=6\n");
        assert_int_equal(s->n_history, 5);
        for (size_t h = 0; h < s->n_history; h++)
            assert_int_equal(s->history[h].version, h + 1);
        assert_int_equal(c->obs[i].applies, 6);
    }
    assert_all_equal(c);
    cluster_stop(c);
    free(c);
}

static void test_cluster_refusals_do_not_stop_the_log(void **state)
{
    (void)state;
    struct cluster *c = calloc(1, sizeof *c);
    struct raft_buffer buf;
    void *raw;
    size_t len;
    cluster_start(c, 3);
    assert_int_equal(cluster_apply(c, push("a\n", 0)).code, 0);
    /* Stale precondition: a no-op with an error, on every server. */
    struct voro_fsm_result r = cluster_apply(c, push("b\n", 5));
    assert_int_equal(r.code, -ESTALE);
    assert_int_equal(r.version, 1);
    assert_non_null(strstr(r.message, "stale"));
    /* Unknown type and unknown version. */
    raw_command("bogus", 1, &raw, &len);
    buf.base = raft_malloc(len);
    buf.len = len;
    memcpy(buf.base, raw, len);
    free(raw);
    assert_int_equal(cluster_apply_buf(c, buf).code, VORO_CMD_EUNKNOWNTYPE);
    raw_command("config_push", 2, &raw, &len);
    buf.base = raft_malloc(len);
    buf.len = len;
    memcpy(buf.base, raw, len);
    free(raw);
    assert_int_equal(cluster_apply_buf(c, buf).code, VORO_CMD_EVERSION);
    /* The log goes on: the next command applies everywhere. */
    r = cluster_apply(c, push("b\n", 1));
    assert_int_equal(r.code, 0);
    assert_int_equal(r.version, 2);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(c->states[i].current.version, 2);
        assert_int_equal(c->obs[i].undecoded, 2);
        assert_int_equal(raft_last_applied(raft_fixture_get(&c->f, i)),
                         raft_last_index(raft_fixture_get(&c->f, 0)));
    }
    assert_all_equal(c);
    cluster_stop(c);
    free(c);
}

static void test_cluster_membership_commands(void **state)
{
    (void)state;
    struct cluster *c = calloc(1, sizeof *c);
    cluster_start(c, 3);
    assert_int_equal(cluster_apply(c, member(1, "127.0.0.1:9001")).code, 0);
    assert_int_equal(cluster_apply(c, member(2, "127.0.0.1:9002")).code, 0);
    assert_int_equal(cluster_apply(c, member(3, "127.0.0.1:9003")).code, 0);
    assert_int_equal(cluster_apply(c, member(4, "127.0.0.1:9003")).code, -EEXIST);
    assert_int_equal(cluster_apply(c, grant("rps:a", 3, 100)).code, 0);
    assert_int_equal(cluster_apply(c, member_remove(7)).code, -ENOENT);
    /* Upsert changes a member in place. */
    struct voro_cmd m2 = member(2, "127.0.0.1:9002");
    strcpy(m2.u.member_upsert.name, "renamed");
    assert_int_equal(cluster_apply(c, m2).code, 0);
    assert_int_equal(cluster_apply(c, member_remove(3)).code, 0);
    for (unsigned i = 0; i < 3; i++) {
        const struct voro_cluster_state *s = &c->states[i];
        assert_int_equal(s->n_members, 2);
        assert_string_equal(voro_state_member(s, 2)->name, "renamed");
        assert_null(voro_state_member(s, 3));
        assert_int_equal(s->n_leases, 0);
    }
    assert_all_equal(c);
    cluster_stop(c);
    free(c);
}

static void change_cb(struct raft_change *req, int status)
{
    int *out = req->data;
    *out = status;
}

static bool all_applied(struct raft_fixture *f, void *arg)
{
    (void)arg;
    raft_index want = raft_last_index(raft_fixture_get(f, raft_fixture_leader_index(f)));
    for (unsigned i = 0; i < raft_fixture_n(f); i++)
        if (raft_last_applied(raft_fixture_get(f, i)) < want)
            return false;
    return true;
}

static void test_cluster_snapshot_catch_up(void **state)
{
    (void)state;
    struct cluster *c = calloc(1, sizeof *c);
    char text[32];
    cluster_start(c, 3);
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), 4);
        raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), 2);
    }
    assert_int_equal(cluster_apply(c, member(1, "1")).code, 0);
    assert_int_equal(cluster_apply(c, member(2, "2")).code, 0);
    assert_int_equal(cluster_apply(c, member(3, "3")).code, 0);
    for (int i = 1; i <= 12; i++) {
        snprintf(text, sizeof text, "gen=%d\n", i);
        assert_int_equal(cluster_apply(c, push(text, 0)).code, 0);
    }
    assert_int_equal(cluster_apply(c, backend(VORO_CMD_BACKEND_ADD, "gpu", "127.0.0.1:9100")).code, 0);
    assert_int_equal(cluster_apply(c, health("gpu", "127.0.0.1:9100", VORO_HEALTH_UP, 5)).code, 0);
    assert_int_equal(cluster_apply(c, grant("rps:a", 1, 10)).code, 0);
    assert_int_equal(cluster_apply(c, active(2, 12, true)).code, 0);
    /* The leader has compacted its log: entry 1 is gone, so a newcomer needs the snapshot. */
    struct raft *leader = raft_fixture_get(&c->f, 0);
    assert_true(leader->log.snapshot.last_index > 0);

    cluster_add_server(c);
    struct raft *newcomer = raft_fixture_get(&c->f, 3);
    assert_int_equal(raft_start(newcomer), 0);
    struct raft_change req;
    int status = -1;
    req.data = &status;
    assert_int_equal(raft_add(leader, &req, 4, "4", change_cb), 0);
    for (int i = 0; i < 2000 && status == -1; i++)
        raft_fixture_step(&c->f);
    assert_int_equal(status, 0);
    status = -1;
    assert_int_equal(raft_assign(leader, &req, 4, RAFT_VOTER, change_cb), 0);
    for (int i = 0; i < 20000 && status == -1; i++)
        raft_fixture_step(&c->f);
    assert_int_equal(status, 0);
    assert_true(raft_fixture_step_until(&c->f, all_applied, NULL, STEP_MS));

    assert_true(c->obs[3].restores >= 1); /* it caught up from a snapshot, not the log */
    assert_int_equal(c->states[3].current.version, 12);
    assert_all_equal(c);
    /* And it follows the log after that. */
    assert_int_equal(cluster_apply(c, push("after\n", 12)).code, 0);
    assert_string_equal(c->states[3].current.text, "after\n");
    assert_all_equal(c);
    cluster_stop(c);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_rules),
        cmocka_unit_test(test_history_bound_and_rollback),
        cmocka_unit_test(test_validate_predicts_apply_and_determinism),
        cmocka_unit_test(test_refused_commands_are_noops),
        cmocka_unit_test(test_snapshot_restore_round_trip),
        cmocka_unit_test(test_snapshot_refuses_impossible_states),
        cmocka_unit_test(test_copy_equal_free),
        cmocka_unit_test(test_cluster_config_pushes_in_order),
        cmocka_unit_test(test_cluster_refusals_do_not_stop_the_log),
        cmocka_unit_test(test_cluster_membership_commands),
        cmocka_unit_test(test_cluster_snapshot_catch_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
