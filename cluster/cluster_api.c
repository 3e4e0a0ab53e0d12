/* The /cluster HTTP API (docs/cluster-api.md): token check, JSON bodies, reads answered locally,
 * writes validated and committed on the leader or forwarded to it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_impl.h"
#include "cluster/json_obj.h"
#include "cluster/sha256.h"
#include "common/log.h"

/* ---- helpers ---- */

static void reply(struct voro_cluster *cl, struct voro_admin_response *resp, int status, const char *error,
                  const char *code)
{
    resp->status = status;
    voro_cl_error(cl, &resp->body, error, code);
}

static void reply_field(struct voro_cluster *cl, struct voro_admin_response *resp, const char *error,
                        const char *field)
{
    resp->status = 400;
    voro_cl_json_begin(cl, &resp->body);
    voro_strbuf_puts(&resp->body, ",\"error\":");
    voro_strbuf_json_string(&resp->body, error);
    voro_strbuf_puts(&resp->body, ",\"field\":");
    voro_strbuf_json_string(&resp->body, field);
    voro_strbuf_puts(&resp->body, "}\n");
}

/* Constant time in the token's length: the comparison does not stop at the first difference. */
static bool authorised(struct voro_cluster *cl, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    const char *a = req->authorization;
    bool ok = false;
    if (a && !strncmp(a, "Bearer ", 7)) {
        a += 7;
        size_t n = strlen(a), m = strlen(cl->token);
        unsigned char diff = n != m;
        for (size_t i = 0; i < m; i++)
            diff |= (unsigned char)(i < n ? a[i] : 0) ^ (unsigned char)cl->token[i];
        ok = diff == 0 && m > 0;
    }
    if (!ok)
        reply(cl, resp, 401, "unauthorized", NULL);
    return ok;
}

static bool closing(struct voro_cluster *cl, struct voro_admin_response *resp)
{
    if (cl->closing)
        reply(cl, resp, 503, "shutting down", NULL);
    return cl->closing;
}

/* Parses the body as a JSON object; answers 400 itself on failure. */
static bool parse_body(struct voro_cluster *cl, const struct voro_admin_request *req, struct voro_admin_response *resp,
                       struct voro_json_obj *obj)
{
    if (voro_json_parse_object(req->body, req->body_len, obj) != 0) {
        reply_field(cl, resp, "body is not a JSON object", "");
        return false;
    }
    return true;
}

/* Reads a string member; required or not. Answers 400 on a problem. */
static bool get_str(struct voro_cluster *cl, struct voro_admin_response *resp, const struct voro_json_obj *o,
                    const char *key, char *buf, size_t cap, bool required)
{
    int rc = voro_json_get_string(o, key, buf, cap);
    if (rc == 0 && (buf[0] || !required))
        return true;
    if (rc == -ENOENT && !required) {
        buf[0] = '\0';
        return true;
    }
    reply_field(cl, resp,
                rc == -ENOENT ? "missing field" : rc == -EMSGSIZE ? "string too long" : rc == 0 ? "empty string"
                                                                                               : "expected a string",
                key);
    return false;
}

static bool get_u64(struct voro_cluster *cl, struct voro_admin_response *resp, const struct voro_json_obj *o,
                    const char *key, uint64_t *out, bool required, uint64_t dflt)
{
    int rc = voro_json_get_u64(o, key, out);
    if (rc == 0)
        return true;
    if (rc == -ENOENT && !required) {
        *out = dflt;
        return true;
    }
    reply_field(cl, resp, rc == -ENOENT ? "missing field" : "expected a non-negative integer", key);
    return false;
}

static bool get_addr(struct voro_cluster *cl, struct voro_admin_response *resp, const struct voro_json_obj *o,
                     const char *key, char *buf, size_t cap)
{
    if (!get_str(cl, resp, o, key, buf, cap, true))
        return false;
    struct voro_sockaddr sa;
    if (voro_sockaddr_parse(buf, &sa) != 0) {
        reply_field(cl, resp, "expected a numeric ip:port address", key);
        return false;
    }
    return true;
}

static bool has_header(const struct voro_admin_request *req, const char *name)
{
    char buf[16];
    return voro_admin_header(req, name, buf, sizeof(buf)) != NULL;
}

/* The front door of every write. Takes `text` (malloc'd, may be NULL). A follower forwards
 * `fwd_body` (NULL = the request's own body) to the leader. */
static void write_front_body(struct voro_cluster *cl, const struct voro_admin_request *req,
                             struct voro_admin_response *resp, enum op_kind kind, enum reply_kind reply_kind,
                             const struct voro_cmd *cmd, char *text, size_t text_len, const char *fwd_body)
{
    const char *body = fwd_body ? fwd_body : req->body;
    size_t body_len = fwd_body ? strlen(fwd_body) : req->body_len;
    const char *admin;
    if (voro_cl_uninitialised(cl)) {
        voro_cl_json_begin(cl, &resp->body);
        voro_strbuf_puts(&resp->body, ",\"error\":\"no leader\",\"leader\":null,\"reason\":\"not initialised\"}\n");
        resp->status = 503;
        free(text);
        return;
    }
    if (!voro_cl_is_leader(cl)) {
        uint64_t leader = voro_cl_leader(cl, &admin);
        if (has_header(req, "X-Voro-No-Forward") || has_header(req, "X-Voro-Forwarded")) {
            resp->status = leader ? 421 : 503;
            voro_cl_json_begin(cl, &resp->body);
            voro_strbuf_printf(&resp->body, ",\"error\":\"%s\",\"leader\":", leader ? "not the leader" : "no leader");
            if (leader) {
                voro_strbuf_printf(&resp->body, "{\"id\":%" PRIu64 ",\"admin_address\":", leader);
                voro_strbuf_json_string(&resp->body, admin);
                voro_strbuf_puts(&resp->body, "}}\n");
            } else {
                voro_strbuf_puts(&resp->body, "null}\n");
            }
            free(text);
            return;
        }
        struct voro_admin_deferred *d = voro_admin_defer(resp);
        struct cl_op *op = d ? voro_cl_op_new(cl, OP_FORWARD, d) : NULL;
        if (op && body_len)
            op->body = malloc(body_len);
        if (!op || (body_len && !op->body)) {
            if (op) {
                op->d = NULL;
                voro_cl_op_release(op);
            }
            resp->deferred = NULL;
            free(d); /* never handed out */
            reply(cl, resp, 500, "out of memory", NULL);
            free(text);
            return;
        }
        memcpy(op->body, body, body_len);
        op->body_len = body_len;
        snprintf(op->method, sizeof(op->method), "%s", req->method);
        snprintf(op->path, sizeof(op->path), "%s", req->path);
        free(text);
        voro_cl_op_start(op);
        return;
    }
    /* the leader: refuse what the FSM would refuse, before anything reaches the log */
    if (kind == OP_WRITE || kind == OP_JOIN) {
        void *enc = NULL;
        size_t enc_len = 0;
        struct voro_fsm_result res = {0};
        int rc = voro_cmd_encode(cmd, &enc, &enc_len);
        if (rc == 0)
            voro_fsm_validate(&cl->state, enc, enc_len, &res);
        free(enc);
        if (rc != 0 || res.code != 0) {
            reply(cl, resp, rc ? 400 : 409, rc ? "invalid command" : res.message,
                  rc ? "invalid" : voro_cl_code_name(res.code));
            free(text);
            return;
        }
    }
    struct voro_admin_deferred *d = voro_admin_defer(resp);
    struct cl_op *op = d ? voro_cl_op_new(cl, kind, d) : NULL;
    if (!op) {
        resp->deferred = NULL;
        free(d); /* never handed out */
        reply(cl, resp, 500, "out of memory", NULL);
        free(text);
        return;
    }
    op->cmd = *cmd;
    op->reply = reply_kind;
    op->text = text;
    op->text_len = text_len;
    if (cmd->type == VORO_CMD_CONFIG_PUSH) {
        op->cmd.u.config_push.text = text;
        op->cmd.u.config_push.text_len = text_len;
    }
    voro_cl_op_start(op);
}

static void write_front(struct voro_cluster *cl, const struct voro_admin_request *req,
                        struct voro_admin_response *resp, enum op_kind kind, enum reply_kind reply_kind,
                        const struct voro_cmd *cmd, char *text, size_t text_len)
{
    write_front_body(cl, req, resp, kind, reply_kind, cmd, text, text_len, NULL);
}

/* ---- reads ---- */

/* A dynamic backend's health as this node sees it: draining when drained through the API, else
 * this node's data-plane verdict when its config in force holds the server, else the cluster's
 * verdict, else up. *reason is borrowed until the next change to the state or the config. */
static enum voro_health_state backend_health(struct voro_cluster *cl, const struct voro_backend *b,
                                             const char **reason)
{
    const struct voro_health_verdict *h = voro_state_health(&cl->state, b->pool, b->address);
    *reason = "";
    if (b->draining)
        return VORO_HEALTH_DRAINING;
    const char *why = NULL;
    int local = cl->hooks.server_health ? cl->hooks.server_health(cl->hooks.ctx, b->pool, b->address, &why) : -1;
    if (local >= 0) {
        *reason = why ? why : "";
        return local ? VORO_HEALTH_UP : VORO_HEALTH_DOWN;
    }
    if (h) {
        *reason = h->reason;
        return h->state;
    }
    return VORO_HEALTH_UP;
}

static void h_status(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    if (!authorised(cl, req, resp))
        return;
    struct voro_strbuf *sb = &resp->body;
    voro_cl_json_begin(cl, sb);
    voro_strbuf_printf(sb, ",\"state\":\"%s\",\"cluster\":", voro_cl_state_name(cl));
    voro_strbuf_json_string(sb, cl->cluster_name);
    const char *admin;
    uint64_t leader = voro_cl_leader(cl, &admin);
    voro_strbuf_puts(sb, ",\"leader\":");
    if (leader) {
        const struct voro_member *m = voro_state_member(&cl->state, leader);
        voro_strbuf_printf(sb, "{\"id\":%" PRIu64 ",\"name\":", leader);
        voro_strbuf_json_string(sb, m ? m->name : (leader == cl->id ? cl->name : ""));
        voro_strbuf_puts(sb, ",\"admin_address\":");
        voro_strbuf_json_string(sb, admin);
        voro_strbuf_puts(sb, "}");
    } else {
        voro_strbuf_puts(sb, "null");
    }
    voro_strbuf_printf(sb, ",\"commit_index\":%" PRIu64 ",\"applied_index\":%" PRIu64 ",\"members\":",
                       cl->raft_started ? (uint64_t)cl->raft.commit_index : 0,
                       cl->raft_started ? (uint64_t)raft_last_applied(&cl->raft) : 0);
    voro_cl_json_members(cl, sb);
    /* Every server in force counts, configured or dynamic; a dynamic backend merged into the
     * config is already among them (only its draining is told apart), one not (yet) in force is
     * counted by its own health as before. */
    size_t up = 0, down = 0, draining = 0;
    bool counted = cl->hooks.server_counts && cl->hooks.server_counts(cl->hooks.ctx, &up, &down) == 0;
    for (size_t i = 0; i < cl->state.n_backends; i++) {
        const struct voro_backend *b = &cl->state.backends[i];
        const char *reason;
        int local = counted && cl->hooks.server_health
                        ? cl->hooks.server_health(cl->hooks.ctx, b->pool, b->address, &reason)
                        : -1;
        if (local >= 0) {
            if (b->draining) {
                if (local && up)
                    up--;
                else if (!local && down)
                    down--;
                draining++;
            }
            continue;
        }
        enum voro_health_state st = backend_health(cl, b, &reason);
        if (st == VORO_HEALTH_DRAINING)
            draining++;
        else if (st == VORO_HEALTH_DOWN)
            down++;
        else
            up++;
    }
    voro_strbuf_printf(sb,
                       ",\"config_version\":%" PRIu64 ",\"active_config_version\":%" PRIu64
                       ",\"active_config_ok\":%s,\"backends\":{\"up\":%zu,\"down\":%zu,\"draining\":%zu},\"vip\":null}\n",
                       cl->state.current.version, cl->rep_version, cl->rep_ok || !cl->rep_version ? "true" : "false",
                       up, down, draining);
}

static bool query_u64(const char *query, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p + kl + 1, &end, 10);
            if (errno || end == p + kl + 1 || (*end && *end != '&'))
                return false;
            *out = v;
            return true;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return false;
}

static void h_config_get(struct voro_cluster *cl, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    uint64_t version = 0;
    if (req->query[0] && strstr(req->query, "version=") && !query_u64(req->query, "version", &version)) {
        reply_field(cl, resp, "expected version=N", "version");
        return;
    }
    const struct voro_config_version *v =
        version ? voro_state_config(&cl->state, version) : (cl->state.current.version ? &cl->state.current : NULL);
    if (!v) {
        reply(cl, resp, 404, version ? "unknown config version" : "no config pushed yet", "not_found");
        return;
    }
    struct voro_strbuf *sb = &resp->body;
    voro_cl_json_begin(cl, sb);
    voro_strbuf_printf(sb, ",\"version\":%" PRIu64 ",\"hash\":\"%s\",\"author\":", v->version, v->hash);
    voro_strbuf_json_string(sb, v->author);
    voro_strbuf_printf(sb, ",\"time_ms\":%" PRIu64 ",\"source_version\":%" PRIu64 ",\"text\":", v->time_ms,
                       v->source_version);
    voro_strbuf_json_string(sb, v->text ? v->text : "");
    voro_strbuf_puts(sb, "}\n");
}

static void version_entry(struct voro_strbuf *sb, const struct voro_config_version *v, bool first)
{
    voro_strbuf_printf(sb, "%s{\"version\":%" PRIu64 ",\"hash\":\"%s\",\"author\":", first ? "" : ",", v->version,
                       v->hash);
    voro_strbuf_json_string(sb, v->author);
    voro_strbuf_printf(sb, ",\"time_ms\":%" PRIu64 "}", v->time_ms);
}

static void h_history(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    if (!authorised(cl, req, resp))
        return;
    struct voro_strbuf *sb = &resp->body;
    voro_cl_json_begin(cl, sb);
    voro_strbuf_printf(sb, ",\"current\":%" PRIu64 ",\"versions\":[", cl->state.current.version);
    bool first = true;
    if (cl->state.current.version) {
        version_entry(sb, &cl->state.current, true);
        first = false;
    }
    for (size_t i = cl->state.n_history; i-- > 0;) {
        version_entry(sb, &cl->state.history[i], first);
        first = false;
    }
    voro_strbuf_puts(sb, "]}\n");
}

static void h_backends_get(struct voro_cluster *cl, struct voro_admin_response *resp)
{
    struct voro_strbuf *sb = &resp->body;
    voro_cl_json_begin(cl, sb);
    voro_strbuf_puts(sb, ",\"backends\":[");
    for (size_t i = 0; i < cl->state.n_backends; i++) {
        const struct voro_backend *b = &cl->state.backends[i];
        const char *reason;
        const char *health = voro_health_state_name(backend_health(cl, b, &reason));
        voro_strbuf_printf(sb, "%s{\"pool\":", i ? "," : "");
        voro_strbuf_json_string(sb, b->pool);
        voro_strbuf_puts(sb, ",\"address\":");
        voro_strbuf_json_string(sb, b->address);
        voro_strbuf_printf(sb, ",\"weight\":%u,\"draining\":%s,\"health\":\"%s\",\"reason\":", b->weight,
                           b->draining ? "true" : "false", health);
        voro_strbuf_json_string(sb, reason);
        voro_strbuf_puts(sb, "}");
    }
    voro_strbuf_puts(sb, "]}\n");
}

/* ---- membership ---- */

static void h_init(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || (req->body_len && !parse_body(cl, req, resp, &o)))
        return;
    struct voro_admin_deferred *d = voro_admin_defer(resp);
    struct cl_op *op = d ? voro_cl_op_new(cl, OP_INIT, d) : NULL;
    if (!op) {
        resp->deferred = NULL;
        free(d);
        reply(cl, resp, 500, "out of memory", NULL);
        return;
    }
    voro_cl_op_start(op);
}

static void h_join(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_MEMBER_UPSERT);
    uint64_t id;
    if (!get_u64(cl, resp, &o, "id", &id, true, 0))
        return;
    if (id == 0 || id > UINT32_MAX) {
        reply_field(cl, resp, "id must be 1..4294967295", "id");
        return;
    }
    cmd.u.member_upsert.id = id;
    if (!get_str(cl, resp, &o, "name", cmd.u.member_upsert.name, sizeof(cmd.u.member_upsert.name), true) ||
        !get_addr(cl, resp, &o, "raft_address", cmd.u.member_upsert.raft_address,
                  sizeof(cmd.u.member_upsert.raft_address)) ||
        !get_addr(cl, resp, &o, "admin_address", cmd.u.member_upsert.admin_address,
                  sizeof(cmd.u.member_upsert.admin_address)))
        return;
    write_front(cl, req, resp, OP_JOIN, REPLY_MEMBERS, &cmd, NULL, 0);
}

static void h_join_via(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    char via[64];
    if (!get_addr(cl, resp, &o, "via", via, sizeof(via)))
        return;
    struct voro_admin_deferred *d = voro_admin_defer(resp);
    struct cl_op *op = d ? voro_cl_op_new(cl, OP_JOIN_VIA, d) : NULL;
    if (!op) {
        resp->deferred = NULL;
        free(d);
        reply(cl, resp, 500, "out of memory", NULL);
        return;
    }
    snprintf(op->path, sizeof(op->path), "%s", via);
    voro_cl_op_start(op);
}

static void h_leave(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    uint64_t id;
    if (!get_u64(cl, resp, &o, "id", &id, false, cl->id))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_MEMBER_REMOVE);
    cmd.u.member_remove.id = id;
    if (!voro_state_member(&cl->state, id) && id != cl->id) {
        bool in_raft = false;
        for (unsigned i = 0; cl->raft_started && i < cl->raft.configuration.n; i++)
            in_raft |= cl->raft.configuration.servers[i].id == id;
        if (!in_raft) {
            reply(cl, resp, 404, "unknown node", "not_found");
            return;
        }
    }
    /* forwarded with the id spelled out: no id would mean the leader itself there */
    char fwd[48];
    snprintf(fwd, sizeof(fwd), "{\"id\":%" PRIu64 "}", id);
    write_front_body(cl, req, resp, OP_LEAVE, REPLY_MEMBERS, &cmd, NULL, 0, fwd);
}

/* ---- configuration ---- */

static void h_config(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    if (!authorised(cl, req, resp))
        return;
    if (strcmp(req->method, "POST") != 0) {
        h_config_get(cl, req, resp);
        return;
    }
    struct voro_json_obj o;
    if (closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_CONFIG_PUSH);
    uint64_t expected;
    if (!get_str(cl, resp, &o, "author", cmd.u.config_push.author, sizeof(cmd.u.config_push.author), false) ||
        !get_u64(cl, resp, &o, "expected_version", &expected, false, 0))
        return;
    if (!cmd.u.config_push.author[0])
        snprintf(cmd.u.config_push.author, sizeof(cmd.u.config_push.author), "api");
    char *text = NULL;
    size_t len = 0;
    int rc = voro_json_get_string_alloc(&o, "text", &text, &len);
    if (rc) {
        reply_field(cl, resp, rc == -ENOENT ? "missing field" : "expected a string", "text");
        return;
    }
    if (len > VORO_CMD_TEXT_MAX) {
        free(text);
        reply_field(cl, resp, "config text too long", "text");
        return;
    }
    struct voro_config_errors errors = {0};
    rc = voro_config_parse_cluster("push", text, len, NULL, &errors);
    if (rc) {
        resp->status = 400;
        voro_cl_json_begin(cl, &resp->body);
        voro_strbuf_puts(&resp->body, ",\"error\":\"invalid config\",\"errors\":[");
        for (size_t i = 0; i < errors.count; i++) {
            if (i)
                voro_strbuf_puts(&resp->body, ",");
            voro_strbuf_json_string(&resp->body, errors.items[i].message);
        }
        if (!errors.count)
            voro_strbuf_json_string(&resp->body, strerror(-rc));
        voro_strbuf_puts(&resp->body, "]}\n");
        voro_config_errors_free(&errors);
        free(text);
        return;
    }
    voro_config_errors_free(&errors);
    voro_sha256_hex(text, len, cmd.u.config_push.hash);
    cmd.u.config_push.text = text;
    cmd.u.config_push.text_len = len;
    cmd.u.config_push.time_ms = voro_cl_wall_ms();
    cmd.u.config_push.expected_version = expected;
    write_front(cl, req, resp, OP_WRITE, REPLY_PUSH, &cmd, text, len);
}

static void h_rollback(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_CONFIG_ROLLBACK);
    if (!get_u64(cl, resp, &o, "version", &cmd.u.config_rollback.to_version, true, 0) ||
        !get_str(cl, resp, &o, "author", cmd.u.config_rollback.author, sizeof(cmd.u.config_rollback.author), false))
        return;
    if (!cmd.u.config_rollback.author[0])
        snprintf(cmd.u.config_rollback.author, sizeof(cmd.u.config_rollback.author), "api");
    cmd.u.config_rollback.time_ms = voro_cl_wall_ms();
    write_front(cl, req, resp, OP_WRITE, REPLY_VERSION, &cmd, NULL, 0);
}

/* Internal: a node reports the config version it runs (sent to the leader by cluster.c). */
static void h_node_active(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_NODE_CONFIG_ACTIVE);
    const struct voro_json_member *okm = NULL;
    for (size_t i = 0; i < o.n; i++)
        if (o.m[i].key_len == 2 && !memcmp(o.m[i].key, "ok", 2) && o.m[i].type == VORO_JSON_BOOL)
            okm = &o.m[i];
    if (!get_u64(cl, resp, &o, "node_id", &cmd.u.node_config_active.node_id, true, 0) ||
        !get_u64(cl, resp, &o, "version", &cmd.u.node_config_active.version, true, 0) ||
        !get_str(cl, resp, &o, "reason", cmd.u.node_config_active.reason, sizeof(cmd.u.node_config_active.reason),
                 false))
        return;
    if (!okm) {
        reply_field(cl, resp, "expected true or false", "ok");
        return;
    }
    cmd.u.node_config_active.ok = okm->val[0] == 't';
    write_front(cl, req, resp, OP_WRITE, REPLY_OK, &cmd, NULL, 0);
}

/* ---- dynamic backends ---- */

static bool backend_ref(struct voro_cluster *cl, struct voro_admin_response *resp, const struct voro_json_obj *o,
                        char *pool, char *address)
{
    return get_str(cl, resp, o, "pool", pool, VORO_CMD_STR_MAX + 1, true) &&
           get_addr(cl, resp, o, "address", address, VORO_CMD_STR_MAX + 1);
}

static void h_backends(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    if (!authorised(cl, req, resp))
        return;
    if (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD")) {
        h_backends_get(cl, resp);
        return;
    }
    struct voro_json_obj o;
    if (closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    if (!strcmp(req->method, "POST")) {
        voro_cmd_init(&cmd, VORO_CMD_BACKEND_ADD);
        uint64_t w;
        if (!backend_ref(cl, resp, &o, cmd.u.backend_add.pool, cmd.u.backend_add.address) ||
            !get_u64(cl, resp, &o, "weight", &w, false, 1))
            return;
        if (w > VORO_CMD_WEIGHT_MAX) {
            reply_field(cl, resp, "weight must be 0..65535", "weight");
            return;
        }
        cmd.u.backend_add.weight = (uint32_t)w;
    } else {
        voro_cmd_init(&cmd, VORO_CMD_BACKEND_REMOVE);
        if (!backend_ref(cl, resp, &o, cmd.u.backend_ref.pool, cmd.u.backend_ref.address))
            return;
    }
    write_front(cl, req, resp, OP_WRITE, REPLY_OK, &cmd, NULL, 0);
}

static void h_drain(void *ctx, const struct voro_admin_request *req, struct voro_admin_response *resp)
{
    struct voro_cluster *cl = ctx;
    struct voro_json_obj o;
    if (!authorised(cl, req, resp) || closing(cl, resp) || !parse_body(cl, req, resp, &o))
        return;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_BACKEND_DRAIN);
    if (!backend_ref(cl, resp, &o, cmd.u.backend_ref.pool, cmd.u.backend_ref.address))
        return;
    write_front(cl, req, resp, OP_WRITE, REPLY_OK, &cmd, NULL, 0);
}

int voro_cl_api_register(struct voro_cluster *cl)
{
    static const struct {
        const char *path;
        unsigned methods;
        voro_admin_handler h;
    } routes[] = {
        {"/cluster/status", VORO_ADMIN_GET, h_status},
        {"/cluster/init", VORO_ADMIN_POST, h_init},
        {"/cluster/join", VORO_ADMIN_POST, h_join},
        {"/cluster/join-via", VORO_ADMIN_POST, h_join_via},
        {"/cluster/leave", VORO_ADMIN_POST, h_leave},
        {"/cluster/config", VORO_ADMIN_GET | VORO_ADMIN_POST, h_config},
        {"/cluster/config/history", VORO_ADMIN_GET, h_history},
        {"/cluster/config/rollback", VORO_ADMIN_POST, h_rollback},
        {"/cluster/node-active", VORO_ADMIN_POST, h_node_active},
        {"/cluster/backends", VORO_ADMIN_GET | VORO_ADMIN_POST | VORO_ADMIN_DELETE, h_backends},
        {"/cluster/backends/drain", VORO_ADMIN_POST, h_drain},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = voro_control_register_methods(cl->control, routes[i].path, routes[i].methods, routes[i].h, cl);
        if (rc)
            return rc;
    }
    return 0;
}
