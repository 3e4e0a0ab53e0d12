/* Cluster membership: canonical/raft with raft_uv on the control loop, pending API operations
 * (commits, membership changes, forwarded calls) and the config hand-over to the node. */
#include "cluster/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cluster/cluster_impl.h"
#include "common/log.h"
#include "raft/entry_pad.h"

static void op_step(struct cl_op *op, const struct voro_fsm_result *res);
static void mq_run(struct voro_cluster *cl);
static void try_report(struct voro_cluster *cl);
static void on_kick(uv_timer_t *t);

/* Runs on_kick on the next loop iteration, outside whatever callback we are in. */
static void kick(struct voro_cluster *cl)
{
    if (!cl->closing)
        uv_timer_start(&cl->kick, on_kick, 0, 0);
}

uint64_t voro_cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t voro_cl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool voro_cl_uninitialised(struct voro_cluster *cl)
{
    return !cl->raft_started || cl->raft.configuration.n == 0;
}

const char *voro_cl_state_name(struct voro_cluster *cl)
{
    if (voro_cl_uninitialised(cl))
        return "uninitialised";
    switch (raft_state(&cl->raft)) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unavailable";
    }
}

uint64_t voro_cl_term(struct voro_cluster *cl) { return cl->raft_started ? cl->raft.current_term : 0; }

bool voro_cl_is_leader(struct voro_cluster *cl)
{
    return cl->raft_started && !cl->closing && raft_state(&cl->raft) == RAFT_LEADER;
}

uint64_t voro_cl_leader(struct voro_cluster *cl, const char **admin_address)
{
    *admin_address = "";
    if (!cl->raft_started || cl->closing)
        return 0;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&cl->raft, &id, &addr);
    if (!id)
        return 0;
    if (id == cl->id) {
        *admin_address = cl->admin_address;
        return id;
    }
    const struct voro_member *m = voro_state_member(&cl->state, id);
    if (m)
        *admin_address = m->admin_address;
    return id;
}

/* ---- JSON pieces shared with the API ---- */

void voro_cl_json_begin(struct voro_cluster *cl, struct voro_strbuf *sb)
{
    voro_strbuf_printf(sb, "{\"node\":{\"id\":%" PRIu64 ",\"name\":", cl->id);
    voro_strbuf_json_string(sb, cl->name);
    voro_strbuf_printf(sb, "},\"term\":%" PRIu64, voro_cl_term(cl));
}

void voro_cl_error(struct voro_cluster *cl, struct voro_strbuf *sb, const char *error, const char *code)
{
    voro_cl_json_begin(cl, sb);
    voro_strbuf_puts(sb, ",\"error\":");
    voro_strbuf_json_string(sb, error);
    if (code) {
        voro_strbuf_puts(sb, ",\"code\":");
        voro_strbuf_json_string(sb, code);
    }
    voro_strbuf_puts(sb, "}\n");
}

const char *voro_cl_code_name(int code)
{
    switch (code) {
    case -ESTALE: return "stale";
    case -ENOENT: return "not_found";
    case -EALREADY: return "already";
    case -EEXIST: return "exists";
    case -ENOSPC: return "full";
    default: return "invalid";
    }
}

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    default: return "spare";
    }
}

void voro_cl_json_members(struct voro_cluster *cl, struct voro_strbuf *sb)
{
    raft_id leader = 0;
    if (cl->raft_started) {
        const char *addr;
        raft_leader(&cl->raft, &leader, &addr);
    }
    bool is_leader = voro_cl_is_leader(cl);
    voro_strbuf_puts(sb, "[");
    for (size_t i = 0; i < cl->state.n_members; i++) {
        const struct voro_member *m = &cl->state.members[i];
        const char *role = "spare";
        bool reachable = m->id == cl->id || (leader && m->id == leader);
        if (cl->raft_started) {
            for (unsigned k = 0; k < cl->raft.configuration.n; k++) {
                if (cl->raft.configuration.servers[k].id != m->id)
                    continue;
                role = role_name(cl->raft.configuration.servers[k].role);
                if (is_leader && m->id != cl->id && cl->raft.leader_state.progress)
                    reachable = cl->raft.leader_state.progress[k].recent_recv;
            }
        }
        const struct voro_node_active *a = voro_state_active(&cl->state, m->id);
        voro_strbuf_printf(sb, "%s{\"id\":%" PRIu64 ",\"name\":", i ? "," : "", m->id);
        voro_strbuf_json_string(sb, m->name);
        voro_strbuf_puts(sb, ",\"raft_address\":");
        voro_strbuf_json_string(sb, m->raft_address);
        voro_strbuf_puts(sb, ",\"admin_address\":");
        voro_strbuf_json_string(sb, m->admin_address);
        voro_strbuf_printf(sb, ",\"role\":\"%s\",\"reachable\":%s,\"active_config_version\":%" PRIu64
                               ",\"active_config_ok\":%s,\"active_config_reason\":",
                           role, reachable ? "true" : "false", a ? a->version : 0,
                           a ? (a->ok ? "true" : "false") : "true");
        voro_strbuf_json_string(sb, a ? a->reason : "");
        voro_strbuf_puts(sb, "}");
    }
    voro_strbuf_puts(sb, "]");
}

/* ---- operations ---- */

struct cl_op *voro_cl_op_new(struct voro_cluster *cl, enum op_kind kind, struct voro_admin_deferred *d)
{
    struct cl_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->cl = cl;
    op->kind = kind;
    op->d = d;
    op->deadline_ms = voro_cl_now_ms() + VORO_CLUSTER_COMMIT_TIMEOUT_MS;
    op->next = cl->ops;
    if (cl->ops)
        cl->ops->prev = op;
    cl->ops = op;
    return op;
}

void voro_cl_op_answer(struct cl_op *op, int status, struct voro_strbuf *body)
{
    if (op->d) {
        voro_admin_complete(op->d, status, body);
        op->d = NULL;
    } else {
        voro_strbuf_free(body);
    }
}

void voro_cl_op_release(struct cl_op *op)
{
    struct voro_cluster *cl = op->cl;
    if (op->d || op->raft_pending || op->call || op->queued || cl->mq_current == op)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        cl->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    free(op->text);
    free(op->body);
    free(op);
}

static void answer_error(struct cl_op *op, int status, const char *error, const char *code)
{
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_cl_error(op->cl, &sb, error, code);
    voro_cl_op_answer(op, status, &sb);
}

static void answer_members(struct cl_op *op)
{
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_cl_json_begin(op->cl, &sb);
    voro_strbuf_puts(&sb, ",\"members\":");
    voro_cl_json_members(op->cl, &sb);
    voro_strbuf_puts(&sb, "}\n");
    voro_cl_op_answer(op, 200, &sb);
}

/* A membership op is over: let the next one run. */
static void mq_done(struct cl_op *op)
{
    struct voro_cluster *cl = op->cl;
    if (cl->mq_current != op)
        return;
    cl->mq_current = NULL;
    kick(cl);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct cl_op *op = req->data;
    op->raft_pending = false;
    if (op->self_refresh)
        op->cl->self_refresh_inflight = false;
    if (op->cl->closing) {
        answer_error(op, 503, "shutting down", NULL);
        mq_done(op);
        voro_cl_op_release(op);
        return;
    }
    if (status != 0) {
        answer_error(op, 503, raft_strerror(status), "retry");
        mq_done(op);
        voro_cl_op_release(op);
        return;
    }
    struct voro_fsm_result res = *(const struct voro_fsm_result *)result;
    op_step(op, &res);
    voro_cl_op_release(op);
}

/* A command as a log entry: raft_malloc'd, padded to 8 bytes (raft/entry_pad.h). */
static int encode_entry(const struct voro_cmd *cmd, struct raft_buffer *buf)
{
    if (voro_fsm_encode_command(cmd, buf) != 0)
        return -EINVAL;
    if (voro_entry_pad(buf) != 0) {
        raft_free(buf->base);
        return -ENOMEM;
    }
    return 0;
}

/* raft_apply of op->cmd; 0 or a raft error code. */
static int op_apply(struct cl_op *op)
{
    struct voro_cluster *cl = op->cl;
    struct raft_buffer buf;
    int rc = encode_entry(&op->cmd, &buf);
    if (rc)
        return rc == -ENOMEM ? RAFT_NOMEM : RAFT_INVALID;
    op->apply.data = op;
    rc = raft_apply(&cl->raft, &op->apply, &buf, 1, apply_cb);
    if (rc) {
        raft_free(buf.base);
        return rc;
    }
    op->raft_pending = true;
    return 0;
}

static void change_cb(struct raft_change *req, int status)
{
    struct cl_op *op = req->data;
    op->raft_pending = false;
    if (op->cl->closing) {
        answer_error(op, 503, "shutting down", NULL);
        mq_done(op);
        voro_cl_op_release(op);
        return;
    }
    if (status != 0) {
        answer_error(op, 503, raft_strerror(status), "retry");
        mq_done(op);
        voro_cl_op_release(op);
        return;
    }
    op_step(op, NULL);
    voro_cl_op_release(op);
}

static int server_index(struct voro_cluster *cl, uint64_t id)
{
    for (unsigned i = 0; i < cl->raft.configuration.n; i++)
        if (cl->raft.configuration.servers[i].id == id)
            return (int)i;
    return -1;
}

static void fail_raft(struct cl_op *op, int rc)
{
    int status = rc == RAFT_NOTLEADER || rc == RAFT_LEADERSHIPLOST || rc == RAFT_CANTCHANGE ? 503 : 409;
    answer_error(op, status, raft_strerror(rc), status == 503 ? "retry" : "invalid");
    mq_done(op);
}

static void forward_start(struct cl_op *op);

static void transfer_cb(struct raft_transfer *req)
{
    struct cl_op *op = req->data;
    struct voro_cluster *cl = op->cl;
    op->raft_pending = false;
    mq_done(op);
    if (cl->closing || voro_cl_is_leader(cl)) {
        answer_error(op, 503, cl->closing ? "shutting down" : "leadership transfer failed", "retry");
    } else {
        /* the new leader removes this node: name it explicitly (no id would mean the new leader) */
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"id\":%" PRIu64 "}", cl->id);
        free(op->body);
        op->body = strdup(body);
        op->body_len = op->body ? (size_t)n : 0;
        snprintf(op->method, sizeof(op->method), "POST");
        snprintf(op->path, sizeof(op->path), "/cluster/leave");
        op->kind = OP_FORWARD;
        forward_start(op);
    }
    voro_cl_op_release(op);
}

/* Advances a multi-step op; res is the result of the apply that just committed (or NULL). */
static void op_step(struct cl_op *op, const struct voro_fsm_result *res)
{
    struct voro_cluster *cl = op->cl;
    int rc;
    if (res && res->code != 0) {
        answer_error(op, 409, res->message, voro_cl_code_name(res->code));
        mq_done(op);
        return;
    }
    switch (op->kind) {
    case OP_WRITE: {
        struct voro_strbuf sb;
        voro_strbuf_init(&sb);
        voro_cl_json_begin(cl, &sb);
        if (op->reply == REPLY_PUSH) {
            voro_strbuf_printf(&sb, ",\"version\":%" PRIu64 ",\"hash\":\"%s\"}\n", res->version, op->cmd.u.config_push.hash);
        } else if (op->reply == REPLY_VERSION) {
            voro_strbuf_printf(&sb, ",\"version\":%" PRIu64 "}\n", res->version);
        } else if (op->reply == REPLY_MEMBERS) {
            voro_strbuf_puts(&sb, ",\"members\":");
            voro_cl_json_members(cl, &sb);
            voro_strbuf_puts(&sb, "}\n");
        } else {
            voro_strbuf_puts(&sb, ",\"ok\":true}\n");
        }
        voro_cl_op_answer(op, 200, &sb);
        return;
    }
    case OP_INIT: {
        struct voro_strbuf sb;
        voro_strbuf_init(&sb);
        voro_cl_json_begin(cl, &sb);
        voro_strbuf_puts(&sb, ",\"cluster\":\"initialised\"}\n");
        voro_cl_op_answer(op, 200, &sb);
        VORO_INFO("cluster", "initialised as a one-node cluster (node %" PRIu64 ")", cl->id);
        return;
    }
    case OP_JOIN: {
        uint64_t id = op->cmd.u.member_upsert.id;
        int idx = server_index(cl, id);
        if (op->step == 0) {
            op->step = 1;
            if (idx < 0) {
                op->change.data = op;
                rc = raft_add(&cl->raft, &op->change, id, op->cmd.u.member_upsert.raft_address, change_cb);
                if (rc) {
                    fail_raft(op, rc);
                    return;
                }
                op->raft_pending = true;
                return;
            }
        }
        if (op->step == 1) {
            op->step = 2;
            if (idx >= 0 && cl->raft.configuration.servers[idx].role != RAFT_VOTER) {
                op->change.data = op;
                rc = raft_assign(&cl->raft, &op->change, id, RAFT_VOTER, change_cb);
                if (rc) {
                    fail_raft(op, rc);
                    return;
                }
                op->raft_pending = true;
                return;
            }
        }
        if (op->step == 2) {
            op->step = 3;
            if ((rc = op_apply(op)) != 0)
                fail_raft(op, rc);
            return;
        }
        VORO_INFO("cluster", "node %" PRIu64 " (%s) joined as a voter", id, op->cmd.u.member_upsert.name);
        answer_members(op);
        mq_done(op);
        return;
    }
    case OP_LEAVE: {
        uint64_t id = op->cmd.u.member_remove.id;
        if (op->step == 0) {
            if (id == cl->id) {
                op->transfer.data = op;
                rc = raft_transfer(&cl->raft, &op->transfer, 0, transfer_cb);
                if (rc) {
                    answer_error(op, 409, rc == RAFT_NOTFOUND ? "the only voter cannot leave" : raft_strerror(rc),
                                 "invalid");
                    mq_done(op);
                    return;
                }
                op->raft_pending = true;
                return;
            }
            op->step = 1;
            if (voro_state_member(&cl->state, id)) {
                if ((rc = op_apply(op)) != 0)
                    fail_raft(op, rc);
                return;
            }
            if (server_index(cl, id) < 0) {
                answer_error(op, 404, "unknown node", "not_found");
                mq_done(op);
                return;
            }
        }
        if (op->step == 1) {
            op->step = 2;
            if (server_index(cl, id) >= 0) {
                op->change.data = op;
                rc = raft_remove(&cl->raft, &op->change, id, change_cb);
                if (rc) {
                    fail_raft(op, rc);
                    return;
                }
                op->raft_pending = true;
                return;
            }
        }
        VORO_INFO("cluster", "node %" PRIu64 " left the cluster", id);
        answer_members(op);
        mq_done(op);
        return;
    }
    default:
        return;
    }
}

/* ---- forwarding ---- */

static void forward_cb(void *arg, int status, const char *body, size_t len)
{
    struct cl_op *op = arg;
    op->call = NULL;
    if (status < 0) {
        struct voro_strbuf sb;
        voro_strbuf_init(&sb);
        voro_cl_json_begin(op->cl, &sb);
        voro_strbuf_puts(&sb, ",\"error\":\"no leader\",\"leader\":null,\"reason\":");
        voro_strbuf_json_string(&sb, strerror(-status));
        voro_strbuf_puts(&sb, "}\n");
        voro_cl_op_answer(op, op->kind == OP_JOIN_VIA ? 502 : 503, &sb);
    } else {
        struct voro_strbuf sb;
        voro_strbuf_init(&sb);
        if (op->kind == OP_JOIN_VIA && status == 200) {
            voro_cl_json_begin(op->cl, &sb);
            voro_strbuf_puts(&sb, ",\"joined\":true}\n");
            VORO_INFO("cluster", "joined the cluster through %s", op->path);
        } else {
            voro_strbuf_append(&sb, body, len);
        }
        voro_cl_op_answer(op, status, &sb);
    }
    voro_cl_op_release(op);
}

/* `forwarded` marks a replayed write, which the receiver must not forward again (no loops). */
static void call_with_token(struct cl_op *op, const char *address, const char *method, const char *path,
                            const char *body, size_t body_len, uint32_t timeout_ms, bool forwarded)
{
    struct voro_cluster *cl = op->cl;
    char headers[400];
    snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\n%s", cl->token,
             forwarded ? "X-Voro-Forwarded: 1\r\n" : "");
    int rc = voro_http_request(cl->loop, address, method, path, headers, body, body_len, timeout_ms, forward_cb,
                               op, &op->call);
    if (rc) {
        op->call = NULL;
        answer_error(op, 503, "no leader", NULL);
    }
}

static void forward_start(struct cl_op *op)
{
    struct voro_cluster *cl = op->cl;
    const char *admin;
    uint64_t leader = voro_cl_leader(cl, &admin);
    op->deadline_ms = 0;
    if (!leader || !admin[0] || leader == cl->id) {
        struct voro_strbuf sb;
        voro_strbuf_init(&sb);
        voro_cl_json_begin(cl, &sb);
        voro_strbuf_puts(&sb, ",\"error\":\"no leader\",\"leader\":null}\n");
        voro_cl_op_answer(op, 503, &sb);
        return;
    }
    call_with_token(op, admin, op->method, op->path, op->body, op->body_len, VORO_CLUSTER_FORWARD_TIMEOUT_MS, true);
}

/* ---- raft lifecycle ---- */

static int mkdir_p(const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static bool has_raft_state(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (!strcmp(e->d_name, "metadata1") || !strcmp(e->d_name, "metadata2"))
            found = true;
    closedir(d);
    return found;
}

static void on_fsm(void *arg, const struct voro_cmd *cmd, const struct voro_fsm_result *res)
{
    struct voro_cluster *cl = arg;
    bool config_changed = !cmd || ((cmd->type == VORO_CMD_CONFIG_PUSH || cmd->type == VORO_CMD_CONFIG_ROLLBACK) &&
                                   res && res->code == 0);
    bool backends_changed = !cmd || ((cmd->type == VORO_CMD_BACKEND_ADD || cmd->type == VORO_CMD_BACKEND_REMOVE ||
                                      cmd->type == VORO_CMD_BACKEND_DRAIN) && res && res->code == 0);
    if (backends_changed)
        cl->backends_changed = true;
    if (config_changed || backends_changed)
        kick(cl);
}

/* Starts Raft: optionally bootstraps a one-node configuration first. 0 or a negative errno /
 * raft code (logged). */
static int raft_begin(struct voro_cluster *cl, bool bootstrap)
{
    int rc = mkdir_p(cl->data_dir);
    if (rc) {
        VORO_ERROR("cluster", "cannot create %s: %s", cl->data_dir, strerror(-rc));
        return rc;
    }
    if ((rc = raft_uv_tcp_init(&cl->transport, cl->loop)) != 0) {
        VORO_ERROR("cluster", "raft transport: %s", raft_strerror(rc));
        return -EIO;
    }
    if ((rc = raft_uv_tcp_set_bind_address(&cl->transport, cl->raft_address)) != 0) {
        VORO_ERROR("cluster", "raft bind address %s: %s", cl->raft_address, raft_strerror(rc));
        raft_uv_tcp_close(&cl->transport);
        return -EINVAL;
    }
    if ((rc = raft_uv_init(&cl->io, cl->loop, cl->data_dir, &cl->transport)) != 0) {
        VORO_ERROR("cluster", "raft storage %s: %s", cl->data_dir, raft_strerror(rc));
        raft_uv_tcp_close(&cl->transport);
        return -EIO;
    }
    raft_uv_set_connect_retry_delay(&cl->io, VORO_CLUSTER_CONNECT_RETRY_MS);
    if ((rc = raft_init(&cl->raft, &cl->io, &cl->fsm_outer, cl->id, cl->raft_address)) != 0) {
        VORO_ERROR("cluster", "raft init: %s", raft_strerror(rc));
        raft_uv_close(&cl->io);
        raft_uv_tcp_close(&cl->transport);
        return -EIO;
    }
    cl->raft.data = cl;
    cl->raft_inited = true;
    raft_set_election_timeout(&cl->raft, cl->election_ms);
    raft_set_heartbeat_timeout(&cl->raft, cl->heartbeat_ms);
    raft_set_pre_vote(&cl->raft, true);
    /* 0.15 keeps a follower in "snapshot" state until this expires when an InstallSnapshot is
     * lost (e.g. sent while the follower restarts): the default 30 s left a restarted node
     * lagging for 30 s. Snapshots here are small (the state is bounded by VORO_STATE_*). */
    unsigned snap_timeout = cl->election_ms * 10 > 3000 ? cl->election_ms * 10 : 3000;
    raft_set_install_snapshot_timeout(&cl->raft, snap_timeout);
    raft_set_snapshot_threshold(&cl->raft, cl->snapshot_threshold);
    raft_set_snapshot_trailing(&cl->raft, cl->snapshot_trailing);
    if (bootstrap) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        rc = raft_configuration_add(&conf, cl->id, cl->raft_address, RAFT_VOTER);
        if (rc == 0)
            rc = raft_bootstrap(&cl->raft, &conf);
        raft_configuration_close(&conf);
        if (rc && rc != RAFT_CANTBOOTSTRAP) {
            VORO_ERROR("cluster", "raft bootstrap: %s", raft_strerror(rc));
            return -EIO; /* raft stays inited: destroy closes it */
        }
    }
    if ((rc = raft_start(&cl->raft)) != 0) {
        VORO_ERROR("cluster", "raft start: %s (%s)", raft_strerror(rc), raft_errmsg(&cl->raft));
        return -EIO;
    }
    cl->raft_started = true;
    VORO_INFO("cluster", "raft started: node %" PRIu64 " at %s, data in %s", cl->id, cl->raft_address, cl->data_dir);
    return 0;
}

/* ---- op start (from the API) ---- */

static void mq_run(struct voro_cluster *cl)
{
    /* bounded: every round pops one op */
    while (!cl->mq_current && cl->mq_head && !cl->closing) {
        struct cl_op *op = cl->mq_head;
        cl->mq_head = op->qnext;
        if (!cl->mq_head)
            cl->mq_tail = NULL;
        op->queued = false;
        if (!op->d) { /* timed out while waiting */
            voro_cl_op_release(op);
            continue;
        }
        if (!voro_cl_is_leader(cl)) {
            op->kind = OP_FORWARD;
            forward_start(op);
            voro_cl_op_release(op);
            continue;
        }
        cl->mq_current = op;
        op->deadline_ms = voro_cl_now_ms() + VORO_CLUSTER_COMMIT_TIMEOUT_MS;
        op_step(op, NULL);
        voro_cl_op_release(op);
    }
}

void voro_cl_op_start(struct cl_op *op)
{
    struct voro_cluster *cl = op->cl;
    int rc;
    switch (op->kind) {
    case OP_WRITE:
        if ((rc = op_apply(op)) != 0)
            fail_raft(op, rc);
        break;
    case OP_JOIN:
    case OP_LEAVE:
        op->queued = true;
        op->qnext = NULL;
        if (cl->mq_tail)
            cl->mq_tail->qnext = op;
        else
            cl->mq_head = op;
        cl->mq_tail = op;
        mq_run(cl);
        return; /* mq_run released it if it finished */
    case OP_INIT:
        if (cl->raft_inited && !cl->raft_started) {
            answer_error(op, 500, "raft failed to start earlier (see the node's log); restart the node", NULL);
            break;
        }
        if (cl->raft_started || has_raft_state(cl->data_dir)) {
            answer_error(op, 409, "already initialised", "exists");
            break;
        }
        if ((rc = raft_begin(cl, true)) != 0) {
            answer_error(op, 500, "cannot start raft (see the node's log)", NULL);
            break;
        }
        op->step = 1; /* the tick applies member_upsert once this node leads */
        break;
    case OP_JOIN_VIA: {
        if (cl->raft_inited && !cl->raft_started) {
            answer_error(op, 500, "raft failed to start earlier (see the node's log); restart the node", NULL);
            break;
        }
        if (cl->raft_started && cl->raft.configuration.n > 0) {
            answer_error(op, 409, "already initialised", "exists");
            break;
        }
        if (!cl->raft_started && (rc = raft_begin(cl, false)) != 0) {
            answer_error(op, 500, "cannot start raft (see the node's log)", NULL);
            break;
        }
        struct voro_strbuf body;
        voro_strbuf_init(&body);
        voro_strbuf_printf(&body, "{\"id\":%" PRIu64 ",\"name\":", cl->id);
        voro_strbuf_json_string(&body, cl->name);
        voro_strbuf_puts(&body, ",\"raft_address\":");
        voro_strbuf_json_string(&body, cl->raft_address);
        voro_strbuf_puts(&body, ",\"admin_address\":");
        voro_strbuf_json_string(&body, cl->admin_address);
        voro_strbuf_puts(&body, "}");
        op->deadline_ms = 0;
        call_with_token(op, op->path, "POST", "/cluster/join", body.data, body.len, VORO_CLUSTER_JOIN_TIMEOUT_MS,
                        false);
        voro_strbuf_free(&body);
        break;
    }
    case OP_FORWARD:
        forward_start(op);
        break;
    }
    voro_cl_op_release(op);
}

/* ---- timers ---- */

static void on_kick(uv_timer_t *t)
{
    struct voro_cluster *cl = t->data;
    if (cl->closing)
        return;
    mq_run(cl);
    uint64_t v = cl->state.current.version;
    if (v && v != cl->handed_version && cl->state.current.text) {
        cl->handed_version = v;
        VORO_INFO("cluster", "config version %" PRIu64 " is current (hash %.12s...)", v, cl->state.current.hash);
        cl->backends_changed = false; /* on_config merges the backends of this state */
        if (cl->hooks.on_config)
            cl->hooks.on_config(cl->hooks.ctx, v, cl->state.current.text, cl->state.current.text_len);
    } else if (cl->backends_changed) {
        cl->backends_changed = false;
        if (cl->hooks.on_backends)
            cl->hooks.on_backends(cl->hooks.ctx);
    }
}

/* A leader whose own member record is missing (an init whose record timed out) or out of date
 * (restarted with another admin address or name) rewrites it, so followers forward to where it
 * really listens. */
static void refresh_self(struct voro_cluster *cl)
{
    if (!voro_cl_is_leader(cl) || cl->self_refresh_inflight)
        return;
    const struct voro_member *m = voro_state_member(&cl->state, cl->id);
    if (m && !strcmp(m->name, cl->name) && !strcmp(m->raft_address, cl->raft_address) &&
        !strcmp(m->admin_address, cl->admin_address))
        return;
    for (struct cl_op *o = cl->ops; o; o = o->next)
        if (o->kind == OP_INIT && o->d)
            return; /* POST /cluster/init records this node itself */
    struct cl_op *op = voro_cl_op_new(cl, OP_WRITE, NULL);
    if (!op)
        return;
    op->reply = REPLY_OK;
    op->self_refresh = true;
    voro_cmd_init(&op->cmd, VORO_CMD_MEMBER_UPSERT);
    op->cmd.u.member_upsert.id = cl->id;
    if (m) {
        op->cmd.u.member_upsert.vip_priority = m->vip_priority;
        voro_cmd_set_str(op->cmd.u.member_upsert.data_address, m->data_address);
    }
    voro_cmd_set_str(op->cmd.u.member_upsert.name, cl->name);
    voro_cmd_set_str(op->cmd.u.member_upsert.raft_address, cl->raft_address);
    voro_cmd_set_str(op->cmd.u.member_upsert.admin_address, cl->admin_address);
    if (op_apply(op) == 0)
        cl->self_refresh_inflight = true;
    voro_cl_op_release(op);
}

static void on_tick(uv_timer_t *t)
{
    struct voro_cluster *cl = t->data;
    if (cl->closing)
        return;
    uint64_t now = voro_cl_now_ms();
    for (struct cl_op *op = cl->ops, *next; op; op = next) {
        next = op->next;
        if (op->kind == OP_INIT && op->step == 1 && op->d && voro_cl_is_leader(cl)) {
            op->step = 2;
            voro_cmd_init(&op->cmd, VORO_CMD_MEMBER_UPSERT);
            op->cmd.u.member_upsert.id = cl->id;
            voro_cmd_set_str(op->cmd.u.member_upsert.name, cl->name);
            voro_cmd_set_str(op->cmd.u.member_upsert.raft_address, cl->raft_address);
            voro_cmd_set_str(op->cmd.u.member_upsert.admin_address, cl->admin_address);
            int rc = op_apply(op);
            if (rc)
                fail_raft(op, rc);
        }
        if (op->d && op->deadline_ms && now > op->deadline_ms) {
            answer_error(op, 504, "commit timeout", NULL);
            if (op->queued || cl->mq_current == op) {
                /* a membership change in progress goes on; the queue skips it once answered */
            }
        }
        voro_cl_op_release(op);
    }
    refresh_self(cl);
    try_report(cl);
}

/* ---- config activation reports ---- */

static void rep_apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct voro_cluster *cl = req->data;
    cl->rep_inflight = false;
    if (status == 0 && cl->rep_sent_version == cl->rep_version)
        cl->rep_pending = false;
}

static void rep_http_cb(void *arg, int status, const char *body, size_t len)
{
    (void)body, (void)len;
    struct voro_cluster *cl = arg;
    cl->rep_call = NULL;
    cl->rep_inflight = false;
    if (status == 200 && cl->rep_sent_version == cl->rep_version)
        cl->rep_pending = false;
}

static void try_report(struct voro_cluster *cl)
{
    if (!cl->rep_pending || cl->rep_inflight || cl->closing || voro_cl_uninitialised(cl))
        return;
    const struct voro_node_active *a = voro_state_active(&cl->state, cl->id);
    if (a && a->version == cl->rep_version && a->ok == cl->rep_ok && !strcmp(a->reason, cl->rep_reason)) {
        cl->rep_pending = false;
        return;
    }
    uint64_t now = voro_cl_now_ms();
    if (now - cl->rep_last_ms < 200)
        return;
    cl->rep_last_ms = now;
    struct voro_cmd cmd;
    voro_cmd_init(&cmd, VORO_CMD_NODE_CONFIG_ACTIVE);
    cmd.u.node_config_active.node_id = cl->id;
    cmd.u.node_config_active.version = cl->rep_version;
    cmd.u.node_config_active.ok = cl->rep_ok;
    voro_cmd_set_str(cmd.u.node_config_active.reason, cl->rep_reason);
    cl->rep_sent_version = cl->rep_version;
    if (voro_cl_is_leader(cl)) {
        struct raft_buffer buf;
        if (encode_entry(&cmd, &buf) != 0)
            return;
        cl->rep_apply.data = cl;
        if (raft_apply(&cl->raft, &cl->rep_apply, &buf, 1, rep_apply_cb) != 0) {
            raft_free(buf.base);
            return;
        }
        cl->rep_inflight = true;
        return;
    }
    const char *admin;
    if (!voro_cl_leader(cl, &admin) || !admin[0])
        return;
    struct voro_strbuf body;
    voro_strbuf_init(&body);
    voro_strbuf_printf(&body, "{\"node_id\":%" PRIu64 ",\"version\":%" PRIu64 ",\"ok\":%s,\"reason\":", cl->id,
                       cl->rep_version, cl->rep_ok ? "true" : "false");
    voro_strbuf_json_string(&body, cl->rep_reason);
    voro_strbuf_puts(&body, "}");
    char headers[400];
    snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\nX-Voro-Forwarded: 1\r\n", cl->token);
    if (!body.failed && voro_http_request(cl->loop, admin, "POST", "/cluster/node-active", headers, body.data, body.len,
                                          VORO_CLUSTER_FORWARD_TIMEOUT_MS, rep_http_cb, cl, &cl->rep_call) == 0)
        cl->rep_inflight = true;
    voro_strbuf_free(&body);
}

void voro_cluster_report_active(struct voro_cluster *cl, uint64_t version, bool ok, const char *reason)
{
    cl->rep_version = version;
    cl->rep_ok = ok;
    snprintf(cl->rep_reason, sizeof(cl->rep_reason), "%s", reason ? reason : "");
    cl->rep_pending = true;
    cl->rep_last_ms = 0;
    try_report(cl);
}

const char *voro_cluster_config_text(const struct voro_cluster *cl, uint64_t *version, size_t *len)
{
    if (!cl || !cl->state.current.version || !cl->state.current.text)
        return NULL;
    if (version)
        *version = cl->state.current.version;
    if (len)
        *len = cl->state.current.text_len;
    return cl->state.current.text;
}

const struct voro_backend *voro_cluster_backends(const struct voro_cluster *cl, size_t *n)
{
    *n = cl ? cl->state.n_backends : 0;
    return cl ? cl->state.backends : NULL;
}

/* ---- create / destroy ---- */

static void timer_closed(uv_handle_t *h)
{
    struct voro_cluster *cl = h->data;
    cl->open_timers--;
}

int voro_cluster_create(struct voro_cluster **out, struct voro_control *control, const struct voro_config *cfg,
                        const struct voro_cluster_hooks *hooks)
{
    if (!cfg->cluster_enabled)
        return -EINVAL;
    struct voro_cluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return -ENOMEM;
    cl->loop = voro_control_loop(control);
    cl->control = control;
    if (hooks)
        cl->hooks = *hooks;
    cl->id = cfg->cluster_node_id;
    snprintf(cl->name, sizeof(cl->name), "%s", cfg->node_name);
    snprintf(cl->cluster_name, sizeof(cl->cluster_name), "%s", cfg->cluster_name);
    snprintf(cl->raft_address, sizeof(cl->raft_address), "%s", cfg->raft_addr.text);
    snprintf(cl->admin_address, sizeof(cl->admin_address), "%s", cfg->admin_bind.text);
    snprintf(cl->token, sizeof(cl->token), "%s", cfg->cluster_token);
    snprintf(cl->data_dir, sizeof(cl->data_dir), "%s", cfg->cluster_data_dir);
    cl->election_ms = cfg->election_timeout_ms;
    cl->heartbeat_ms = cfg->heartbeat_timeout_ms;
    cl->snapshot_threshold = cfg->snapshot_threshold;
    cl->snapshot_trailing = cfg->snapshot_trailing;
    voro_cluster_state_init(&cl->state);
    int rc = voro_fsm_init(&cl->fsm, &cl->state);
    if (rc) {
        free(cl);
        return rc;
    }
    cl->fsm_inited = true;
    voro_entry_pad_wrap(&cl->fsm_outer, &cl->fsm);
    voro_fsm_set_observer(&cl->fsm, on_fsm, cl);
    uv_timer_init(cl->loop, &cl->tick);
    uv_timer_init(cl->loop, &cl->kick);
    cl->tick.data = cl->kick.data = cl;
    cl->open_timers = 2;
    uv_timer_start(&cl->tick, on_tick, VORO_CLUSTER_TICK_MS, VORO_CLUSTER_TICK_MS);
    if ((rc = voro_cl_api_register(cl)) != 0)
        goto fail;
    if (has_raft_state(cl->data_dir)) {
        VORO_INFO("cluster", "resuming from %s", cl->data_dir);
        if ((rc = raft_begin(cl, false)) != 0)
            goto fail;
    } else {
        VORO_INFO("cluster", "%s holds no cluster state: waiting for POST /cluster/init or /cluster/join-via",
                  cl->data_dir);
    }
    *out = cl;
    return 0;
fail:
    voro_cluster_destroy(cl);
    return rc;
}

static void raft_closed_cb(struct raft *r)
{
    struct voro_cluster *cl = r->data;
    raft_uv_close(&cl->io);
    raft_uv_tcp_close(&cl->transport);
    cl->raft_closed = true;
}

void voro_cluster_destroy(struct voro_cluster *cl)
{
    if (!cl)
        return;
    cl->closing = true;
    for (struct cl_op *op = cl->ops; op; op = op->next)
        answer_error(op, 503, "shutting down", NULL);
    /* bounded: each cancel ends one call (its callback may free the op) */
    for (int guard = 0; guard < 100000; guard++) {
        struct cl_op *op = cl->ops;
        while (op && !op->call)
            op = op->next;
        if (!op)
            break;
        voro_http_cancel(op->call); /* forward_cb clears op->call */
    }
    if (cl->rep_call)
        voro_http_cancel(cl->rep_call);
    while (cl->mq_head) {
        struct cl_op *op = cl->mq_head;
        cl->mq_head = op->qnext;
        op->queued = false;
    }
    cl->mq_tail = NULL;
    if (cl->raft_inited)
        raft_close(&cl->raft, raft_closed_cb);
    else
        cl->raft_closed = true;
    uv_close((uv_handle_t *)&cl->tick, timer_closed);
    uv_close((uv_handle_t *)&cl->kick, timer_closed);
    /* bounded: the control loop's 100 ms tick keeps each round short */
    for (int i = 0; i < 600 && (!cl->raft_closed || cl->open_timers > 0); i++)
        uv_run(cl->loop, UV_RUN_ONCE);
    if (!cl->raft_closed)
        VORO_ERROR("cluster", "raft did not close in time");
    cl->mq_current = NULL;
    while (cl->ops) {
        struct cl_op *op = cl->ops;
        cl->ops = op->next;
        free(op->text);
        free(op->body);
        free(op);
    }
    if (cl->fsm_inited)
        voro_fsm_close(&cl->fsm);
    voro_cluster_state_free(&cl->state);
    free(cl);
}
