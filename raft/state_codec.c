/* Snapshot codec of the cluster state: one canonical msgpack map, decoded strictly. */
#include "raft/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mp_read.h"

#define SNAP_FORMAT "voro-cluster-state"
#define SNAP_VERSION 1

/* Top-level keys, written and required in exactly this order, so equal states give equal
 * bytes and a reader never has to guess. */
static const char *const top_keys[] = {
    "format", "v", "last_version", "current", "history",
    "members", "actives", "backends", "health", "leases",
};
#define N_TOP (sizeof top_keys / sizeof top_keys[0])

/* ---- encoding ---- */

static int p_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) < 0)
        return -ENOMEM;
    if (len > 0 && msgpack_pack_str_body(pk, s, len) < 0)
        return -ENOMEM;
    return 0;
}

#define P(expr)                                                                                   \
    do {                                                                                          \
        if ((expr) < 0)                                                                           \
            return -ENOMEM;                                                                       \
    } while (0)
#define PS(s) P(p_str(pk, (s), strlen(s)))
#define PU(v) P(msgpack_pack_uint64(pk, (v)))
#define PB(b) P((b) ? msgpack_pack_true(pk) : msgpack_pack_false(pk))

static int enc_config(msgpack_packer *pk, const struct voro_config_version *v)
{
    P(msgpack_pack_array(pk, 6));
    PU(v->version);
    PU(v->source_version);
    P(p_str(pk, v->text ? v->text : "", v->text_len));
    PS(v->hash);
    PS(v->author);
    PU(v->time_ms);
    return 0;
}

int voro_cluster_state_encode(const struct voro_cluster_state *s, msgpack_packer *pk)
{
    P(msgpack_pack_map(pk, N_TOP));
    PS(top_keys[0]);
    PS(SNAP_FORMAT);
    PS(top_keys[1]);
    PU(SNAP_VERSION);
    PS(top_keys[2]);
    PU(s->last_version);
    PS(top_keys[3]);
    if (s->current.version == 0)
        P(msgpack_pack_nil(pk));
    else
        P(enc_config(pk, &s->current));
    PS(top_keys[4]);
    P(msgpack_pack_array(pk, s->n_history));
    for (size_t i = 0; i < s->n_history; i++)
        P(enc_config(pk, &s->history[i]));
    PS(top_keys[5]);
    P(msgpack_pack_array(pk, s->n_members));
    for (size_t i = 0; i < s->n_members; i++) {
        const struct voro_member *m = &s->members[i];
        P(msgpack_pack_array(pk, 6));
        PU(m->id);
        PS(m->name);
        PS(m->raft_address);
        PS(m->admin_address);
        PS(m->data_address);
        PU(m->vip_priority);
    }
    PS(top_keys[6]);
    P(msgpack_pack_array(pk, s->n_actives));
    for (size_t i = 0; i < s->n_actives; i++) {
        const struct voro_node_active *a = &s->actives[i];
        P(msgpack_pack_array(pk, 4));
        PU(a->node_id);
        PU(a->version);
        PB(a->ok);
        PS(a->reason);
    }
    PS(top_keys[7]);
    P(msgpack_pack_array(pk, s->n_backends));
    for (size_t i = 0; i < s->n_backends; i++) {
        const struct voro_backend *b = &s->backends[i];
        P(msgpack_pack_array(pk, 4));
        PS(b->pool);
        PS(b->address);
        PU(b->weight);
        PB(b->draining);
    }
    PS(top_keys[8]);
    P(msgpack_pack_array(pk, s->n_health));
    for (size_t i = 0; i < s->n_health; i++) {
        const struct voro_health_verdict *h = &s->health[i];
        P(msgpack_pack_array(pk, 5));
        PS(h->pool);
        PS(h->address);
        PS(voro_health_state_name(h->state));
        PS(h->reason);
        PU(h->time_ms);
    }
    PS(top_keys[9]);
    P(msgpack_pack_array(pk, s->n_leases));
    for (size_t i = 0; i < s->n_leases; i++) {
        const struct voro_quota_lease *l = &s->leases[i];
        P(msgpack_pack_array(pk, 4));
        PS(l->limit_name);
        PU(l->node_id);
        PU(l->share);
        PU(l->expires_ms);
    }
    return 0;
}

/* ---- decoding ---- */

static int rd_err(int rc)
{
    if (rc == -ENODATA)
        return VORO_CMD_ETRUNCATED;
    if (rc == -EPROTO)
        return VORO_CMD_EFIELDTYPE;
    return VORO_CMD_EMALFORMED;
}

#define R(expr)                                                                                   \
    do {                                                                                          \
        int rc_ = (expr);                                                                         \
        if (rc_ < 0)                                                                              \
            return rc_;                                                                           \
    } while (0)

static int rd_u64(struct voro_mp_reader *r, uint64_t *v)
{
    int rc = voro_mp_read_uint(r, v);
    return rc < 0 ? rd_err(rc) : 0;
}

static int rd_u32(struct voro_mp_reader *r, uint32_t *v, uint64_t max)
{
    uint64_t x;
    R(rd_u64(r, &x));
    if (x > max)
        return VORO_CMD_EVALUE;
    *v = (uint32_t)x;
    return 0;
}

static int rd_bool(struct voro_mp_reader *r, bool *v)
{
    int rc = voro_mp_read_bool(r, v);
    return rc < 0 ? rd_err(rc) : 0;
}

/* String into a fixed array of `size` bytes; `nonempty` refuses "". */
static int rd_str(struct voro_mp_reader *r, char *dst, size_t size, bool nonempty)
{
    const char *s;
    uint32_t len;
    int rc = voro_mp_read_str(r, &s, &len);
    if (rc < 0)
        return rd_err(rc);
    if (len >= size)
        return VORO_CMD_ETOOBIG;
    if (memchr(s, '\0', len) || (nonempty && len == 0))
        return VORO_CMD_EVALUE;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

static int rd_tuple(struct voro_mp_reader *r, uint32_t arity)
{
    uint32_t n;
    int rc = voro_mp_read_array(r, &n);
    if (rc < 0)
        return rd_err(rc);
    return n == arity ? 0 : VORO_CMD_EMALFORMED;
}

static int rd_list(struct voro_mp_reader *r, uint32_t *n, size_t max)
{
    int rc = voro_mp_read_array(r, n);
    if (rc < 0)
        return rd_err(rc);
    return *n <= max ? 0 : VORO_CMD_ETOOBIG;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != VORO_CMD_HASH_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static int rd_config(struct voro_mp_reader *r, struct voro_config_version *v)
{
    const char *text;
    uint32_t len;
    R(rd_tuple(r, 6));
    R(rd_u64(r, &v->version));
    R(rd_u64(r, &v->source_version));
    int rc = voro_mp_read_str(r, &text, &len);
    if (rc < 0)
        return rd_err(rc);
    if (len > VORO_CMD_TEXT_MAX)
        return VORO_CMD_ETOOBIG;
    if (memchr(text, '\0', len) || v->version == 0)
        return VORO_CMD_EVALUE;
    R(rd_str(r, v->hash, sizeof v->hash, true));
    R(rd_str(r, v->author, sizeof v->author, false));
    R(rd_u64(r, &v->time_ms));
    if (!is_hex64(v->hash) || v->source_version >= v->version)
        return VORO_CMD_EVALUE;
    v->text = malloc((size_t)len + 1);
    if (v->text == NULL)
        return -ENOMEM;
    memcpy(v->text, text, len);
    v->text[len] = '\0';
    v->text_len = len;
    return 0;
}

static int rd_key(struct voro_mp_reader *r, const char *want)
{
    const char *k;
    uint32_t len;
    int rc = voro_mp_read_str(r, &k, &len);
    if (rc < 0)
        return rd_err(rc);
    return strlen(want) == len && memcmp(want, k, len) == 0 ? 0 : VORO_CMD_EMALFORMED;
}

/* Allocates a table of `n` zeroed elements (none for n == 0). */
static int rd_alloc(void **arr, size_t n, size_t size)
{
    *arr = NULL;
    if (n == 0)
        return 0;
    *arr = calloc(n, size);
    return *arr ? 0 : -ENOMEM;
}

static int decode_body(struct voro_mp_reader *r, struct voro_cluster_state *s)
{
    uint32_t n;
    uint64_t v;
    int rc = voro_mp_read_map(r, &n);
    if (rc < 0)
        return rd_err(rc);
    if (n != N_TOP)
        return VORO_CMD_EMALFORMED;

    char format[sizeof SNAP_FORMAT + 1];
    R(rd_key(r, "format"));
    R(rd_str(r, format, sizeof format, true));
    if (strcmp(format, SNAP_FORMAT) != 0)
        return VORO_CMD_EMALFORMED;
    R(rd_key(r, "v"));
    R(rd_u64(r, &v));
    if (v != SNAP_VERSION)
        return VORO_CMD_EVERSION;
    R(rd_key(r, "last_version"));
    R(rd_u64(r, &s->last_version));

    R(rd_key(r, "current"));
    rc = voro_mp_read_nil(r);
    if (rc < 0)
        return rd_err(rc);
    if (rc == 0) {
        R(rd_config(r, &s->current));
        /* every version assigned became current, so the newest one is the current one */
        if (s->current.version != s->last_version)
            return VORO_CMD_EVALUE;
    } else if (s->last_version != 0) {
        return VORO_CMD_EVALUE; /* once a config exists there is always a current one */
    }
    R(rd_key(r, "history"));
    R(rd_list(r, &n, VORO_STATE_HISTORY_MAX));
    /* The history holds the versions right before the current one, as many as were assigned
     * up to VORO_STATE_HISTORY_MAX (each new version pushes the previous current in). */
    uint64_t older = s->current.version ? s->current.version - 1 : 0;
    if (n != (older < VORO_STATE_HISTORY_MAX ? older : VORO_STATE_HISTORY_MAX))
        return VORO_CMD_EVALUE;
    for (uint32_t i = 0; i < n; i++) {
        R(rd_config(r, &s->history[i]));
        s->n_history = i + 1;
        if (s->history[i].version != s->current.version - n + i)
            return VORO_CMD_EVALUE;
    }

    R(rd_key(r, "members"));
    R(rd_list(r, &n, VORO_STATE_MEMBERS_MAX));
    R(rd_alloc((void **)&s->members, n, sizeof *s->members));
    for (uint32_t i = 0; i < n; i++) {
        struct voro_member *m = &s->members[i];
        R(rd_tuple(r, 6));
        R(rd_u64(r, &m->id));
        R(rd_str(r, m->name, sizeof m->name, true));
        R(rd_str(r, m->raft_address, sizeof m->raft_address, true));
        R(rd_str(r, m->admin_address, sizeof m->admin_address, false));
        R(rd_str(r, m->data_address, sizeof m->data_address, false));
        R(rd_u32(r, &m->vip_priority, VORO_CMD_VIP_PRIORITY_MAX));
        if (m->id == 0 || (i > 0 && m->id <= s->members[i - 1].id))
            return VORO_CMD_EVALUE;
        s->n_members = i + 1;
    }

    R(rd_key(r, "actives"));
    R(rd_list(r, &n, VORO_STATE_MEMBERS_MAX));
    R(rd_alloc((void **)&s->actives, n, sizeof *s->actives));
    for (uint32_t i = 0; i < n; i++) {
        struct voro_node_active *a = &s->actives[i];
        R(rd_tuple(r, 4));
        R(rd_u64(r, &a->node_id));
        R(rd_u64(r, &a->version));
        R(rd_bool(r, &a->ok));
        R(rd_str(r, a->reason, sizeof a->reason, false));
        if (a->node_id == 0 || a->version > s->last_version ||
            (i > 0 && a->node_id <= s->actives[i - 1].node_id))
            return VORO_CMD_EVALUE;
        s->n_actives = i + 1;
    }

    R(rd_key(r, "backends"));
    R(rd_list(r, &n, VORO_STATE_BACKENDS_MAX));
    R(rd_alloc((void **)&s->backends, n, sizeof *s->backends));
    for (uint32_t i = 0; i < n; i++) {
        struct voro_backend *b = &s->backends[i];
        R(rd_tuple(r, 4));
        R(rd_str(r, b->pool, sizeof b->pool, true));
        R(rd_str(r, b->address, sizeof b->address, true));
        R(rd_u32(r, &b->weight, VORO_CMD_WEIGHT_MAX));
        R(rd_bool(r, &b->draining));
        if (b->weight == 0)
            return VORO_CMD_EVALUE;
        if (i > 0) {
            const struct voro_backend *p = &s->backends[i - 1];
            int c = strcmp(p->pool, b->pool);
            if (c > 0 || (c == 0 && strcmp(p->address, b->address) >= 0))
                return VORO_CMD_EVALUE;
        }
        s->n_backends = i + 1;
    }

    R(rd_key(r, "health"));
    R(rd_list(r, &n, VORO_STATE_HEALTH_MAX));
    R(rd_alloc((void **)&s->health, n, sizeof *s->health));
    for (uint32_t i = 0; i < n; i++) {
        struct voro_health_verdict *h = &s->health[i];
        char state[16];
        R(rd_tuple(r, 5));
        R(rd_str(r, h->pool, sizeof h->pool, true));
        R(rd_str(r, h->address, sizeof h->address, true));
        R(rd_str(r, state, sizeof state, true));
        R(rd_str(r, h->reason, sizeof h->reason, false));
        R(rd_u64(r, &h->time_ms));
        int st = voro_health_state_from_name(state, strlen(state));
        if (st < 0)
            return VORO_CMD_EVALUE;
        h->state = (enum voro_health_state)st;
        if (i > 0) {
            const struct voro_health_verdict *p = &s->health[i - 1];
            int c = strcmp(p->pool, h->pool);
            if (c > 0 || (c == 0 && strcmp(p->address, h->address) >= 0))
                return VORO_CMD_EVALUE;
        }
        s->n_health = i + 1;
    }

    R(rd_key(r, "leases"));
    R(rd_list(r, &n, VORO_STATE_LEASES_MAX));
    R(rd_alloc((void **)&s->leases, n, sizeof *s->leases));
    for (uint32_t i = 0; i < n; i++) {
        struct voro_quota_lease *l = &s->leases[i];
        R(rd_tuple(r, 4));
        R(rd_str(r, l->limit_name, sizeof l->limit_name, true));
        R(rd_u64(r, &l->node_id));
        R(rd_u64(r, &l->share));
        R(rd_u64(r, &l->expires_ms));
        if (l->node_id == 0 || l->share == 0)
            return VORO_CMD_EVALUE;
        if (i > 0) {
            const struct voro_quota_lease *p = &s->leases[i - 1];
            int c = strcmp(p->limit_name, l->limit_name);
            if (c > 0 || (c == 0 && p->node_id >= l->node_id))
                return VORO_CMD_EVALUE;
        }
        s->n_leases = i + 1;
    }
    return 0;
}

int voro_cluster_state_decode(const void *data, size_t len, struct voro_cluster_state *out)
{
    struct voro_mp_reader r;
    int rc;

    voro_cluster_state_init(out);
    voro_mp_reader_init(&r, data, len);
    /* Structure first: a truncated or garbled snapshot is reported as such. */
    rc = voro_mp_skip(&r);
    if (rc < 0)
        return rd_err(rc == -EPROTO ? -EBADMSG : rc);
    if (voro_mp_remaining(&r) != 0)
        return VORO_CMD_EMALFORMED;
    voro_mp_reader_init(&r, data, len);
    rc = decode_body(&r, out);
    if (rc < 0)
        voro_cluster_state_free(out);
    return rc;
}
