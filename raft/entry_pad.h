/* Log entry padding: canonical/raft 0.15's raft_uv refuses to load (and moves aside as
 * "corrupt") a closed segment holding an entry whose size is not a multiple of 8 bytes, so
 * every command goes into the log as its msgpack map followed by 0..7 zero bytes, and the FSM
 * is wrapped to strip them again. */
#ifndef VORO_RAFT_ENTRY_PAD_H
#define VORO_RAFT_ENTRY_PAD_H

#include <raft.h>

/* Grows `buf` (raft_malloc'd, e.g. from voro_fsm_encode_command) with zero bytes to a multiple
 * of 8. On failure (-ENOMEM) the buffer is unchanged and still the caller's. */
int voro_entry_pad(struct raft_buffer *buf);

/* Fills `outer` to forward to `inner` (borrowed; it must outlive outer), stripping the padding
 * after the one msgpack object of each applied entry first. Snapshots pass through. */
void voro_entry_pad_wrap(struct raft_fsm *outer, struct raft_fsm *inner);

#endif
