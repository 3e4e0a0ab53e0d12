/* The Raft state machine: applies cluster commands to a voro_cluster_state, snapshots, restores. */
#ifndef VORO_RAFT_FSM_H
#define VORO_RAFT_FSM_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "proto/cluster_cmd.h"
#include "raft/state.h"

/* What applying one command did. code is 0 when the command took effect, else a negative
 * errno and the command was applied as a no-op:
 *   decode errors   VORO_CMD_E* (see proto/cluster_cmd.h)
 *   -ESTALE         precondition failed (config_push expected_version, older health verdict)
 *   -ENOENT         unknown config version, member or backend
 *   -EALREADY       rollback to the version already current
 *   -EEXIST         another member already uses this raft_address
 *   -ENOSPC         a state table is full (VORO_STATE_*_MAX)
 * version is the current config version after the command (for a push or rollback: the
 * version it created). message says why in words, for logs and API errors. */
struct voro_fsm_result {
    int code;
    char message[160];
    uint64_t version;
};

/* Called after every applied entry (cmd NULL when it did not decode) and after a restore
 * (cmd and res NULL), on the thread that drives raft: the hook for publishing the new state. */
typedef void (*voro_fsm_observer_cb)(void *arg, const struct voro_cmd *cmd,
                                     const struct voro_fsm_result *res);

/* Fills `fsm` for raft_init()/raft_fixture_grow(). `state` is borrowed: the caller owns it,
 * keeps it alive until voro_fsm_close(), and reads it only on the thread that drives raft.
 * Returns 0 or -ENOMEM.
 *
 * Apply result ownership: canonical/raft 0.15 hands *result to the raft_apply callback only on
 * the node where that request is still pending; on followers (and after a leadership change)
 * it drops it. So the result is NOT heap-allocated per entry: *result points to a
 * struct voro_fsm_result inside the FSM, valid until the next apply; the raft_apply callback
 * copies what it needs and frees nothing.
 *
 * Apply never fails for a command that cannot take effect (it is a no-op with an error in the
 * result) because a failing apply stops the node's log. The one exception is running out of
 * memory half-way, which returns RAFT_NOMEM: stopping is safer than diverging.
 *
 * Snapshot: one raft_malloc'd buffer (raft frees it). Restore: on success the state is replaced
 * and the buffer freed with raft_free; a corrupt snapshot returns RAFT_MALFORMED and leaves
 * both the state and the buffer (still raft's) untouched. */
int voro_fsm_init(struct raft_fsm *fsm, struct voro_cluster_state *state);
/* Frees what voro_fsm_init allocated (not the state). */
void voro_fsm_close(struct raft_fsm *fsm);
void voro_fsm_set_observer(struct raft_fsm *fsm, voro_fsm_observer_cb cb, void *arg);

/* Leader side: predicts what applying the encoded command to `state` now would do, without
 * changing it, so the leader can refuse before raft_apply(). Fills *out; returns out->code. */
int voro_fsm_validate(const struct voro_cluster_state *state, const void *data, size_t len,
                      struct voro_fsm_result *out);

/* The apply logic without raft (single node tests, determinism checks): decodes and applies
 * one command. Returns 0 (see out->code for the effect) or -ENOMEM. */
int voro_fsm_apply_to(struct voro_cluster_state *state, const void *data, size_t len,
                      struct voro_fsm_result *out);

/* Encodes `cmd` into a raft_malloc'd buffer ready for raft_apply() (which then owns it).
 * Returns 0, a VORO_CMD_E* code or -ENOMEM. */
int voro_fsm_encode_command(const struct voro_cmd *cmd, struct raft_buffer *buf);

/* Encodes the whole state as a snapshot into a raft_malloc'd buffer. 0 or -ENOMEM. */
int voro_fsm_encode_state(const struct voro_cluster_state *state, struct raft_buffer *buf);

#endif
