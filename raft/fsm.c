/* The Raft state machine: deterministic apply (check, then mutate), snapshot and restore. */
#include "raft/fsm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fsm_data {
    struct voro_cluster_state *state; /* borrowed */
    struct voro_fsm_result result;    /* what *result points to after an apply */
    voro_fsm_observer_cb observer;
    void *observer_arg;
};

static int set_result(struct voro_fsm_result *out, const struct voro_cluster_state *s, int code,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int set_result(struct voro_fsm_result *out, const struct voro_cluster_state *s, int code,
                      const char *fmt, ...)
{
    va_list ap;
    out->code = code;
    out->version = s->current.version;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return code;
}

static const char *decode_reason(int rc)
{
    switch (rc) {
    case VORO_CMD_ETRUNCATED: return "truncated";
    case VORO_CMD_EMALFORMED: return "malformed msgpack";
    case VORO_CMD_EFIELDTYPE: return "field of the wrong type or unknown field";
    case VORO_CMD_EUNKNOWNTYPE: return "unknown command type";
    case VORO_CMD_EVERSION: return "unsupported command version";
    case VORO_CMD_EMISSING: return "missing field";
    case VORO_CMD_ETOOBIG: return "too large";
    case VORO_CMD_EVALUE: return "invalid field value";
    default: return "undecodable";
    }
}

/* Decides, from the state alone, whether `cmd` takes effect. Everything that can refuse a
 * command lives here so that validate and apply agree, and the mutation that follows can only
 * fail for lack of memory. */
static int check(const struct voro_cluster_state *s, const struct voro_cmd *cmd,
                 struct voro_fsm_result *out)
{
    switch (cmd->type) {
    case VORO_CMD_NOOP:
        break;
    case VORO_CMD_CONFIG_PUSH: {
        uint64_t want = cmd->u.config_push.expected_version;
        if (want != 0 && want != s->current.version)
            return set_result(out, s, -ESTALE, "stale: expected config version %llu, current is %llu",
                              (unsigned long long)want, (unsigned long long)s->current.version);
        break;
    }
    case VORO_CMD_CONFIG_ROLLBACK: {
        uint64_t to = cmd->u.config_rollback.to_version;
        if (to == s->current.version)
            return set_result(out, s, -EALREADY, "config version %llu is already current",
                              (unsigned long long)to);
        if (voro_state_config(s, to) == NULL)
            return set_result(out, s, -ENOENT, "config version %llu is not in the history",
                              (unsigned long long)to);
        break;
    }
    case VORO_CMD_NODE_CONFIG_ACTIVE: {
        const typeof(cmd->u.node_config_active) *c = &cmd->u.node_config_active;
        if (c->version > s->last_version)
            return set_result(out, s, -ENOENT, "config version %llu was never assigned",
                              (unsigned long long)c->version);
        if (!voro_state_active(s, c->node_id) && s->n_actives >= VORO_STATE_MEMBERS_MAX)
            return set_result(out, s, -ENOSPC, "too many nodes");
        break;
    }
    case VORO_CMD_MEMBER_UPSERT: {
        const typeof(cmd->u.member_upsert) *c = &cmd->u.member_upsert;
        const struct voro_member *other = voro_state_member_by_raft_address(s, c->raft_address);
        if (other && other->id != c->id)
            return set_result(out, s, -EEXIST, "raft address %s is member %llu's", c->raft_address,
                              (unsigned long long)other->id);
        if (!voro_state_member(s, c->id) && s->n_members >= VORO_STATE_MEMBERS_MAX)
            return set_result(out, s, -ENOSPC, "too many members");
        break;
    }
    case VORO_CMD_MEMBER_REMOVE:
        if (!voro_state_member(s, cmd->u.member_remove.id))
            return set_result(out, s, -ENOENT, "no member %llu",
                              (unsigned long long)cmd->u.member_remove.id);
        break;
    case VORO_CMD_BACKEND_ADD: {
        const typeof(cmd->u.backend_add) *c = &cmd->u.backend_add;
        if (!voro_state_backend(s, c->pool, c->address) && s->n_backends >= VORO_STATE_BACKENDS_MAX)
            return set_result(out, s, -ENOSPC, "too many backends");
        break;
    }
    case VORO_CMD_BACKEND_REMOVE:
    case VORO_CMD_BACKEND_DRAIN: {
        const typeof(cmd->u.backend_ref) *c = &cmd->u.backend_ref;
        if (!voro_state_backend(s, c->pool, c->address))
            return set_result(out, s, -ENOENT, "no backend %s in pool %s", c->address, c->pool);
        break;
    }
    case VORO_CMD_BACKEND_HEALTH: {
        const typeof(cmd->u.backend_health) *c = &cmd->u.backend_health;
        const struct voro_health_verdict *h = voro_state_health(s, c->pool, c->address);
        if (h && h->time_ms > c->time_ms)
            return set_result(out, s, -ESTALE, "stale: a verdict from %llu ms is newer",
                              (unsigned long long)h->time_ms);
        if (!h && s->n_health >= VORO_STATE_HEALTH_MAX)
            return set_result(out, s, -ENOSPC, "too many health verdicts");
        break;
    }
    case VORO_CMD_QUOTA_GRANT: {
        const typeof(cmd->u.quota_grant) *c = &cmd->u.quota_grant;
        if (c->share == 0)
            break; /* revoking is always possible, even of nothing */
        if (!voro_state_member(s, c->node_id))
            return set_result(out, s, -ENOENT, "no member %llu", (unsigned long long)c->node_id);
        if (!voro_state_lease(s, c->limit_name, c->node_id) && s->n_leases >= VORO_STATE_LEASES_MAX)
            return set_result(out, s, -ENOSPC, "too many quota leases");
        break;
    }
    default:
        return set_result(out, s, VORO_CMD_EUNKNOWNTYPE, "unknown command type");
    }
    return set_result(out, s, 0, "applied %s", voro_cmd_type_name(cmd->type));
}

/* Applies a command `check` accepted. 0 or -ENOMEM (only put/add can allocate, and they run
 * before anything else changes). */
static int mutate(struct voro_cluster_state *s, const struct voro_cmd *cmd)
{
    switch (cmd->type) {
    case VORO_CMD_NOOP:
        return 0;
    case VORO_CMD_CONFIG_PUSH: {
        const typeof(cmd->u.config_push) *c = &cmd->u.config_push;
        return voro_state_config_add(s, c->text, c->text_len, c->hash, c->author, c->time_ms, 0);
    }
    case VORO_CMD_CONFIG_ROLLBACK: {
        const typeof(cmd->u.config_rollback) *c = &cmd->u.config_rollback;
        const struct voro_config_version *old = voro_state_config(s, c->to_version);
        /* `old` may be the history entry config_add evicts: it copies its inputs first. */
        return voro_state_config_add(s, old->text, old->text_len, old->hash, c->author, c->time_ms,
                                     c->to_version);
    }
    case VORO_CMD_NODE_CONFIG_ACTIVE: {
        const typeof(cmd->u.node_config_active) *c = &cmd->u.node_config_active;
        struct voro_node_active a = {.node_id = c->node_id, .version = c->version, .ok = c->ok};
        memcpy(a.reason, c->reason, sizeof a.reason);
        return voro_state_active_put(s, &a);
    }
    case VORO_CMD_MEMBER_UPSERT: {
        const typeof(cmd->u.member_upsert) *c = &cmd->u.member_upsert;
        struct voro_member m = {.id = c->id, .vip_priority = c->vip_priority};
        memcpy(m.name, c->name, sizeof m.name);
        memcpy(m.raft_address, c->raft_address, sizeof m.raft_address);
        memcpy(m.admin_address, c->admin_address, sizeof m.admin_address);
        memcpy(m.data_address, c->data_address, sizeof m.data_address);
        return voro_state_member_put(s, &m);
    }
    case VORO_CMD_MEMBER_REMOVE: {
        uint64_t id = cmd->u.member_remove.id;
        voro_state_member_del(s, id);
        voro_state_active_del(s, id);
        voro_state_lease_del_node(s, id);
        return 0;
    }
    case VORO_CMD_BACKEND_ADD: {
        const typeof(cmd->u.backend_add) *c = &cmd->u.backend_add;
        struct voro_backend b = {.weight = c->weight, .draining = false};
        memcpy(b.pool, c->pool, sizeof b.pool);
        memcpy(b.address, c->address, sizeof b.address);
        return voro_state_backend_put(s, &b);
    }
    case VORO_CMD_BACKEND_REMOVE: {
        const typeof(cmd->u.backend_ref) *c = &cmd->u.backend_ref;
        voro_state_backend_del(s, c->pool, c->address);
        voro_state_health_del(s, c->pool, c->address);
        return 0;
    }
    case VORO_CMD_BACKEND_DRAIN: {
        const typeof(cmd->u.backend_ref) *c = &cmd->u.backend_ref;
        struct voro_backend b = *voro_state_backend(s, c->pool, c->address);
        b.draining = true;
        return voro_state_backend_put(s, &b);
    }
    case VORO_CMD_BACKEND_HEALTH: {
        const typeof(cmd->u.backend_health) *c = &cmd->u.backend_health;
        struct voro_health_verdict h = {.state = c->state, .time_ms = c->time_ms};
        memcpy(h.pool, c->pool, sizeof h.pool);
        memcpy(h.address, c->address, sizeof h.address);
        memcpy(h.reason, c->reason, sizeof h.reason);
        return voro_state_health_put(s, &h);
    }
    case VORO_CMD_QUOTA_GRANT: {
        const typeof(cmd->u.quota_grant) *c = &cmd->u.quota_grant;
        if (c->share == 0) {
            voro_state_lease_del(s, c->limit_name, c->node_id);
            return 0;
        }
        struct voro_quota_lease l = {.node_id = c->node_id, .share = c->share, .expires_ms = c->expires_ms};
        memcpy(l.limit_name, c->limit_name, sizeof l.limit_name);
        return voro_state_lease_put(s, &l);
    }
    default:
        return 0;
    }
}

/* Decode + check; returns out->code. *decoded says whether *cmd holds a command. */
static int prepare(const struct voro_cluster_state *s, const void *data, size_t len,
                   struct voro_cmd *cmd, struct voro_fsm_result *out, bool *decoded)
{
    int rc = voro_cmd_decode(data, len, cmd);
    *decoded = rc == 0;
    if (rc < 0)
        return set_result(out, s, rc, "refused: %s", decode_reason(rc));
    return check(s, cmd, out);
}

int voro_fsm_validate(const struct voro_cluster_state *state, const void *data, size_t len,
                      struct voro_fsm_result *out)
{
    struct voro_cmd cmd;
    bool decoded;
    return prepare(state, data, len, &cmd, out, &decoded);
}

static int apply_to(struct voro_cluster_state *state, const void *data, size_t len,
                    struct voro_cmd *cmd, struct voro_fsm_result *out, bool *decoded)
{
    if (prepare(state, data, len, cmd, out, decoded) < 0)
        return 0; /* refused: a no-op, and not an error for raft */
    int rc = mutate(state, cmd);
    if (rc < 0)
        return rc;
    out->version = state->current.version;
    return 0;
}

int voro_fsm_apply_to(struct voro_cluster_state *state, const void *data, size_t len,
                      struct voro_fsm_result *out)
{
    struct voro_cmd cmd;
    bool decoded;
    return apply_to(state, data, len, &cmd, out, &decoded);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct fsm_data *d = fsm->data;
    struct voro_cmd cmd;
    bool decoded;
    int rc = apply_to(d->state, buf->base, buf->len, &cmd, &d->result, &decoded);
    if (rc < 0)
        return RAFT_NOMEM;
    *result = &d->result;
    if (d->observer)
        d->observer(d->observer_arg, decoded ? &cmd : NULL, &d->result);
    return 0;
}

/* A growable raft_malloc'd output for msgpack_packer, so the snapshot needs no extra copy. */
struct rbuf {
    char *data;
    size_t len;
    size_t cap;
};

static int rbuf_write(void *arg, const char *buf, size_t len)
{
    struct rbuf *b = arg;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = raft_realloc(b->data, cap);
        if (grown == NULL)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

int voro_fsm_encode_state(const struct voro_cluster_state *state, struct raft_buffer *buf)
{
    struct rbuf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, rbuf_write);
    if (voro_cluster_state_encode(state, &pk) < 0) {
        raft_free(b.data);
        return -ENOMEM;
    }
    buf->base = b.data;
    buf->len = b.len;
    return 0;
}

int voro_fsm_encode_command(const struct voro_cmd *cmd, struct raft_buffer *buf)
{
    void *data;
    size_t len;
    int rc = voro_cmd_encode(cmd, &data, &len);
    if (rc < 0)
        return rc;
    buf->base = raft_malloc(len);
    if (buf->base == NULL) {
        free(data);
        return -ENOMEM;
    }
    memcpy(buf->base, data, len);
    buf->len = len;
    free(data);
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm_data *d = fsm->data;
    struct raft_buffer *out = raft_malloc(sizeof *out);
    if (out == NULL)
        return RAFT_NOMEM;
    if (voro_fsm_encode_state(d->state, out) < 0) {
        raft_free(out);
        return RAFT_NOMEM;
    }
    *bufs = out;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct fsm_data *d = fsm->data;
    struct voro_cluster_state fresh;
    int rc = voro_cluster_state_decode(buf->base, buf->len, &fresh);
    if (rc < 0)
        return rc == -ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    voro_cluster_state_move(d->state, &fresh);
    raft_free(buf->base);
    if (d->observer)
        d->observer(d->observer_arg, NULL, NULL);
    return 0;
}

int voro_fsm_init(struct raft_fsm *fsm, struct voro_cluster_state *state)
{
    struct fsm_data *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->state = state;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 1;
    fsm->data = d;
    fsm->apply = fsm_apply;
    fsm->snapshot = fsm_snapshot;
    fsm->restore = fsm_restore;
    return 0;
}

void voro_fsm_close(struct raft_fsm *fsm)
{
    free(fsm->data);
    fsm->data = NULL;
}

void voro_fsm_set_observer(struct raft_fsm *fsm, voro_fsm_observer_cb cb, void *arg)
{
    struct fsm_data *d = fsm->data;
    d->observer = cb;
    d->observer_arg = arg;
}
