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
    VORO_LB_LEAST_CONNECTIONS,  /* fewest in-flight connections/requests (per worker), weighted */
    VORO_LB_CONSISTENT_HASH,    /* Maglev table on a key (client address, header, cookie, model), bounded load */
    VORO_LB_POWER_OF_TWO,       /* two random choices, fewer in-flight wins */
    VORO_LB_EWMA,               /* peak-EWMA latency x (in-flight + 1), power of two choices */
    VORO_LB_QUEUE_LENGTH,       /* shortest engine queue (scraped) + Voro's own in-flight */
    VORO_LB_GPU_AWARE,          /* documented score from engine and GPU metrics (docs/algorithms.md) */
};
#define VORO_LB_ALGORITHM_COUNT 7

/* What a consistent_hash pool hashes. */
enum voro_hash_key {
    VORO_HASH_CLIENT_IP = 0,
    VORO_HASH_HEADER,  /* hash_key = header:NAME */
    VORO_HASH_COOKIE,  /* hash_key = cookie:NAME */
    VORO_HASH_MODEL,   /* hash_key = model */
};

enum voro_health_type {
    VORO_HEALTH_CHECK_NONE = 0,
    VORO_HEALTH_CHECK_TCP = 1,
    VORO_HEALTH_CHECK_HTTP = 2,   /* health_method health_path, expect status (and body substring) */
    VORO_HEALTH_CHECK_SCRIPT = 3, /* health_script with {host} and {port} substituted, exit 0 = up */
};

/* A model a server serves: "name", "name@version" or an adapter "lora:name" (of `base`). */
struct voro_model_ref {
    char name[VORO_NAME_MAX];
    char version[32];           /* "" = unversioned */
    char base[VORO_NAME_MAX];   /* adapters: the base model; "" otherwise */
    bool adapter;
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
    /* L7 (pool server option `models=a,b@v2,lora:a-sql`, `metrics=URL`, `capacity=N`) */
    struct voro_model_ref *models; /* owned; declared models (learned ones come from /v1/models) */
    size_t n_models;
    char metrics_url[256];         /* "" = no scrape; e.g. http://127.0.0.1:9001/metrics */
    uint32_t capacity;             /* concurrent sequences it can run, 0 = learn it */
};

struct voro_health_config {
    enum voro_health_type type; /* default tcp */
    uint32_t interval_ms;       /* default 2000 */
    uint32_t timeout_ms;        /* default 1000 */
    uint32_t rise;              /* default 2 */
    uint32_t fall;              /* default 3 */
    char method[16];            /* http: default GET */
    char path[256];             /* http: default /health */
    uint32_t expect_status;     /* http: default 200 */
    char expect_body[128];      /* http: substring the body must contain, "" = any */
    char script[256];           /* script: command line with {host} {port} */
};

/* Passive outlier ejection, slow start, metrics scraping of one pool. */
struct voro_pool_l7_config {
    uint32_t eject_consecutive;  /* consecutive 5xx / connect failures that eject; 0 = off (default 5) */
    uint32_t eject_base_ms;      /* first ejection; doubles on each repeat (default 10s) */
    uint32_t eject_max_percent;  /* at most this share of the pool ejected at once (default 50) */
    uint32_t slow_start_ms;      /* weight ramp after (re)joining, 0 = off (default 0) */
    bool warmup;                 /* send one small request per model before taking traffic */
    bool learn_models;           /* GET /v1/models from each server (default true for http pools) */
    uint32_t metrics_interval_ms;/* default 1000 */
    uint32_t metrics_stale_ms;   /* metrics older than this are stale (default 3000) */
    enum voro_hash_key hash_key;
    char hash_key_name[VORO_NAME_MAX]; /* header or cookie name */
    uint32_t upstream_max_idle;  /* idle keep-alive connections per worker per server (default 256) */
    uint32_t upstream_idle_timeout_ms; /* shorter than the backends' keep-alive (default 4s) */
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
    struct voro_pool_l7_config l7;
    int line;                    /* where it was defined, for messages */
};

/* HTTP methods as bits (route matching). */
#define VORO_METHOD_GET (1u << 0)
#define VORO_METHOD_HEAD (1u << 1)
#define VORO_METHOD_POST (1u << 2)
#define VORO_METHOD_PUT (1u << 3)
#define VORO_METHOD_DELETE (1u << 4)
#define VORO_METHOD_PATCH (1u << 5)
#define VORO_METHOD_OPTIONS (1u << 6)
#define VORO_METHOD_OTHER (1u << 7)

/* [route] path_prefix_mode: how a path prefix matches the normalised path. */
enum voro_prefix_mode {
    VORO_PREFIX_SEGMENT = 0, /* "/v1" matches "/v1" and "/v1/..." but not "/v10" */
    VORO_PREFIX_STRING = 1,  /* plain byte prefix: "/v1" also matches "/v10" */
};

/* [route NAME]: first match in file order wins. Every condition given must hold. */
struct voro_route_config {
    char name[VORO_NAME_MAX];
    char listener[VORO_NAME_MAX]; /* "" = every http listener */
    char host[128];               /* "" = any; exact, or "*.example.com" suffix; case-insensitive */
    char path_prefix[256];        /* "" = any; in normalised form (no dot segments, "//", '?') */
    int path_prefix_mode;         /* enum voro_prefix_mode, default segment */
    uint32_t methods;             /* VORO_METHOD_* bits, 0 = any */
    char header_name[64];         /* "" = none; header = NAME: VALUE (exact value, or NAME alone = present) */
    char header_value[128];
    char model[VORO_NAME_MAX + 32]; /* "" = no model condition; "*" = any model; "name" or "name@version" */
    char pool_name[VORO_NAME_MAX];
    size_t pool_index;
    bool rewrite_model;           /* rewrite the body's model to the name the chosen server serves */
    bool model_from_header;       /* X-Model may name the model (default); false: X-Model -> 400 */
    uint32_t body_limit;          /* bytes buffered to find the model, default 1 MiB (larger -> 413) */
    int line;
};

/* HTTP listener limits and timeouts ([http] section, cluster scope). */
struct voro_http_config {
    uint32_t max_request_line;   /* 414 beyond; default 8192 */
    uint32_t max_header_bytes;   /* 431 beyond; default 32768 (whole head) */
    uint32_t max_headers;        /* 431 beyond; default 100 */
    uint64_t max_body;           /* 413 beyond; 0 = unlimited (default) */
    uint32_t header_timeout_ms;  /* 408 when a request head takes longer (slowloris); default 10s */
    uint32_t body_timeout_ms;    /* 408 when a body takes longer (extended by body_min_rate); default 30s */
    uint32_t body_min_rate;      /* bytes/s: a streamed body's deadline grows 1s per this many bytes; default 1k */
    uint64_t max_buffered_body_memory; /* node-wide bytes of bodies buffered for model routing (503 beyond); 256m */
    uint32_t response_timeout_ms;/* 504 when the server sends no response head; default 300s */
    uint32_t keepalive_timeout_ms; /* idle client keep-alive; default 60s */
    bool add_request_id;         /* X-Request-Id when absent; default true */
    bool access_log;             /* one log line per request; default false */
    char via[64];                /* Via: 1.1 <via>; default "voro" */
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
    struct voro_route_config *routes; /* owned, file order */
    size_t n_routes;
    struct voro_http_config http;
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
