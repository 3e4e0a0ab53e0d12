/* Private to cluster/cluster.c and cluster/cluster_api.c: the member's state and the pending
 * operations (API requests waiting for Raft or for another node). */
#ifndef VORO_CLUSTER_CLUSTER_IMPL_H
#define VORO_CLUSTER_CLUSTER_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster/admin.h"
#include "cluster/cluster.h"
#include "cluster/http_client.h"
#include "common/strbuf.h"
#include "proto/cluster_cmd.h"
#include "raft/fsm.h"
#include "raft/state.h"

#define VORO_CLUSTER_COMMIT_TIMEOUT_MS 5000u  /* docs/cluster-api.md: 504 after this */
#define VORO_CLUSTER_FORWARD_TIMEOUT_MS 8000u /* longer than the leader's own commit timeout */
#define VORO_CLUSTER_JOIN_TIMEOUT_MS 15000u
#define VORO_CLUSTER_TICK_MS 50u
#define VORO_CLUSTER_CONNECT_RETRY_MS 100u

enum op_kind {
    OP_WRITE,     /* one command through raft_apply */
    OP_INIT,      /* bootstrap, wait for leadership, record self */
    OP_JOIN,      /* leader: raft_add, raft_assign(voter), member_upsert */
    OP_LEAVE,     /* leader: (transfer,) member_remove, raft_remove */
    OP_JOIN_VIA,  /* new node: start raft, POST /cluster/join to a member */
    OP_FORWARD,   /* follower: the request is replayed on the leader */
};

/* How a successful OP_WRITE answers. */
enum reply_kind { REPLY_PUSH, REPLY_VERSION, REPLY_MEMBERS, REPLY_OK };

struct cl_op {
    struct voro_cluster *cl;
    struct cl_op *prev, *next; /* every live op: cl->ops */
    struct cl_op *qnext;       /* membership queue */
    enum op_kind kind;
    enum reply_kind reply;
    int step;
    struct voro_admin_deferred *d; /* NULL once answered */
    uint64_t deadline_ms;          /* 0 = bounded by its node-to-node call instead */
    bool raft_pending;             /* raft holds apply/change/transfer: freed after its callback */
    bool queued;                   /* in the membership queue */
    bool self_refresh;             /* the leader rewriting its own member record */
    struct voro_http_call *call;
    struct raft_apply apply;
    struct raft_change change;
    struct raft_transfer transfer;
    struct voro_cmd cmd;
    char *text; /* config_push text (cmd borrows it) */
    size_t text_len;
    char method[8];
    char path[64];
    char *body; /* request body kept for forwarding */
    size_t body_len;
};

struct voro_cluster {
    uv_loop_t *loop;
    struct voro_control *control;
    struct voro_cluster_hooks hooks;

    uint64_t id;
    char name[VORO_NAME_MAX];
    char cluster_name[VORO_NAME_MAX];
    char raft_address[VORO_ADDR_TEXT_MAX];
    char admin_address[VORO_ADDR_TEXT_MAX];
    char token[256];
    char data_dir[256];
    unsigned election_ms, heartbeat_ms;
    unsigned snapshot_threshold, snapshot_trailing;

    bool raft_inited, raft_started, raft_closed, closing;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;       /* voro_fsm */
    struct raft_fsm fsm_outer; /* what raft sees: strips the log entries' padding */
    bool fsm_inited;
    struct raft raft;
    struct voro_cluster_state state;

    uv_timer_t tick, kick;
    bool self_refresh_inflight;
    int open_timers;

    struct cl_op *ops;
    struct cl_op *mq_head, *mq_tail;
    struct cl_op *mq_current;

    uint64_t handed_version; /* last version given to hooks.on_config */
    bool backends_changed;   /* since the last on_config / on_backends */
    uint64_t rep_version;    /* last activation the node reported */
    bool rep_ok;
    char rep_reason[VORO_CMD_STR_MAX + 1];
    bool rep_pending, rep_inflight;
    uint64_t rep_last_ms;
    uint64_t rep_sent_version;
    struct raft_apply rep_apply;
    struct voro_http_call *rep_call;
};

/* cluster.c, for cluster_api.c */
uint64_t voro_cl_now_ms(void);
uint64_t voro_cl_wall_ms(void); /* CLOCK_REALTIME, for command timestamps */
const char *voro_cl_state_name(struct voro_cluster *cl);
uint64_t voro_cl_term(struct voro_cluster *cl);
bool voro_cl_is_leader(struct voro_cluster *cl);
/* Leader id and admin address (from the replicated member table); 0 / "" when unknown. */
uint64_t voro_cl_leader(struct voro_cluster *cl, const char **admin_address);
bool voro_cl_uninitialised(struct voro_cluster *cl);
struct cl_op *voro_cl_op_new(struct voro_cluster *cl, enum op_kind kind, struct voro_admin_deferred *d);
/* Answers (if not yet) and frees the op when nothing refers to it any more. */
void voro_cl_op_answer(struct cl_op *op, int status, struct voro_strbuf *body);
void voro_cl_op_release(struct cl_op *op);
/* Starts an op built by the API: OP_WRITE applies op->cmd (the leader validated it), OP_JOIN /
 * OP_LEAVE are queued, OP_INIT / OP_JOIN_VIA / OP_FORWARD start at once. */
void voro_cl_op_start(struct cl_op *op);
void voro_cl_json_begin(struct voro_cluster *cl, struct voro_strbuf *sb);
void voro_cl_json_members(struct voro_cluster *cl, struct voro_strbuf *sb);
void voro_cl_error(struct voro_cluster *cl, struct voro_strbuf *sb, const char *error, const char *code);
const char *voro_cl_code_name(int code);
/* cluster_api.c */
int voro_cl_api_register(struct voro_cluster *cl);

#endif
