/* Raft commands: table-driven strict msgpack decoding and encoding of struct voro_cmd. */
#include "proto/cluster_cmd.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mp_read.h"

enum field_kind {
    FK_STR,    /* char[VORO_CMD_STR_MAX + 1] (or [VORO_CMD_HASH_LEN + 1] with F_HEX64) */
    FK_TEXT,   /* const char * at off, size_t at off2 */
    FK_U64,
    FK_U32,    /* bounded by max */
    FK_BOOL,
    FK_HEALTH, /* enum voro_health_state, as its wire name */
};

#define F_NONEMPTY 1u /* strings: "" is refused */
#define F_NONZERO 2u  /* numbers: 0 is refused (ids, versions, weights) */
#define F_HEX64 4u    /* strings: exactly 64 lowercase hex digits */

struct field {
    const char *name;
    enum field_kind kind;
    unsigned flags;
    size_t off;
    size_t off2;
    uint64_t max;
};

#define MAX_FIELDS 8
#define CMDOFF(m) offsetof(struct voro_cmd, u.m)

struct cmd_desc {
    const char *name;
    unsigned n;
    struct field f[MAX_FIELDS];
};

static const struct cmd_desc descs[VORO_CMD__COUNT] = {
    [VORO_CMD_NOOP] = {"noop", 0, {{0}}},
    [VORO_CMD_CONFIG_PUSH] = {"config_push", 5, {
        {"text", FK_TEXT, 0, CMDOFF(config_push.text), CMDOFF(config_push.text_len), VORO_CMD_TEXT_MAX},
        {"hash", FK_STR, F_HEX64, CMDOFF(config_push.hash), 0, VORO_CMD_HASH_LEN},
        {"author", FK_STR, 0, CMDOFF(config_push.author), 0, VORO_CMD_STR_MAX},
        {"time_ms", FK_U64, 0, CMDOFF(config_push.time_ms), 0, UINT64_MAX},
        {"expected_version", FK_U64, 0, CMDOFF(config_push.expected_version), 0, UINT64_MAX},
    }},
    [VORO_CMD_CONFIG_ROLLBACK] = {"config_rollback", 3, {
        {"to_version", FK_U64, F_NONZERO, CMDOFF(config_rollback.to_version), 0, UINT64_MAX},
        {"author", FK_STR, 0, CMDOFF(config_rollback.author), 0, VORO_CMD_STR_MAX},
        {"time_ms", FK_U64, 0, CMDOFF(config_rollback.time_ms), 0, UINT64_MAX},
    }},
    [VORO_CMD_NODE_CONFIG_ACTIVE] = {"node_config_active", 4, {
        {"node_id", FK_U64, F_NONZERO, CMDOFF(node_config_active.node_id), 0, UINT64_MAX},
        {"version", FK_U64, 0, CMDOFF(node_config_active.version), 0, UINT64_MAX},
        {"ok", FK_BOOL, 0, CMDOFF(node_config_active.ok), 0, 1},
        {"reason", FK_STR, 0, CMDOFF(node_config_active.reason), 0, VORO_CMD_STR_MAX},
    }},
    [VORO_CMD_MEMBER_UPSERT] = {"member_upsert", 6, {
        {"id", FK_U64, F_NONZERO, CMDOFF(member_upsert.id), 0, UINT64_MAX},
        {"name", FK_STR, F_NONEMPTY, CMDOFF(member_upsert.name), 0, VORO_CMD_STR_MAX},
        {"raft_address", FK_STR, F_NONEMPTY, CMDOFF(member_upsert.raft_address), 0, VORO_CMD_STR_MAX},
        {"admin_address", FK_STR, 0, CMDOFF(member_upsert.admin_address), 0, VORO_CMD_STR_MAX},
        {"data_address", FK_STR, 0, CMDOFF(member_upsert.data_address), 0, VORO_CMD_STR_MAX},
        {"vip_priority", FK_U32, 0, CMDOFF(member_upsert.vip_priority), 0, VORO_CMD_VIP_PRIORITY_MAX},
    }},
    [VORO_CMD_MEMBER_REMOVE] = {"member_remove", 1, {
        {"id", FK_U64, F_NONZERO, CMDOFF(member_remove.id), 0, UINT64_MAX},
    }},
    [VORO_CMD_BACKEND_ADD] = {"backend_add", 3, {
        {"pool", FK_STR, F_NONEMPTY, CMDOFF(backend_add.pool), 0, VORO_CMD_STR_MAX},
        {"address", FK_STR, F_NONEMPTY, CMDOFF(backend_add.address), 0, VORO_CMD_STR_MAX},
        {"weight", FK_U32, F_NONZERO, CMDOFF(backend_add.weight), 0, VORO_CMD_WEIGHT_MAX},
    }},
    [VORO_CMD_BACKEND_REMOVE] = {"backend_remove", 2, {
        {"pool", FK_STR, F_NONEMPTY, CMDOFF(backend_ref.pool), 0, VORO_CMD_STR_MAX},
        {"address", FK_STR, F_NONEMPTY, CMDOFF(backend_ref.address), 0, VORO_CMD_STR_MAX},
    }},
    [VORO_CMD_BACKEND_DRAIN] = {"backend_drain", 2, {
        {"pool", FK_STR, F_NONEMPTY, CMDOFF(backend_ref.pool), 0, VORO_CMD_STR_MAX},
        {"address", FK_STR, F_NONEMPTY, CMDOFF(backend_ref.address), 0, VORO_CMD_STR_MAX},
    }},
    [VORO_CMD_BACKEND_HEALTH] = {"backend_health", 5, {
        {"pool", FK_STR, F_NONEMPTY, CMDOFF(backend_health.pool), 0, VORO_CMD_STR_MAX},
        {"address", FK_STR, F_NONEMPTY, CMDOFF(backend_health.address), 0, VORO_CMD_STR_MAX},
        {"state", FK_HEALTH, 0, CMDOFF(backend_health.state), 0, 0},
        {"reason", FK_STR, 0, CMDOFF(backend_health.reason), 0, VORO_CMD_STR_MAX},
        {"time_ms", FK_U64, 0, CMDOFF(backend_health.time_ms), 0, UINT64_MAX},
    }},
    [VORO_CMD_QUOTA_GRANT] = {"quota_grant", 4, {
        {"limit_name", FK_STR, F_NONEMPTY, CMDOFF(quota_grant.limit_name), 0, VORO_CMD_STR_MAX},
        {"node_id", FK_U64, F_NONZERO, CMDOFF(quota_grant.node_id), 0, UINT64_MAX},
        {"share", FK_U64, 0, CMDOFF(quota_grant.share), 0, UINT64_MAX},
        {"expires_ms", FK_U64, 0, CMDOFF(quota_grant.expires_ms), 0, UINT64_MAX},
    }},
};

static const char *const health_names[] = {"up", "down", "draining"};

const char *voro_cmd_type_name(enum voro_cmd_type type)
{
    if ((unsigned)type >= VORO_CMD__COUNT)
        return NULL;
    return descs[type].name;
}

static bool name_eq(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

int voro_cmd_type_from_name(const char *s, size_t len)
{
    for (int t = 0; t < VORO_CMD__COUNT; t++)
        if (name_eq(descs[t].name, s, len))
            return t;
    return -ENOENT;
}

const char *voro_health_state_name(enum voro_health_state s)
{
    if ((unsigned)s >= sizeof health_names / sizeof health_names[0])
        return NULL;
    return health_names[s];
}

int voro_health_state_from_name(const char *s, size_t len)
{
    for (int i = 0; i < (int)(sizeof health_names / sizeof health_names[0]); i++)
        if (name_eq(health_names[i], s, len))
            return i;
    return -ENOENT;
}

void voro_cmd_init(struct voro_cmd *cmd, enum voro_cmd_type type)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->type = type;
}

int voro_cmd_set_str(char dst[VORO_CMD_STR_MAX + 1], const char *src)
{
    size_t n = strnlen(src, VORO_CMD_STR_MAX + 1);
    if (n > VORO_CMD_STR_MAX)
        return VORO_CMD_ETOOBIG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static bool is_hex64(const char *s, size_t len)
{
    if (len != VORO_CMD_HASH_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The string rules shared by decode and check. */
static int check_str(const struct field *f, const char *s, size_t len)
{
    if (len > f->max)
        return (f->flags & F_HEX64) ? VORO_CMD_EVALUE : VORO_CMD_ETOOBIG;
    if (memchr(s, '\0', len))
        return VORO_CMD_EVALUE;
    if ((f->flags & F_NONEMPTY) && len == 0)
        return VORO_CMD_EVALUE;
    if ((f->flags & F_HEX64) && !is_hex64(s, len))
        return VORO_CMD_EVALUE;
    return 0;
}

static int check_num(const struct field *f, uint64_t v)
{
    if ((f->flags & F_NONZERO) && v == 0)
        return VORO_CMD_EVALUE;
    if (v > f->max)
        return VORO_CMD_EVALUE;
    return 0;
}

int voro_cmd_check(const struct voro_cmd *cmd)
{
    if ((unsigned)cmd->type >= VORO_CMD__COUNT)
        return VORO_CMD_EUNKNOWNTYPE;
    const struct cmd_desc *d = &descs[cmd->type];
    const char *base = (const char *)cmd;
    for (unsigned i = 0; i < d->n; i++) {
        const struct field *f = &d->f[i];
        const void *p = base + f->off;
        int rc = 0;
        switch (f->kind) {
        case FK_STR: {
            size_t len = strnlen(p, f->max + 1);
            rc = check_str(f, p, len);
            break;
        }
        case FK_TEXT: {
            const char *text = *(const char *const *)p;
            size_t len = *(const size_t *)(base + f->off2);
            if (len > f->max)
                rc = VORO_CMD_ETOOBIG;
            else if (len > 0 && (text == NULL || memchr(text, '\0', len)))
                rc = VORO_CMD_EVALUE;
            break;
        }
        case FK_U64:
            rc = check_num(f, *(const uint64_t *)p);
            break;
        case FK_U32:
            rc = check_num(f, *(const uint32_t *)p);
            break;
        case FK_BOOL:
            break;
        case FK_HEALTH:
            if (voro_health_state_name(*(const enum voro_health_state *)p) == NULL)
                rc = VORO_CMD_EVALUE;
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Maps a reader error on a value the structural pass already accepted. */
static int value_err(int rc)
{
    return rc == -EPROTO ? VORO_CMD_EFIELDTYPE : VORO_CMD_EMALFORMED;
}

static int decode_field(struct voro_mp_reader *r, const struct field *f, struct voro_cmd *cmd)
{
    char *p = (char *)cmd + f->off;
    const char *s;
    uint32_t len;
    uint64_t v;
    bool b;
    int rc;
    switch (f->kind) {
    case FK_STR:
    case FK_TEXT:
    case FK_HEALTH:
        rc = voro_mp_read_str(r, &s, &len);
        if (rc < 0)
            return value_err(rc);
        if (f->kind == FK_HEALTH) {
            int h = voro_health_state_from_name(s, len);
            if (h < 0)
                return VORO_CMD_EVALUE;
            *(enum voro_health_state *)p = (enum voro_health_state)h;
            return 0;
        }
        if (f->kind == FK_TEXT) {
            if (len > f->max)
                return VORO_CMD_ETOOBIG;
            if (memchr(s, '\0', len))
                return VORO_CMD_EVALUE;
            *(const char **)p = s;
            *(size_t *)((char *)cmd + f->off2) = len;
            return 0;
        }
        rc = check_str(f, s, len);
        if (rc < 0)
            return rc;
        memcpy(p, s, len);
        p[len] = '\0';
        return 0;
    case FK_U64:
    case FK_U32:
        rc = voro_mp_read_uint(r, &v);
        if (rc < 0)
            return value_err(rc);
        rc = check_num(f, v);
        if (rc < 0)
            return rc;
        if (f->kind == FK_U64)
            *(uint64_t *)p = v;
        else
            *(uint32_t *)p = (uint32_t)v;
        return 0;
    case FK_BOOL:
        rc = voro_mp_read_bool(r, &b);
        if (rc < 0)
            return value_err(rc);
        *(bool *)p = b;
        return 0;
    }
    return VORO_CMD_EMALFORMED;
}

/* Pass 1: finds "type" and "v" anywhere in the map (the input is known well-formed). */
static int decode_header(struct voro_mp_reader r, uint32_t n, int *type)
{
    bool have_type = false, have_v = false;
    int type_rc = 0, v_rc = 0;
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (voro_mp_read_str(&r, &k, &klen) < 0)
            return VORO_CMD_EMALFORMED; /* keys are strings */
        if (name_eq("type", k, klen)) {
            const char *s;
            uint32_t len;
            if (have_type)
                return VORO_CMD_EMALFORMED;
            have_type = true;
            if (voro_mp_read_str(&r, &s, &len) < 0) {
                type_rc = VORO_CMD_EFIELDTYPE;
                voro_mp_skip(&r);
            } else {
                *type = voro_cmd_type_from_name(s, len);
            }
        } else if (name_eq("v", k, klen)) {
            if (have_v)
                return VORO_CMD_EMALFORMED;
            have_v = true;
            if (voro_mp_read_uint(&r, &v) < 0) {
                v_rc = VORO_CMD_EFIELDTYPE;
                voro_mp_skip(&r);
            }
        } else {
            voro_mp_skip(&r);
        }
    }
    if (!have_type)
        return VORO_CMD_EMISSING;
    if (type_rc < 0)
        return type_rc;
    if (*type < 0)
        return VORO_CMD_EUNKNOWNTYPE;
    if (!have_v)
        return VORO_CMD_EMISSING;
    if (v_rc < 0)
        return v_rc;
    if (v != VORO_CMD_VERSION)
        return VORO_CMD_EVERSION;
    return 0;
}

/* Pass 2: the command's own fields; unknown keys are refused, each field exactly once. */
static int decode_fields(struct voro_mp_reader r, uint32_t n, const struct cmd_desc *d,
                         struct voro_cmd *cmd)
{
    unsigned seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (voro_mp_read_str(&r, &k, &klen) < 0)
            return VORO_CMD_EMALFORMED;
        if (name_eq("type", k, klen) || name_eq("v", k, klen)) {
            voro_mp_skip(&r);
            continue;
        }
        unsigned j;
        for (j = 0; j < d->n; j++)
            if (name_eq(d->f[j].name, k, klen))
                break;
        if (j == d->n)
            return VORO_CMD_EFIELDTYPE;
        if (seen & (1u << j))
            return VORO_CMD_EMALFORMED;
        seen |= 1u << j;
        int rc = decode_field(&r, &d->f[j], cmd);
        if (rc < 0)
            return rc;
    }
    if (seen != (1u << d->n) - 1)
        return VORO_CMD_EMISSING;
    return 0;
}

int voro_cmd_decode(const void *data, size_t len, struct voro_cmd *cmd)
{
    struct voro_mp_reader r, body;
    uint32_t n;
    int type = -1;
    int rc;

    memset(cmd, 0, sizeof *cmd);
    if (len > VORO_CMD_ENCODED_MAX)
        return VORO_CMD_ETOOBIG;
    /* Structure first, so truncation or garbage is reported as such whatever field it hits. */
    voro_mp_reader_init(&r, data, len);
    rc = voro_mp_skip(&r);
    if (rc < 0)
        return rc == -ENODATA ? VORO_CMD_ETRUNCATED : VORO_CMD_EMALFORMED;
    if (voro_mp_remaining(&r) != 0)
        return VORO_CMD_EMALFORMED;
    voro_mp_reader_init(&body, data, len);
    if (voro_mp_read_map(&body, &n) < 0)
        return VORO_CMD_EMALFORMED;
    rc = decode_header(body, n, &type);
    if (rc == 0)
        rc = decode_fields(body, n, &descs[type], cmd);
    if (rc < 0) {
        memset(cmd, 0, sizeof *cmd);
        return rc;
    }
    cmd->type = (enum voro_cmd_type)type;
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) < 0)
        return -ENOMEM;
    if (len > 0 && msgpack_pack_str_body(pk, s, len) < 0)
        return -ENOMEM;
    return 0;
}

static int pack_field(msgpack_packer *pk, const struct field *f, const struct voro_cmd *cmd)
{
    const char *p = (const char *)cmd + f->off;
    int rc;
    if ((rc = pack_cstr(pk, f->name, strlen(f->name))) < 0)
        return rc;
    switch (f->kind) {
    case FK_STR:
        return pack_cstr(pk, p, strlen(p));
    case FK_TEXT:
        return pack_cstr(pk, *(const char *const *)p, *(const size_t *)((const char *)cmd + f->off2));
    case FK_HEALTH: {
        const char *name = voro_health_state_name(*(const enum voro_health_state *)p);
        return pack_cstr(pk, name, strlen(name));
    }
    case FK_U64:
        return msgpack_pack_uint64(pk, *(const uint64_t *)p) < 0 ? -ENOMEM : 0;
    case FK_U32:
        return msgpack_pack_uint64(pk, *(const uint32_t *)p) < 0 ? -ENOMEM : 0;
    case FK_BOOL:
        return (*(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) < 0 ? -ENOMEM : 0;
    }
    return -EINVAL;
}

int voro_cmd_encode(const struct voro_cmd *cmd, void **out, size_t *out_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;

    *out = NULL;
    *out_len = 0;
    rc = voro_cmd_check(cmd);
    if (rc < 0)
        return rc;
    const struct cmd_desc *d = &descs[cmd->type];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    rc = -ENOMEM;
    if (msgpack_pack_map(&pk, 2 + d->n) < 0)
        goto fail;
    if (pack_cstr(&pk, "type", 4) < 0 || pack_cstr(&pk, d->name, strlen(d->name)) < 0)
        goto fail;
    if (pack_cstr(&pk, "v", 1) < 0 || msgpack_pack_uint64(&pk, VORO_CMD_VERSION) < 0)
        goto fail;
    for (unsigned i = 0; i < d->n; i++)
        if ((rc = pack_field(&pk, &d->f[i], cmd)) < 0)
            goto fail;
    *out = sb.data;
    *out_len = sb.size;
    return 0;
fail:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
