/* Disaster recovery after a majority loss: rewrites this node's Raft configuration to itself
 * alone (raft_recover), offline, so it can start as a one-node cluster that the others re-join.
 * Run on ONE survivor with every node stopped (docs/cluster.md). */
#include <errno.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <sys/stat.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "common/log.h"
#include "raft/entry_pad.h"
#include "raft/fsm.h"
#include "raft/state.h"

struct recover_ctx {
    struct raft_io io;
    struct raft_uv_transport transport;
    bool closed;
};

static void on_raft_closed(struct raft *r)
{
    struct recover_ctx *rc = r->data;
    raft_uv_close(&rc->io);
    raft_uv_tcp_close(&rc->transport);
    rc->closed = true;
}

int voro_cluster_recover(const struct voro_config *cfg)
{
    if (!cfg->cluster_enabled)
        return -EINVAL;
    struct stat st;
    if (stat(cfg->cluster_data_dir, &st) != 0) {
        VORO_ERROR("cluster", "recover: no Raft data in %s: %s", cfg->cluster_data_dir, strerror(errno));
        return -ENOENT;
    }
    int result = -EIO, rc;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return -EIO;
    struct recover_ctx ctx = {0};
    struct voro_cluster_state state;
    struct raft_fsm fsm, outer;
    struct raft raft;
    voro_cluster_state_init(&state);
    if (voro_fsm_init(&fsm, &state) != 0)
        goto out_state;
    voro_entry_pad_wrap(&outer, &fsm);
    if (raft_uv_tcp_init(&ctx.transport, &loop) != 0)
        goto out_fsm;
    if ((rc = raft_uv_init(&ctx.io, &loop, cfg->cluster_data_dir, &ctx.transport)) != 0) {
        VORO_ERROR("cluster", "recover: raft storage %s: %s", cfg->cluster_data_dir, raft_strerror(rc));
        raft_uv_tcp_close(&ctx.transport);
        goto out_loop_run;
    }
    if ((rc = raft_init(&raft, &ctx.io, &outer, cfg->cluster_node_id, cfg->raft_addr.text)) != 0) {
        VORO_ERROR("cluster", "recover: raft init: %s", raft_strerror(rc));
        raft_uv_close(&ctx.io);
        raft_uv_tcp_close(&ctx.transport);
        goto out_loop_run;
    }
    raft.data = &ctx;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    rc = raft_configuration_add(&conf, cfg->cluster_node_id, cfg->raft_addr.text, RAFT_VOTER);
    if (rc == 0)
        rc = raft_recover(&raft, &conf);
    raft_configuration_close(&conf);
    if (rc == 0) {
        result = 0;
        VORO_INFO("cluster", "recover: node %" PRIu32 " (%s) is now the only voter; start it, then re-join the others",
                  cfg->cluster_node_id, cfg->raft_addr.text);
    } else {
        VORO_ERROR("cluster", "recover: %s (%s)", raft_strerror(rc), raft_errmsg(&raft));
    }
    raft_close(&raft, on_raft_closed);
out_loop_run:
    uv_run(&loop, UV_RUN_DEFAULT); /* bounded: runs the close callbacks, nothing else is active */
out_fsm:
    voro_fsm_close(&fsm);
out_state:
    voro_cluster_state_free(&state);
    if (uv_loop_close(&loop) != 0 && result == 0)
        result = -EBUSY;
    return result;
}
