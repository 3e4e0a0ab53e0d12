/* Typed node configuration: a schema table drives parsing, defaults, validation and the docs. */
#include "cluster/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/model_ref.h"
#include "proto/http1_target.h"
#include "proto/ini.h"

#define MAX_ERRORS 200          /* keeps a garbage file from producing megabytes of messages */
#define MAX_LISTENERS 1024
#define MAX_POOLS 1024
#define MAX_FILE_BYTES (4u << 20)
#define MAX_THREADS 256
#define MAX_ROUTES 1024
#define MAX_MODELS 64 /* per server */

enum section {
    SEC_SERVER,
    SEC_BACKEND,
    SEC_BALANCER,
    SEC_LIMIT,
    SEC_MONITOR,
    SEC_NODE,
    SEC_TIMEOUTS,
    SEC_LISTENER,
    SEC_POOL,
    SEC_HTTP,
    SEC_ROUTE,
    SEC_CLUSTER,
    SEC_COUNT,
};

static const struct {
    const char *name;
    bool named; /* written as [type NAME] */
} g_sections[SEC_COUNT] = {
    [SEC_SERVER] = {"server", false},   [SEC_BACKEND] = {"backend", false}, [SEC_BALANCER] = {"balancer", false},
    [SEC_LIMIT] = {"limit", false},     [SEC_MONITOR] = {"monitor", false}, [SEC_NODE] = {"node", false},
    [SEC_TIMEOUTS] = {"timeouts", false}, [SEC_LISTENER] = {"listener", true}, [SEC_POOL] = {"pool", true},
    [SEC_HTTP] = {"http", false},         [SEC_ROUTE] = {"route", true},
    [SEC_CLUSTER] = {"cluster", false},
};

enum kind { K_UINT, K_BOOL, K_DURATION, K_SIZE, K_SIZE64, K_STRING, K_ENUM, K_FLOAT, K_ADDR, K_CUSTOM };
enum target { T_CFG, T_LISTENER, T_POOL, T_ROUTE };

#define F_REPEAT 1u    /* may appear more than once in a section (pool `server`) */
#define F_NODEFAULT 2u /* the default is computed or lives elsewhere: do not apply the text */
#define F_PATTERN 4u   /* key is a pattern: "*" any key, "bind.*" any key with that prefix */

struct pstate;
struct row;
typedef int (*setter_fn)(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                         int line, char *why, size_t n);

struct row {
    enum section sec;
    const char *key;
    enum voro_config_scope scope;
    const char *type;
    const char *def;
    enum kind kind;
    enum target target;
    size_t off;
    double min, max; /* K_UINT, K_DURATION (ms), K_SIZE (bytes), K_FLOAT, K_STRING (max length) */
    const char *choices; /* K_ENUM: "a|b|c", index = stored int */
    setter_fn set;
    unsigned flags;
    const char *doc;
};

static int set_server_port(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                           size_t);
static int set_server_bind(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                           size_t);
static int set_server_mode(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                           size_t);
static int set_threads(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                       size_t);
static int set_buffers(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                       size_t);
static int set_log_level(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                         size_t);
static int set_backend(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                       size_t);
static int set_balancer(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                        size_t);
static int set_stats_port(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                          size_t);
static int set_node_name(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                         size_t);
static int set_bind_override(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                             size_t);
static int set_algorithm(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                         size_t);
static int set_pool_server(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                           size_t);
/* The L7 setters, declared through the function type to keep the list short. */
typedef int setter_fn_t(struct pstate *, const struct row *, void *, const char *, const char *, int, char *, size_t);
static setter_fn_t set_hash_key;
static setter_fn_t set_health_method;
static setter_fn_t set_url_path;
static setter_fn_t set_route_prefix;
static setter_fn_t set_route_host;
static setter_fn_t set_route_methods;
static setter_fn_t set_route_header;
static setter_fn_t set_route_model;
static int set_cluster_admin(struct pstate *, const struct row *, void *, const char *, const char *, int, char *,
                             size_t);

#define NODE VORO_SCOPE_NODE
#define CLUSTER VORO_SCOPE_CLUSTER
#define CFG(f) T_CFG, offsetof(struct voro_config, f)
#define LIS(f) T_LISTENER, offsetof(struct voro_listener_config, f)
#define POOL(f) T_POOL, offsetof(struct voro_pool_config, f)
#define ROUTE(f) T_ROUTE, offsetof(struct voro_route_config, f)
#define NONE T_CFG, 0
#define ALGOS "round_robin|least_connections|consistent_hash|power_of_two|ewma|queue_length|gpu_aware"
#define H1 3600000.0
#define U32 4294967295.0

/* The one table: parsing, defaults, voro_config_schema() and docs/config.md all follow it. */
static const struct row g_rows[] = {
    {SEC_SERVER, "port", CLUSTER, "port", "-", K_CUSTOM, NONE, 1, 65535, NULL, set_server_port, 0,
     "Port of the implicit listener \"default\" (pool \"default\"); without it [server] defines no listener."},
    {SEC_SERVER, "bind", CLUSTER, "host", "0.0.0.0", K_CUSTOM, NONE, 0, 0, NULL, set_server_bind, 0,
     "Address the implicit listener binds (numeric IPv4 or IPv6, or *)."},
    {SEC_SERVER, "mode", CLUSTER, "enum(tcp|udp|http)", "tcp", K_CUSTOM, NONE, 0, 0, "tcp|udp|http",
     set_server_mode, 0, "Protocol of the implicit listener."},
    {SEC_SERVER, "threads", NODE, "uint|auto", "auto", K_CUSTOM, NONE, 1, MAX_THREADS, NULL, set_threads, 0,
     "Worker threads, 1..256; auto = online CPUs."},
    {SEC_SERVER, "io_model", NODE, "enum(io_uring|epoll|poll|select)", "io_uring", K_ENUM, CFG(io_model), 0, 0,
     "io_uring|epoll|poll|select", NULL, 0, "Event loop backend of the workers."},
    {SEC_SERVER, "hugepages", NODE, "bool", "false", K_BOOL, CFG(hugepages), 0, 0, NULL, NULL, 0,
     "Back the receive buffer pool with huge pages (falls back with a log line)."},
    {SEC_SERVER, "buffer_size", NODE, "size", "16k", K_SIZE, CFG(buf_size), 1024, 1048576, NULL, NULL, 0,
     "Bytes per receive buffer, 1k..1m."},
    {SEC_SERVER, "buffers", NODE, "uint", "1024", K_CUSTOM, CFG(buf_count), 16, 32768, NULL, set_buffers, 0,
     "Receive buffers per worker, a power of two in 16..32768."},
    {SEC_SERVER, "splice", NODE, "bool", "true", K_BOOL, CFG(splice), 0, 0, NULL, NULL, 0,
     "Forward bulk TCP flows with splice(2) through a pipe instead of copying through buffers."},
    {SEC_SERVER, "pipes", NODE, "uint", "256", K_UINT, CFG(pipes), 0, 16384, NULL, NULL, 0,
     "Pipes per worker for splice (2 fds each); flows beyond it use buffers."},
    {SEC_SERVER, "log_level", NODE, "enum(debug|info|warn|error)", "info", K_CUSTOM, NONE, 0, 0,
     "debug|info|warn|error", set_log_level, 0, "Minimum level of log lines written to stderr."},

    {SEC_BACKEND, "*", CLUSTER, "backend", "-", K_CUSTOM, NONE, 0, 0, NULL, set_backend, F_PATTERN,
     "Each key is a server of pool \"default\": NAME = ADDR:PORT [weight=N]."},

    {SEC_BALANCER, "algorithm", CLUSTER, "enum(" ALGOS ")", "round_robin", K_CUSTOM, NONE, 0, 0, ALGOS,
     set_balancer, F_NODEFAULT, "Algorithm of pool \"default\"."},
    {SEC_BALANCER, "hash_balance_factor", CLUSTER, "float", "1.25", K_CUSTOM, NONE, 1.0, 100.0, NULL,
     set_balancer, F_NODEFAULT, "Bounded-load factor of pool \"default\" (consistent_hash), 1.0..100."},
    {SEC_BALANCER, "hash_key", CLUSTER, "hash_key", "client_ip", K_CUSTOM, NONE, 0, 0, NULL, set_balancer,
     F_NODEFAULT, "What pool \"default\" hashes (consistent_hash): client_ip, model, header:NAME or cookie:NAME."},

    {SEC_LIMIT, "max_connections", CLUSTER, "uint", "0", K_UINT, CFG(max_connections), 0, U32, NULL, NULL, 0,
     "Client connections open at once on this node; 0 = unlimited."},
    {SEC_LIMIT, "max_connections_per_ip", CLUSTER, "uint", "0", K_UINT, CFG(max_connections_per_ip), 0, U32, NULL,
     NULL, 0, "Client connections open at once from one client address; 0 = unlimited."},
    {SEC_LIMIT, "global_qps", CLUSTER, "uint", "0", K_UINT, CFG(global_qps), 0, U32, NULL, NULL, 0,
     "New connections (L4) per second accepted by the node; 0 = unlimited."},
    {SEC_LIMIT, "per_ip_table_size", CLUSTER, "uint", "65536", K_UINT, CFG(per_ip_table_size), 64, 16777216, NULL,
     NULL, 0, "Entries of the bounded table counting connections per client address, 64..16777216."},

    {SEC_MONITOR, "enable_dashboard", NODE, "bool", "true", K_BOOL, CFG(enable_dashboard), 0, 0, NULL, NULL, 0,
     "Serve /dashboard on the admin server."},
    {SEC_MONITOR, "stats_port", NODE, "port", "9100", K_CUSTOM, NONE, 1, 65535, NULL, set_stats_port, 0,
     "Port of the admin server (/stats, /metrics, /dashboard) on 127.0.0.1; [node] admin_address overrides it."},

    {SEC_NODE, "name", NODE, "name", "(hostname)", K_CUSTOM, NONE, 0, VORO_NAME_MAX - 1, NULL, set_node_name,
     F_NODEFAULT, "Name of this node in the cluster; letters, digits, '_', '-', '.'."},
    {SEC_NODE, "data_dir", NODE, "path", "/var/lib/voro", K_STRING, CFG(data_dir), 0, 255, NULL, NULL, 0,
     "Directory for the node's persistent state."},
    {SEC_NODE, "admin_address", NODE, "addr", "127.0.0.1:9100", K_ADDR, CFG(admin_bind), 0, 0, NULL, NULL, 0,
     "ADDR:PORT of the admin server; overrides [monitor] stats_port."},
    {SEC_NODE, "bind.*", NODE, "addr", "-", K_CUSTOM, NONE, 0, 0, NULL, set_bind_override, F_PATTERN,
     "bind.LISTENER = ADDR:PORT overrides that listener's bind address on this node only."},

    {SEC_CLUSTER, "node_id", NODE, "uint", "-", K_UINT, CFG(cluster_node_id), 1, U32, NULL, NULL, 0,
     "Raft id of this node, unique in the cluster, 1..4294967295; setting it makes the node a cluster member."},
    {SEC_CLUSTER, "name", NODE, "name", "voro", K_STRING, CFG(cluster_name), 0, VORO_NAME_MAX - 1, NULL, NULL, 0,
     "Name of the cluster, shown by /cluster/status."},
    {SEC_CLUSTER, "data_dir", NODE, "path", "([node] data_dir)/raft", K_STRING, CFG(cluster_data_dir), 0, 255, NULL,
     NULL, F_NODEFAULT, "Directory of the Raft log and snapshots; empty at first start = not initialised."},
    {SEC_CLUSTER, "raft_address", NODE, "addr", "-", K_ADDR, CFG(raft_addr), 0, 0, NULL, NULL, 0,
     "ADDR:PORT the Raft transport binds and peers connect to (required with node_id)."},
    {SEC_CLUSTER, "admin_address", NODE, "addr", "[node] admin_address", K_CUSTOM, NONE, 0, 0, NULL,
     set_cluster_admin, F_NODEFAULT, "Alias of [node] admin_address (set one of them): peers reach the cluster API here."},
    {SEC_CLUSTER, "token", NODE, "string", "-", K_STRING, CFG(cluster_token), 0, 255, NULL, NULL, 0,
     "Bearer token every /cluster request must carry (required with node_id); never shown by the API."},
    {SEC_CLUSTER, "election_timeout", NODE, "duration", "300ms", K_DURATION, CFG(election_timeout_ms), 10, 60000,
     NULL, NULL, 0, "Raft election timeout, 10ms..60s (randomised between 1x and 2x)."},
    {SEC_CLUSTER, "snapshot_threshold", NODE, "uint", "1024", K_UINT, CFG(snapshot_threshold), 4, 1000000, NULL, NULL,
     0, "Raft log entries between two snapshots of the cluster state."},
    {SEC_CLUSTER, "snapshot_trailing", NODE, "uint", "2048", K_UINT, CFG(snapshot_trailing), 0, 1000000, NULL, NULL,
     0, "Log entries kept after a snapshot, so a briefly lagging node catches up without one."},
    {SEC_CLUSTER, "heartbeat_timeout", NODE, "duration", "50ms", K_DURATION, CFG(heartbeat_timeout_ms), 1, 60000,
     NULL, NULL, 0, "Raft heartbeat interval of the leader, below election_timeout."},

    {SEC_TIMEOUTS, "connect", CLUSTER, "duration", "3s", K_DURATION, CFG(connect_timeout_ms), 1, H1, NULL, NULL, 0,
     "Default time to connect to a server (pool connect_timeout), 1ms..1h."},
    {SEC_TIMEOUTS, "idle", CLUSTER, "duration", "5m", K_DURATION, CFG(idle_timeout_ms), 0, 24 * H1, NULL, NULL, 0,
     "Default idle timeout of TCP and HTTP listeners (both sides idle), 0 = none, up to 24h."},
    {SEC_TIMEOUTS, "udp_idle", CLUSTER, "duration", "30s", K_DURATION, CFG(udp_idle_timeout_ms), 1, H1, NULL, NULL,
     0, "Default expiry of an idle UDP session, 1ms..1h."},
    {SEC_TIMEOUTS, "drain", CLUSTER, "duration", "30s", K_DURATION, CFG(drain_timeout_ms), 0, H1, NULL, NULL, 0,
     "Grace period for open connections after SIGTERM, 0..1h."},

    {SEC_LISTENER, "mode", CLUSTER, "enum(tcp|udp|http)", "tcp", K_ENUM, LIS(mode), 0, 0, "tcp|udp|http", NULL, 0,
     "Protocol of the listener."},
    {SEC_LISTENER, "bind", CLUSTER, "addr", "-", K_ADDR, LIS(bind), 0, 0, NULL, NULL, 0,
     "ADDR:PORT to listen on (required): 127.0.0.1:8080, [::1]:8080, *:8080."},
    {SEC_LISTENER, "pool", CLUSTER, "name", "default", K_STRING, LIS(pool_name), 0, VORO_NAME_MAX - 1, NULL, NULL,
     0, "Pool the listener forwards to."},
    {SEC_LISTENER, "idle_timeout", CLUSTER, "duration", "[timeouts] idle", K_DURATION, LIS(idle_timeout_ms), 0,
     24 * H1, NULL, NULL, F_NODEFAULT, "Idle timeout; the default is [timeouts] idle (udp: [timeouts] udp_idle)."},

    {SEC_POOL, "algorithm", CLUSTER, "enum(" ALGOS ")", "round_robin", K_CUSTOM, NONE, 0, 0, ALGOS, set_algorithm,
     0, "Load-balancing algorithm."},
    {SEC_POOL, "server", CLUSTER, "server", "-", K_CUSTOM, NONE, 0, 0, NULL, set_pool_server, F_REPEAT,
     "A server, repeatable: NAME ADDR:PORT [weight=N] [models=LIST] [metrics=URL] [capacity=N]; weight 1..256 "
     "(default 1), 0 = drained."},
    {SEC_POOL, "health_check", CLUSTER, "enum(none|tcp|http|script)", "tcp", K_ENUM, POOL(health.type), 0, 0,
     "none|tcp|http|script", NULL, 0,
     "Active health check: tcp connects, http sends health_method health_path, script runs health_script, none "
     "assumes servers are up."},
    {SEC_POOL, "health_interval", CLUSTER, "duration", "2s", K_DURATION, POOL(health.interval_ms), 100, H1, NULL,
     NULL, 0, "Time between health checks of one server, 100ms..1h."},
    {SEC_POOL, "health_timeout", CLUSTER, "duration", "1s", K_DURATION, POOL(health.timeout_ms), 1, H1, NULL, NULL,
     0, "Time a health check may take, 1ms..1h."},
    {SEC_POOL, "health_rise", CLUSTER, "uint", "2", K_UINT, POOL(health.rise), 1, 100, NULL, NULL, 0,
     "Consecutive successes that mark a server up, 1..100."},
    {SEC_POOL, "health_fall", CLUSTER, "uint", "3", K_UINT, POOL(health.fall), 1, 100, NULL, NULL, 0,
     "Consecutive failures that mark a server down, 1..100."},
    {SEC_POOL, "connect_timeout", CLUSTER, "duration", "[timeouts] connect", K_DURATION, POOL(connect_timeout_ms),
     1, H1, NULL, NULL, F_NODEFAULT, "Time to connect to a server, 1ms..1h."},
    {SEC_POOL, "retries", CLUSTER, "uint", "2", K_UINT, POOL(retries), 0, 16, NULL, NULL, 0,
     "Connect attempts on other servers after a failed one, 0..16."},
    {SEC_POOL, "hash_balance_factor", CLUSTER, "float", "1.25", K_FLOAT, POOL(hash_balance_factor), 1.0, 100.0,
     NULL, NULL, 0, "consistent_hash bounded load: no server gets more than factor x average, 1.0..100."},
    {SEC_POOL, "hash_key", CLUSTER, "hash_key", "client_ip", K_CUSTOM, NONE, 0, 0, NULL, set_hash_key, 0,
     "What consistent_hash hashes: client_ip, model (the request's model), header:NAME or cookie:NAME."},
    {SEC_POOL, "health_method", CLUSTER, "enum(GET|HEAD)", "GET", K_CUSTOM, POOL(health.method), 0, 0, "GET|HEAD",
     set_health_method, 0, "Method of the http health check."},
    {SEC_POOL, "health_path", CLUSTER, "urlpath", "/health", K_CUSTOM, POOL(health.path), 0, 255, NULL, set_url_path,
     0, "Path (with query) of the http health check; starts with '/'."},
    {SEC_POOL, "health_expect_status", CLUSTER, "uint", "200", K_UINT, POOL(health.expect_status), 100, 599, NULL,
     NULL, 0, "Status the http health check expects, 100..599."},
    {SEC_POOL, "health_expect_body", CLUSTER, "string", "(any)", K_STRING, POOL(health.expect_body), 0, 127, NULL,
     NULL, F_NODEFAULT, "Substring the http health check's body must contain (up to 127 bytes)."},
    {SEC_POOL, "health_script", CLUSTER, "string", "-", K_STRING, POOL(health.script), 0, 255, NULL, NULL, 0,
     "Command of the script health check ({host} and {port} are substituted); exit status 0 = up. Required with "
     "health_check = script."},
    {SEC_POOL, "eject_consecutive", CLUSTER, "uint", "5", K_UINT, POOL(l7.eject_consecutive), 0, 1000, NULL, NULL,
     0, "Consecutive 5xx answers or connect failures that eject a server (passive), 0 = off, up to 1000."},
    {SEC_POOL, "eject_base_time", CLUSTER, "duration", "10s", K_DURATION, POOL(l7.eject_base_ms), 1, H1, NULL, NULL,
     0, "First ejection time; it doubles on each repeated ejection, 1ms..1h."},
    {SEC_POOL, "eject_max_percent", CLUSTER, "uint", "50", K_UINT, POOL(l7.eject_max_percent), 0, 100, NULL, NULL,
     0, "At most this share of the pool's servers is ejected at once, 0..100."},
    {SEC_POOL, "slow_start", CLUSTER, "duration", "0", K_DURATION, POOL(l7.slow_start_ms), 0, H1, NULL, NULL, 0,
     "Weight ramp-up after a server (re)joins, 0 = off, up to 1h."},
    {SEC_POOL, "warmup", CLUSTER, "bool", "false", K_BOOL, POOL(l7.warmup), 0, 0, NULL, NULL, 0,
     "Send one small request per declared model before a server takes traffic."},
    {SEC_POOL, "learn_models", CLUSTER, "bool", "true", K_BOOL, POOL(l7.learn_models), 0, 0, NULL, NULL, 0,
     "Learn the models each server serves from GET /v1/models (pools reached through http listeners)."},
    {SEC_POOL, "metrics_interval", CLUSTER, "duration", "1s", K_DURATION, POOL(l7.metrics_interval_ms), 100, H1,
     NULL, NULL, 0, "Time between scrapes of a server's metrics URL, 100ms..1h."},
    {SEC_POOL, "metrics_stale", CLUSTER, "duration", "3s", K_DURATION, POOL(l7.metrics_stale_ms), 1, H1, NULL, NULL,
     0, "Metrics older than this are stale and not used for balancing, 1ms..1h."},
    {SEC_POOL, "upstream_max_idle", CLUSTER, "uint", "256", K_UINT, POOL(l7.upstream_max_idle), 0, 4096, NULL, NULL,
     0, "Idle keep-alive connections kept per worker per server, 0..4096."},
    {SEC_POOL, "upstream_idle_timeout", CLUSTER, "duration", "4s", K_DURATION, POOL(l7.upstream_idle_timeout_ms), 1,
     H1, NULL, NULL, 0, "Idle keep-alive connections to servers are closed after this (keep it below the servers' own "
     "keep-alive timeout), 1ms..1h."},

    {SEC_HTTP, "max_request_line", CLUSTER, "size", "8k", K_SIZE, CFG(http.max_request_line), 64, 1048576, NULL,
     NULL, 0, "Longest request line (414 beyond), 64..1m."},
    {SEC_HTTP, "max_header_bytes", CLUSTER, "size", "32k", K_SIZE, CFG(http.max_header_bytes), 256, 1048576, NULL,
     NULL, 0, "Longest request head including the request line (431 beyond), 256..1m."},
    {SEC_HTTP, "max_headers", CLUSTER, "uint", "100", K_UINT, CFG(http.max_headers), 1, 100, NULL, NULL, 0,
     "Most header fields in a request (431 beyond), 1..100."},
    {SEC_HTTP, "max_body", CLUSTER, "size", "0", K_SIZE64, CFG(http.max_body), 0, 1099511627776.0, NULL, NULL, 0,
     "Largest request body (413 beyond), 0 = unlimited, up to 1t."},
    {SEC_HTTP, "header_timeout", CLUSTER, "duration", "10s", K_DURATION, CFG(http.header_timeout_ms), 1, H1, NULL,
     NULL, 0, "Time a client may take to send a request head (408 beyond), 1ms..1h."},
    {SEC_HTTP, "body_timeout", CLUSTER, "duration", "30s", K_DURATION, CFG(http.body_timeout_ms), 1, H1, NULL, NULL,
     0, "Time a client may take to send a request body, extended by body_min_rate for a streamed body (408 beyond), 1ms..1h."},
    {SEC_HTTP, "body_min_rate", CLUSTER, "size", "1k", K_SIZE, CFG(http.body_min_rate), 0, 1073741824, NULL, NULL, 0,
     "A streamed request body's deadline grows by 1s for every this many bytes received (a minimum rate in bytes/s), 0 = a fixed deadline."},
    {SEC_HTTP, "max_buffered_body_memory", NODE, "size", "256m", K_SIZE64, CFG(http.max_buffered_body_memory), 1048576,
     1099511627776.0, NULL, NULL, 0,
     "Node-wide memory for request bodies buffered to find their model (503 beyond), 1m..1t."},
    {SEC_HTTP, "response_timeout", CLUSTER, "duration", "5m", K_DURATION, CFG(http.response_timeout_ms), 1, 24 * H1,
     NULL, NULL, 0, "Time a server may take to send the response head (504 beyond), 1ms..24h."},
    {SEC_HTTP, "keepalive_timeout", CLUSTER, "duration", "1m", K_DURATION, CFG(http.keepalive_timeout_ms), 0, H1,
     NULL, NULL, 0, "Idle time of a client keep-alive connection between requests, 0 = no keep-alive, up to 1h."},
    {SEC_HTTP, "add_request_id", CLUSTER, "bool", "true", K_BOOL, CFG(http.add_request_id), 0, 0, NULL, NULL, 0,
     "Add an X-Request-Id header to requests that have none."},
    {SEC_HTTP, "access_log", CLUSTER, "bool", "false", K_BOOL, CFG(http.access_log), 0, 0, NULL, NULL, 0,
     "Log one line per HTTP request (client, method, path, status, route, server, model, bytes, timings)."},
    {SEC_HTTP, "via", CLUSTER, "name", "voro", K_STRING, CFG(http.via), 0, 63, NULL, NULL, 0,
     "Pseudonym in the Via header added to requests and responses (Via: 1.1 NAME)."},

    {SEC_ROUTE, "listener", CLUSTER, "name", "(every http listener)", K_STRING, ROUTE(listener), 0,
     VORO_NAME_MAX - 1, NULL, NULL, F_NODEFAULT, "Only requests on this listener (it must have mode = http)."},
    {SEC_ROUTE, "host", CLUSTER, "host pattern", "(any)", K_CUSTOM, ROUTE(host), 0, 127, NULL, set_route_host,
     F_NODEFAULT, "Host header (port ignored, case-insensitive): exact, or *.example.com for any subdomain."},
    {SEC_ROUTE, "path_prefix", CLUSTER, "urlpath", "(any)", K_CUSTOM, ROUTE(path_prefix), 0, 255, NULL,
     set_route_prefix, F_NODEFAULT, "The normalised request path starts with this (see path_prefix_mode); starts "
     "with '/', written in normalised form (no '.' or '..' segments, no '//', no '?')."},
    {SEC_ROUTE, "path_prefix_mode", CLUSTER, "enum(segment|string)", "segment", K_ENUM, ROUTE(path_prefix_mode), 0,
     0, "segment|string", NULL, 0, "segment: the prefix ends at a '/' boundary (/v1 matches /v1 and /v1/x, not "
     "/v10); string: any byte prefix of the normalised path."},
    {SEC_ROUTE, "methods", CLUSTER, "method list", "(any)", K_CUSTOM, ROUTE(methods), 0, 0, NULL, set_route_methods,
     F_NODEFAULT, "Comma list of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, OTHER."},
    {SEC_ROUTE, "header", CLUSTER, "header match", "(none)", K_CUSTOM, NONE, 0, 0, NULL, set_route_header,
     F_NODEFAULT, "NAME: VALUE (the first NAME header equals VALUE exactly) or NAME (the header is present)."},
    {SEC_ROUTE, "model", CLUSTER, "model match", "(none)", K_CUSTOM, ROUTE(model), 0, 0, NULL, set_route_model,
     F_NODEFAULT, "The request's model (X-Model header or the body's top-level \"model\"; both: they must agree): "
     "* = any model, "
     "name = any version of it, name@version = that version."},
    {SEC_ROUTE, "pool", CLUSTER, "name", "-", K_STRING, ROUTE(pool_name), 0, VORO_NAME_MAX - 1, NULL, NULL, 0,
     "Pool the matching requests go to (required)."},
    {SEC_ROUTE, "rewrite_model", CLUSTER, "bool", "false", K_BOOL, ROUTE(rewrite_model), 0, 0, NULL, NULL, 0,
     "Rewrite the body's model to the name the chosen server serves (name@version -> name)."},
    {SEC_ROUTE, "model_from_header", CLUSTER, "bool", "true", K_BOOL, ROUTE(model_from_header), 0, 0, NULL, NULL,
     0, "Accept the X-Model header as the request's model; false: a request with X-Model gets 400 on this route "
     "(the model comes from the body only)."},
    {SEC_ROUTE, "body_limit", CLUSTER, "size", "1m", K_SIZE, ROUTE(body_limit), 1024, 268435456, NULL, NULL, 0,
     "Bytes of body buffered to find the model (larger bodies get 413), 1k..256m."},
};
#define N_ROWS (sizeof(g_rows) / sizeof(g_rows[0]))

static struct voro_config_key_info g_schema[N_ROWS];
static pthread_once_t g_schema_once = PTHREAD_ONCE_INIT;

static void schema_build(void)
{
    for (size_t i = 0; i < N_ROWS; i++) {
        g_schema[i] = (struct voro_config_key_info){
            .section = g_sections[g_rows[i].sec].name,
            .key = g_rows[i].key,
            .scope = g_rows[i].scope,
            .type = g_rows[i].type,
            .default_value = g_rows[i].def,
        };
    }
}

const struct voro_config_key_info *voro_config_schema(size_t *count)
{
    pthread_once(&g_schema_once, schema_build);
    if (count)
        *count = N_ROWS;
    return g_schema;
}

/* ---- parse state ---- */

struct inst {
    int seen[N_ROWS]; /* line where each key was set, 0 = not set */
    bool implicit;    /* created by [backend] / [balancer], not by [pool default] */
    size_t srv_cap;
};

struct bind_override {
    char listener[VORO_NAME_MAX];
    struct voro_sockaddr addr;
    int line;
};

/* How the keys of one input are filtered (layered configs: see voro_config_parse_layered). */
enum layer_filter {
    LAYER_ALL = 0,      /* a whole node file */
    LAYER_NO_NODE,      /* a pushed cluster text: node-scoped keys are errors */
    LAYER_SKIP_CLUSTER, /* the local file of a member: cluster-scoped keys are ignored */
};

struct pstate {
    const char *file;
    enum layer_filter filter;
    size_t ignored; /* keys and sections skipped by LAYER_SKIP_CLUSTER */
    struct voro_config *cfg;
    struct voro_config_errors *errs;
    size_t nerr;   /* errors found */
    size_t stored; /* errors appended to `errs` (capped) */
    bool oom;
    int last_line;

    enum section cur; /* SEC_COUNT = none or an unusable section: keys are skipped */
    size_t cur_idx;   /* listener or pool index for named sections */
    int seen[N_ROWS]; /* unnamed sections */
    struct inst *linst;
    struct inst *pinst;
    struct inst *rinst;
    size_t lcap, pcap, rcap;

    unsigned server_port;
    char server_host[VORO_ADDR_TEXT_MAX + 8];
    enum voro_listener_mode server_mode;
    unsigned stats_port;
    bool listener_failed;
    struct bind_override *ovr;
    size_t n_ovr, ovr_cap;
};

static void add_error(struct pstate *ps, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_error(struct pstate *ps, int line, const char *fmt, ...)
{
    ps->nerr++;
    if (!ps->errs || ps->stored >= MAX_ERRORS)
        return;
    struct voro_config_error *items = realloc(ps->errs->items, (ps->errs->count + 1) * sizeof(*items));
    if (!items) {
        ps->oom = true;
        return;
    }
    ps->errs->items = items;
    struct voro_config_error *e = &items[ps->errs->count++];
    ps->stored++;
    int n = snprintf(e->message, sizeof(e->message), "%s:%d: ", ps->file, line);
    if (n < 0 || (size_t)n >= sizeof(e->message))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message + n, sizeof(e->message) - (size_t)n, fmt, ap);
    va_end(ap);
}

static int whyf(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int whyf(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int bad_value(char *why, size_t n, const struct row *r, const char *value, const char *reason)
{
    return whyf(why, n, "bad value '%.80s' for %s in [%s]: %s", value, r->key, g_sections[r->sec].name, reason);
}

/* ---- value parsers ---- */

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
        s++;
    }
    *out = v;
    *end = s;
    return 0;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) >= VORO_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static int parse_duration_ms(const char *s, uint64_t *out, char *why, size_t n)
{
    uint64_t v;
    const char *end;
    if (parse_u64(s, &v, &end) < 0)
        return whyf(why, n, "expected a number with a unit: 500ms, 3s, 2m, 1h");
    uint64_t mul;
    if (!*end) {
        if (v != 0)
            return whyf(why, n, "a duration needs a unit (ms, s, m, h), e.g. %llus or %llums", (unsigned long long)v,
                        (unsigned long long)v);
        mul = 1;
    } else if (!strcmp(end, "ms")) {
        mul = 1;
    } else if (!strcmp(end, "s")) {
        mul = 1000;
    } else if (!strcmp(end, "m")) {
        mul = 60000;
    } else if (!strcmp(end, "h")) {
        mul = 3600000;
    } else {
        return whyf(why, n, "unknown unit '%.20s' (use ms, s, m or h)", end);
    }
    if (v > UINT32_MAX / mul)
        return whyf(why, n, "too long");
    *out = v * mul;
    return 0;
}

static int parse_size(const char *s, uint64_t limit, uint64_t *out, char *why, size_t n)
{
    uint64_t v;
    const char *end;
    if (parse_u64(s, &v, &end) < 0)
        return whyf(why, n, "expected bytes with an optional k, m, g or t suffix: 16384, 16k, 1m");
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024;
    else if (*end == 'g' || *end == 'G')
        mul = 1024ull * 1024 * 1024;
    else if (*end == 't' || *end == 'T')
        mul = 1024ull * 1024 * 1024 * 1024;
    else if (*end)
        return whyf(why, n, "unknown suffix '%.20s' (use k, m, g or t)", end);
    if (*end && end[1])
        return whyf(why, n, "unknown suffix '%.20s' (use k, m, g or t)", end);
    if (v > limit / mul)
        return whyf(why, n, "too large");
    *out = v * mul;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "on", "yes", "1"};
    static const char *const no[] = {"false", "off", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Index of `s` in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *s)
{
    size_t len = strlen(s);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !memcmp(p, s, n))
            return idx;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static int enum_value(const struct row *r, const char *value, int *out, char *why, size_t n)
{
    int idx = enum_index(r->choices, value);
    if (idx < 0) {
        char reason[200];
        snprintf(reason, sizeof(reason), "expected one of %s", r->choices);
        return bad_value(why, n, r, value, reason);
    }
    *out = idx;
    return 0;
}

static int parse_port(const char *s, unsigned *out)
{
    uint64_t v;
    const char *end;
    if (parse_u64(s, &v, &end) < 0 || *end || v < 1 || v > 65535)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static bool looks_like_hostname(const char *h)
{
    for (; *h; h++)
        if (isalpha((unsigned char)*h) && !isxdigit((unsigned char)*h))
            return true;
    return false;
}

/* Parses "IPv4:PORT", "[IPv6]:PORT" or "*:PORT" with a human reason on failure. */
static int parse_addr(const char *text, struct voro_sockaddr *out, char *why, size_t n)
{
    char host[VORO_ADDR_TEXT_MAX];
    const char *port_s;
    bool v6;
    size_t tlen = strlen(text);
    memset(out, 0, sizeof(*out));
    if (!tlen)
        return whyf(why, n, "empty address (expected ADDR:PORT)");
    if (tlen >= VORO_ADDR_TEXT_MAX)
        return whyf(why, n, "address too long");
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return whyf(why, n, "missing ']' in IPv6 address '%s' (expected [ADDR]:PORT)", text);
        size_t hl = (size_t)(close - text - 1);
        memcpy(host, text + 1, hl);
        host[hl] = '\0';
        if (close[1] != ':')
            return whyf(why, n, "expected ':PORT' after ']' in '%s'", text);
        port_s = close + 2;
        v6 = true;
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) == 1)
            return whyf(why, n, "'%s' is an IPv4 address: write it without brackets", host);
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon)
            return whyf(why, n, "missing ':PORT' in '%s'", text);
        if (strchr(text, ':') != colon)
            return whyf(why, n, "IPv6 addresses need brackets: write [ADDR]:PORT, e.g. [::1]:8080");
        if (strchr(text, ']'))
            return whyf(why, n, "unexpected ']' in '%s' (IPv6: [ADDR]:PORT)", text);
        size_t hl = (size_t)(colon - text);
        memcpy(host, text, hl);
        host[hl] = '\0';
        port_s = colon + 1;
        v6 = false;
        if (!strcmp(host, "*"))
            strcpy(host, "0.0.0.0");
    }
    unsigned port;
    if (parse_port(port_s, &port) < 0)
        return whyf(why, n, "bad port '%s' (expected 1..65535)", port_s);
    if (!*host)
        return whyf(why, n, "missing address before ':%s' (use * for all addresses)", port_s);
    if (v6) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
            return whyf(why, n, "'%s' is not a valid IPv6 address", host);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*sa);
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof(buf));
        snprintf(out->text, sizeof(out->text), "[%s]:%u", buf, port);
    } else {
        struct sockaddr_in *sa = (struct sockaddr_in *)&out->ss;
        if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
            if (looks_like_hostname(host))
                return whyf(why, n,
                            "'%s' is a hostname; only numeric addresses are accepted (no DNS), e.g. 127.0.0.1",
                            host);
            return whyf(why, n, "'%s' is not a valid IPv4 address", host);
        }
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        out->len = sizeof(*sa);
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
        snprintf(out->text, sizeof(out->text), "%s:%u", buf, port);
    }
    return 0;
}

int voro_sockaddr_parse(const char *text, struct voro_sockaddr *out)
{
    char why[160];
    if (!text || !out)
        return -EINVAL;
    return parse_addr(text, out, why, sizeof(why));
}

/* ---- generic setter ---- */

static int set_generic(const struct row *r, void *obj, const char *value, char *why, size_t n)
{
    char *field = (char *)obj + r->off;
    char reason[200];
    uint64_t v = 0;
    const char *end;
    switch (r->kind) {
    case K_UINT:
        if (parse_u64(value, &v, &end) < 0 || *end || (double)v < r->min || (double)v > r->max) {
            snprintf(reason, sizeof(reason), "expected an integer %.0f..%.0f", r->min, r->max);
            return bad_value(why, n, r, value, reason);
        }
        *(uint32_t *)field = (uint32_t)v;
        return 0;
    case K_DURATION:
    case K_SIZE:
    case K_SIZE64: {
        char sub[120];
        int rc = r->kind == K_DURATION ? parse_duration_ms(value, &v, sub, sizeof(sub))
                                       : parse_size(value, r->kind == K_SIZE ? UINT32_MAX : UINT64_MAX, &v, sub,
                                                    sizeof(sub));
        if (rc < 0)
            return bad_value(why, n, r, value, sub);
        if ((double)v < r->min || (double)v > r->max) {
            if (r->kind == K_DURATION)
                snprintf(reason, sizeof(reason), "out of range %.0fms..%.0fms", r->min, r->max);
            else
                snprintf(reason, sizeof(reason), "out of range %.0f..%.0f bytes", r->min, r->max);
            return bad_value(why, n, r, value, reason);
        }
        if (r->kind == K_SIZE64)
            *(uint64_t *)field = v;
        else
            *(uint32_t *)field = (uint32_t)v;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(value, (bool *)field) < 0)
            return bad_value(why, n, r, value, "expected true/false, on/off, yes/no or 1/0");
        return 0;
    case K_STRING: {
        size_t len = strlen(value);
        if (!len || (double)len > r->max) {
            snprintf(reason, sizeof(reason), "expected 1..%.0f characters", r->max);
            return bad_value(why, n, r, value, reason);
        }
        if (!strcmp(r->type, "name") && !name_ok(value))
            return bad_value(why, n, r, value, "a name uses letters, digits, '_', '-' and '.'");
        memcpy(field, value, len + 1);
        return 0;
    }
    case K_ENUM: {
        int idx;
        if (enum_value(r, value, &idx, why, n) < 0)
            return -EINVAL;
        *(int *)field = idx;
        return 0;
    }
    case K_FLOAT: {
        char *e;
        errno = 0;
        double d = strtod(value, &e);
        if (!*value || *e || errno || !isfinite(d) || d < r->min || d > r->max) {
            snprintf(reason, sizeof(reason), "expected a number %.1f..%.1f", r->min, r->max);
            return bad_value(why, n, r, value, reason);
        }
        *(double *)field = d;
        return 0;
    }
    case K_ADDR: {
        char sub[200];
        if (parse_addr(value, (struct voro_sockaddr *)field, sub, sizeof(sub)) < 0)
            return bad_value(why, n, r, value, sub);
        return 0;
    }
    case K_CUSTOM:
        break;
    }
    return whyf(why, n, "internal: no setter for %s", r->key);
}

/* ---- custom setters ---- */

static int set_server_port(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                           int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    if (parse_port(value, &ps->server_port) < 0)
        return bad_value(why, n, r, value, "expected a port 1..65535");
    return 0;
}

static int set_server_bind(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                           int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    char tmp[VORO_ADDR_TEXT_MAX + 8], sub[200];
    struct voro_sockaddr sa;
    size_t len = strlen(value);
    if (len == 0 || len >= VORO_ADDR_TEXT_MAX - 8)
        return bad_value(why, n, r, value, "expected a numeric address such as 0.0.0.0, :: or 127.0.0.1");
    const char *colon = strchr(value, ':');
    if ((colon && strchr(value, '.')) || strstr(value, "]:"))
        return bad_value(why, n, r, value, "an address without port is expected here; the port is [server] port");
    bool v6 = colon && value[0] != '[';
    if (v6)
        snprintf(tmp, sizeof(tmp), "[%s]:1", value);
    else
        snprintf(tmp, sizeof(tmp), "%s:1", value);
    if (parse_addr(tmp, &sa, sub, sizeof(sub)) < 0)
        return bad_value(why, n, r, value, sub);
    /* keep only the host part: "[::1]:1" -> "[::1]", "1.2.3.4" as written */
    snprintf(ps->server_host, sizeof(ps->server_host), "%s", tmp);
    *strrchr(ps->server_host, ':') = '\0';
    return 0;
}

static int set_server_mode(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                           int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    int idx;
    if (enum_value(r, value, &idx, why, n) < 0)
        return -EINVAL;
    ps->server_mode = (enum voro_listener_mode)idx;
    return 0;
}

static int set_threads(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                       int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    uint64_t v;
    const char *end;
    if (!strcmp(value, "auto")) {
        ps->cfg->threads_auto = true;
        ps->cfg->threads = 0;
        return 0;
    }
    if (parse_u64(value, &v, &end) < 0 || *end || v < 1 || v > MAX_THREADS)
        return bad_value(why, n, r, value, "expected 1..256 or auto");
    ps->cfg->threads_auto = false;
    ps->cfg->threads = (unsigned)v;
    return 0;
}

static int set_buffers(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                       int line, char *why, size_t n)
{
    (void)key, (void)line, (void)ps;
    if (set_generic(&(struct row){.sec = r->sec, .key = r->key, .kind = K_UINT, .off = r->off, .min = r->min,
                                  .max = r->max},
                    obj, value, why, n) < 0)
        return -EINVAL;
    uint32_t v = *(uint32_t *)((char *)obj + r->off);
    if (v & (v - 1))
        return bad_value(why, n, r, value, "must be a power of two (16, 32, ... 32768)");
    return 0;
}

static int set_log_level(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                         int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    int idx;
    if (enum_value(r, value, &idx, why, n) < 0)
        return -EINVAL;
    snprintf(ps->cfg->log_level, sizeof(ps->cfg->log_level), "%s", value);
    return 0;
}

static int set_stats_port(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                          int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    if (parse_port(value, &ps->stats_port) < 0)
        return bad_value(why, n, r, value, "expected a port 1..65535");
    return 0;
}

static int set_node_name(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                         int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    if (!name_ok(value))
        return bad_value(why, n, r, value, "a name has 1..63 letters, digits, '_', '-' or '.'");
    snprintf(ps->cfg->node_name, sizeof(ps->cfg->node_name), "%s", value);
    return 0;
}

static int set_cluster_admin(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                             int line, char *why, size_t n)
{
    (void)obj, (void)key, (void)line;
    char sub[200];
    if (parse_addr(value, &ps->cfg->admin_bind, sub, sizeof(sub)) < 0)
        return bad_value(why, n, r, value, sub);
    return 0;
}

static int algorithm_value(const struct row *r, const char *value, enum voro_lb_algorithm *out, char *why, size_t n)
{
    int idx;
    if (enum_value(r, value, &idx, why, n) < 0)
        return -EINVAL;
    *out = (enum voro_lb_algorithm)idx;
    return 0;
}

static int set_algorithm(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                         int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    return algorithm_value(r, value, &((struct voro_pool_config *)obj)->algorithm, why, n);
}

static const struct row *find_row(enum section sec, const char *key);
static void pool_defaults(struct pstate *ps, struct voro_pool_config *pool);

/* Appends a pool; returns its index or -ENOMEM / -E2BIG. */
/* Makes room for one more named section instance: the config's array of `elem`-byte structs
 * and the parser's bookkeeping beside it grow together. Returns 0 or -ENOMEM. */
static int grow_instances(void **arr, size_t elem, struct inst **inst, size_t *cap, size_t n)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *a = realloc(*arr, ncap * elem);
    if (!a)
        return -ENOMEM;
    *arr = a;
    struct inst *in = realloc(*inst, ncap * sizeof(*in));
    if (!in)
        return -ENOMEM;
    *inst = in;
    *cap = ncap;
    return 0;
}

static int add_pool(struct pstate *ps, const char *name, int line)
{
    struct voro_config *cfg = ps->cfg;
    if (cfg->n_pools >= MAX_POOLS)
        return -E2BIG;
    if (grow_instances((void **)&cfg->pools, sizeof(*cfg->pools), &ps->pinst, &ps->pcap, cfg->n_pools))
        return -ENOMEM;
    size_t i = cfg->n_pools++;
    memset(&cfg->pools[i], 0, sizeof(cfg->pools[i]));
    memset(&ps->pinst[i], 0, sizeof(ps->pinst[i]));
    snprintf(cfg->pools[i].name, sizeof(cfg->pools[i].name), "%s", name);
    cfg->pools[i].line = line;
    pool_defaults(ps, &cfg->pools[i]);
    return (int)i;
}

static int find_pool(const struct voro_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (!strcmp(cfg->pools[i].name, name))
            return (int)i;
    return -1;
}

/* Pool "default" as defined by the seed-form [backend] and [balancer] sections. */
static int implicit_pool(struct pstate *ps, int line, char *why, size_t n)
{
    int i = find_pool(ps->cfg, "default");
    if (i >= 0) {
        if (!ps->pinst[i].implicit)
            return whyf(why, n,
                        "[backend] and [balancer] define pool 'default', which [pool default] at line %d already "
                        "defines; use one form",
                        ps->cfg->pools[i].line);
        return i;
    }
    i = add_pool(ps, "default", line);
    if (i == -ENOMEM)
        ps->oom = true;
    if (i < 0)
        return whyf(why, n, "cannot add pool 'default'");
    ps->pinst[i].implicit = true;
    return i;
}

static bool tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool token_ok(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (!len || len > max)
        return false;
    for (; *s; s++)
        if (!tchar(*s))
            return false;
    return true;
}

/* Resolves each adapter's base model: the longest declared model that prefixes the adapter's
 * name followed by '-' ("llama-3" for "llama-3-sql"), else the first declared model. */
static int resolve_adapter_bases(struct voro_model_ref *m, size_t n, const char *srv, char *why, size_t wn)
{
    const struct voro_model_ref *first = NULL;
    for (size_t i = 0; i < n && !first; i++)
        if (!m[i].adapter)
            first = &m[i];
    for (size_t i = 0; i < n; i++) {
        if (!m[i].adapter)
            continue;
        const struct voro_model_ref *best = NULL;
        size_t best_len = 0;
        for (size_t j = 0; j < n; j++) {
            size_t len = strlen(m[j].name);
            if (m[j].adapter || len <= best_len || strncmp(m[i].name, m[j].name, len) || m[i].name[len] != '-')
                continue;
            best = &m[j];
            best_len = len;
        }
        if (!best)
            best = first;
        if (!best)
            return whyf(why, wn, "server '%s': adapter 'lora:%s' needs a base model in the same models= list", srv,
                        m[i].name);
        snprintf(m[i].base, sizeof(m[i].base), "%s", best->name);
    }
    return 0;
}

/* Parses "a,b@v2,lora:a-sql" into an owned array (freed by the caller, also on error). */
static int parse_models(const char *list, const char *srv, struct voro_model_ref **out, size_t *count, char *why,
                        size_t wn)
{
    *out = NULL;
    *count = 0;
    size_t items = 1;
    for (const char *p = list; *p; p++)
        items += *p == ',';
    if (items > MAX_MODELS)
        return whyf(why, wn, "server '%s': more than %d models", srv, MAX_MODELS);
    struct voro_model_ref *m = calloc(items, sizeof(*m));
    if (!m) {
        whyf(why, wn, "out of memory");
        return -ENOMEM;
    }
    *out = m;
    const char *p = list;
    for (size_t i = 0; i < items; i++) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        p += len + (p[len] == ',');
        if (!len)
            return whyf(why, wn, "server '%s': empty model name in models=", srv);
        struct voro_model_ref *r = &m[i];
        const char *orig = item;
        if (len >= 5 && !strncmp(item, "lora:", 5)) {
            r->adapter = true;
            item += 5;
            len -= 5;
        }
        const char *at = memchr(item, '@', len);
        size_t name_len = at ? (size_t)(at - item) : len;
        if (!voro_model_name_valid(item, name_len))
            return whyf(why, wn,
                        "server '%s': bad model name '%.*s' (1..63 letters, digits, '_', '-', '.', '/', ':')", srv,
                        (int)(name_len + (size_t)(item - orig) > 80 ? 80 : name_len + (size_t)(item - orig)), orig);
        memcpy(r->name, item, name_len);
        if (at) {
            size_t vlen = len - name_len - 1;
            if (r->adapter)
                return whyf(why, wn, "server '%s': adapter 'lora:%s' takes no version", srv, r->name);
            if (!voro_model_version_valid(at + 1, vlen))
                return whyf(why, wn, "server '%s': bad version '%.*s' of model '%s' (1..31 letters, digits, '_', "
                                     "'-', '.')",
                            srv, (int)(vlen > 40 ? 40 : vlen), at + 1, r->name);
            memcpy(r->version, at + 1, vlen);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m[j].name, r->name))
                continue;
            if (m[j].adapter != r->adapter)
                return whyf(why, wn, "server '%s': '%s' is declared both as a model and as an adapter", srv, r->name);
            if (!strcmp(m[j].version, r->version))
                return whyf(why, wn, "server '%s': model '%s%s%s' listed twice", srv, r->name, *r->version ? "@" : "",
                            r->version);
        }
        *count = i + 1;
    }
    return resolve_adapter_bases(m, *count, srv, why, wn);
}

/* Accepts only http://NUMERIC-HOST:PORT/PATH: scraping must not depend on DNS. */
static int parse_metrics_url(const char *url, const char *srv, char *out, size_t cap, char *why, size_t wn)
{
    char host[VORO_ADDR_TEXT_MAX], sub[200];
    struct voro_sockaddr sa;
    if (strlen(url) >= cap)
        return whyf(why, wn, "server '%s': metrics URL longer than %zu bytes", srv, cap - 1);
    if (strncmp(url, "http://", 7))
        return whyf(why, wn, "server '%s': metrics URL '%.80s' must start with http://", srv, url);
    const char *auth = url + 7;
    size_t alen = strcspn(auth, "/");
    if (!auth[alen])
        return whyf(why, wn, "server '%s': metrics URL '%.80s' needs a path, e.g. http://127.0.0.1:8000/metrics",
                    srv, url);
    if (alen >= sizeof(host))
        return whyf(why, wn, "server '%s': metrics URL host too long", srv);
    memcpy(host, auth, alen);
    host[alen] = '\0';
    if (parse_addr(host, &sa, sub, sizeof(sub)) < 0)
        return whyf(why, wn, "server '%s': metrics URL: %s", srv, sub);
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    if ((sa.ss.ss_family == AF_INET && ((struct sockaddr_in *)&sa.ss)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
        (sa.ss.ss_family == AF_INET6 && !memcmp(&((struct sockaddr_in6 *)&sa.ss)->sin6_addr, &any6, sizeof(any6))))
        return whyf(why, wn, "server '%s': metrics URL needs a concrete address, not '%s'", srv, host);
    for (const char *c = auth + alen; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#')
            return whyf(why, wn, "server '%s': metrics URL path has an invalid character", srv);
    snprintf(out, cap, "%s", url);
    return 0;
}

/* Parses "ADDR:PORT [weight=N] [models=LIST] [metrics=URL] [capacity=N]" into a new server of `pool`. */
static int add_server(struct pstate *ps, size_t pool_idx, const char *name, const char *spec, int line, char *why,
                      size_t n)
{
    struct voro_pool_config *pool = &ps->cfg->pools[pool_idx];
    struct inst *in = &ps->pinst[pool_idx];
    struct voro_server_config srv = {.weight = 1};
    char buf[VORO_INI_LINE_MAX + 1];
    char sub[200];
    int rc = -EINVAL;
    bool seen_opt[4] = {false};
    static const char *const opts[4] = {"weight=", "models=", "metrics=", "capacity="};
    snprintf(buf, sizeof(buf), "%s", spec);

    if (!name_ok(name))
        return whyf(why, n, "bad server name '%.80s': a name has 1..63 letters, digits, '_', '-' or '.'", name);
    snprintf(srv.name, sizeof(srv.name), "%s", name);
    char *save = NULL;
    char *addr = strtok_r(buf, " \t", &save);
    if (!addr)
        return whyf(why, n, "server '%s' has no address (expected ADDR:PORT [weight=N])", name);
    if (parse_addr(addr, &srv.addr, sub, sizeof(sub)) < 0)
        return whyf(why, n, "server '%s': %s", name, sub);
    for (char *tok; (tok = strtok_r(NULL, " \t", &save));) {
        int o = -1;
        for (int k = 0; k < 4; k++)
            if (!strncmp(tok, opts[k], strlen(opts[k])))
                o = k;
        if (o < 0) {
            rc = whyf(why, n, "server '%s': unexpected '%.60s' (expected weight=N, models=LIST, metrics=URL or "
                              "capacity=N)",
                      name, tok);
            goto fail;
        }
        if (seen_opt[o]) {
            rc = whyf(why, n, "server '%s': %.*s given twice", name, (int)strlen(opts[o]) - 1, opts[o]);
            goto fail;
        }
        seen_opt[o] = true;
        const char *val = tok + strlen(opts[o]);
        uint64_t v;
        const char *end;
        switch (o) {
        case 0:
            if (parse_u64(val, &v, &end) < 0 || *end || v > 256) {
                rc = whyf(why, n, "server '%s': bad weight '%.60s' (expected 1..256, or 0 = drained)", name, val);
                goto fail;
            }
            srv.weight = (uint32_t)v;
            break;
        case 1:
            rc = parse_models(val, name, &srv.models, &srv.n_models, why, n);
            if (rc == -ENOMEM)
                ps->oom = true;
            if (rc < 0)
                goto fail;
            break;
        case 2:
            if (parse_metrics_url(val, name, srv.metrics_url, sizeof(srv.metrics_url), why, n) < 0)
                goto fail;
            break;
        case 3:
            if (parse_u64(val, &v, &end) < 0 || *end || v > 1000000) {
                rc = whyf(why, n, "server '%s': bad capacity '%.60s' (expected 0..1000000, 0 = learn it)", name, val);
                goto fail;
            }
            srv.capacity = (uint32_t)v;
            break;
        }
    }
    for (size_t i = 0; i < pool->n_servers; i++)
        if (!strcmp(pool->servers[i].name, name)) {
            rc = whyf(why, n, "duplicate server '%s' in pool '%s'", name, pool->name);
            goto fail;
        }
    if (pool->n_servers >= VORO_POOL_MAX_SERVERS) {
        rc = whyf(why, n, "pool '%s' has more than %d servers", pool->name, VORO_POOL_MAX_SERVERS);
        goto fail;
    }
    if (pool->n_servers == in->srv_cap) {
        size_t cap = in->srv_cap ? in->srv_cap * 2 : 4;
        struct voro_server_config *s = realloc(pool->servers, cap * sizeof(*s));
        if (!s) {
            ps->oom = true;
            rc = whyf(why, n, "out of memory");
            goto fail;
        }
        pool->servers = s;
        in->srv_cap = cap;
    }
    (void)line;
    pool->servers[pool->n_servers++] = srv;
    return 0;
fail:
    free(srv.models);
    return rc;
}

static int set_backend(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                       int line, char *why, size_t n)
{
    (void)r, (void)obj;
    int i = implicit_pool(ps, line, why, n);
    if (i < 0)
        return -EINVAL;
    return add_server(ps, (size_t)i, key, value, line, why, n);
}

static int set_pool_server(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                           int line, char *why, size_t n)
{
    (void)r, (void)obj, (void)key;
    char name[VORO_NAME_MAX + 1];
    size_t len = strcspn(value, " \t");
    if (len == 0 || !value[len])
        return whyf(why, n, "bad server '%.80s' in [pool %s]: expected NAME ADDR:PORT [weight=N]", value,
                    ps->cfg->pools[ps->cur_idx].name);
    if (len > VORO_NAME_MAX)
        len = VORO_NAME_MAX;
    memcpy(name, value, len);
    name[len] = '\0';
    const char *spec = value + strcspn(value, " \t");
    spec += strspn(spec, " \t");
    return add_server(ps, ps->cur_idx, name, spec, line, why, n);
}

static int set_balancer(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                        int line, char *why, size_t n)
{
    (void)obj;
    int i = implicit_pool(ps, line, why, n);
    if (i < 0)
        return -EINVAL;
    struct voro_pool_config *pool = &ps->cfg->pools[i];
    if (!strcmp(key, "algorithm"))
        return algorithm_value(r, value, &pool->algorithm, why, n);
    if (!strcmp(key, "hash_key"))
        return set_hash_key(ps, r, pool, key, value, line, why, n);
    return set_generic(find_row(SEC_POOL, "hash_balance_factor"), pool, value, why, n) < 0
               ? bad_value(why, n, r, value, "expected a number 1.0..100.0")
               : 0;
}

static int set_hash_key(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                        int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    struct voro_pool_l7_config *l7 = &((struct voro_pool_config *)obj)->l7;
    const char *name = NULL;
    enum voro_hash_key k;
    if (!strcmp(value, "client_ip")) {
        k = VORO_HASH_CLIENT_IP;
    } else if (!strcmp(value, "model")) {
        k = VORO_HASH_MODEL;
    } else if (!strncmp(value, "header:", 7)) {
        k = VORO_HASH_HEADER;
        name = value + 7;
    } else if (!strncmp(value, "cookie:", 7)) {
        k = VORO_HASH_COOKIE;
        name = value + 7;
    } else {
        return bad_value(why, n, r, value, "expected client_ip, model, header:NAME or cookie:NAME");
    }
    if (name && !token_ok(name, VORO_NAME_MAX - 1))
        return bad_value(why, n, r, value, "the header or cookie name must be a token of 1..63 characters");
    l7->hash_key = k;
    snprintf(l7->hash_key_name, sizeof(l7->hash_key_name), "%s", name ? name : "");
    return 0;
}

static int set_health_method(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                             int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    int idx;
    if (enum_value(r, value, &idx, why, n) < 0)
        return -EINVAL;
    snprintf((char *)obj + r->off, sizeof(((struct voro_health_config *)0)->method), "%s", value);
    return 0;
}

/* An origin-form path: '/' then visible ASCII; '#' never reaches a server. */
static int set_url_path(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                        int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    size_t len = strlen(value);
    if (value[0] != '/')
        return bad_value(why, n, r, value, "a path starts with '/'");
    if ((double)len > r->max) {
        char reason[64];
        snprintf(reason, sizeof(reason), "longer than %.0f bytes", r->max);
        return bad_value(why, n, r, value, reason);
    }
    for (const char *c = value; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#')
            return bad_value(why, n, r, value, "a path has no spaces, '#' or non-ASCII bytes");
    memcpy((char *)obj + r->off, value, len + 1);
    return 0;
}

/* A route's path prefix: a url path already in the form requests are normalised to, else it
 * could never match (or would match less than it says). */
static int set_route_prefix(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                            int line, char *why, size_t n)
{
    int rc = set_url_path(ps, r, obj, key, value, line, why, n);
    if (rc != 0)
        return rc;
    size_t len = strlen(value), out_len = 0, path_len = 0;
    const char *reason = NULL;
    char norm[256];
    if (strchr(value, '?'))
        return bad_value(why, n, r, value, "a path prefix has no query ('?')");
    if (len >= sizeof(norm) || voro_path_normalize(value, len, norm, sizeof(norm), &out_len, &path_len, &reason) != 0)
        return bad_value(why, n, r, value, reason ? reason : "not a valid path");
    if (out_len != len || memcmp(norm, value, len) != 0) {
        char reason2[300];
        snprintf(reason2, sizeof(reason2), "not in normalised form (requests are matched as %.*s)", (int)out_len, norm);
        return bad_value(why, n, r, value, reason2);
    }
    return 0;
}

static int set_route_host(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                          int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    char *field = (char *)obj + r->off;
    size_t len = strlen(value);
    const char *h = value;
    if (!len || (double)len > r->max)
        return bad_value(why, n, r, value, "expected 1..127 characters");
    if (h[0] == '[') {
        struct voro_sockaddr sa;
        char tmp[160], sub[160];
        snprintf(tmp, sizeof(tmp), "%s:1", value);
        if (value[len - 1] != ']' || parse_addr(tmp, &sa, sub, sizeof(sub)) < 0)
            return bad_value(why, n, r, value, "expected a host name, *.domain, an IPv4 address or [IPv6]");
    } else {
        if (!strncmp(h, "*.", 2))
            h += 2;
        if (!*h || *h == '.' || h[strlen(h) - 1] == '.')
            return bad_value(why, n, r, value, "expected a host name, *.domain, an IPv4 address or [IPv6]");
        for (const char *c = h; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
                return bad_value(why, n, r, value,
                                 "a host has letters, digits, '-' and '.' (no port; '*.' only as the first label)");
    }
    for (size_t i = 0; i <= len; i++)
        field[i] = (char)tolower((unsigned char)value[i]);
    return 0;
}

static int set_route_methods(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                             int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"};
    uint32_t bits = 0;
    const char *p = value;
    for (;;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        size_t tl = len;
        while (tl && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
            tl--;
        int found = -1;
        for (int i = 0; i < 8; i++)
            if (strlen(names[i]) == tl && !memcmp(names[i], p, tl))
                found = i;
        if (found < 0) {
            char reason[160];
            snprintf(reason, sizeof(reason), "unknown method '%.*s' (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or "
                                             "OTHER, comma-separated)",
                     (int)(tl > 20 ? 20 : tl), p);
            return bad_value(why, n, r, value, reason);
        }
        bits |= 1u << found;
        if (!p[len])
            break;
        p += len + 1;
    }
    *(uint32_t *)((char *)obj + r->off) = bits;
    return 0;
}

static int set_route_header(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                            int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    struct voro_route_config *rt = obj;
    size_t nlen = strcspn(value, ":");
    char name[sizeof(rt->header_name)];
    if (!nlen || nlen >= sizeof(name))
        return bad_value(why, n, r, value, "expected NAME: VALUE or NAME (a header name of 1..63 characters)");
    memcpy(name, value, nlen);
    name[nlen] = '\0';
    if (!token_ok(name, sizeof(name) - 1))
        return bad_value(why, n, r, value, "the header name must be a token (letters, digits, !#$%&'*+-.^_`|~)");
    const char *v = "";
    size_t vlen = 0;
    if (value[nlen] == ':') {
        v = value + nlen + 1;
        v += strspn(v, " \t");
        vlen = strlen(v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (!vlen)
            return bad_value(why, n, r, value, "empty value after ':' (write NAME alone to require presence)");
        if (vlen >= sizeof(rt->header_value))
            return bad_value(why, n, r, value, "the value is longer than 127 bytes");
    }
    memcpy(rt->header_name, name, nlen + 1);
    memcpy(rt->header_value, v, vlen);
    rt->header_value[vlen] = '\0';
    return 0;
}

static int set_route_model(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                           int line, char *why, size_t n)
{
    (void)ps, (void)key, (void)line;
    char *field = (char *)obj + r->off;
    size_t len = strlen(value);
    if (strcmp(value, "*")) {
        const char *at = strchr(value, '@');
        size_t nl = at ? (size_t)(at - value) : len;
        if (!voro_model_name_valid(value, nl) || (at && !voro_model_version_valid(at + 1, len - nl - 1)))
            return bad_value(why, n, r, value,
                             "expected *, NAME or NAME@VERSION (a name has 1..63 letters, digits, '_', '-', '.', '/', "
                             "':'; a version 1..31 letters, digits, '_', '-', '.')");
    }
    memcpy(field, value, len + 1);
    return 0;
}

static int set_bind_override(struct pstate *ps, const struct row *r, void *obj, const char *key, const char *value,
                             int line, char *why, size_t n)
{
    (void)obj;
    const char *lname = key + strlen("bind.");
    char sub[200];
    if (!name_ok(lname))
        return whyf(why, n, "bad key '%.80s' in [node]: expected bind.LISTENER", key);
    for (size_t i = 0; i < ps->n_ovr; i++)
        if (!strcmp(ps->ovr[i].listener, lname))
            return whyf(why, n, "duplicate key '%s' in [node] (first set at line %d)", key, ps->ovr[i].line);
    if (ps->n_ovr >= MAX_LISTENERS)
        return whyf(why, n, "too many bind.LISTENER keys (at most %d)", MAX_LISTENERS);
    struct bind_override o = {.line = line};
    snprintf(o.listener, sizeof(o.listener), "%s", lname);
    if (parse_addr(value, &o.addr, sub, sizeof(sub)) < 0)
        return bad_value(why, n, r, value, sub);
    if (ps->n_ovr == ps->ovr_cap) {
        size_t cap = ps->ovr_cap ? ps->ovr_cap * 2 : 4;
        struct bind_override *p = realloc(ps->ovr, cap * sizeof(*p));
        if (!p) {
            ps->oom = true;
            return whyf(why, n, "out of memory");
        }
        ps->ovr = p;
        ps->ovr_cap = cap;
    }
    ps->ovr[ps->n_ovr++] = o;
    return 0;
}

/* ---- table lookups, suggestions ---- */

static bool row_matches(const struct row *r, const char *key)
{
    if (!(r->flags & F_PATTERN))
        return !strcmp(r->key, key);
    if (!strcmp(r->key, "*"))
        return true;
    size_t plen = strlen(r->key) - 1; /* "bind.*" -> prefix "bind." */
    return !strncmp(r->key, key, plen) && key[plen];
}

static const struct row *find_row(enum section sec, const char *key)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (g_rows[i].sec == sec && row_matches(&g_rows[i], key))
            return &g_rows[i];
    return NULL;
}

static size_t row_index(const struct row *r)
{
    return (size_t)(r - g_rows);
}

/* Levenshtein distance, or SIZE_MAX when a string is too long to be worth a suggestion. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[65], cur[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

/* Short words are one typo from many others: only suggest what is plausibly the same word. */
static bool close_enough(const char *typed, size_t d)
{
    size_t len = strlen(typed);
    if (len <= 4)
        return d <= 1;
    return d <= (len / 3 > 2 ? len / 3 : 2);
}

static void unknown_key(struct pstate *ps, int line, enum section sec, const char *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct row *r = &g_rows[i];
        if (r->sec != sec || (r->flags & F_PATTERN))
            continue;
        size_t d = edit_distance(key, r->key);
        if (d < best_d) {
            best_d = d;
            best = r->key;
        }
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", r->key);
        if (w > 0 && (size_t)w < sizeof(list) - used)
            used += (size_t)w;
    }
    char where[VORO_NAME_MAX + 16];
    if (g_sections[sec].named)
        snprintf(where, sizeof(where), "%s %s", g_sections[sec].name,
                 sec == SEC_POOL    ? ps->cfg->pools[ps->cur_idx].name
                 : sec == SEC_ROUTE ? ps->cfg->routes[ps->cur_idx].name
                                    : ps->cfg->listeners[ps->cur_idx].name);
    else
        snprintf(where, sizeof(where), "%s", g_sections[sec].name);
    if (best && close_enough(key, best_d))
        add_error(ps, line, "unknown key '%.80s' in [%s]; did you mean '%s'?", key, where, best);
    else if (sec == SEC_NODE)
        add_error(ps, line, "unknown key '%.80s' in [%s]; valid keys: %s, bind.LISTENER", key, where, list);
    else
        add_error(ps, line, "unknown key '%.80s' in [%s]; valid keys: %s", key, where, list);
}

static void unknown_section(struct pstate *ps, int line, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (int s = 0; s < SEC_COUNT; s++) {
        size_t d = edit_distance(name, g_sections[s].name);
        if (d < best_d) {
            best_d = d;
            best = g_sections[s].name;
        }
    }
    if (best && close_enough(name, best_d))
        add_error(ps, line, "unknown section [%.80s]; did you mean [%s]?", name, best);
    else
        add_error(ps, line,
                  "unknown section [%.80s]; valid sections: server, backend, balancer, limit, monitor, node, "
                  "timeouts, listener NAME, pool NAME, http, route NAME, cluster",
                  name);
}

/* ---- defaults ---- */

static void apply_defaults(struct pstate *ps, bool (*in_group)(enum section), void *obj)
{
    char why[256];
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct row *r = &g_rows[i];
        if (!in_group(r->sec) || (r->flags & (F_NODEFAULT | F_PATTERN)) || !strcmp(r->def, "-"))
            continue;
        int rc = r->set ? r->set(ps, r, obj, r->key, r->def, 0, why, sizeof(why))
                        : set_generic(r, obj, r->def, why, sizeof(why));
        if (rc < 0) /* a broken default is a bug in the table; test_config catches it */
            add_error(ps, 0, "internal: default of %s: %s", r->key, why);
    }
}

static bool group_global(enum section s)
{
    return !g_sections[s].named;
}

static bool group_pool(enum section s)
{
    return s == SEC_POOL;
}

static bool group_listener(enum section s)
{
    return s == SEC_LISTENER;
}

static bool group_route(enum section s)
{
    return s == SEC_ROUTE;
}

static int add_route(struct pstate *ps, const char *name, int line)
{
    struct voro_config *cfg = ps->cfg;
    if (cfg->n_routes >= MAX_ROUTES)
        return -E2BIG;
    if (grow_instances((void **)&cfg->routes, sizeof(*cfg->routes), &ps->rinst, &ps->rcap, cfg->n_routes))
        return -ENOMEM;
    size_t i = cfg->n_routes++;
    memset(&cfg->routes[i], 0, sizeof(cfg->routes[i]));
    memset(&ps->rinst[i], 0, sizeof(ps->rinst[i]));
    snprintf(cfg->routes[i].name, sizeof(cfg->routes[i].name), "%s", name);
    cfg->routes[i].line = line;
    apply_defaults(ps, group_route, &cfg->routes[i]);
    return (int)i;
}

static int find_route(const struct voro_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name))
            return (int)i;
    return -1;
}

static void pool_defaults(struct pstate *ps, struct voro_pool_config *pool)
{
    apply_defaults(ps, group_pool, pool);
}

static int add_listener(struct pstate *ps, const char *name, int line)
{
    struct voro_config *cfg = ps->cfg;
    if (cfg->n_listeners >= MAX_LISTENERS)
        return -E2BIG;
    if (grow_instances((void **)&cfg->listeners, sizeof(*cfg->listeners), &ps->linst, &ps->lcap, cfg->n_listeners))
        return -ENOMEM;
    size_t i = cfg->n_listeners++;
    memset(&cfg->listeners[i], 0, sizeof(cfg->listeners[i]));
    memset(&ps->linst[i], 0, sizeof(ps->linst[i]));
    snprintf(cfg->listeners[i].name, sizeof(cfg->listeners[i].name), "%s", name);
    cfg->listeners[i].line = line;
    apply_defaults(ps, group_listener, &cfg->listeners[i]);
    return (int)i;
}

static int find_listener(const struct voro_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (!strcmp(cfg->listeners[i].name, name))
            return (int)i;
    return -1;
}

/* ---- events ---- */

static void on_section(struct pstate *ps, const struct voro_ini_event *ev)
{
    int sec = -1;
    for (int s = 0; s < SEC_COUNT; s++)
        if (!strcmp(g_sections[s].name, ev->section))
            sec = s;
    ps->cur = SEC_COUNT;
    if (sec < 0) {
        unknown_section(ps, ev->line, ev->section);
        return;
    }
    if (ps->filter == LAYER_SKIP_CLUSTER && g_sections[sec].named) {
        ps->ignored++; /* [listener X] and [pool X] are cluster-scoped as a whole */
        return;
    }
    if (!g_sections[sec].named) {
        if (*ev->name)
            add_error(ps, ev->line, "section [%s] takes no name (got '%.80s')", ev->section, ev->name);
        ps->cur = (enum section)sec;
        return;
    }
    if (!*ev->name) {
        add_error(ps, ev->line, "section [%s] needs a name: [%s NAME]", ev->section, ev->section);
        return;
    }
    if (!name_ok(ev->name)) {
        add_error(ps, ev->line, "%s name '%.80s' is longer than %d characters", ev->section, ev->name,
                  VORO_NAME_MAX - 1);
        return;
    }
    int idx;
    if (sec == SEC_ROUTE) {
        int old = find_route(ps->cfg, ev->name);
        if (old >= 0) {
            add_error(ps, ev->line, "duplicate route '%s' (first defined at line %d)", ev->name,
                      ps->cfg->routes[old].line);
            return;
        }
        idx = add_route(ps, ev->name, ev->line);
    } else if (sec == SEC_LISTENER) {
        int old = find_listener(ps->cfg, ev->name);
        if (old >= 0) {
            add_error(ps, ev->line, "duplicate listener '%s' (first defined at line %d)", ev->name,
                      ps->cfg->listeners[old].line);
            return;
        }
        idx = add_listener(ps, ev->name, ev->line);
    } else {
        int old = find_pool(ps->cfg, ev->name);
        if (old >= 0) {
            if (ps->pinst[old].implicit)
                add_error(ps, ev->line,
                          "pool 'default' is already defined by [backend]/[balancer] at line %d; use one form",
                          ps->cfg->pools[old].line);
            else
                add_error(ps, ev->line, "duplicate pool '%s' (first defined at line %d)", ev->name,
                          ps->cfg->pools[old].line);
            return;
        }
        idx = add_pool(ps, ev->name, ev->line);
    }
    if (idx == -ENOMEM) {
        ps->oom = true;
        return;
    }
    if (idx < 0) {
        add_error(ps, ev->line, "too many [%s] sections (at most %d)", ev->section,
                  sec == SEC_LISTENER ? MAX_LISTENERS : sec == SEC_ROUTE ? MAX_ROUTES : MAX_POOLS);
        return;
    }
    ps->cur = (enum section)sec;
    ps->cur_idx = (size_t)idx;
}

static void on_key(struct pstate *ps, const struct voro_ini_event *ev)
{
    if (ps->cur == SEC_COUNT)
        return; /* already reported: the section itself was bad */
    const struct row *r = find_row(ps->cur, ev->key);
    if (!r) {
        unknown_key(ps, ev->line, ps->cur, ev->key);
        return;
    }
    if (ps->filter == LAYER_SKIP_CLUSTER && r->scope == VORO_SCOPE_CLUSTER) {
        ps->ignored++;
        return;
    }
    if (ps->filter == LAYER_NO_NODE && r->scope == VORO_SCOPE_NODE) {
        add_error(ps, ev->line,
                  "key '%.80s' in [%s] is node-scoped: set it in each node's local file, not in the cluster "
                  "configuration",
                  ev->key, g_sections[ps->cur].name);
        return;
    }
    int *seen = ps->cur == SEC_LISTENER ? ps->linst[ps->cur_idx].seen
                : ps->cur == SEC_POOL   ? ps->pinst[ps->cur_idx].seen
                : ps->cur == SEC_ROUTE  ? ps->rinst[ps->cur_idx].seen
                                        : ps->seen;
    size_t ri = row_index(r);
    if (!(r->flags & (F_REPEAT | F_PATTERN))) {
        if (seen[ri]) {
            const char *inst = ps->cur == SEC_LISTENER ? ps->cfg->listeners[ps->cur_idx].name
                               : ps->cur == SEC_POOL   ? ps->cfg->pools[ps->cur_idx].name
                               : ps->cur == SEC_ROUTE  ? ps->cfg->routes[ps->cur_idx].name
                                                       : NULL;
            add_error(ps, ev->line, "duplicate key '%s' in [%s%s%s] (first set at line %d)", ev->key,
                      g_sections[ps->cur].name, inst ? " " : "", inst ? inst : "", seen[ri]);
            return;
        }
    }
    if (!seen[ri])
        seen[ri] = ev->line;
    void *obj = ps->cur == SEC_LISTENER ? (void *)&ps->cfg->listeners[ps->cur_idx]
                : ps->cur == SEC_POOL   ? (void *)&ps->cfg->pools[ps->cur_idx]
                : ps->cur == SEC_ROUTE  ? (void *)&ps->cfg->routes[ps->cur_idx]
                                        : (void *)ps->cfg;
    char why[512];
    int rc = r->set ? r->set(ps, r, obj, ev->key, ev->value, ev->line, why, sizeof(why))
                    : set_generic(r, obj, ev->value, why, sizeof(why));
    if (rc < 0)
        add_error(ps, ev->line, "%s", why);
}

/* ---- whole-file checks ---- */

static int seen_line(const struct pstate *ps, const int *seen, enum section sec, const char *key)
{
    (void)ps;
    return seen[row_index(find_row(sec, key))];
}

static void implicit_listener(struct pstate *ps)
{
    int port_line = seen_line(ps, ps->seen, SEC_SERVER, "port");
    if (!port_line) {
        const char *keys[] = {"bind", "mode"};
        for (size_t k = 0; k < 2; k++) {
            int l = seen_line(ps, ps->seen, SEC_SERVER, keys[k]);
            if (l)
                add_error(ps, l, "[server] %s has no effect without [server] port", keys[k]);
        }
        return;
    }
    if (!ps->server_port) {
        ps->listener_failed = true; /* already reported; "no listener" would only be noise */
        return;
    }
    int old = find_listener(ps->cfg, "default");
    if (old >= 0) {
        add_error(ps, port_line, "[server] port defines listener 'default', which [listener default] at line %d "
                                 "already defines; use one form",
                  ps->cfg->listeners[old].line);
        return;
    }
    int idx = add_listener(ps, "default", port_line);
    if (idx < 0) {
        if (idx == -ENOMEM)
            ps->oom = true;
        else
            add_error(ps, port_line, "too many listeners");
        return;
    }
    struct voro_listener_config *l = &ps->cfg->listeners[idx];
    char text[VORO_ADDR_TEXT_MAX + 24], why[200];
    snprintf(text, sizeof(text), "%s:%u", ps->server_host, ps->server_port);
    if (parse_addr(text, &l->bind, why, sizeof(why)) < 0)
        add_error(ps, port_line, "[server] bind + port: %s", why);
    l->mode = ps->server_mode;
    ps->linst[idx].seen[row_index(find_row(SEC_LISTENER, "bind"))] = port_line;
}

/* [cluster]: a node is a member when node_id is set; then raft_address and token are required. */
static void cluster_defaults(struct pstate *ps)
{
    struct voro_config *cfg = ps->cfg;
    if (!seen_line(ps, ps->seen, SEC_CLUSTER, "data_dir")) {
        size_t n = strlen(cfg->data_dir);
        snprintf(cfg->cluster_data_dir, sizeof(cfg->cluster_data_dir), "%.*s/raft", (int)(n > 250 ? 250 : n),
                 cfg->data_dir);
    }
    int id_line = seen_line(ps, ps->seen, SEC_CLUSTER, "node_id");
    int et = seen_line(ps, ps->seen, SEC_CLUSTER, "election_timeout");
    int ht = seen_line(ps, ps->seen, SEC_CLUSTER, "heartbeat_timeout");
    if (cfg->heartbeat_timeout_ms >= cfg->election_timeout_ms)
        add_error(ps, ht ? ht : et ? et : 1,
                  "[cluster] heartbeat_timeout (%ums) must be shorter than election_timeout (%ums)",
                  cfg->heartbeat_timeout_ms, cfg->election_timeout_ms);
    if (!id_line)
        return;
    cfg->cluster_enabled = true;
    if (!seen_line(ps, ps->seen, SEC_CLUSTER, "raft_address"))
        add_error(ps, id_line, "[cluster] node_id is set but raft_address is not (raft_address = ADDR:PORT)");
    if (!seen_line(ps, ps->seen, SEC_CLUSTER, "token"))
        add_error(ps, id_line, "[cluster] node_id is set but token is not (every /cluster request needs it)");
}

static void node_defaults(struct pstate *ps)
{
    struct voro_config *cfg = ps->cfg;
    if (cfg->threads_auto) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
    }
    int node_admin = seen_line(ps, ps->seen, SEC_NODE, "admin_address");
    int cluster_admin = seen_line(ps, ps->seen, SEC_CLUSTER, "admin_address");
    if (node_admin && cluster_admin)
        add_error(ps, cluster_admin, "[cluster] admin_address repeats [node] admin_address (line %d): set one of them",
                  node_admin);
    if (!node_admin && !cluster_admin) {
        char text[32], why[160];
        snprintf(text, sizeof(text), "127.0.0.1:%u", ps->stats_port);
        parse_addr(text, &cfg->admin_bind, why, sizeof(why));
    }
    if (!cfg->node_name[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0)
            host[0] = '\0';
        size_t j = 0;
        for (size_t i = 0; host[i] && j < VORO_NAME_MAX - 1; i++) {
            char c = host[i];
            cfg->node_name[j++] = (isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.') ? c : '-';
        }
        cfg->node_name[j] = '\0';
        if (!j)
            snprintf(cfg->node_name, sizeof(cfg->node_name), "voro");
    }
    cluster_defaults(ps);
}

static bool same_addr(const struct voro_sockaddr *a, const struct voro_sockaddr *b)
{
    return a->len == b->len && !memcmp(&a->ss, &b->ss, a->len);
}

static void check_listeners(struct pstate *ps)
{
    struct voro_config *cfg = ps->cfg;
    size_t bind_row = row_index(find_row(SEC_LISTENER, "bind"));
    size_t pool_row = row_index(find_row(SEC_LISTENER, "pool"));
    size_t idle_row = row_index(find_row(SEC_LISTENER, "idle_timeout"));

    for (size_t i = 0; i < ps->n_ovr; i++) {
        int li = find_listener(cfg, ps->ovr[i].listener);
        if (li < 0) {
            add_error(ps, ps->ovr[i].line, "bind.%s: no listener named '%s'", ps->ovr[i].listener,
                      ps->ovr[i].listener);
            continue;
        }
        cfg->listeners[li].bind = ps->ovr[i].addr;
        if (!ps->linst[li].seen[bind_row])
            ps->linst[li].seen[bind_row] = ps->ovr[i].line;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct voro_listener_config *l = &cfg->listeners[i];
        const struct inst *in = &ps->linst[i];
        if (!in->seen[bind_row])
            add_error(ps, l->line, "listener '%s' has no bind address (bind = ADDR:PORT)", l->name);
        if (!in->seen[idle_row])
            l->idle_timeout_ms = l->mode == VORO_MODE_UDP ? cfg->udp_idle_timeout_ms : cfg->idle_timeout_ms;
        int p = find_pool(cfg, l->pool_name);
        if (p >= 0) {
            l->pool_index = (size_t)p;
            continue;
        }
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t k = 0; k < cfg->n_pools; k++) {
            size_t d = edit_distance(l->pool_name, cfg->pools[k].name);
            if (d < best_d) {
                best_d = d;
                best = cfg->pools[k].name;
            }
        }
        int line = in->seen[pool_row] ? in->seen[pool_row] : l->line;
        if (best && close_enough(l->pool_name, best_d))
            add_error(ps, line, "listener '%s' uses unknown pool '%s'; did you mean '%s'?", l->name, l->pool_name,
                      best);
        else
            add_error(ps, line, "listener '%s' uses unknown pool '%s'%s", l->name, l->pool_name,
                      strcmp(l->pool_name, "default") ? "" : " (define it with [backend] or [pool default])");
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct voro_listener_config *a = &cfg->listeners[i];
        if (!a->bind.len)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct voro_listener_config *b = &cfg->listeners[j];
            bool a_udp = a->mode == VORO_MODE_UDP, b_udp = b->mode == VORO_MODE_UDP;
            if (a_udp == b_udp && same_addr(&a->bind, &b->bind))
                add_error(ps, a->line, "listeners '%s' and '%s' both bind %s/%s", b->name, a->name, a->bind.text,
                          a_udp ? "udp" : "tcp");
        }
    }
    if (!cfg->n_listeners && !ps->listener_failed)
        add_error(ps, ps->last_line > 0 ? ps->last_line : 1,
                  "no listener: set [server] port or add a [listener NAME] section");
}

static void check_health(struct pstate *ps, size_t i);

static void check_pools(struct pstate *ps)
{
    struct voro_config *cfg = ps->cfg;
    size_t ct_row = row_index(find_row(SEC_POOL, "connect_timeout"));
    for (size_t i = 0; i < cfg->n_pools; i++) {
        struct voro_pool_config *p = &cfg->pools[i];
        if (!ps->pinst[i].seen[ct_row])
            p->connect_timeout_ms = cfg->connect_timeout_ms;
        check_health(ps, i);
        if (!p->n_servers)
            add_error(ps, p->line, "pool '%s' has no servers%s", p->name,
                      ps->pinst[i].implicit ? " (add NAME = ADDR:PORT lines under [backend])"
                                            : " (add server = NAME ADDR:PORT)");
    }
}

static void check_health(struct pstate *ps, size_t i)
{
    const struct voro_pool_config *p = &ps->cfg->pools[i];
    const int *seen = ps->pinst[i].seen;
    static const char *const http_keys[] = {"health_method", "health_path", "health_expect_status",
                                            "health_expect_body"};
    if (p->health.type != VORO_HEALTH_CHECK_HTTP)
        for (size_t k = 0; k < sizeof(http_keys) / sizeof(http_keys[0]); k++) {
            int l = seen_line(ps, seen, SEC_POOL, http_keys[k]);
            if (l)
                add_error(ps, l, "pool '%s': %s has no effect unless health_check = http", p->name, http_keys[k]);
        }
    int script_line = seen_line(ps, seen, SEC_POOL, "health_script");
    if (p->health.type == VORO_HEALTH_CHECK_SCRIPT && !script_line) {
        int l = seen_line(ps, seen, SEC_POOL, "health_check");
        add_error(ps, l ? l : p->line, "pool '%s': health_check = script needs health_script = COMMAND", p->name);
    }
    if (p->health.type != VORO_HEALTH_CHECK_SCRIPT && script_line)
        add_error(ps, script_line, "pool '%s': health_script has no effect unless health_check = script", p->name);
}

/* The pool index for `name`, or -1 after reporting it (with the nearest pool name). */
static int resolve_pool(struct pstate *ps, const char *what, const char *name, int line)
{
    int p = find_pool(ps->cfg, name);
    if (p >= 0)
        return p;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t k = 0; k < ps->cfg->n_pools; k++) {
        size_t d = edit_distance(name, ps->cfg->pools[k].name);
        if (d < best_d) {
            best_d = d;
            best = ps->cfg->pools[k].name;
        }
    }
    if (best && close_enough(name, best_d))
        add_error(ps, line, "%s uses unknown pool '%s'; did you mean '%s'?", what, name, best);
    else
        add_error(ps, line, "%s uses unknown pool '%s'", what, name);
    return -1;
}

static bool pool_declares(const struct voro_pool_config *p, const char *model)
{
    for (size_t s = 0; s < p->n_servers; s++)
        for (size_t m = 0; m < p->servers[s].n_models; m++)
            if (voro_model_ref_match(&p->servers[s].models[m], model, strlen(model)))
                return true;
    return false;
}

static void check_routes(struct pstate *ps)
{
    struct voro_config *cfg = ps->cfg;
    bool any_http = false;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        any_http |= cfg->listeners[i].mode == VORO_MODE_HTTP;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct voro_route_config *r = &cfg->routes[i];
        const int *seen = ps->rinst[i].seen;
        char what[VORO_NAME_MAX + 16];
        snprintf(what, sizeof(what), "route '%s'", r->name);
        int pool_line = seen_line(ps, seen, SEC_ROUTE, "pool");
        int p = -1;
        if (!pool_line)
            add_error(ps, r->line, "route '%s' has no pool (pool = NAME)", r->name);
        else if ((p = resolve_pool(ps, what, r->pool_name, pool_line)) >= 0)
            r->pool_index = (size_t)p;
        int lis_line = seen_line(ps, seen, SEC_ROUTE, "listener");
        if (lis_line) {
            int li = find_listener(cfg, r->listener);
            if (li < 0)
                add_error(ps, lis_line, "route '%s' uses unknown listener '%s'", r->name, r->listener);
            else if (cfg->listeners[li].mode != VORO_MODE_HTTP)
                add_error(ps, lis_line, "route '%s': listener '%s' has mode %s; routes apply only to mode = http "
                                        "listeners",
                          r->name, r->listener, voro_listener_mode_name(cfg->listeners[li].mode));
        } else if (!any_http && cfg->n_listeners) {
            add_error(ps, r->line, "route '%s' applies to no listener: no listener has mode = http", r->name);
        }
        int model_line = seen_line(ps, seen, SEC_ROUTE, "model");
        if (p >= 0 && model_line && strcmp(r->model, "*") && !cfg->pools[p].l7.learn_models &&
            !pool_declares(&cfg->pools[p], r->model))
            add_error(ps, model_line,
                      "route '%s': no server of pool '%s' declares model '%s' (add it to a server's models= or set "
                      "learn_models = true in the pool)",
                      r->name, r->pool_name, r->model);
    }
}

static void check_http(struct pstate *ps)
{
    const struct voro_http_config *h = &ps->cfg->http;
    if (h->max_request_line > h->max_header_bytes) {
        int l = seen_line(ps, ps->seen, SEC_HTTP, "max_request_line");
        if (!l)
            l = seen_line(ps, ps->seen, SEC_HTTP, "max_header_bytes");
        add_error(ps, l, "[http] max_request_line (%u) is larger than max_header_bytes (%u)", h->max_request_line,
                  h->max_header_bytes);
    }
}

/* ---- public ---- */

void voro_config_free(struct voro_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_pools; i++) {
        for (size_t j = 0; j < cfg->pools[i].n_servers; j++)
            free(cfg->pools[i].servers[j].models);
        free(cfg->pools[i].servers);
    }
    free(cfg->pools);
    free(cfg->routes);
    free(cfg->listeners);
    free(cfg->source_path);
    free(cfg);
}

void voro_config_errors_free(struct voro_config_errors *errors)
{
    if (!errors)
        return;
    free(errors->items);
    errors->items = NULL;
    errors->count = 0;
}

static void append_raw(struct voro_config_errors *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append_raw(struct voro_config_errors *errors, const char *fmt, ...)
{
    struct voro_config_error *items = realloc(errors->items, (errors->count + 1) * sizeof(*items));
    if (!items)
        return;
    errors->items = items;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(items[errors->count++].message, sizeof(items[0].message), fmt, ap);
    va_end(ap);
}

struct layer {
    const char *name;
    const char *text;
    size_t len;
    enum layer_filter filter;
};

/* Parses the layers in order into one config: keys of later layers land in the same tables, so
 * whole-file checks (listeners vs pools, bind overrides) see the merged result. */
static int parse_layers(const struct layer *layers, size_t n_layers, struct voro_config **out,
                        struct voro_config_errors *errors, size_t *ignored)
{
    int rc = 0;
    struct pstate *ps = NULL;
    struct voro_config *cfg = NULL;
    struct voro_ini *it = NULL;
    if (!out || !n_layers)
        return -EINVAL;
    *out = NULL;

    ps = calloc(1, sizeof(*ps));
    cfg = calloc(1, sizeof(*cfg));
    it = malloc(sizeof(*it));
    if (!ps || !cfg || !it || !(cfg->source_path = strdup(layers[0].name ? layers[0].name : "config"))) {
        rc = -ENOMEM;
        goto out_free;
    }
    ps->file = cfg->source_path;
    ps->cfg = cfg;
    ps->errs = errors;
    ps->cur = SEC_COUNT;
    apply_defaults(ps, group_global, cfg);

    for (size_t li = 0; li < n_layers && !ps->oom; li++) {
        ps->file = layers[li].name ? layers[li].name : "config";
        ps->filter = layers[li].filter;
        ps->cur = SEC_COUNT;
        voro_ini_init(it, layers[li].text, layers[li].len);
        bool before_section = true;
        for (;;) {
            struct voro_ini_event ev;
            int r = voro_ini_next(it, &ev);
            if (r == 0)
                break;
            if (r < 0) {
                add_error(ps, it->error_line, "%s", it->error);
                if (ev.type == VORO_INI_SECTION)
                    ps->cur = SEC_COUNT;
                continue;
            }
            if (ev.type == VORO_INI_SECTION) {
                before_section = false;
                on_section(ps, &ev);
            } else if (before_section) {
                add_error(ps, ev.line, "key '%.80s' outside any section (start with a [section] header)", ev.key);
            } else {
                on_key(ps, &ev);
            }
            if (ps->oom)
                break;
        }
        ps->last_line = it->line;
    }
    ps->filter = LAYER_ALL;

    implicit_listener(ps);
    node_defaults(ps);
    check_pools(ps);
    check_listeners(ps);
    check_routes(ps);
    check_http(ps);

    if (ps->oom) {
        rc = -ENOMEM;
    } else if (ps->nerr) {
        rc = -EINVAL;
        if (errors && ps->nerr > ps->stored) /* the list was capped at MAX_ERRORS */
            append_raw(errors, "%s: %zu more errors not shown", ps->file, ps->nerr - ps->stored);
    }
    if (ignored)
        *ignored = ps->ignored;
out_free:
    free(it);
    if (ps) {
        free(ps->linst);
        free(ps->pinst);
        free(ps->rinst);
        free(ps->ovr);
        free(ps);
    }
    if (rc < 0) {
        voro_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int voro_config_parse(const char *name, const char *text, size_t len, struct voro_config **out,
                      struct voro_config_errors *errors)
{
    struct layer l = {.name = name, .text = text, .len = len, .filter = LAYER_ALL};
    return parse_layers(&l, 1, out, errors, NULL);
}

int voro_config_parse_cluster(const char *name, const char *text, size_t len, struct voro_config **out,
                              struct voro_config_errors *errors)
{
    struct layer l = {.name = name, .text = text, .len = len, .filter = LAYER_NO_NODE};
    struct voro_config *cfg = NULL;
    int rc = parse_layers(&l, 1, &cfg, errors, NULL);
    if (rc == 0 && out)
        *out = cfg;
    else
        voro_config_free(cfg);
    return rc;
}

int voro_config_parse_layered(const char *local_name, const char *local_text, size_t local_len,
                              const char *cluster_name, const char *cluster_text, size_t cluster_len,
                              struct voro_config **out, struct voro_config_errors *errors, size_t *ignored)
{
    struct layer l[2] = {
        {.name = local_name, .text = local_text, .len = local_len, .filter = LAYER_SKIP_CLUSTER},
        {.name = cluster_name, .text = cluster_text, .len = cluster_len, .filter = LAYER_NO_NODE},
    };
    return parse_layers(l, 2, out, errors, ignored);
}

static void io_error(struct voro_config_errors *errors, const char *path, const char *what, int err)
{
    if (errors)
        append_raw(errors, "%s: %s: %s", path, what, strerror(err));
}

/* Reads a whole config file (at most 4 MiB) into a malloc'd NUL-terminated buffer. */
static int read_config_file(const char *path, char **text_out, size_t *len_out, struct voro_config_errors *errors)
{
    int rc = 0;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        io_error(errors, path, "cannot open", errno);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        io_error(errors, path, "cannot stat", errno);
        goto out_close;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        rc = -EFBIG;
        io_error(errors, path, "larger than 4 MiB", EFBIG);
        goto out_close;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        rc = -ENOMEM;
        goto out_close;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            io_error(errors, path, "cannot read", errno);
            free(text);
            text = NULL;
            goto out_close;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    text[got] = '\0';
    *text_out = text;
    *len_out = got;
out_close:
    close(fd);
    return rc;
}

int voro_config_load(const char *path, struct voro_config **out, struct voro_config_errors *errors)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_config_file(path, &text, &len, errors);
    if (rc)
        return rc;
    rc = voro_config_parse(path, text, len, out, errors);
    free(text);
    return rc;
}

int voro_config_load_layered(const char *path, const char *cluster_name, const char *cluster_text,
                             size_t cluster_len, struct voro_config **out, struct voro_config_errors *errors,
                             size_t *ignored)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_config_file(path, &text, &len, errors);
    if (rc)
        return rc;
    rc = voro_config_parse_layered(path, text, len, cluster_name, cluster_text, cluster_len, out, errors, ignored);
    free(text);
    return rc;
}
