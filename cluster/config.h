/* The typed node configuration parsed from INI (see docs/config.md): node-scoped and
 * cluster-scoped keys, listeners, pools and their servers, limits, timeouts. */
#ifndef VORO_CLUSTER_CONFIG_H
#define VORO_CLUSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define VORO_NAME_MAX 64
#define VORO_ADDR_TEXT_MAX 80
#define VORO_POOL_MAX_SERVERS 256

enum voro_listener_mode {
    VORO_MODE_TCP = 0,
    VORO_MODE_UDP = 1,
    VORO_MODE_HTTP = 2,
};

/* Mirrors node/loop's enum voro_io_model (same numbering), kept here so cluster/ never includes node/. */
enum voro_cfg_io_model {
    VORO_CFG_IO_URING = 0,
    VORO_CFG_IO_EPOLL = 1,
    VORO_CFG_IO_POLL = 2,
    VORO_CFG_IO_SELECT = 3,
};

enum voro_lb_algorithm {
    VORO_LB_ROUND_ROBIN = 0,    /* smooth weighted round robin */
    VORO_LB_LEAST_CONNECTIONS,  /* fewest in-flight connections (per worker), weighted */
    VORO_LB_CONSISTENT_HASH,    /* Maglev table on the client address, bounded load */
    VORO_LB_POWER_OF_TWO,       /* two random choices, fewer in-flight wins */
};
#define VORO_LB_ALGORITHM_COUNT 4

enum voro_health_type {
    VORO_HEALTH_CHECK_NONE = 0,
    VORO_HEALTH_CHECK_TCP = 1,
};

struct voro_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[VORO_ADDR_TEXT_MAX]; /* as written, normalised: "127.0.0.1:9001", "[::1]:9001" */
};

struct voro_server_config {
    char name[VORO_NAME_MAX];
    struct voro_sockaddr addr;
    uint32_t weight; /* 1..256, default 1; 0 = never picked (drained) */
};

struct voro_health_config {
    enum voro_health_type type; /* default tcp */
    uint32_t interval_ms;       /* default 2000 */
    uint32_t timeout_ms;        /* default 1000 */
    uint32_t rise;              /* default 2 */
    uint32_t fall;              /* default 3 */
};

struct voro_pool_config {
    char name[VORO_NAME_MAX];
    enum voro_lb_algorithm algorithm;
    struct voro_server_config *servers; /* owned by the config */
    size_t n_servers;
    struct voro_health_config health;
    uint32_t connect_timeout_ms; /* default from [timeouts] connect */
    uint32_t retries;            /* connect attempts on other servers after a failure; default 2 */
    double hash_balance_factor;  /* consistent_hash bounded load factor, default 1.25 */
    int line;                    /* where it was defined, for messages */
};

struct voro_listener_config {
    char name[VORO_NAME_MAX];
    enum voro_listener_mode mode;
    struct voro_sockaddr bind;
    char pool_name[VORO_NAME_MAX];
    size_t pool_index;      /* resolved index into voro_config.pools */
    uint32_t idle_timeout_ms; /* TCP: both sides idle; UDP: session idle expiry */
    int line;
};

struct voro_config {
    char *source_path; /* owned; the file it came from (for messages) */

    /* node scope */
    char node_name[VORO_NAME_MAX];
    unsigned threads;               /* resolved: "auto" = online CPUs */
    bool threads_auto;
    enum voro_cfg_io_model io_model;
    bool hugepages;
    struct voro_sockaddr admin_bind; /* [monitor] stats_port / admin_address; default 127.0.0.1:9100 */
    bool enable_dashboard;
    char data_dir[256];
    char log_level[16];
    uint32_t buf_size;  /* [server] buffer_size */
    uint32_t buf_count; /* [server] buffers (per worker) */
    bool splice;        /* [server] splice: zero-copy forwarding of bulk TCP flows through pipes */
    uint32_t pipes;     /* [server] pipes: pipe pool bound per worker (2 fds each) */

    /* node scope: [cluster] (Raft membership; a member when node_id is set) */
    bool cluster_enabled;
    uint32_t cluster_node_id;
    char cluster_name[VORO_NAME_MAX];
    char cluster_data_dir[256];    /* default "<[node] data_dir>/raft" */
    struct voro_sockaddr raft_addr;
    char cluster_token[256];       /* secret: never logged nor served */
    uint32_t election_timeout_ms;  /* default 300 */
    uint32_t heartbeat_timeout_ms; /* default 50 */
    uint32_t snapshot_threshold;   /* default 1024 */
    uint32_t snapshot_trailing;    /* default 2048 */

    /* cluster scope: limits */
    uint32_t max_connections;        /* node-wide; 0 = unlimited */
    uint32_t max_connections_per_ip; /* 0 = unlimited */
    uint32_t global_qps;             /* new connections (L4) per second, node-wide; 0 = unlimited */
    uint32_t per_ip_table_size;      /* bounded table for per-IP counts, default 65536 */

    /* cluster scope: timeouts (ms) */
    uint32_t connect_timeout_ms; /* default 3000 */
    uint32_t idle_timeout_ms;    /* default 300000 (TCP), listener may override */
    uint32_t udp_idle_timeout_ms;/* default 30000 */
    uint32_t drain_timeout_ms;   /* SIGTERM grace period, default 30000 */

    struct voro_listener_config *listeners; /* owned */
    size_t n_listeners;
    struct voro_pool_config *pools; /* owned */
    size_t n_pools;
};

/* One parse or validation error, already formatted as "file:line: reason". */
struct voro_config_error {
    char message[512];
};

/* Collected errors; `items` owned by the list (voro_config_errors_free). */
struct voro_config_errors {
    struct voro_config_error *items;
    size_t count;
};

/* Parses and validates `path`. On success returns 0 and *out (owned by the caller, free with
 * voro_config_free). On failure returns -EINVAL (or -errno for I/O) and appends every problem
 * found to `errors` (may be NULL), each as "file:line: reason" with a suggestion for a
 * misspelt key. */
int voro_config_load(const char *path, struct voro_config **out, struct voro_config_errors *errors);
/* Same, from text in memory; `name` is used in messages as the file name. */
int voro_config_parse(const char *name, const char *text, size_t len, struct voro_config **out,
                      struct voro_config_errors *errors);

/* Validates a cluster configuration text (what POST /cluster/config carries) with the same
 * parser as `voro -t`: every node-scoped key is an error ("name:line: key 'threads' in [server]
 * is node-scoped ..."). 0 or -EINVAL/-ENOMEM; on success *out (may be NULL: validation only)
 * is the config as this text alone defines it (node keys at their defaults), owned by the caller. */
int voro_config_parse_cluster(const char *name, const char *text, size_t len, struct voro_config **out,
                              struct voro_config_errors *errors);
/* The effective config of a cluster member: node-scoped keys from the local text (its
 * cluster-scoped keys and [listener]/[pool] sections are ignored; *ignored, may be NULL, counts
 * them for one log line) plus cluster-scoped keys from the cluster text (node-scoped keys there
 * are errors). Messages name the text each problem comes from. Same ownership as voro_config_parse. */
int voro_config_parse_layered(const char *local_name, const char *local_text, size_t local_len,
                              const char *cluster_name, const char *cluster_text, size_t cluster_len,
                              struct voro_config **out, struct voro_config_errors *errors, size_t *ignored);
/* Same with the local text read from `path`. */
int voro_config_load_layered(const char *path, const char *cluster_name, const char *cluster_text,
                             size_t cluster_len, struct voro_config **out, struct voro_config_errors *errors,
                             size_t *ignored);
void voro_config_free(struct voro_config *cfg);
void voro_config_errors_free(struct voro_config_errors *errors);

const char *voro_lb_algorithm_name(enum voro_lb_algorithm algo);
const char *voro_listener_mode_name(enum voro_listener_mode mode);

/* Parses "host:port", "[v6]:port" or "*:port" into `out` (numeric hosts only, no DNS).
 * Returns 0 or -EINVAL. */
int voro_sockaddr_parse(const char *text, struct voro_sockaddr *out);

/* Scope of a key, as documented. */
enum voro_config_scope {
    VORO_SCOPE_NODE = 0,
    VORO_SCOPE_CLUSTER = 1,
};

/* The schema, for docs and tests: one row per (section, key). Sections written with a name
 * ("listener NAME") appear as "listener". Key "*" means any key name (e.g. [backend]). */
struct voro_config_key_info {
    const char *section;
    const char *key;
    enum voro_config_scope scope;
    const char *type;    /* "uint", "bool", "enum(a|b)", "addr", "duration", "string", ... */
    const char *default_value;
};
const struct voro_config_key_info *voro_config_schema(size_t *count);

#endif
