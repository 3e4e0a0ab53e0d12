/* The cluster state the Raft FSM holds: config versions, members, backends, health, quota leases. */
#ifndef VORO_RAFT_STATE_H
#define VORO_RAFT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/cluster_cmd.h"

/* Bounds keep a snapshot and a replayed log finite whatever clients send; a command that would
 * exceed one is refused deterministically (-ENOSPC) by the FSM's checks. */
#define VORO_STATE_HISTORY_MAX 32   /* config versions kept besides the current one */
#define VORO_STATE_MEMBERS_MAX 64
#define VORO_STATE_BACKENDS_MAX 4096
#define VORO_STATE_HEALTH_MAX 4096
#define VORO_STATE_LEASES_MAX 4096
#define VORO_STATE_STR (VORO_CMD_STR_MAX + 1)

struct voro_config_version {
    uint64_t version;        /* 1, 2, ... in apply order; 0 = no config yet */
    uint64_t source_version; /* for a rollback, the version whose text it restored; else 0 */
    char *text;              /* owned (malloc), NUL-terminated, text_len bytes before the NUL */
    size_t text_len;
    char hash[VORO_CMD_HASH_LEN + 1];
    char author[VORO_STATE_STR];
    uint64_t time_ms;
};

struct voro_member {
    uint64_t id;
    char name[VORO_STATE_STR];
    char raft_address[VORO_STATE_STR];
    char admin_address[VORO_STATE_STR];
    char data_address[VORO_STATE_STR];
    uint32_t vip_priority;
};

/* The config version a node reports running, and whether it loaded cleanly. */
struct voro_node_active {
    uint64_t node_id;
    uint64_t version;
    bool ok;
    char reason[VORO_STATE_STR];
};

/* A backend registered through the API (backends in the config text are not here). */
struct voro_backend {
    char pool[VORO_STATE_STR];
    char address[VORO_STATE_STR];
    uint32_t weight;
    bool draining;
};

/* The cluster's health verdict on a backend, static or dynamic. */
struct voro_health_verdict {
    char pool[VORO_STATE_STR];
    char address[VORO_STATE_STR];
    enum voro_health_state state;
    char reason[VORO_STATE_STR];
    uint64_t time_ms;
};

struct voro_quota_lease {
    char limit_name[VORO_STATE_STR];
    uint64_t node_id;
    uint64_t share;
    uint64_t expires_ms;
};

/* Every table is an array sorted by its key (members and actives by id; backends and health
 * by pool then address; leases by limit name then node id), so iteration order, snapshots
 * and equality do not depend on the order commands arrived in. The state owns all its arrays
 * and texts; copy with voro_cluster_state_copy, never by assignment. */
struct voro_cluster_state {
    uint64_t last_version; /* highest config version ever assigned */
    struct voro_config_version current;
    struct voro_config_version history[VORO_STATE_HISTORY_MAX]; /* older versions, oldest first */
    size_t n_history;
    struct voro_member *members;
    size_t n_members;
    struct voro_node_active *actives;
    size_t n_actives;
    struct voro_backend *backends;
    size_t n_backends;
    struct voro_health_verdict *health;
    size_t n_health;
    struct voro_quota_lease *leases;
    size_t n_leases;
};

/* An empty state (no config, no members). No allocation. */
void voro_cluster_state_init(struct voro_cluster_state *s);
/* Frees everything the state owns and leaves it empty (re-usable). */
void voro_cluster_state_free(struct voro_cluster_state *s);
/* Deep copy into `dst`, which must not own anything (init'd or freed). 0 or -ENOMEM (then
 * `dst` is left empty). */
int voro_cluster_state_copy(struct voro_cluster_state *dst, const struct voro_cluster_state *src);
/* Frees `dst`'s contents and moves `src`'s into it; `src` is left empty. */
void voro_cluster_state_move(struct voro_cluster_state *dst, struct voro_cluster_state *src);
/* Deep equality, field by field (texts by content). */
bool voro_cluster_state_equal(const struct voro_cluster_state *a, const struct voro_cluster_state *b);

/* Lookups: NULL when absent. Pointers are valid until the next change to the state. */
const struct voro_config_version *voro_state_config(const struct voro_cluster_state *s, uint64_t version);
const struct voro_member *voro_state_member(const struct voro_cluster_state *s, uint64_t id);
const struct voro_member *voro_state_member_by_raft_address(const struct voro_cluster_state *s,
                                                            const char *raft_address);
const struct voro_node_active *voro_state_active(const struct voro_cluster_state *s, uint64_t node_id);
const struct voro_backend *voro_state_backend(const struct voro_cluster_state *s, const char *pool,
                                              const char *address);
const struct voro_health_verdict *voro_state_health(const struct voro_cluster_state *s,
                                                    const char *pool, const char *address);
const struct voro_quota_lease *voro_state_lease(const struct voro_cluster_state *s,
                                                const char *limit_name, uint64_t node_id);

/* Mutators, used by the FSM after its checks passed. Insert-or-replace ("put") returns 0,
 * -ENOSPC when the table is full and the key is new, or -ENOMEM; "del" returns 0 or -ENOENT. */
/* config_add assigns version last_version + 1, makes it current and moves the previous current
 * into the history (evicting the oldest beyond VORO_STATE_HISTORY_MAX). It copies text, hash
 * and author before evicting anything, so they may point into the state itself (rollback). */
int voro_state_config_add(struct voro_cluster_state *s, const char *text, size_t text_len,
                          const char *hash, const char *author, uint64_t time_ms,
                          uint64_t source_version);
int voro_state_member_put(struct voro_cluster_state *s, const struct voro_member *m);
int voro_state_member_del(struct voro_cluster_state *s, uint64_t id);
int voro_state_active_put(struct voro_cluster_state *s, const struct voro_node_active *a);
int voro_state_active_del(struct voro_cluster_state *s, uint64_t node_id);
int voro_state_backend_put(struct voro_cluster_state *s, const struct voro_backend *b);
int voro_state_backend_del(struct voro_cluster_state *s, const char *pool, const char *address);
int voro_state_health_put(struct voro_cluster_state *s, const struct voro_health_verdict *h);
int voro_state_health_del(struct voro_cluster_state *s, const char *pool, const char *address);
int voro_state_lease_put(struct voro_cluster_state *s, const struct voro_quota_lease *l);
int voro_state_lease_del(struct voro_cluster_state *s, const char *limit_name, uint64_t node_id);
/* Removes every lease held by `node_id` (a removed member keeps no share). */
void voro_state_lease_del_node(struct voro_cluster_state *s, uint64_t node_id);

/* Snapshot codec (raft/state_codec.c). The format is documented in docs/cluster-state.md.
 * encode writes the whole state through `pk` (0 or -ENOMEM). decode builds a fresh state in
 * `out` (which must not own anything) from exactly `len` bytes; 0 or a VORO_CMD_E* code (or
 * -ENOMEM), in which case `out` is left empty. Decoding enforces the same limits and the same
 * ordering as the live state, so a decoded state is one the FSM could have built. */
int voro_cluster_state_encode(const struct voro_cluster_state *s, msgpack_packer *pk);
int voro_cluster_state_decode(const void *data, size_t len, struct voro_cluster_state *out);

#endif
